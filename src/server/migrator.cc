#include "server/migrator.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <future>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "storage/cell.h"
#include "topology/token.h"
#include "topology/token_range.h"

namespace cairn::server {

using topology::Token;

namespace {

using topology::before_end;
using topology::in_range;
constexpr auto overlaps = topology::ranges_overlap;

bool contains(const std::vector<uint64_t>& ids, uint64_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// Voting replicas, extras and joining replicas of `shard` (empty if the table has no such shard).
std::vector<uint64_t> members_of(const topology::RoutingTable& table, uint64_t shard) {
  std::vector<uint64_t> out;
  const topology::Shard* found = table.find_shard(shard);
  if (found == nullptr) return out;
  for (const auto* list : {&found->replicas, &found->extras, &found->joining}) {
    for (uint64_t id : *list) {
      if (!contains(out, id)) out.push_back(id);
    }
  }
  return out;
}

std::string address_of(const topology::RoutingTable& table, uint64_t machine) {
  const topology::Machine* found = table.find_machine(machine);
  if (found == nullptr) return "";
  return found->internal_address.empty() ? found->address : found->internal_address;
}

// Whether the table gives all of [start, end) to `shard`: for a migration's target shard, the
// commit happened and the copy is over.
bool owned_by(const topology::RoutingTable& table, Token start, Token end, uint64_t shard) {
  bool any = false;
  for (const topology::Range& range : table.ranges()) {
    if (!overlaps(range.start, range.end, start, end)) continue;
    if (range.shard != shard) return false;
    any = true;
  }
  return any;
}

bool is_target_phase(const std::string& phase) {
  return phase == "staging" || phase == "catchup" || phase == "cutover";
}

// An unsigned number in a reply: an integer, or a bulk/simple string in decimal or 0x hex.
std::optional<uint64_t> reply_number(const resp::Value& value) {
  if (value.type == resp::Value::Type::kInteger) {
    if (value.integer < 0) return std::nullopt;
    return static_cast<uint64_t>(value.integer);
  }
  if (value.type != resp::Value::Type::kBulk && value.type != resp::Value::Type::kSimple) {
    return std::nullopt;
  }
  std::string_view text = value.str;
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t out = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return out;
}

// The reply as a Status: transport failures and error replies become errors with their text.
Status reply_status(const Result<resp::Value>& reply) {
  if (!reply.is_ok()) return reply.status();
  if (reply->is_error()) return Status::unavailable(reply->str);
  return Status::ok();
}

// Decodes one copied cell (key, sub-key, encoded cell). nullopt: outside [start, end), which a
// source never sends and which is not ours to store.
Result<std::optional<storage::WalChange>> decode_cell_entry(const resp::Value& key,
                                                            const resp::Value& sub_key,
                                                            const resp::Value& encoded,
                                                            Token start, Token end,
                                                            uint64_t* bytes) {
  if (key.type != resp::Value::Type::kBulk || sub_key.type != resp::Value::Type::kBulk ||
      encoded.type != resp::Value::Type::kBulk) {
    return Status::corruption("malformed cell list");
  }
  Result<storage::Cell> cell = storage::decode_cell(encoded.str);
  if (!cell.is_ok()) return cell.status();
  storage::WalChange change;
  change.token = topology::token_of(key.str);
  if (!in_range(change.token, start, end)) return std::optional<storage::WalChange>();
  *bytes += key.str.size() + cell->value.size();
  change.key = key.str;
  change.sub_key = sub_key.str;
  change.cell = std::move(*cell);
  return std::optional<storage::WalChange>(std::move(change));
}

// Decodes a flat `key, sub-key, cell, ...` array into copied cells within [start, end).
Result<std::vector<storage::WalChange>> decode_cells(const resp::Value& flat, Token start,
                                                     Token end, uint64_t* bytes) {
  if (flat.type != resp::Value::Type::kArray || flat.elements.size() % 3 != 0) {
    return Status::corruption("malformed cell list");
  }
  std::vector<storage::WalChange> cells;
  cells.reserve(flat.elements.size() / 3);
  for (size_t i = 0; i < flat.elements.size(); i += 3) {
    Result<std::optional<storage::WalChange>> change =
        decode_cell_entry(flat.elements[i], flat.elements[i + 1], flat.elements[i + 2], start,
                          end, bytes);
    if (!change.is_ok()) return change.status();
    if (*change) cells.push_back(std::move(**change));
  }
  return cells;
}

// Decodes the WAL tail of a CAIRN.MIGRATE WAL answer: flat 4-tuples in sequence order, `LSN,
// key, sub-key, cell` for a cell and `LSN, start, end, ""` for a range deletion. Cells outside
// [start, end) are dropped and range deletions clipped to it: nothing else on this machine is
// the source's to change.
Result<std::vector<storage::WalEntry>> decode_wal_entries(const resp::Value& flat, Token start,
                                                          Token end, uint64_t* bytes) {
  if (flat.type != resp::Value::Type::kArray || flat.elements.size() % 4 != 0) {
    return Status::corruption("malformed WAL entry list");
  }
  std::vector<storage::WalEntry> entries;
  entries.reserve(flat.elements.size() / 4);
  std::optional<uint64_t> previous;
  for (size_t i = 0; i < flat.elements.size(); i += 4) {
    const std::optional<uint64_t> sequence = reply_number(flat.elements[i]);
    // Applying out of order is what an ordered stream exists to prevent: refuse it.
    if (!sequence || (previous && *sequence <= *previous)) {
      return Status::corruption("WAL entries out of sequence order");
    }
    previous = sequence;
    const resp::Value& last = flat.elements[i + 3];
    if (last.type == resp::Value::Type::kBulk && last.str.empty()) {
      const std::optional<Token> from = reply_number(flat.elements[i + 1]);
      const std::optional<Token> to = reply_number(flat.elements[i + 2]);
      if (!from || !to) return Status::corruption("malformed range deletion");
      const Token clip_start = std::max(*from, start);
      const Token clip_end = topology::min_end(*to, end);
      if (!before_end(clip_start, clip_end)) continue;
      entries.push_back(
          storage::WalEntry{*sequence, storage::WalRangeDelete{clip_start, clip_end}});
      continue;
    }
    Result<std::optional<storage::WalChange>> change =
        decode_cell_entry(flat.elements[i + 1], flat.elements[i + 2], last, start, end, bytes);
    if (!change.is_ok()) return change.status();
    if (*change) entries.push_back(storage::WalEntry{*sequence, std::move(**change)});
  }
  return entries;
}

// A CAIRN.MIGRATE SCAN answer: where the next page starts, and the cells within [start, end).
struct ScanPage {
  Token next = 0;
  std::string resume;  // not empty: the page stopped inside token `next` (a big row)
  std::vector<storage::WalChange> cells;
  uint64_t bytes = 0;  // of the keys and values received
};

Result<ScanPage> decode_scan_page(const Result<resp::Value>& reply, Token start, Token end) {
  if (Status status = reply_status(reply); !status.is_ok()) return status;
  if (reply->type != resp::Value::Type::kArray ||
      (reply->elements.size() != 2 && reply->elements.size() != 3)) {
    return Status::corruption("malformed SCAN answer");
  }
  const std::optional<Token> next = reply_number(reply->elements[0]);
  if (!next) return Status::corruption("malformed SCAN cursor");
  ScanPage page;
  page.next = *next;
  if (reply->elements.size() == 3) {
    if (reply->elements[2].type != resp::Value::Type::kBulk || reply->elements[2].str.empty()) {
      return Status::corruption("malformed SCAN resume position");
    }
    page.resume = reply->elements[2].str;
  }
  Result<std::vector<storage::WalChange>> cells =
      decode_cells(reply->elements[1], start, end, &page.bytes);
  if (!cells.is_ok()) return cells.status();
  page.cells = std::move(*cells);
  return page;
}

// Where a SCAN page starts: a token (0 is the ring's start here, not its end) and, inside it,
// where a page that stopped in a big row said to resume (empty: at the token's start).
struct PageCursor {
  Token token = 0;
  std::string from;

  bool operator==(const PageCursor&) const = default;
  // The CAIRN.MIGRATE SCAN arguments from the start token on.
  std::vector<std::string> scan_args(Token end, size_t count, bool stamps) const {
    std::vector<std::string> args = {"CAIRN.MIGRATE", "SCAN", std::to_string(token),
                                     std::to_string(end), std::to_string(count)};
    if (stamps) args.emplace_back("STAMPS");
    if (!from.empty()) {
      args.emplace_back("FROM");
      args.push_back(from);
    }
    return args;
  }
};

// Moves a page cursor to where `page` says the next one starts; returns whether the range is
// done. A page must move the cursor forward, within the range.
Result<bool> advance_cursor(PageCursor& cursor, const ScanPage& page, Token start, Token end) {
  if (page.resume.empty() && (page.next == 0 || page.next == end)) return true;
  if (!in_range(page.next, start, end) ||
      replica::scan_position(page.next, page.resume) <=
          replica::scan_position(cursor.token, cursor.from)) {
    return Status::corruption(fmt::format("SCAN made no progress at {}", cursor.token));
  }
  cursor = PageCursor{page.next, page.resume};
  return false;
}

// Sends each (address, args) at once and waits for every answer (each bounded by timeout_ms).
std::vector<Result<resp::Value>> call_all(
    net::PeerPool& peers, const std::vector<std::pair<std::string, std::vector<std::string>>>& calls,
    int timeout_ms) {
  std::vector<std::future<Result<resp::Value>>> futures;
  futures.reserve(calls.size());
  for (const auto& [address, args] : calls) {
    auto promise = std::make_shared<std::promise<Result<resp::Value>>>();
    futures.push_back(promise->get_future());
    peers.call(address, args, timeout_ms,
               [promise](Result<resp::Value> reply) { promise->set_value(std::move(reply)); });
  }
  std::vector<Result<resp::Value>> out;
  out.reserve(futures.size());
  // PeerPool completes every call exactly once (its invariant 1), within timeout_ms.
  for (auto& future : futures) out.push_back(future.get());
  return out;
}

}  // namespace

std::string migration_hold_id(uint64_t migration, uint64_t machine) {
  return fmt::format("{}:{}", migration, machine);
}

// One source replica a target copies from.
struct Migrator::Stream {
  uint64_t machine = 0;
  std::string address;
  bool held = false;       // HOLD answered: next_lsn and cursor are valid
  bool scan_done = false;  // every page of the range copied
  bool wal_read = false;   // a WAL round succeeded since the scan ended (lag is measured)
  // Every page of the range compared with the source after the scan (verify_page): what this
  // machine stores supersedes or equals every cell the source stores, as of a WAL position this
  // stream has applied. Only then does the stream count as staged.
  bool verified = false;
  PageCursor cursor;
  PageCursor verify_cursor;
  int verify_repairs = 0;  // copies of the page at verify_cursor again, since it last matched
  uint64_t next_lsn = 0;    // the WAL position to read from
  uint64_t latest_lsn = 0;  // the source's latest LSN when last asked
  int64_t held_ms = 0;      // when the hold was last taken or renewed
  int64_t retry_at_ms = 0;
  int retry_delay_ms = 0;
  // The SCAN page starting at prefetch_cursor, asked for while the previous page was being
  // applied (so the source reads and sends it meanwhile); used only if the cursor still matches.
  std::shared_ptr<std::promise<Result<resp::Value>>> prefetch;
  std::shared_future<Result<resp::Value>> prefetched;
  PageCursor prefetch_cursor;

  uint64_t lag() const { return latest_lsn >= next_lsn ? latest_lsn - next_lsn + 1 : 0; }
  void restart() {
    held = false;
    scan_done = false;
    wal_read = false;
    verified = false;
    verify_repairs = 0;
    prefetch.reset();
  }
  bool staged() const { return held && scan_done && verified; }
};

struct Migrator::Migration {
  explicit Migration(MigrationOrder o)
      : id(o.id), start(o.start), end(o.end), order(std::move(o)) {}

  // An order's id and range never change: read without a lock.
  const uint64_t id;
  const Token start;
  const Token end;
  // Guarded by Migrator::mu_.
  MigrationOrder order;
  bool is_target = false;   // a member of the target shard in the latest round
  bool was_source = false;  // a member of the source shard in some round: holds its data
  bool copied = false;      // streams were opened here: copied data of the range may exist
  bool staged = false;
  bool ready = false;
  bool cleaned = false;
  uint64_t lag = 0;
  int64_t fence_ms = -1;  // the committed cutover driven here (-1: none)
  int64_t copy_ms = -1;   // first HOLD to staged on this machine (-1: not staged yet)
  uint64_t driven_attempt = 0;
  // When this machine first held a source for this migration (monotonic ms, -1: not yet).
  std::atomic<int64_t> staging_started_ms{-1};
  std::atomic<uint64_t> keys{0};
  std::atomic<uint64_t> bytes{0};
  // Cells the verification compared, and those it found missing or older here and copied again
  // (each one a defect of the copy: logged).
  std::atomic<uint64_t> verified_cells{0};
  std::atomic<uint64_t> repaired_cells{0};

  // Serializes work on the streams between the migrator thread and finish().
  std::timed_mutex mu;
  std::map<uint64_t, Stream> streams;  // by source machine; guarded by mu

  // The migrator thread only: throttle window.
  int64_t window_start_ms = 0;
  uint64_t window_bytes = 0;
};

struct Migrator::Unowned {
  std::mutex mu;
  uint64_t epoch = 0;                     // the table `owned` comes from (0: none yet)
  std::vector<topology::Range> owned;     // the ranges this machine owned in it
  std::vector<topology::Range> to_drop;   // owned before, not any more: for the thread to delete

  // Called for every installed table, in epoch order.
  void observe(const topology::RoutingTable& table, uint64_t me) {
    std::vector<topology::Range> now;
    for (const topology::Range& range : table.ranges()) {
      if (contains(members_of(table, range.shard), me)) now.push_back(range);
    }
    std::lock_guard lock(mu);
    if (epoch != 0 && table.epoch() > epoch) {
      for (const topology::Range& before : owned) {
        for (const topology::Range& range : table.ranges()) {
          if (!overlaps(before.start, before.end, range.start, range.end)) continue;
          if (contains(members_of(table, range.shard), me)) continue;
          topology::Range gone;
          gone.start = std::max(before.start, range.start);
          gone.end = topology::min_end(before.end, range.end);
          gone.shard = range.shard;
          // Bounded like the table itself; deleting a range twice is harmless.
          if (to_drop.size() < topology::kRangesMax) to_drop.push_back(gone);
        }
      }
    }
    owned = std::move(now);
    epoch = table.epoch();
  }
};

Migrator::Migrator(MigratorOptions options, storage::Engine& engine, replica::Replica& replica,
                   net::PeerPool& peers)
    : options_(std::move(options)),
      engine_(engine),
      replica_(replica),
      peers_(peers),
      me_(replica.machine_id()),
      unowned_(std::make_shared<Unowned>()) {
  std::shared_ptr<Unowned> unowned = unowned_;
  const uint64_t me = me_;
  // Registered before reading the current table: a table installed in between is seen twice,
  // which changes nothing (only a newer epoch compares).
  replica_.tables().on_change(
      [unowned, me](const topology::RoutingTable& table) { unowned->observe(table, me); });
  if (auto table = replica_.tables().current()) unowned_->observe(*table, me_);
}

Migrator::~Migrator() { stop(); }

void Migrator::start() {
  CAIRN_ASSERT(!thread_.joinable(), "migrator started twice");
  thread_ = std::thread([this] { run(); });
}

void Migrator::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Migrator::wait_ms(int ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(std::max(ms, 0)), [this] { return stopping_; });
  return !stopping_;
}

bool Migrator::wait_for_round(int ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(std::max(ms, 0)),
                 [this] { return stopping_ || orders_changed_; });
  orders_changed_ = false;
  return !stopping_;
}

bool Migrator::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

int64_t Migrator::now_ms() const { return monotonic_ms(); }

void Migrator::run() {
  int delay_ms = options_.idle_poll_ms;
  while (wait_for_round(delay_ms)) {
    work_left_ = false;
    const bool busy = run_round();
    delay_ms = work_left_ ? 0 : busy ? options_.busy_poll_ms : options_.idle_poll_ms;
  }
}

void Migrator::set_orders(std::vector<MigrationOrder> orders, uint64_t cluster_epoch) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    std::map<uint64_t, std::shared_ptr<Migration>> next;
    for (MigrationOrder& order : orders) {
      // A finished or cancelled migration needs nothing but the goodbye of a forgotten one.
      if (order.phase == "done" || order.phase == "cancelled") continue;
      auto it = migrations_.find(order.id);
      if (it != migrations_.end()) {
        if (it->second->order.phase != order.phase) {
          spdlog::info("migration {}: phase {} (attempt {})", order.id, order.phase,
                       order.attempt);
          wake = true;
        }
        it->second->order = std::move(order);
        next.emplace(it->first, std::move(it->second));
      } else {
        spdlog::info("migration {}: [{}, {}) shard {} -> shard {}, phase {}", order.id,
                     topology::format_token(order.start), topology::format_token(order.end),
                     order.source, order.target, order.phase);
        const uint64_t id = order.id;
        next.emplace(id, std::make_shared<Migration>(std::move(order)));
        wake = true;
      }
    }
    for (auto& [id, migration] : migrations_) {
      if (next.count(id) != 0 || migration == nullptr) continue;
      spdlog::info("migration {}: no longer active", id);
      constexpr size_t kForgottenMax = 1024;
      if (forgotten_.size() < kForgottenMax) forgotten_.emplace_back(migration, cluster_epoch);
      wake = true;
    }
    migrations_ = std::move(next);
    orders_epoch_ = std::max(orders_epoch_, cluster_epoch);
    if (wake) orders_changed_ = true;
  }
  if (wake) wake_.notify_all();
}

std::vector<MigrationReport> Migrator::reports() {
  std::vector<MigrationReport> out;
  std::lock_guard lock(mu_);
  for (auto& [id, migration] : migrations_) {
    Migration& m = *migration;
    if (!m.is_target && !m.was_source && m.fence_ms < 0) continue;
    MigrationReport report;
    report.id = id;
    report.staged = m.staged;
    report.ready = m.ready;
    report.keys = m.keys.load(std::memory_order_relaxed);
    report.bytes = m.bytes.load(std::memory_order_relaxed);
    report.lag = m.lag;
    report.cleaned = m.cleaned;
    // Repeated in every heartbeat while the order lasts, so a lost heartbeat does not lose it
    // (the orchestrator keeps one value per attempt, and only a committed attempt sets it).
    report.fence_ms = m.fence_ms;
    report.copy_ms = m.copy_ms;
    out.push_back(report);
  }
  return out;
}

std::string Migrator::info() const {
  std::string out;
  std::lock_guard lock(mu_);
  out += fmt::format("migrations_active:{}\r\nwal_holds:{}\r\nstray_ranges_dropped:{}\r\n",
                     migrations_.size(), engine_.wal_holds(),
                     strays_dropped_.load(std::memory_order_relaxed));
  for (const auto& [id, migration] : migrations_) {
    const Migration& m = *migration;
    out += fmt::format(
        "migration_{}:phase={},range={}-{},source={},target={},role={},staged={},ready={},"
        "keys={},bytes={},lag={},cleaned={},verified_cells={},repaired_cells={}\r\n",
        id, m.order.phase, topology::format_token(m.order.start),
        topology::format_token(m.order.end), m.order.source, m.order.target,
        m.is_target ? "target" : (m.was_source ? "source" : "none"), m.staged ? 1 : 0,
        m.ready ? 1 : 0, m.keys.load(std::memory_order_relaxed),
        m.bytes.load(std::memory_order_relaxed), m.lag, m.cleaned ? 1 : 0,
        m.verified_cells.load(std::memory_order_relaxed),
        m.repaired_cells.load(std::memory_order_relaxed));
  }
  return out;
}

bool Migrator::run_round() {
  const int64_t now = now_ms();
  if (now - last_expire_ms_ >= 1000) {
    engine_.expire_wal_holds();
    last_expire_ms_ = now;
  }
  const auto table = replica_.tables().current();
  if (!table) return false;
  std::vector<std::shared_ptr<Migration>> list;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, migration] : migrations_) list.push_back(migration);
  }
  bool busy = false;
  for (const std::shared_ptr<Migration>& migration : list) {
    if (stopping()) return false;
    MigrationOrder order;
    bool target = false;
    {
      std::lock_guard lock(mu_);
      order = migration->order;
      target = contains(members_of(*table, order.target), me_);
      migration->is_target = target;
      if (contains(members_of(*table, order.source), me_)) migration->was_source = true;
    }
    // Once this machine's table says the commit happened, the copy is over even if the order
    // still says cutover (the heartbeat that moves it to cleanup may come later than the table
    // push): the sources give the range up from then on, and nothing they log about it after
    // the fence is ours to apply.
    const bool committed = owned_by(*table, order.start, order.end, order.target);
    if (target && is_target_phase(order.phase) && !committed) {
      busy |= target_round(*migration, *table);
    } else if (order.phase == "cleanup" || !target || committed) {
      // The copy is over (or this machine left the target shard): the sources may drop their
      // WAL.
      release_streams(*migration);
      if (!target) drop_copy_if_not_owner(*migration, *table);
    }
    if (order.phase == "cutover" && order.driver == me_ && options_.post) {
      bool due;
      {
        std::lock_guard lock(mu_);
        due = order.attempt > migration->driven_attempt;
      }
      if (due) drive(migration);
    }
    if (order.phase == "cleanup") cleanup(*migration, *table);
  }
  drop_forgotten(*table);
  drop_unowned_ranges();
  if (now - last_sweep_ms_ >= options_.stray_sweep_ms) {
    last_sweep_ms_ = now;
    sweep_strays(*table);
  }
  return busy;
}

bool Migrator::target_round(Migration& migration, const topology::RoutingTable& table) {
  MigrationOrder order;
  {
    std::lock_guard lock(mu_);
    order = migration.order;
    migration.copied = true;
  }
  const topology::Shard* source = table.find_shard(order.source);
  const std::vector<uint64_t> voting = source ? source->replicas : std::vector<uint64_t>{};
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(migration.mu);
    // The sources come from the current table: a replaced replica's stream goes, its successor's
    // starts.
    for (auto it = migration.streams.begin(); it != migration.streams.end();) {
      if (contains(voting, it->first)) {
        ++it;
        continue;
      }
      spdlog::info("migration {}: machine {} no longer votes in shard {}: its stream stops",
                   order.id, it->first, order.source);
      if (it->second.held) {
        peers_.call(it->second.address,
                    {"CAIRN.MIGRATE", "RELEASE", migration_hold_id(order.id, me_)},
                    options_.request_timeout_ms, [](Result<resp::Value>) {});
      }
      it = migration.streams.erase(it);
    }
    for (uint64_t id : voting) {
      Stream& stream = migration.streams[id];
      stream.machine = id;
      stream.address = address_of(table, id);
    }
    for (const auto& [id, stream] : migration.streams) ids.push_back(id);
  }
  bool busy = false;
  for (uint64_t id : ids) {
    const int64_t deadline = now_ms() + options_.stream_budget_ms;
    while (!stopping()) {
      uint64_t bytes = 0;
      bool idle = false;
      {
        std::unique_lock lock(migration.mu);
        auto it = migration.streams.find(id);
        if (it == migration.streams.end()) break;
        Stream& stream = it->second;
        const int64_t now = now_ms();
        if (order.paused) {
          // Paused: copy nothing, but keep the sources' WAL so the copy resumes where it was.
          if (stream.held && now - stream.held_ms >= options_.hold_renew_ms) {
            (void)hold(migration, stream, options_.request_timeout_ms);
          }
          break;
        }
        if (now < stream.retry_at_ms) {
          busy = true;
          break;
        }
        Result<uint64_t> step = stream_step(migration, stream, options_.request_timeout_ms, &idle);
        if (!step.is_ok()) {
          stream.retry_delay_ms =
              std::clamp(stream.retry_delay_ms * 2, options_.busy_poll_ms,
                         options_.retry_delay_max_ms);
          stream.retry_at_ms = now_ms() + stream.retry_delay_ms;
          spdlog::debug("migration {}: machine {}: {} (retry in {} ms)", order.id, id,
                        step.status().message(), stream.retry_delay_ms);
          busy = true;
          break;
        }
        stream.retry_delay_ms = 0;
        bytes = *step;
      }
      throttle(migration, bytes);
      if (idle) break;
      busy = true;
      if (now_ms() >= deadline) {
        work_left_ = true;
        break;
      }
    }
  }
  update_progress(migration, table);
  return busy;
}

Result<uint64_t> Migrator::stream_step(Migration& migration, Stream& stream, int timeout_ms,
                                       bool* idle) {
  if (stream.address.empty()) return Status::unavailable("no address in the table");
  if (!stream.held || now_ms() - stream.held_ms >= options_.hold_renew_ms) {
    return hold(migration, stream, timeout_ms);
  }
  if (!stream.scan_done) return scan_page(migration, stream, timeout_ms);
  // Verified once the WAL is followed closely, so few differences are only writes not read yet.
  if (!stream.verified && stream.wal_read && stream.lag() < options_.ready_lag_max) {
    return verify_page(migration, stream, timeout_ms);
  }
  Result<uint64_t> bytes = wal_round(migration, stream, timeout_ms);
  if (bytes.is_ok() && stream.verified && stream.next_lsn > stream.latest_lsn) *idle = true;
  return bytes;
}

Result<uint64_t> Migrator::hold(Migration& migration, Stream& stream, int timeout_ms) {
  const uint64_t id = migration.id;
  Result<resp::Value> reply = peers_.call_sync(
      stream.address,
      {"CAIRN.MIGRATE", "HOLD", migration_hold_id(id, me_), std::to_string(options_.hold_ttl_ms)},
      timeout_ms);
  if (Status status = reply_status(reply); !status.is_ok()) return status;
  const std::optional<uint64_t> lsn = reply_number(*reply);
  if (!lsn) return Status::corruption("HOLD answered no LSN");
  stream.held_ms = now_ms();
  if (stream.held && *lsn + 1 < stream.next_lsn) {
    // The source's WAL went back (its data was replaced): what we read from it may be gone.
    spdlog::warn("migration {}: machine {}'s LSN went back from {} to {}: copying again", id,
                 stream.machine, stream.next_lsn - 1, *lsn);
    stream.restart();
  }
  if (!stream.held) {
    // Recorded before the scan, so every write to the range is in the scan, in the WAL after
    // this LSN, or both (docs/migration.md).
    stream.held = true;
    stream.scan_done = false;
    stream.wal_read = false;
    stream.verified = false;
    stream.verify_repairs = 0;
    stream.cursor = PageCursor{migration.start, {}};
    stream.verify_cursor = PageCursor{migration.start, {}};
    stream.next_lsn = *lsn + 1;
    stream.latest_lsn = *lsn;
    int64_t unset = -1;
    migration.staging_started_ms.compare_exchange_strong(unset, stream.held_ms);
    spdlog::info("migration {}: staging from machine {} at LSN {}", id, stream.machine, *lsn);
  }
  return uint64_t{0};
}

Result<uint64_t> Migrator::scan_page(Migration& migration, Stream& stream, int timeout_ms) {
  const Token start = migration.start;
  const Token end = migration.end;
  Result<resp::Value> reply = Status::unavailable("no reply");
  if (stream.prefetch && stream.prefetch_cursor == stream.cursor) {
    reply = stream.prefetched.get();  // the pool's timeout bounds the wait
  } else {
    reply = peers_.call_sync(
        stream.address, stream.cursor.scan_args(end, options_.scan_page_keys, false), timeout_ms);
  }
  stream.prefetch.reset();
  Result<ScanPage> page = decode_scan_page(reply, start, end);
  if (!page.is_ok()) return page.status();
  PageCursor next = stream.cursor;
  Result<bool> done = advance_cursor(next, *page, start, end);
  if (done.is_ok() && !*done) {
    // Ask for the next page now: the source reads it while this one is applied here.
    auto promise = std::make_shared<std::promise<Result<resp::Value>>>();
    stream.prefetched = promise->get_future().share();
    stream.prefetch = promise;
    stream.prefetch_cursor = next;
    peers_.call(stream.address, next.scan_args(end, options_.scan_page_keys, false), timeout_ms,
                [promise](Result<resp::Value> answer) { promise->set_value(std::move(answer)); });
  }
  if (!page->cells.empty()) {
    // Unlogged: the bulk copy stays out of the WAL every client write fsyncs. It becomes durable
    // with the flush below, before the stream counts as staged; a crash before that ends this
    // process's streams, and a restarted machine copies again.
    Result<size_t> stored = replica_.apply_copied_batch(page->cells, /*logged=*/false);
    if (!stored.is_ok()) return stored.status();
    migration.keys.fetch_add(*stored, std::memory_order_relaxed);
  }
  migration.bytes.fetch_add(page->bytes, std::memory_order_relaxed);
  if (!done.is_ok()) return done.status();
  stream.cursor = next;
  if (*done) {
    if (Status flushed = engine_.flush_memtables(); !flushed.is_ok()) return flushed;
    stream.scan_done = true;
    spdlog::info("migration {}: range scanned from machine {} ({} keys copied so far)",
                 migration.id, stream.machine,
                 migration.keys.load(std::memory_order_relaxed));
  }
  return page->bytes;
}

namespace {

// Whether the stored cell `mine` is the source's cell `stamp` or supersedes it (LWW compares
// timestamp, then writer; one (timestamp, writer) is one write, even once the compaction filter
// turned its expired value into a tombstone).
bool covers(const storage::Cell& mine, const storage::Cell& stamp) {
  return mine.timestamp > stamp.timestamp ||
         (mine.timestamp == stamp.timestamp && mine.writer >= stamp.writer);
}

}  // namespace

Result<std::vector<const storage::WalChange*>> Migrator::uncovered(
    const std::vector<storage::WalChange>& stamps) {
  std::vector<const storage::WalChange*> out;
  for (const storage::WalChange& stamp : stamps) {
    // A sorted set's index entries are derived here from the member cells, which are verified.
    if (storage::is_score_index_cell(stamp.sub_key, stamp.cell)) continue;
    Result<std::optional<storage::Cell>> mine =
        stamp.sub_key.empty() ? engine_.read(stamp.token, stamp.key)
                              : engine_.read_field(stamp.token, stamp.key, stamp.sub_key);
    if (!mine.is_ok()) return mine.status();
    if (!mine->has_value() && !stamp.sub_key.empty()) {
      // A field its row hides here was never stored (Engine::apply_field): the copy is complete.
      Result<storage::StoredRow> row = engine_.read_row(stamp.token, stamp.key);
      if (!row.is_ok()) return row.status();
      if (stamp.cell.timestamp <= row->state.hidden_through(engine_.options().wall_clock_ms())) continue;
    }
    if (mine->has_value() ? covers(**mine, stamp.cell) : engine_.may_have_purged(stamp.token, stamp.cell)) {
      continue;
    }
    out.push_back(&stamp);
  }
  return out;
}

Status Migrator::catch_up(Migration& migration, Stream& stream, int timeout_ms) {
  // The first round's latest LSN is at least that of every cell the source answered before it.
  Result<uint64_t> first = wal_round(migration, stream, timeout_ms);
  if (!first.is_ok()) return first.status();
  const uint64_t target = stream.latest_lsn;
  constexpr int kRoundsMax = 1000;  // of wal_max_bytes each: far more than the ready lag
  for (int round = 0; round < kRoundsMax && stream.next_lsn <= target; ++round) {
    Result<uint64_t> bytes = wal_round(migration, stream, timeout_ms);
    if (!bytes.is_ok()) return bytes.status();
  }
  if (stream.next_lsn <= target) {
    return Status::unavailable(fmt::format("WAL of machine {} not caught up to {}",
                                           stream.machine, target));
  }
  return Status::ok();
}

Result<uint64_t> Migrator::verify_page(Migration& migration, Stream& stream, int timeout_ms) {
  const Token start = migration.start;
  const Token end = migration.end;
  Result<ScanPage> page = decode_scan_page(
      peers_.call_sync(stream.address,
                       stream.verify_cursor.scan_args(end, options_.scan_page_keys, true),
                       timeout_ms),
      start, end);
  if (!page.is_ok()) return page.status();
  const std::vector<storage::WalChange>* stamps = &page->cells;
  Result<std::vector<const storage::WalChange*>> missing = uncovered(*stamps);
  if (!missing.is_ok()) return missing.status();
  if (!missing->empty()) {
    // Cells written since this stream's last WAL round differ until it is read: read it up to
    // where the page was, and compare those again.
    if (Status status = catch_up(migration, stream, timeout_ms); !status.is_ok()) return status;
    std::vector<storage::WalChange> again;
    for (const storage::WalChange* stamp : *missing) again.push_back(*stamp);
    missing = uncovered(again);
    if (!missing.is_ok()) return missing.status();
    if (!missing->empty()) {
      return repair_page(migration, stream, (*missing)[0]->key, missing->size(), timeout_ms);
    }
  }
  stream.verify_repairs = 0;
  migration.verified_cells.fetch_add(stamps->size(), std::memory_order_relaxed);
  Result<bool> done = advance_cursor(stream.verify_cursor, *page, start, end);
  if (!done.is_ok()) return done.status();
  if (*done) {
    stream.verified = true;
    spdlog::info("migration {}: copy from machine {} verified ({} cells compared so far, {} "
                 "copied again)",
                 migration.id, stream.machine,
                 migration.verified_cells.load(std::memory_order_relaxed),
                 migration.repaired_cells.load(std::memory_order_relaxed));
  }
  return page->bytes;
}

Result<uint64_t> Migrator::repair_page(Migration& migration, Stream& stream,
                                       const std::string& example, size_t count, int timeout_ms) {
  // A copy defect, not a race: log it, copy the page again in full, and compare it once more.
  spdlog::error("migration {}: {} cells from machine {} at [{}, ...) are missing or older here "
                "after the copy (e.g. key '{}'): copying the page again",
                migration.id, count, stream.machine,
                topology::format_token(stream.verify_cursor.token), example);
  constexpr int kRepairsMax = 3;
  if (++stream.verify_repairs > kRepairsMax) {
    // Pages that keep differing: copy the whole range from this source again.
    stream.restart();
    return Status::unavailable(fmt::format(
        "the page at {} from machine {} still differs after {} copies: staging again",
        topology::format_token(stream.verify_cursor.token), stream.machine, kRepairsMax));
  }
  Result<ScanPage> page = decode_scan_page(
      peers_.call_sync(stream.address,
                       stream.verify_cursor.scan_args(migration.end, options_.scan_page_keys,
                                                      false),
                       timeout_ms),
      migration.start, migration.end);
  if (!page.is_ok()) return page.status();
  Result<size_t> stored = replica_.apply_copied_batch(page->cells);
  if (!stored.is_ok()) return stored.status();
  migration.repaired_cells.fetch_add(*stored, std::memory_order_relaxed);
  return page->bytes;
}

Result<uint64_t> Migrator::wal_round(Migration& migration, Stream& stream, int timeout_ms) {
  const Token start = migration.start;
  const Token end = migration.end;
  Result<resp::Value> reply = peers_.call_sync(
      stream.address,
      {"CAIRN.MIGRATE", "WAL", std::to_string(start), std::to_string(end),
       std::to_string(stream.next_lsn), std::to_string(options_.wal_max_bytes)},
      timeout_ms);
  if (reply.is_ok() && reply->is_error() && reply->str.rfind("WALGONE", 0) == 0) {
    spdlog::warn("migration {}: machine {} no longer has its WAL from LSN {} ({}): copying again",
                 migration.id, stream.machine, stream.next_lsn, reply->str);
    stream.restart();
    return Status::unavailable(reply->str);
  }
  if (Status status = reply_status(reply); !status.is_ok()) return status;
  if (reply->type != resp::Value::Type::kArray || reply->elements.size() != 3) {
    return Status::corruption("malformed WAL answer");
  }
  const std::optional<uint64_t> next = reply_number(reply->elements[0]);
  const std::optional<uint64_t> latest = reply_number(reply->elements[1]);
  if (!next || !latest || *next < stream.next_lsn) {
    return Status::corruption("malformed WAL answer");
  }
  uint64_t bytes = 0;
  Result<std::vector<storage::WalEntry>> entries =
      decode_wal_entries(reply->elements[2], start, end, &bytes);
  if (!entries.is_ok()) return entries.status();
  if (!entries->empty() &&
      (entries->front().sequence < stream.next_lsn || entries->back().sequence >= *next)) {
    return Status::corruption("WAL entries outside the LSNs asked for");
  }
  if (Status status = apply_wal_entries(migration, stream, *entries); !status.is_ok()) {
    return status;
  }
  migration.bytes.fetch_add(bytes, std::memory_order_relaxed);
  stream.next_lsn = *next;
  stream.latest_lsn = *latest;
  stream.wal_read = true;
  return bytes;
}

Status Migrator::apply_wal_entries(Migration& migration, const Stream& stream,
                                   const std::vector<storage::WalEntry>& entries) {
  std::vector<storage::WalChange> cells;
  auto apply_cells = [&]() -> Status {
    if (cells.empty()) return Status::ok();
    Result<size_t> stored = replica_.apply_copied_batch(cells);
    if (!stored.is_ok()) return stored.status();
    migration.keys.fetch_add(*stored, std::memory_order_relaxed);
    cells.clear();
    return Status::ok();
  };
  for (const storage::WalEntry& entry : entries) {
    if (const storage::WalChange* cell = entry.cell()) {
      cells.push_back(*cell);
      continue;
    }
    // The cells written before the deletion go first: it deletes them, as it did on the source.
    if (Status status = apply_cells(); !status.is_ok()) return status;
    const storage::WalRangeDelete& deleted = *entry.range_delete();
    if (Status status = engine_.delete_range(deleted.start, deleted.end); !status.is_ok()) {
      return status;
    }
    // Rare (a client's FLUSHALL during a migration) and destructive: always in the log.
    spdlog::warn("migration {}: applied machine {}'s range deletion [{}, {}) at its LSN {}",
                 migration.id, stream.machine, topology::format_token(deleted.start),
                 topology::format_token(deleted.end), entry.sequence);
  }
  return apply_cells();
}

void Migrator::release_streams(Migration& migration) {
  std::lock_guard lock(migration.mu);
  for (const auto& [id, stream] : migration.streams) {
    if (!stream.held || stream.address.empty()) continue;
    peers_.call(stream.address,
                {"CAIRN.MIGRATE", "RELEASE", migration_hold_id(migration.id, me_)},
                options_.request_timeout_ms, [](Result<resp::Value>) {});
  }
  migration.streams.clear();
}

void Migrator::update_progress(Migration& migration, const topology::RoutingTable& table) {
  uint64_t source_shard;
  {
    std::lock_guard lock(mu_);
    source_shard = migration.order.source;
  }
  const topology::Shard* source = table.find_shard(source_shard);
  bool staged = source != nullptr && !source->replicas.empty();
  bool measured = true;
  uint64_t lag = 0;
  {
    std::lock_guard lock(migration.mu);
    for (uint64_t id : source ? source->replicas : std::vector<uint64_t>{}) {
      auto it = migration.streams.find(id);
      if (it == migration.streams.end() || !it->second.staged()) {
        staged = false;
        continue;
      }
      measured = measured && it->second.wal_read;
      lag = std::max(lag, it->second.lag());
    }
  }
  std::lock_guard lock(mu_);
  const int64_t started = migration.staging_started_ms.load();
  if (staged && migration.copy_ms < 0 && started >= 0) {
    migration.copy_ms = now_ms() - started;
    spdlog::info("migration {}: staged {} bytes in {} ms", migration.id,
                 migration.bytes.load(std::memory_order_relaxed), migration.copy_ms);
  }
  migration.staged = staged;
  migration.lag = lag;
  migration.ready = staged && measured && lag < options_.ready_lag_max;
}

Status Migrator::finish(uint64_t id, const std::vector<std::pair<uint64_t, uint64_t>>& source_lsns,
                        int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 1));
  std::shared_ptr<Migration> migration;
  {
    std::lock_guard lock(mu_);
    auto it = migrations_.find(id);
    if (it != migrations_.end()) migration = it->second;
  }
  if (migration == nullptr) {
    return Status::unavailable(fmt::format("NOTREADY machine {} runs no migration {}", me_, id));
  }
  std::unique_lock lock(migration->mu, std::defer_lock);
  if (!lock.try_lock_until(deadline)) {
    return Status::timed_out(fmt::format("NOTREADY migration {} is busy on machine {}", id, me_));
  }
  auto remaining_ms = [&] {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                deadline - Clock::now())
                                .count());
  };
  for (const auto& [source, lsn] : source_lsns) {
    auto it = migration->streams.find(source);
    if (it == migration->streams.end() || !it->second.staged()) {
      return Status::unavailable(fmt::format(
          "NOTREADY machine {} has not staged (copied and verified) migration {} from machine {}",
          me_, id, source));
    }
    Stream& stream = it->second;
    // next_lsn > lsn: every record up to the fenced LSN is applied.
    while (stream.next_lsn <= lsn) {
      const int left = remaining_ms();
      if (left <= 0) {
        return Status::timed_out(fmt::format(
            "NOTREADY machine {} timed out applying machine {}'s WAL up to {} (at {})", me_,
            source, lsn, stream.next_lsn));
      }
      Result<uint64_t> round = wal_round(*migration, stream, left);
      if (!round.is_ok()) {
        return Status::unavailable(fmt::format("NOTREADY machine {} reading machine {}'s WAL: {}",
                                               me_, source, round.status().message()));
      }
      if (stream.next_lsn <= lsn && stream.latest_lsn < lsn) {
        // The source says its WAL ends before the LSN it fenced at: it lost data.
        return Status::unavailable(fmt::format(
            "NOTREADY machine {}'s WAL ends at {}, before the fenced LSN {}", source,
            stream.latest_lsn, lsn));
      }
    }
  }
  return Status::ok();
}

void Migrator::drive(const std::shared_ptr<Migration>& migration) {
  MigrationOrder order;
  {
    std::lock_guard lock(mu_);
    order = migration->order;
    migration->driven_attempt = order.attempt;
  }
  const auto table = replica_.tables().current();
  if (!table) return;
  const int64_t t0 = now_ms();
  spdlog::info("migration {}: driving cutover attempt {} at epoch {}", order.id, order.attempt,
               table->epoch());
  auto fenced = fence_sources(order, *table);
  if (!fenced.is_ok()) {
    (void)abort_attempt(order, "fence: " + fenced.status().message());
    return;
  }
  const int64_t t1 = now_ms();
  spdlog::info("migration {}: fenced {} voting sources in {} ms", order.id, fenced->size(),
               t1 - t0);
  if (Status status = finish_targets(order, *table, *fenced); !status.is_ok()) {
    (void)abort_attempt(order, "finish: " + status.message());
    return;
  }
  const int64_t t2 = now_ms();
  spdlog::info("migration {}: every target finished in {} ms", order.id, t2 - t1);
  const nlohmann::json body = {{"attempt", order.attempt}, {"epoch", table->epoch()}};
  Result<HttpResponse> response =
      options_.post(fmt::format("/v1/migrations/{}/commit", order.id), body.dump());
  if (!response.is_ok()) {
    // Unknown outcome: the orchestrator either committed (we learn the table by heartbeat) or
    // aborts on its cutover timeout.
    spdlog::warn("migration {}: commit unanswered: {}", order.id, response.status().message());
    return;
  }
  if (response->status == 409) {
    spdlog::info("migration {}: commit of attempt {} refused: {}", order.id, order.attempt,
                 response->body);
    return;
  }
  if (response->status != 200) {
    (void)abort_attempt(order, fmt::format("commit: HTTP {}: {}", response->status,
                                           response->body.substr(0, 200)));
    return;
  }
  const nlohmann::json answer =
      nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  Result<topology::RoutingTable> committed = Status::corruption("the answer names no table");
  if (answer.is_object() && answer.contains("table")) {
    const nlohmann::json& value = answer["table"];
    committed = value.is_string() ? topology::RoutingTable::from_json_text(value.get<std::string>())
                                  : topology::RoutingTable::from_json(value);
  }
  const int64_t t3 = now_ms();
  {
    std::lock_guard lock(mu_);
    migration->fence_ms = t3 - t0;
  }
  if (!committed.is_ok()) {
    spdlog::error("migration {}: committed, but the table in the answer does not parse: {}",
                  order.id, committed.status().message());
    return;
  }
  const uint64_t epoch = committed->epoch();
  std::vector<uint64_t> machines = members_of(*committed, order.source);
  for (uint64_t id : members_of(*committed, order.target)) {
    if (!contains(machines, id)) machines.push_back(id);
  }
  const topology::RoutingTable pushed = *committed;
  if (Status status = replica_.tables().install(std::move(*committed)); !status.is_ok()) {
    spdlog::debug("migration {}: table epoch {} not installed: {}", order.id, epoch,
                  status.message());
  }
  push_table(pushed, machines);
  spdlog::info("migration {}: committed at epoch {}; fenced for {} ms (commit {} ms, push {} ms)",
               order.id, epoch, t3 - t0, t3 - t2, now_ms() - t3);
}

bool Migrator::abort_attempt(const MigrationOrder& order, const std::string& error) {
  spdlog::warn("migration {}: aborting attempt {}: {}", order.id, order.attempt, error);
  const nlohmann::json body = {{"attempt", order.attempt}, {"error", error}};
  Result<HttpResponse> response =
      options_.post(fmt::format("/v1/migrations/{}/abort", order.id), body.dump());
  if (!response.is_ok() || response->status != 200) {
    spdlog::warn("migration {}: abort not accepted ({}): the orchestrator's timeout ends it",
                 order.id, response.is_ok() ? fmt::format("HTTP {}", response->status)
                                            : response.status().message());
    return false;
  }
  return true;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> Migrator::fence_sources(
    const MigrationOrder& order, const topology::RoutingTable& table) {
  const topology::Shard* source = table.find_shard(order.source);
  if (source == nullptr || source->replicas.empty()) {
    return Status::unavailable(fmt::format("shard {} has no voting replica", order.source));
  }
  const std::vector<uint64_t> members = members_of(table, order.source);
  const std::vector<std::string> fence = {"CAIRN.MIGRATE", "FENCE", std::to_string(table.epoch()),
                                          std::to_string(order.start),
                                          std::to_string(order.end)};
  std::vector<std::pair<std::string, std::vector<std::string>>> calls;
  for (uint64_t id : members) calls.emplace_back(address_of(table, id), fence);
  std::vector<Result<resp::Value>> replies =
      call_all(peers_, calls, options_.request_timeout_ms);
  // A member behind our table gets it and one more try.
  std::vector<size_t> behind;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].is_ok() || !replies[i]->is_error()) continue;
    const std::optional<replica::Fence> code = replica::parse_fence_error(replies[i]->str);
    if (code && code->code == replica::FenceCode::kTableBehind) behind.push_back(i);
  }
  if (!behind.empty()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> pushes;
    std::vector<std::pair<std::string, std::vector<std::string>>> retries;
    for (size_t i : behind) {
      pushes.emplace_back(calls[i].first,
                          std::vector<std::string>{"CAIRN.TABLE", "SET", table.to_json_text()});
      retries.push_back(calls[i]);
    }
    (void)call_all(peers_, pushes, options_.request_timeout_ms);
    std::vector<Result<resp::Value>> again = call_all(peers_, retries, options_.request_timeout_ms);
    for (size_t j = 0; j < behind.size(); ++j) replies[behind[j]] = std::move(again[j]);
  }
  std::vector<std::pair<uint64_t, uint64_t>> lsns;
  for (size_t i = 0; i < members.size(); ++i) {
    const uint64_t id = members[i];
    const bool voting = contains(source->replicas, id);
    std::optional<uint64_t> lsn;
    Status status = reply_status(replies[i]);
    if (status.is_ok()) {
      lsn = reply_number(*replies[i]);
      if (!lsn) status = Status::corruption("FENCE answered no LSN");
    }
    if (!status.is_ok()) {
      if (voting) {
        return Status::unavailable(fmt::format("machine {}: {}", id, status.message()));
      }
      // Not needed: an extra or joining replica holds nothing the voting ones do not.
      spdlog::info("migration {}: non-voting machine {} not fenced: {}", order.id, id,
                   status.message());
      continue;
    }
    if (voting) lsns.emplace_back(id, *lsn);
  }
  return lsns;
}

Status Migrator::finish_targets(const MigrationOrder& order, const topology::RoutingTable& table,
                                const std::vector<std::pair<uint64_t, uint64_t>>& lsns) {
  const std::vector<uint64_t> members = members_of(table, order.target);
  if (members.empty()) return Status::unavailable(fmt::format("shard {} has no member", order.target));
  std::vector<std::string> args = {"CAIRN.MIGRATE", "FINISH", std::to_string(order.id)};
  for (const auto& [id, lsn] : lsns) {
    args.push_back(std::to_string(id));
    args.push_back(std::to_string(lsn));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> calls;
  std::vector<uint64_t> remote;
  for (uint64_t id : members) {
    if (id == me_) continue;
    remote.push_back(id);
    calls.emplace_back(address_of(table, id), args);
  }
  // Sent first, so the other targets work while this one finishes its own part.
  std::vector<std::future<Result<resp::Value>>> futures;
  for (const auto& [address, call_args] : calls) {
    auto promise = std::make_shared<std::promise<Result<resp::Value>>>();
    futures.push_back(promise->get_future());
    peers_.call(address, call_args, options_.finish_timeout_ms + options_.request_timeout_ms,
                [promise](Result<resp::Value> reply) { promise->set_value(std::move(reply)); });
  }
  Status own = Status::ok();
  if (contains(members, me_)) own = finish(order.id, lsns, options_.finish_timeout_ms);
  Status first_error = own.is_ok() ? Status::ok()
                                   : Status::unavailable(fmt::format("machine {}: {}", me_,
                                                                     own.message()));
  for (size_t i = 0; i < futures.size(); ++i) {
    Result<resp::Value> reply = futures[i].get();
    Status status = reply_status(reply);
    if (!status.is_ok() && first_error.is_ok()) {
      first_error =
          Status::unavailable(fmt::format("machine {}: {}", remote[i], status.message()));
    }
  }
  return first_error;
}

void Migrator::push_table(const topology::RoutingTable& table,
                          const std::vector<uint64_t>& machines) {
  std::vector<std::pair<std::string, std::vector<std::string>>> calls;
  const std::string text = table.to_json_text();
  for (uint64_t id : machines) {
    if (id == me_) continue;
    const std::string address = address_of(table, id);
    if (address.empty()) continue;
    calls.emplace_back(address, std::vector<std::string>{"CAIRN.TABLE", "SET", text});
  }
  std::vector<Result<resp::Value>> replies = call_all(peers_, calls, options_.request_timeout_ms);
  for (size_t i = 0; i < replies.size(); ++i) {
    if (Status status = reply_status(replies[i]); !status.is_ok()) {
      // The machine learns the table by heartbeat or by its first STALEEPOCH.
      spdlog::debug("table push to {} failed: {}", calls[i].first, status.message());
    }
  }
}

bool Migrator::owns_part_of(const topology::RoutingTable& table, Token start, Token end) const {
  for (const topology::Range& range : table.ranges()) {
    if (!overlaps(range.start, range.end, start, end)) continue;
    if (contains(members_of(table, range.shard), me_)) return true;
  }
  return false;
}

void Migrator::drop_unowned_ranges() {
  std::vector<topology::Range> due;
  {
    std::lock_guard lock(unowned_->mu);
    due.swap(unowned_->to_drop);
  }
  const auto table = replica_.tables().current();
  for (size_t i = 0; i < due.size(); ++i) {
    const topology::Range& range = due[i];
    // Judged again on the current table: a range this machine owns again since (a commit to its
    // new shard) is never deleted.
    if (table && owns_part_of(*table, range.start, range.end)) {
      spdlog::info("not deleting [{}, {}): this machine owns part of it again",
                   topology::format_token(range.start), topology::format_token(range.end));
      continue;
    }
    if (Status status = engine_.drop_range(range.start, range.end); !status.is_ok()) {
      spdlog::error("cannot delete [{}, {}), no longer owned: {}",
                    topology::format_token(range.start), topology::format_token(range.end),
                    status.to_string());
      // Tried again next round.
      std::lock_guard lock(unowned_->mu);
      unowned_->to_drop.insert(unowned_->to_drop.end(), due.begin() + static_cast<ptrdiff_t>(i),
                               due.end());
      return;
    }
    spdlog::info("deleted [{}, {}): shard {} owns it and this machine is not in it",
                 topology::format_token(range.start), topology::format_token(range.end),
                 range.shard);
    restage_overlapping(range);
  }
}

void Migrator::sweep_strays(const topology::RoutingTable& table) {
  std::vector<std::pair<Token, Token>> moving;
  {
    std::lock_guard lock(mu_);
    if (orders_epoch_ == 0 || table.epoch() < orders_epoch_) return;
    for (const auto& [id, migration] : migrations_) {
      moving.emplace_back(migration->start, migration->end);
    }
    for (const auto& [migration, epoch] : forgotten_) {
      moving.emplace_back(migration->start, migration->end);
    }
  }
  for (const topology::Range& range : table.ranges()) {
    if (stopping()) return;
    if (contains(members_of(table, range.shard), me_)) continue;
    const bool moves = std::any_of(moving.begin(), moving.end(), [&](const auto& m) {
      return overlaps(m.first, m.second, range.start, range.end);
    });
    if (moves) continue;
    uint64_t found = 0;
    std::string example;
    const Status scanned = engine_.scan(range.start, range.end,
                                        [&](Token, std::string_view key, std::string_view,
                                            const storage::Cell&) {
                                          if (found++ == 0) example = std::string(key);
                                          return found < 1000;
                                        });
    if (!scanned.is_ok()) {
      spdlog::error("cannot look for leftovers in [{}, {}): {}", topology::format_token(range.start),
                    topology::format_token(range.end), scanned.to_string());
      continue;
    }
    if (found == 0) continue;
    // Nothing should ever be found: each case is a path that forgot to delete (logged as such).
    spdlog::warn("found {}{} keys (e.g. '{}') in [{}, {}), which shard {} owns and this machine "
                 "is not in: deleting them", found >= 1000 ? "at least " : "", found, example,
                 topology::format_token(range.start), topology::format_token(range.end),
                 range.shard);
    if (Status status = engine_.drop_range(range.start, range.end); !status.is_ok()) {
      spdlog::error("cannot delete leftovers in [{}, {}): {}", topology::format_token(range.start),
                    topology::format_token(range.end), status.to_string());
      continue;
    }
    strays_dropped_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Migrator::restage_overlapping(const topology::Range& range) {
  // A machine that leaves a shard (an extra reclaimed into the target shard of a migration) may
  // already copy a range it held there: the deletion just removed pages it copied, so every
  // stream of such a migration copies again from the start.
  std::vector<std::shared_ptr<Migration>> list;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, migration] : migrations_) list.push_back(migration);
  }
  for (const std::shared_ptr<Migration>& migration : list) {
    if (!overlaps(migration->start, migration->end, range.start, range.end)) continue;
    std::lock_guard lock(migration->mu);
    bool restarted = false;
    for (auto& [id, stream] : migration->streams) {
      if (!stream.held) continue;
      stream.restart();
      restarted = true;
    }
    if (restarted) {
      spdlog::warn("migration {}: [{}, {}) was deleted here while it was being copied: copying "
                   "again", migration->id, topology::format_token(range.start),
                   topology::format_token(range.end));
    }
  }
}

void Migrator::cleanup(Migration& migration, const topology::RoutingTable& table) {
  MigrationOrder order;
  {
    std::lock_guard lock(mu_);
    if (migration.cleaned || !migration.was_source) return;
    order = migration.order;
  }
  // Before the commit's epoch this machine may still serve the range to a coordinator that
  // has not moved on.
  if (table.epoch() < order.commit_epoch || order.commit_epoch == 0) return;
  if (owns_part_of(table, order.start, order.end)) {
    spdlog::info("migration {}: this machine still serves part of [{}, {}): nothing to delete",
                 order.id, topology::format_token(order.start), topology::format_token(order.end));
  } else {
    const int64_t started = now_ms();
    if (Status status = engine_.drop_range(order.start, order.end); !status.is_ok()) {
      spdlog::error("migration {}: cannot delete the moved range: {}", order.id,
                    status.to_string());
      return;  // tried again next round
    }
    spdlog::info("migration {}: deleted the moved range [{}, {}) in {} ms", order.id,
                 topology::format_token(order.start), topology::format_token(order.end),
                 now_ms() - started);
  }
  for (uint64_t id : members_of(table, order.target)) {
    engine_.release_wal(migration_hold_id(order.id, id));
  }
  std::lock_guard lock(mu_);
  migration.cleaned = true;
}

void Migrator::drop_forgotten(const topology::RoutingTable& table) {
  std::vector<std::pair<std::shared_ptr<Migration>, uint64_t>> due;
  {
    std::lock_guard lock(mu_);
    for (auto it = forgotten_.begin(); it != forgotten_.end();) {
      // Judged on a table at least as new as the answer that dropped the order, so a committed
      // range is never mistaken for one this machine does not own.
      if (table.epoch() >= it->second) {
        due.push_back(std::move(*it));
        it = forgotten_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [migration, epoch] : due) {
    release_streams(*migration);
    drop_copy_if_not_owner(*migration, table);
  }
}

void Migrator::drop_copy_if_not_owner(Migration& migration, const topology::RoutingTable& table) {
  {
    std::lock_guard lock(mu_);
    if (!migration.copied) return;
  }
  if (owns_part_of(table, migration.start, migration.end)) return;
  if (Status status = engine_.drop_range(migration.start, migration.end); !status.is_ok()) {
    spdlog::error("migration {}: cannot drop the copied range: {}", migration.id,
                  status.to_string());
    return;  // tried again next round while the order lasts
  }
  spdlog::info("migration {}: dropped the data copied of [{}, {})", migration.id,
               topology::format_token(migration.start), topology::format_token(migration.end));
  std::lock_guard lock(mu_);
  migration.copied = false;
}

void Migrator::throttle(Migration& migration, uint64_t bytes) {
  uint64_t rate;
  {
    std::lock_guard lock(mu_);
    rate = migration.order.max_rate;
  }
  if (rate == 0 || bytes == 0) return;
  const int64_t now = now_ms();
  if (migration.window_start_ms == 0 || now - migration.window_start_ms >= 1000) {
    migration.window_start_ms = now;
    migration.window_bytes = 0;
  }
  migration.window_bytes += bytes;
  // The time these bytes take at `rate`: sleep off what is ahead of it, so the average holds
  // whatever the page sizes.
  const int64_t due_ms = static_cast<int64_t>(migration.window_bytes * 1000 / rate);
  const int64_t ahead_ms = due_ms - (now - migration.window_start_ms);
  if (ahead_ms > 0) {
    (void)wait_ms(static_cast<int>(std::min<int64_t>(ahead_ms, 10'000)));
    migration.window_start_ms = now_ms();
    migration.window_bytes = 0;
  }
}

}  // namespace cairn::server
