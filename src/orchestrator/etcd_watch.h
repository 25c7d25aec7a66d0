#pragma once
// etcd 3.4's watch through its gRPC JSON gateway (docs/orchestrator-ha.md, "Followers"):
//
//   POST /v3/watch {"create_request": {"key", "range_end", "start_revision", "fragment": true}}
//
// answers 200 with a chunked body that stays open: one JSON object per watch response, each
// followed by "\n" — {"result": {"header": {"revision"}, "created": true}} first, then
// {"result": {"events": [{"type": "DELETE"?, "kv": {...}}]}} as keys change, or
// {"result": {"canceled": true, "compact_revision": N}} when the start revision was compacted,
// or {"error": {...}} when the stream fails. A message may arrive split over several chunks and
// several reads, or several messages in one.
//
//   WatchStreamDecoder  body bytes -> messages (bounded: a message larger than
//                       message_bytes_max is an error, never a larger buffer)
//   WatchResponseReader the whole response (HTTP header, chunking, then the decoder): feed it
//                       the socket's bytes
//   EtcdWatcher         a thread that keeps one watch open: a range read (snapshot) first, then
//                       the stream from the snapshot's revision + 1; on a broken stream it
//                       reconnects (to the next endpoint) from the next revision after a backoff;
//                       on a compacted revision it reads a new snapshot and watches from there.
//
// Invariants:
//  1. Bounded memory: a message is at most message_bytes_max (kWatchMessageBytesMax: etcd's
//     1.5 MiB request limit, base64-inflated, with JSON around it; the watch asks for
//     `fragment`, so etcd splits a batch of events larger than its limit into several
//     messages); the HTTP layer keeps only bounded bytes (net/http_stream.h).
//  2. Bounded waits: connecting takes at most connect_timeout_ms; a stream that brings nothing
//     for idle_timeout_ms is presumed stuck and re-opened from the next revision (the leader
//     rewrites the state at least every 10 s, so a live stream is never that quiet for long);
//     a failed stream is retried after backoff_min_ms, doubling to backoff_max_ms.
//  3. In order, nothing missed: the handler sees a snapshot, then every event after the
//     snapshot's revision in revision order; after a reconnect the watch starts at the revision
//     after the last event seen, and when etcd has compacted that revision the handler gets a
//     new snapshot instead (which replaces everything it knew).
//  4. The watch asks etcd to require a raft leader (gRPC metadata hasleader): a member that
//     loses quorum ends the stream instead of keeping it silently open.
//
// Threading: EtcdWatcher's thread calls the handler; start() and stop() from one other thread.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "net/http_stream.h"
#include "orchestrator/etcd_client.h"

namespace cairn::orchestrator {

inline constexpr size_t kWatchMessageBytesMax = 4 * 1024 * 1024;
inline constexpr int kWatchIdleMsDefault = 15000;
inline constexpr int64_t kWatchBackoffMinMs = 100;
inline constexpr int64_t kWatchBackoffMaxMs = 2000;

struct WatchEvent {
  bool deleted = false;  // DELETE (kv has key and mod_revision only); otherwise PUT
  EtcdKeyValue kv;
};

struct WatchMessage {
  int64_t revision = 0;  // header.revision (absent in a compaction cancel)
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted; watch from a snapshot
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};

// One message of the stream (without its "\n"). unavailable when it is an {"error": ...}
// message (etcd ended the stream), corruption when it is not a watch response.
Result<WatchMessage> parse_watch_message(std::string_view text);

// The body of a watch response -> messages, in order.
class WatchStreamDecoder {
 public:
  using OnMessage = std::function<Status(const WatchMessage&)>;
  explicit WatchStreamDecoder(OnMessage on_message,
                              size_t message_bytes_max = kWatchMessageBytesMax);
  // Takes the next body bytes; calls on_message for every message they complete. corruption
  // when a message exceeds the bound or is malformed; on_message's or the message's error.
  Status feed(std::string_view bytes);
  size_t buffered_bytes() const { return partial_.size(); }

 private:
  OnMessage on_message_;
  const size_t message_bytes_max_;
  std::string partial_;  // the message being received, without its "\n" yet
};

// A whole watch response read from raw HTTP bytes: a 200 streams messages to on_message; any
// other status is an error carrying etcd's text once its (bounded) body is read.
class WatchResponseReader final : public net::HttpByteSink {
 public:
  explicit WatchResponseReader(WatchStreamDecoder::OnMessage on_message,
                               size_t message_bytes_max = kWatchMessageBytesMax);
  Status feed(std::string_view bytes) override;
  // The connection ended: an error, always (a watch never ends by itself while it is wanted):
  // unavailable "the watch stream ended" (clean end) or the HTTP layer's error.
  Status finish() override;
  bool done() const override { return http_.done(); }

 private:
  Status check_status() const;
  WatchStreamDecoder decoder_;
  net::HttpResponseStream http_;
};

// The body of a watch create request for [key, range_end) from start_revision (> 0).
std::string watch_request_body(const std::string& key, const std::string& range_end,
                               int64_t start_revision);

class WatchHandler {
 public:
  virtual ~WatchHandler() = default;
  // Every key of the range at `revision`: replaces whatever was known (invariant 3).
  virtual void on_snapshot(const std::vector<EtcdKeyValue>& kvs, int64_t revision) = 0;
  virtual void on_event(const WatchEvent& event) = 0;
  // The stream is open (etcd said "created"): changes arrive as they happen.
  virtual void on_up() = 0;
  // The stream failed and is being retried (not called for an idle re-open or a compaction).
  virtual void on_down(const Status& why) = 0;
};

struct WatchOptions {
  std::string key;        // the range's first key
  std::string range_end;  // etcd_prefix_end(prefix) for a prefix
  int connect_timeout_ms = kEtcdCallTimeoutMsDefault;
  int idle_timeout_ms = kWatchIdleMsDefault;
  int64_t backoff_min_ms = kWatchBackoffMinMs;
  int64_t backoff_max_ms = kWatchBackoffMaxMs;
  size_t message_bytes_max = kWatchMessageBytesMax;
};

class EtcdWatcher {
 public:
  EtcdWatcher(std::shared_ptr<EtcdClient> client, WatchOptions options, WatchHandler* handler);
  ~EtcdWatcher();  // stop()
  EtcdWatcher(const EtcdWatcher&) = delete;
  EtcdWatcher& operator=(const EtcdWatcher&) = delete;

  void start();
  void stop();  // cancels the open stream and joins the thread

 private:
  void run();
  // One stream from next_revision_ until it fails; sets compacted_ when etcd says the revision
  // is gone and established_ once etcd said "created".
  Status stream_once(const net::HttpEndpoint& endpoint);
  bool sleep_ms(int64_t ms);  // false once stopping

  const std::shared_ptr<EtcdClient> client_;
  const WatchOptions options_;
  WatchHandler* const handler_;

  // The watcher's thread only.
  int64_t next_revision_ = 0;
  bool compacted_ = false;
  bool established_ = false;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  net::HttpStreamCall call_;
  std::thread thread_;
};

}  // namespace cairn::orchestrator
