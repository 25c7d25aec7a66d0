#pragma once
// The pure parts of the cluster coordinator (src/coordinator/cluster.cc), apart so they can be
// tested without machines: waiting for R/W answers (Gather), decoding replicas' replies, merging
// cells and scan pages by last-write-wins, and the error texts clients see.
//
// Invariants:
//  1. A Gather slot gets at most one outcome; later outcomes for the same slot are ignored, so a
//     late reply can never be counted twice.
//  2. A Gather's waiter wakes as soon as the outcome is decided: `needed` successes, or so many
//     failures that `needed` can no longer be reached, or the deadline.
//  3. merge_scan_answers never returns a key at or past the next cursor, so a key is returned by
//     exactly the page whose token span holds it, whichever replicas answered.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "coordinator/keyspace.h"
#include "replica/replica.h"
#include "resp/reply_parser.h"
#include "storage/cell.h"
#include "topology/token.h"

namespace cairn::coordinator {

using Deadline = std::chrono::steady_clock::time_point;

// Milliseconds left until `deadline`, at least 1 (a peer call with timeout 0 would be refused).
int remaining_ms(Deadline deadline);

// Counts the outcomes of one request sent to `slots` replicas and wakes the waiting worker.
// Thread-safe: outcomes arrive on peer pool threads.
class Gather {
 public:
  // REQUIRES: needed <= slots.
  Gather(size_t needed, size_t slots);

  void succeed(size_t slot);
  void fail(size_t slot);

  // Blocks until `needed` successes (true), or until they can no longer happen or the deadline
  // passed (false).
  bool wait_for_needed(Deadline deadline);
  // Blocks until every slot has an outcome or the deadline passed.
  void wait_for_all(Deadline deadline);
  // Blocks until `needed` successes (true), or more than `failures_seen` failures, or `until`
  // (false): a reader that asked only some replicas asks another when one fails or is slow.
  bool wait_for_needed_or_failure(Deadline until, size_t failures_seen);

  size_t successes() const;
  size_t failures() const;
  // The slots that succeeded so far, in slot order.
  std::vector<size_t> succeeded_slots() const;

 private:
  enum class SlotState : uint8_t { kPending, kSucceeded, kFailed };
  void record(size_t slot, SlotState state);

  mutable std::mutex mu_;
  std::condition_variable changed_;
  const size_t needed_;
  std::vector<SlotState> slots_;
  size_t successes_ = 0;
  size_t failures_ = 0;
};

// How one replica answered one internal request.
struct ReplicaOutcome {
  enum class Kind {
    kOk,      // the request was served
    kFence,   // refused by epoch fencing (`fence` says why)
    kFailed,  // no usable answer: transport failure, timeout, error reply or malformed reply
  };
  Kind kind = Kind::kFailed;
  replica::Fence fence;
  std::string error;  // kFailed: what went wrong, for logs
  // kOk answer to CAIRN.APPLY: the timestamp of a newer cell the replica kept instead (0: none).
  HlcTimestamp newer_timestamp = 0;

  bool ok() const { return kind == Kind::kOk; }
  static ReplicaOutcome success(HlcTimestamp newer = 0) { return {Kind::kOk, {}, {}, newer}; }
  static ReplicaOutcome failure(std::string error) {
    return {Kind::kFailed, {}, std::move(error), 0};
  }
  static ReplicaOutcome fenced(replica::Fence fence) { return {Kind::kFence, fence, {}, 0}; }
};

// A fence outcome from the local replica (kNone → success).
ReplicaOutcome outcome_of_fence(const replica::Fence& fence);

// Decodes replies to the messages of docs/formats.md "Internal protocol".
ReplicaOutcome decode_apply_reply(const Result<resp::Value>& reply);
ReplicaOutcome decode_read_reply(const Result<resp::Value>& reply,
                                 std::optional<storage::Cell>* cell);
ReplicaOutcome decode_scan_reply(const Result<resp::Value>& reply, replica::ScanResult* result);

// The winner under last-write-wins among the cells present (nullopt if none is).
std::optional<storage::Cell> merge_cells(std::span<const std::optional<storage::Cell>> cells);

// Indexes of the answers that hold something other than `winner` (missing or superseded), which
// read repair must bring up to date. Empty when `winner` is nullopt (nothing to repair).
std::vector<size_t> stale_answers(std::span<const std::optional<storage::Cell>> cells,
                                  const std::optional<storage::Cell>& winner);

// Decodes a CAIRN.ROW reply (docs/formats.md "Internal protocol").
ReplicaOutcome decode_row_reply(const Result<resp::Value>& reply, replica::RowPage* page);

// The pages several replicas returned for one row from one sub-key, merged.
struct MergedRowPage {
  std::optional<storage::Cell> header;  // the LWW winner among the headers (any type, or none)
  // Fields at or below this are hidden: the largest bound any answer's row state or the
  // winning header sets (docs/formats.md "Rows").
  HlcTimestamp hidden_through = 0;
  // Per sub-key, the LWW winner among the answers (tombstones and hidden cells included), in
  // sub-key order; only sub-keys every answer covered (below `next`).
  std::vector<std::pair<std::string, storage::Cell>> fields;
  // Where the next page starts: the smallest `next` of the answers that are not done; nullopt
  // when every answer is done.
  std::optional<std::string> next;
  // Read repair, per answer: the indexes in `fields` of the winners it lacks or holds an older
  // cell of (hidden winners excluded: a replica does not store them), and whether its header
  // differs from the winning one.
  std::vector<std::vector<size_t>> stale_fields;
  std::vector<bool> stale_header;
};
MergedRowPage merge_row_pages(std::span<const replica::RowPage> answers, int64_t now_ms);

// The type of ScanRequest::filter.
using ScanFilter = std::function<bool(std::string_view key, const storage::Cell& cell)>;

// Merges the scan answers of several replicas of one range into one client page. `range_end` is
// the end of the scanned range (0 = ring end). Keys are merged by LWW; live ones passing `filter`
// are returned in storage order. Only keys below the smallest next_token of the answers that are
// not done are returned; the next cursor is that token, or range_end when every answer is done
// (0 when that is the ring end: the iteration is complete).
ScanPage merge_scan_answers(topology::Token range_end,
                            std::span<const replica::ScanResult> answers, int64_t now_ms,
                            const ScanFilter& filter);

// The messages of the errors clients see (the text after '-'). Each starts with its code word,
// so the command handlers print them as they are (commands::storage_error_reply).
std::string uncertain_write_message(size_t acks, size_t required);
std::string unavailable_read_message(size_t answers, size_t required);
std::string no_leader_message(uint64_t shard);
inline constexpr std::string_view kCrossShardMessage =
    "CROSSSHARD keys in request don't hash to the same shard";
inline constexpr std::string_view kRedirectMessage = "REDIRECT";
inline constexpr std::string_view kNoTableMessage =
    "NOTABLE this machine has no routing table yet";

}  // namespace cairn::coordinator
