#include "orchestrator/etcd_leadership.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace cairn::orchestrator {

namespace {

using nlohmann::json;

std::string leader_key(const std::string& prefix) { return prefix + "/leader"; }
std::string state_key(const std::string& prefix) { return prefix + "/state"; }

}  // namespace

std::string stored_state_text(const State& state) {
  // Events and history are for people; etcd keeps the last ones only, so that one write stays
  // far below etcd's request limit however long the cluster runs.
  State trimmed = state;
  while (trimmed.events.size() > kEtcdEventsMax) trimmed.events.pop_front();
  while (trimmed.history.size() > kEtcdHistoryMax) trimmed.history.pop_front();
  return state_to_json(trimmed).dump();
}

Result<State> parse_stored_state(const std::string& value) {
  json parsed = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Status::corruption("etcd state: not JSON");
  auto state = state_from_json(parsed);
  if (!state.is_ok()) return Status::corruption("etcd state: " + state.status().message());
  Status valid = validate_state(*state);
  if (!valid.is_ok()) return Status::corruption("etcd state: " + valid.message());
  return state;
}

Status import_state(EtcdClient& client, const std::string& prefix, const State& state) {
  Status valid = validate_state(state);
  if (!valid.is_ok()) return valid;
  auto created = client.create(state_key(prefix), stored_state_text(state), /*lease=*/0);
  if (!created.is_ok()) return created.status();
  if (!created->has_value()) {
    return Status::busy(
        fmt::format("{} already holds a cluster's state; it is never overwritten (use another "
                    "--etcd-prefix, or delete the key first)",
                    state_key(prefix)));
  }
  return Status::ok();
}

EtcdStateStore::EtcdStateStore(std::shared_ptr<EtcdClient> client, std::string prefix,
                               int64_t term_revision)
    : client_(std::move(client)), prefix_(std::move(prefix)), term_revision_(term_revision) {
  CAIRN_ASSERT(term_revision_ > 0, "a state store writes for one leadership term");
}

Result<State> EtcdStateStore::load() {
  auto stored = client_->get(state_key(prefix_));
  if (!stored.is_ok()) return stored.status();
  if (!stored->has_value()) return Status::not_found("no state in etcd yet");
  return parse_stored_state((*stored)->value);
}

Status EtcdStateStore::save(const State& state) {
  std::string text = stored_state_text(state);
  if (text.size() > kEtcdStateBytesMax) {
    return Status::busy(fmt::format("the state is {} bytes, more than etcd takes ({})", text.size(),
                                    kEtcdStateBytesMax));
  }
  auto written = client_->put_if(leader_key(prefix_), term_revision_, state_key(prefix_), text);
  if (!written.is_ok()) return written.status();
  if (!written->has_value()) {
    return Status::busy(fmt::format("leadership lost: {} no longer has create revision {}",
                                    leader_key(prefix_), term_revision_));
  }
  if (++writes_ % kCompactEveryWrites == 0 && **written > 1) {
    Status compacted = client_->compact(**written - 1);
    if (!compacted.is_ok()) spdlog::warn("orchestrator: etcd compaction: {}", compacted.message());
  }
  return Status::ok();
}

EtcdLeadership::EtcdLeadership(LeadershipOptions options, std::shared_ptr<EtcdClient> client,
                               Clock* clock)
    : options_(std::move(options)), client_(std::move(client)), clock_(clock) {
  CAIRN_ASSERT(client_ != nullptr && clock_ != nullptr, "leadership needs etcd and a clock");
  CAIRN_ASSERT(options_.lease_ttl_s > 0, "a leader lease has a length");
  CAIRN_ASSERT(options_.lease_overrun_ms >= 0, "an overrun only lengthens a lease");
  if (options_.lease_overrun_ms > 0) {
    spdlog::warn("orchestrator: UNSAFE: leading up to {} ms past the lease (tests only)",
                 options_.lease_overrun_ms);
  }
}

EtcdLeadership::~EtcdLeadership() { stop(); }

void EtcdLeadership::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
  // Invariant 5: P/leader and P/state, and nothing else under P/ (the events are filtered).
  WatchOptions watch;
  watch.key = options_.prefix + "/";
  watch.range_end = etcd_prefix_end(watch.key);
  watcher_ =
      std::make_unique<EtcdWatcher>(client_, std::move(watch), static_cast<WatchHandler*>(this));
  watcher_->start();
  // Asking every member for its health may wait for a stopped member's timeout: never on the
  // election thread, whose keepalives must not be late.
  members_thread_ = std::thread([this] {
    do {
      refresh_members();
    } while (sleep_ms(kMembersRefreshMs));
  });
}

void EtcdLeadership::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (watcher_ != nullptr) watcher_->stop();
  if (members_thread_.joinable()) members_thread_.join();
  // A clean stop hands over at once instead of after the lease's TTL.
  if (lease_id_ != 0) {
    step_down("stopping", /*revoke=*/true);
  }
}

bool EtcdLeadership::sleep_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(ms, 0)),
                 [this] { return stopping_; });
  return !stopping_;
}

void EtcdLeadership::run() {
  spdlog::info("orchestrator: etcd {} prefix {}, this orchestrator at {}",
               fmt::format("{}:{}", client_->endpoints()[0].host, client_->endpoints()[0].port),
               options_.prefix, options_.address);
  for (;;) {
    {
      // A deleted P/leader seen by the watch ends the wait at once (invariant 5).
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(kElectionPollMs),
                     [this] { return stopping_ || poked_; });
      if (stopping_) return;
      poked_ = false;
    }
    round();
  }
}

EtcdLeadership::Route EtcdLeadership::route() const {
  std::lock_guard lock(mu_);
  Route route;
  if (leader_ != nullptr && now_ms() < valid_until_ms_ && !leader_->poisoned()) {
    route.leader = leader_;
  }
  route.view = view_;
  // A leader whose lease ran out does not send anyone to itself while it steps down.
  if (route.leader != nullptr || leader_address_ != options_.address) {
    route.leader_address = leader_address_;
  }
  return route;
}

void EtcdLeadership::tick() {
  std::shared_ptr<Service> leader = route().leader;
  if (leader != nullptr) leader->tick();
}

nlohmann::json EtcdLeadership::status_json() const {
  std::lock_guard lock(mu_);
  const bool leading = leader_ != nullptr && now_ms() < valid_until_ms_;
  json members = json::array();
  for (const auto& m : members_) {
    members.push_back(json{{"name", m.name},
                           {"client_url", m.client_url},
                           {"healthy", m.healthy},
                           {"leader", m.leader}});
  }
  return json{{"self", options_.address},
              {"role", leading ? "leader" : "follower"},
              {"leader", leader_address_},
              {"leader_since_ms", leader_since_ms_},
              {"term", leading ? term_revision_ : 0},
              {"etcd", std::move(members)},
              {"watch", json{{"up", watch_up_},
                             {"events", watch_events_},
                             {"view_revision", view_revision_},
                             {"failures", watch_failures_},
                             {"fallback_polls", fallback_polls_}}}};
}

void EtcdLeadership::round() {
  if (!keep_lease()) return;
  std::shared_ptr<Service> leader;
  {
    std::lock_guard lock(mu_);
    leader = leader_;
  }
  if (leader != nullptr) {
    if (leader->poisoned()) {
      // Invariant 1: a refused write ends the term. Revoking lets the next leader (maybe this
      // one again, with a fresh Service loaded from etcd) start at once.
      step_down("a state write was refused or failed", /*revoke=*/true);
    } else if (now_ms() >= [&] {
                 std::lock_guard lock(mu_);
                 return valid_until_ms_;
               }()) {
      step_down("the lease could not be renewed in time", /*revoke=*/false);
    } else {
      check_term();
    }
  } else {
    lead_or_follow();
  }
}

bool EtcdLeadership::keep_lease() {
  const int64_t sent = now_ms();
  if (lease_id_ == 0) {
    auto lease = client_->grant_lease(options_.lease_ttl_s);
    if (!lease.is_ok()) {
      spdlog::warn("orchestrator: etcd lease grant: {}", lease.status().message());
      return false;
    }
    lease_id_ = lease->id;
    lease_ttl_ms_ = lease->ttl_s * 1000;
    next_keepalive_ms_ = sent + lease_ttl_ms_ / 4;
    std::lock_guard lock(mu_);
    valid_until_ms_ = sent + lease_ttl_ms_ - kLeaderSafetyMarginMs + options_.lease_overrun_ms;
    return true;
  }
  if (sent < next_keepalive_ms_) return true;
  auto ttl = client_->keep_alive(lease_id_);
  if (!ttl.is_ok()) {
    // Not fatal yet: round() steps down once valid_until passes without a renewal.
    spdlog::warn("orchestrator: etcd lease keepalive: {}", ttl.status().message());
    next_keepalive_ms_ = now_ms() + kElectionPollMs;
    return true;
  }
  if (*ttl <= 0) {
    spdlog::warn("orchestrator: etcd lease {:x} expired", lease_id_);
    step_down("the lease expired", /*revoke=*/false);
    lease_id_ = 0;
    return false;
  }
  next_keepalive_ms_ = sent + lease_ttl_ms_ / 4;
  std::lock_guard lock(mu_);
  valid_until_ms_ = sent + *ttl * 1000 - kLeaderSafetyMarginMs + options_.lease_overrun_ms;
  return true;
}

void EtcdLeadership::check_term() {
  // Fencing already refuses a deposed leader's writes; noticing a lost key here as well stops
  // it from saying it leads (and answering heartbeats) until its next write.
  auto current = client_->get(leader_key(options_.prefix));
  if (!current.is_ok()) return;  // etcd unreachable: the lease deadline decides
  int64_t term;
  {
    std::lock_guard lock(mu_);
    term = term_revision_;
  }
  if (!current->has_value() || (*current)->create_revision != term) {
    step_down("the leader key is gone or belongs to another term", /*revoke=*/true);
  }
}

void EtcdLeadership::lead_or_follow() {
  WatchedLeader current;
  bool watching;
  {
    std::lock_guard lock(mu_);
    watching = watch_up_ && watched_leader_.known;
    current = watched_leader_;
  }
  if (!watching) {
    // Invariant 5: the watch is down, so poll, slowly.
    if (now_ms() < next_poll_ms_) return;
    next_poll_ms_ = now_ms() + kWatchFallbackPollMs;
    {
      std::lock_guard lock(mu_);
      ++fallback_polls_;
    }
    auto read = client_->get(leader_key(options_.prefix));
    if (!read.is_ok()) {
      spdlog::warn("orchestrator: etcd: {}", read.status().message());
      return;
    }
    current = WatchedLeader{};
    if (read->has_value()) {
      current.exists = true;
      current.lease = (*read)->lease;
      json info = json::parse((*read)->value, nullptr, false);
      if (info.is_object()) {
        current.address = info.value("address", "");
        current.since_ms = info.value("since_ms", int64_t{0});
      }
      refresh_view();
    }
  }
  if (current.exists) {
    if (current.lease == lease_id_) {
      // Our own key from a term this process ended (a poisoned Service): hand it over.
      step_down("an old term's key is still ours", /*revoke=*/true);
      return;
    }
    std::string pending;
    int64_t pending_revision = 0;
    {
      std::lock_guard lock(mu_);
      leader_address_ = current.address;
      leader_since_ms_ = current.since_ms;
      // A state the watch saw while this orchestrator led (not parsed then) becomes the view.
      if (latest_state_revision_ > view_revision_) {
        pending = latest_state_;
        pending_revision = latest_state_revision_;
      }
    }
    if (pending_revision > 0) install_view(pending, pending_revision);
    return;
  }
  // No leader: campaign. The key is attached to our lease, so it disappears with us.
  const int64_t since = clock_->wall_ms();
  json info{{"address", options_.address}, {"since_ms", since}};
  auto created = client_->create(leader_key(options_.prefix), info.dump(), lease_id_);
  if (!created.is_ok()) {
    spdlog::warn("orchestrator: etcd campaign: {}", created.status().message());
    return;
  }
  if (!created->has_value()) return;  // another orchestrator was faster
  {
    std::lock_guard lock(mu_);
    leader_address_ = options_.address;
    leader_since_ms_ = since;
  }
  become_leader(**created);
}

void EtcdLeadership::become_leader(int64_t term_revision) {
  ServiceSettings settings = options_.service;
  settings.state_path.clear();
  settings.store = std::make_shared<EtcdStateStore>(client_, options_.prefix, term_revision);
  settings.takeover_grace_ms = lease_ttl_ms_;  // invariant 3
  auto service = Service::open(std::move(settings), clock_);
  if (!service.is_ok()) {
    spdlog::error("orchestrator: cannot lead: {}", service.status().to_string());
    step_down("the state could not be loaded or stored", /*revoke=*/true);
    return;
  }
  spdlog::info("orchestrator: leading (term {}, epoch {})", term_revision, (*service)->epoch());
  std::lock_guard lock(mu_);
  leader_ = std::shared_ptr<Service>(std::move(*service));
  term_revision_ = term_revision;
  view_.reset();
  view_revision_ = 0;
  latest_state_.clear();
  latest_state_revision_ = 0;
}

void EtcdLeadership::step_down(const std::string& why, bool revoke) {
  bool was_leading;
  {
    std::lock_guard lock(mu_);
    was_leading = leader_ != nullptr;
    leader_.reset();
    term_revision_ = 0;
    if (leader_address_ == options_.address) leader_address_.clear();
  }
  if (was_leading) spdlog::warn("orchestrator: no longer leading: {}", why);
  if (revoke && lease_id_ != 0) {
    Status revoked = client_->revoke_lease(lease_id_);
    if (!revoked.is_ok()) spdlog::warn("orchestrator: etcd lease revoke: {}", revoked.message());
    lease_id_ = 0;
  }
}

void EtcdLeadership::refresh_view() {
  auto stored = client_->get(state_key(options_.prefix));
  if (!stored.is_ok() || !stored->has_value()) return;
  install_view((*stored)->value, (*stored)->mod_revision);
}

void EtcdLeadership::install_view(const std::string& value, int64_t mod_revision) {
  {
    std::lock_guard lock(mu_);
    if (mod_revision <= view_revision_) return;
  }
  auto state = parse_stored_state(value);
  if (!state.is_ok()) {
    spdlog::error("orchestrator: {}", state.status().message());
    return;
  }
  ServiceSettings settings = options_.service;
  auto view = std::shared_ptr<Service>(Service::view(settings, clock_, std::move(*state)));
  std::lock_guard lock(mu_);
  if (mod_revision <= view_revision_) return;  // a newer one was installed meanwhile
  view_ = std::move(view);
  view_revision_ = mod_revision;
  if (latest_state_revision_ <= mod_revision) {
    latest_state_.clear();
    latest_state_revision_ = 0;
  }
}

void EtcdLeadership::record_leader_key(const EtcdKeyValue* kv) {
  WatchedLeader seen;
  seen.known = true;
  if (kv != nullptr) {
    seen.exists = true;
    seen.lease = kv->lease;
    json info = json::parse(kv->value, nullptr, false);
    if (info.is_object()) {
      seen.address = info.value("address", "");
      seen.since_ms = info.value("since_ms", int64_t{0});
    }
  }
  {
    std::lock_guard lock(mu_);
    watched_leader_ = std::move(seen);
    // The election thread follows the new leader, or campaigns, now rather than next round.
    poked_ = true;
  }
  wake_.notify_all();
}

void EtcdLeadership::record_state(const EtcdKeyValue& kv) {
  {
    std::lock_guard lock(mu_);
    if (kv.mod_revision <= view_revision_ || kv.mod_revision <= latest_state_revision_) return;
    if (leader_ != nullptr) {
      // A leader serves from its own Service: the state is parsed only if it steps down.
      latest_state_ = kv.value;
      latest_state_revision_ = kv.mod_revision;
      return;
    }
  }
  install_view(kv.value, kv.mod_revision);
}

void EtcdLeadership::on_snapshot(const std::vector<EtcdKeyValue>& kvs, int64_t revision) {
  const EtcdKeyValue* leader = nullptr;
  const EtcdKeyValue* state = nullptr;
  for (const auto& kv : kvs) {
    if (kv.key == leader_key(options_.prefix)) leader = &kv;
    if (kv.key == state_key(options_.prefix)) state = &kv;
  }
  spdlog::info("orchestrator: read {} at etcd revision {} (leader key {}), watching from there",
               options_.prefix + "/", revision, leader != nullptr ? "present" : "absent");
  record_leader_key(leader);
  if (state != nullptr) record_state(*state);
}

void EtcdLeadership::on_event(const WatchEvent& event) {
  {
    std::lock_guard lock(mu_);
    ++watch_events_;
  }
  if (event.kv.key == leader_key(options_.prefix)) {
    record_leader_key(event.deleted ? nullptr : &event.kv);
  } else if (event.kv.key == state_key(options_.prefix) && !event.deleted) {
    record_state(event.kv);
  }
}

void EtcdLeadership::on_up() {
  bool was_up, ever_up;
  {
    std::lock_guard lock(mu_);
    was_up = watch_up_;
    ever_up = watch_ever_up_;
    watch_up_ = true;
    watch_ever_up_ = true;
  }
  if (was_up) return;  // a quiet stream re-opened
  if (ever_up) {
    spdlog::info("orchestrator: etcd watch on {} is back: no more polling", options_.prefix + "/");
  } else {
    spdlog::info("orchestrator: watching {} in etcd (leader and state changes seen at once)",
                 options_.prefix + "/");
  }
}

void EtcdLeadership::on_down(const Status& why) {
  {
    std::lock_guard lock(mu_);
    watch_up_ = false;
    ++watch_failures_;
  }
  spdlog::warn(
      "orchestrator: etcd watch down ({}): polling {} and {} every {} ms until it is "
      "back",
      why.message(), leader_key(options_.prefix), state_key(options_.prefix), kWatchFallbackPollMs);
}

void EtcdLeadership::refresh_members() {
  auto members = client_->members();
  if (!members.is_ok()) return;
  std::lock_guard lock(mu_);
  members_ = std::move(*members);
}

}  // namespace cairn::orchestrator
