#pragma once
// A small client for etcd 3.4's v3 JSON gateway (the HTTP face of its gRPC API under /v3/),
// over the project's blocking HTTP client (net/http_client.h): no etcd client library.
//
// Only what the orchestrator's leader election and state store need (docs/orchestrator-ha.md):
//   POST /v3/kv/range        {"key", "range_end"}             one key, or a prefix's keys
//   POST /v3/watch           (etcd_watch.h: a stream, read with net/http_stream.h)
//   POST /v3/kv/txn          {"compare", "success", "failure"} create-if-absent, fenced put
//   POST /v3/lease/grant     {"TTL"}                          a lease (TTL in whole seconds)
//   POST /v3/lease/keepalive {"ID"}                           one renewal (the stream ends at EOF)
//   POST /v3/lease/revoke    {"ID"}
//   POST /v3/cluster/member/list, /v3/maintenance/status     members and their health
// Keys and values are base64 in the JSON; 64-bit integers come back as decimal strings and
// fields with default values (0, false, "") are omitted by the gateway.
//
// Invariants:
//  1. Every call is bounded: each endpoint is tried at most once per call, each try by
//     call_timeout_ms, so a call blocks for at most endpoints x call_timeout_ms.
//  2. A call that reached etcd and got an answer is never retried on another endpoint: a
//     transaction is not applied twice. Only unreachable endpoints (connect or read failure) are
//     skipped; such a failure is kUnavailable.
//  3. The endpoint that answered last is tried first next time.
//
// Threading: every method may be called from any thread (the endpoint cursor is atomic); calls
// block, so never call them from an event loop that must stay responsive.

#include <atomic>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/http_client.h"

namespace cairn::orchestrator {

inline constexpr int kEtcdCallTimeoutMsDefault = 1000;
inline constexpr size_t kEtcdEndpointsMax = 16;

std::string base64_encode(std::string_view bytes);
// invalid_argument when `text` is not base64.
Result<std::string> base64_decode(std::string_view text);

// "http://127.0.0.1:2379,127.0.0.1:2479" → endpoints (the http:// scheme is optional; https is
// refused: the project's HTTP client speaks plain HTTP only).
Result<std::vector<net::HttpEndpoint>> parse_etcd_endpoints(std::string_view list);

struct EtcdKeyValue {
  std::string key;  // filled by range() and by watch events
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct EtcdMember {
  std::string name;
  std::string client_url;  // the first client URL
  bool healthy = false;    // answered /v3/maintenance/status and knows a raft leader
  bool leader = false;     // the raft leader, as it said
};

// For etcd_watch.cc, which reads the same JSON: one kv of an answer or event (key and value
// base64-decoded; corruption when they are not base64), and an int64 field (the gateway writes
// decimal strings; absent: 0).
Result<EtcdKeyValue> etcd_kv_from_json(const nlohmann::json& kv, std::string_view what);
int64_t etcd_int_field(const nlohmann::json& object, const char* name);

// The keys of one range read and the store's revision they were read at (the revision a watch
// continues from: revision + 1).
struct EtcdRange {
  std::vector<EtcdKeyValue> kvs;
  int64_t revision = 0;
};

// The range_end that makes [prefix, range_end) every key starting with `prefix` (etcd's
// convention: the prefix with its last byte incremented). `prefix` must not be empty.
std::string etcd_prefix_end(std::string_view prefix);

class EtcdClient {
 public:
  EtcdClient(std::vector<net::HttpEndpoint> endpoints, int call_timeout_ms);

  // The key's value, or nullopt when it does not exist.
  Result<std::optional<EtcdKeyValue>> get(const std::string& key);
  // Every key in [key, range_end) with the revision of the read.
  Result<EtcdRange> range(const std::string& key, const std::string& range_end);
  // Creates `key` = `value` attached to `lease` if the key does not exist. Returns the key's
  // create revision when this call created it, nullopt when the key already existed.
  Result<std::optional<int64_t>> create(const std::string& key, const std::string& value,
                                        int64_t lease);
  // Puts `key` = `value` only while `guard_key` still has create revision `guard_revision`
  // (the fencing compare). Returns the write's revision, or nullopt when the compare failed
  // (the guard key was deleted or re-created: leadership is lost).
  Result<std::optional<int64_t>> put_if(const std::string& guard_key, int64_t guard_revision,
                                        const std::string& key, const std::string& value);
  // Deletes `key` only while `guard_key` has create revision `guard_revision`.
  Result<bool> delete_if(const std::string& guard_key, int64_t guard_revision,
                         const std::string& key);
  // A new lease; the answer's TTL (etcd raises a TTL below its minimum) in seconds.
  struct Lease {
    int64_t id = 0;
    int64_t ttl_s = 0;
  };
  Result<Lease> grant_lease(int64_t ttl_s);
  // Renews `lease` once. Returns the remaining TTL in seconds; 0 when the lease is gone.
  Result<int64_t> keep_alive(int64_t lease);
  Status revoke_lease(int64_t lease);
  // Drops etcd's history of revisions before `revision` (the state key is rewritten whole at
  // every change, so old revisions are never read).
  Status compact(int64_t revision);
  // Every member with its health (each asked once, bounded by the call timeout).
  Result<std::vector<EtcdMember>> members();

  const std::vector<net::HttpEndpoint>& endpoints() const { return endpoints_; }

 private:
  // POSTs `body` to `path` on the first endpoint that answers (invariants 1-3). A non-200
  // answer is kUnavailable carrying etcd's error text.
  Result<std::string> post(const std::string& path, const std::string& body);
  Result<std::string> post_to(const net::HttpEndpoint& endpoint, const std::string& path,
                              const std::string& body);

  const std::vector<net::HttpEndpoint> endpoints_;
  const int call_timeout_ms_;
  std::atomic<size_t> current_{0};
};

}  // namespace cairn::orchestrator
