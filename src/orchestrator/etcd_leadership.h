#pragma once
// Several orchestrators on one etcd (docs/orchestrator-ha.md): the state lives in etcd, one
// orchestrator leads through an etcd lease, the others follow.
//
// Keys under the prefix P (--etcd-prefix, e.g. /cairn/default):
//   P/leader  {"name", "address", "since_ms"}: created only if absent, attached to the
//             creator's lease; its create revision names one leadership term.
//   P/state   the orchestrator state as state.h's JSON (events and history trimmed to
//             kEtcdEventsMax / kEtcdHistoryMax), written only by a txn comparing P/leader's
//             create revision with the writer's term.
//
// Invariants:
//  1. Fencing, not timing: every state write is one etcd txn conditioned on P/leader still
//     having this term's create revision. A deposed leader's write fails, its Service is
//     poisoned (service.h) and it steps down; two leaders never both change the state.
//  2. A leader acts (answers heartbeats, ticks) only while its lease is surely alive: until
//     the send time of its last successful keepalive + TTL - kLeaderSafetyMarginMs. etcd counts
//     the TTL from when it received that keepalive, so the old leader stops acting before etcd
//     can expire the lease and before any other orchestrator can create P/leader.
//  3. A new leader's Service is opened from P/state with takeover_grace_ms = the lease TTL:
//     no machine is declared down or dead before one lease period plus the failure-detection
//     window has passed under the new leader (machines need that long to find it).
//  4. A follower never writes P/state. It keeps a read-only view (Service::view) of the
//     newest P/state it knows, for the read-only API and dashboard. A view is only ever
//     replaced by one of a higher mod revision.
//  5. Followers watch P/ (etcd_watch.h: P/leader and P/state): a deleted P/leader wakes the
//     election thread, which campaigns at once; a new P/state becomes the view as soon as it
//     arrives. Only while the watch is down (not yet opened, or broken and being retried) does
//     a follower poll both keys, every kWatchFallbackPollMs, and it logs when it starts and
//     stops doing so.
//  6. Bounded: one election thread, one watch thread and one thread asking etcd members for
//     their health; each etcd call is bounded (etcd_client.h), the watch's buffers and waits
//     too (etcd_watch.h); the loops sleep kElectionPollMs and kMembersRefreshMs between rounds.
//
// Threading: the election thread owns the etcd session; the watch thread only records what it
// sees (under mu_) and wakes the election thread; route() and tick() are called from the
// orchestrator's io thread; status_json() from any thread. Shared fields are under mu_.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "orchestrator/etcd_client.h"
#include "orchestrator/etcd_watch.h"
#include "orchestrator/service.h"

namespace cairn::orchestrator {

inline constexpr int64_t kElectionPollMs = 100;
// A follower whose watch is down polls P/leader and P/state this often (invariant 5).
inline constexpr int64_t kWatchFallbackPollMs = 500;
inline constexpr int64_t kMembersRefreshMs = 2000;
inline constexpr int64_t kLeaderSafetyMarginMs = 100;
inline constexpr size_t kEtcdEventsMax = 1000;
inline constexpr size_t kEtcdHistoryMax = 1000;
// etcd's default request limit is 1.5 MiB; a state larger than this is refused before sending.
inline constexpr size_t kEtcdStateBytesMax = 1400 * 1024;
// The leader compacts etcd's history every this many state writes (each write is a revision).
inline constexpr uint64_t kCompactEveryWrites = 1000;

// Saves to P/state under the fencing compare of one leadership term (invariant 1).
class EtcdStateStore final : public StateStore {
 public:
  EtcdStateStore(std::shared_ptr<EtcdClient> client, std::string prefix, int64_t term_revision);
  Result<State> load() override;
  // busy "leadership lost" when the compare failed; unavailable when etcd did not answer.
  Status save(const State& state) override;

 private:
  std::shared_ptr<EtcdClient> client_;
  const std::string prefix_;
  const int64_t term_revision_;
  uint64_t writes_ = 0;
};

// Parses and validates a P/state value.
Result<State> parse_stored_state(const std::string& value);
// The JSON text stored for `state` (trimmed as the header says).
std::string stored_state_text(const State& state);

// --import-state: writes `state` to P/state if P/state does not exist yet. busy when it does
// (the etcd cluster already has a cluster's state: never overwritten).
Status import_state(EtcdClient& client, const std::string& prefix, const State& state);

struct LeadershipOptions {
  std::string prefix = "/cairn/default";
  std::string address;  // host:port other orchestrators redirect to (this one's API)
  int64_t lease_ttl_s = 1;
  // Tests only (--unsafe-lease-overrun-ms): a leader keeps acting this long past the end of its
  // lease, as a leader whose clock or scheduler misled it would, so that a test can show that
  // fencing alone refuses its writes (invariant 1 without invariant 2). 0 in production.
  int64_t lease_overrun_ms = 0;
  ServiceSettings service;  // store and takeover_grace_ms are set per term
};

class EtcdLeadership final : private WatchHandler {
 public:
  EtcdLeadership(LeadershipOptions options, std::shared_ptr<EtcdClient> client, Clock* clock);
  ~EtcdLeadership() override;  // stop()
  EtcdLeadership(const EtcdLeadership&) = delete;
  EtcdLeadership& operator=(const EtcdLeadership&) = delete;

  void start();
  // Stops the election thread; a leader revokes its lease so that another takes over at once.
  void stop();

  struct Route {
    std::shared_ptr<Service> leader;  // set while this orchestrator leads (invariant 2)
    std::shared_ptr<Service> view;    // a follower's read-only view (may be null: none yet)
    std::string leader_address;       // "" while no leader is known
  };
  Route route() const;
  // Runs the leader's tick (io thread, every kTickIntervalMs); nothing while following.
  void tick();
  // {"self", "role", "leader", "leader_since_ms", "term", "etcd": [{"name", "client_url",
  //  "healthy", "leader"}], "watch": {"up", "events", "view_revision", "failures",
  //  "fallback_polls"}}
  nlohmann::json status_json() const;

 private:
  void run();
  void round();
  bool keep_lease();  // false when there is no lease after the call
  void check_term();  // a leader whose P/leader is gone or re-created steps down
  void lead_or_follow();
  void become_leader(int64_t term_revision);
  void step_down(const std::string& why, bool revoke);
  void refresh_view();
  // Makes `value` (P/state at mod_revision) the view unless the view is as new (invariant 4).
  void install_view(const std::string& value, int64_t mod_revision);
  void refresh_members();
  // WatchHandler (the watch thread).
  void on_snapshot(const std::vector<EtcdKeyValue>& kvs, int64_t revision) override;
  void on_event(const WatchEvent& event) override;
  void on_up() override;
  void on_down(const Status& why) override;
  void record_leader_key(const EtcdKeyValue* kv);  // nullptr: P/leader does not exist
  void record_state(const EtcdKeyValue& kv);
  bool sleep_ms(int64_t ms);  // false once stopping
  int64_t now_ms() const { return clock_->monotonic_ms(); }

  const LeadershipOptions options_;
  const std::shared_ptr<EtcdClient> client_;
  Clock* const clock_;

  // The election thread only.
  int64_t lease_id_ = 0;
  int64_t lease_ttl_ms_ = 0;
  int64_t next_keepalive_ms_ = 0;
  int64_t next_poll_ms_ = 0;  // the fallback poll's next round (invariant 5)

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::shared_ptr<Service> leader_;  // this orchestrator's Service while it leads
  std::shared_ptr<Service> view_;
  int64_t term_revision_ = 0;   // P/leader's create revision while leading
  int64_t valid_until_ms_ = 0;  // invariant 2 (monotonic)
  std::string leader_address_;
  int64_t leader_since_ms_ = 0;  // wall clock
  std::vector<EtcdMember> members_;
  int64_t view_revision_ = 0;  // the view's P/state mod revision
  // What the watch saw (invariant 5); meaningful while watch_up_.
  bool watch_up_ = false;
  bool watch_ever_up_ = false;
  bool poked_ = false;  // wakes the election thread before kElectionPollMs
  struct WatchedLeader {
    bool known = false;   // a snapshot was read since the watch (re)started
    bool exists = false;  // P/leader exists
    std::string address;
    int64_t since_ms = 0;
    int64_t lease = 0;
  } watched_leader_;
  std::string latest_state_;  // P/state's newest value seen by the watch, not yet the view
  int64_t latest_state_revision_ = 0;
  uint64_t watch_events_ = 0;
  uint64_t watch_failures_ = 0;
  uint64_t fallback_polls_ = 0;
  std::unique_ptr<EtcdWatcher> watcher_;
  std::thread thread_;
  std::thread members_thread_;  // refresh_members every kMembersRefreshMs
};

}  // namespace cairn::orchestrator
