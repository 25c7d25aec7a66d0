#pragma once
// TxIntents: what this machine stores, as a replica, for transactions across shards
// (docs/transactions.md "Across shards"): the intents of the transactions prepared on its shard
// (the cells to apply, not applied yet) and the records (commit or abort decisions) of the
// transactions whose home shard it replicates.
//
// Invariants:
//  1. An intent is durable (meta column family, "txi/<txid>") before prepare() returns, and
//     stays until resolve() has applied its cells (commit) or dropped them (abort).
//  2. A key is named by at most one intent: prepare() of a transaction whose key is held by
//     another one fails and stores nothing.
//  3. A record never changes once stored ("txr/<txid>"): record_first() keeps the first
//     decision and answers it, so a coordinator committing and a recovery aborting the same
//     transaction cannot both win on one replica, nor, with quorums, on a shard.
//  4. Every index held in memory is bounded by the intents stored (kIntentsMax).
//
// Threading: every method may be called from any thread (one mutex).

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/engine.h"

namespace cairn::replica {

inline constexpr size_t kIntentsMax = 100'000;

// What a write to a key held by an intent is refused with (Replica::apply, the leader's
// read-modify-write commands): it waits, bounded, and tries again.
inline constexpr std::string_view kTxLockedMessage =
    "TXLOCKED a key is held by a transaction across shards being decided";

struct TxIntent {
  std::string txid;
  std::string home_key;                   // the transaction's record lives at this key's shard
  int64_t prepared_ms = 0;                // this replica's wall clock when it stored the intent
  std::vector<storage::WalChange> cells;  // keys' own cells, stamped by the coordinator
  // Keys of the shard the transaction read without writing them: held as well, so no other
  // transaction writes them before this one is decided (no write skew).
  std::vector<std::string> reads;
};

enum class TxDecision : char { kCommit = 'C', kAbort = 'A' };

// The value stored for an intent, and back (nullopt: malformed).
std::string encode_intent(const TxIntent& intent);
std::optional<TxIntent> decode_intent(std::string_view bytes);

// Key and encoded cell pairs, as the transaction messages carry them, decoded (nullopt: an odd
// count or an unreadable cell).
std::optional<std::vector<storage::WalChange>> decode_key_cells(std::span<const std::string> args);

// CAIRN.INTENT PUT <epoch> <txid> <home key> <cells> [<key> <cell>]... [<read key>]...: the
// request a shard's leader sends its replicas to store an intent, and back (nullopt:
// malformed). `args[0]` is the command's name.
std::vector<std::string> intent_put_args(uint64_t epoch, const TxIntent& intent);
std::optional<std::pair<uint64_t, TxIntent>> parse_intent_put(std::span<const std::string> args);

class TxIntents {
 public:
  // `engine` must outlive this object.
  TxIntents(storage::Engine& engine, std::function<int64_t()> wall_clock_ms);

  // Reads the stored intents back (at start).
  Status load();

  // Stores `intent` (its prepared_ms set now). The same transaction prepared again replaces its
  // intent. kBusy "TXCONFLICT ..." if a key is held by another transaction's intent.
  Status prepare(TxIntent intent);

  // The transaction whose intent holds `key`, if any.
  std::optional<std::string> holder(std::string_view key) const;

  // Ends the transaction's intent here: commit applies its cells (one write batch) then removes
  // it; abort removes it. Without an intent here (never prepared on this replica, or resolved
  // already), a commit applies `cells` when given (a replica outside the prepare quorum).
  Status resolve(const std::string& txid, TxDecision decision,
                 const std::vector<storage::WalChange>* cells = nullptr);

  // Intents stored at or before `prepared_before_ms`, at most `max` (recovery).
  std::vector<TxIntent> prepared_before(int64_t prepared_before_ms, size_t max) const;
  size_t pending() const;

  // Stores `decision` unless a decision is stored already; answers the stored one.
  Result<TxDecision> record_first(const std::string& txid, TxDecision decision);

 private:
  storage::Engine& engine_;
  std::function<int64_t()> wall_clock_ms_;
  mutable std::mutex mu_;
  std::map<std::string, TxIntent, std::less<>> intents_;     // by txid
  std::map<std::string, std::string, std::less<>> holders_;  // key -> txid
};

}  // namespace cairn::replica
