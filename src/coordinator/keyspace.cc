#include "coordinator/keyspace.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <mutex>

namespace cairn::coordinator {
namespace {

std::mutex observer_mutex;
std::shared_ptr<const ExpiredObserver> observer;  // guarded by observer_mutex
std::atomic<bool> observing{false};

}  // namespace

// What the EXEC of a transaction compares with what WATCH saw. Any write to the key changes
// it: a string's cell timestamp and expiry; a row's header cell, number of live fields and
// newest live field (an added or rewritten field raises the newest timestamp, a removed or
// expired one lowers the count). A key that does not exist is "-" followed by the timestamp of
// its stored cell (its tombstone, or the expired cell), so a key created and deleted again in
// between is seen as changed, while one that just stays deleted or expired is not.
// Cost: O(1) for a string, one pass over the fields for a hash, set or sorted set.
Result<std::string> key_version(Keyspace& keyspace, const std::string& key) {
  Result<RowRead> row = keyspace.read_row_exists(key);
  if (!row.is_ok()) return row.status();
  if (!row->header) {
    Result<std::optional<storage::Cell>> stored = keyspace.read_stored(key);
    if (!stored.is_ok()) return stored.status();
    return *stored ? fmt::format("-{}", (*stored)->timestamp) : std::string("-");
  }
  const storage::Cell& header = *row->header;
  if (!storage::is_row_type(header.type)) {
    return fmt::format("s{}:{}", header.timestamp, header.expire_at_ms);
  }
  uint64_t fields = 0;
  HlcTimestamp newest = 0;
  Status walked = keyspace.scan_fields(key, "", row->hidden_through,
                                       [&](std::string_view, const storage::Cell& cell) {
                                         ++fields;
                                         newest = std::max(newest, cell.timestamp);
                                         return true;
                                       });
  if (!walked.is_ok()) return walked;
  return fmt::format("r{}:{}:{}:{}", header.timestamp, header.expire_at_ms, fields, newest);
}

std::vector<std::string> tx_prepare_args(const TxPart& part) {
  std::vector<std::string> args = {"CAIRN.TXPREPARE", part.txid,
                                   part.home_key ? "+" + *part.home_key : std::string("-"),
                                   std::to_string(part.versions.size())};
  for (const auto& [key, version] : part.versions) {
    args.push_back(key);
    args.push_back(version);
  }
  for (const CollectedWrite& write_entry : part.writes) {
    args.push_back(write_entry.key);
    args.push_back(storage::encode_cell(write_entry.cell));
  }
  return args;
}

std::optional<TxPart> parse_tx_prepare(std::span<const std::string> args) {
  if (args.size() < 4) return std::nullopt;
  size_t versions = 0;
  const std::string& text = args[3];
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), versions);
  if (error != std::errc() || end != text.data() + text.size() ||
      versions > (args.size() - 4) / 2 || (args.size() - 4 - versions * 2) % 2 != 0) {
    return std::nullopt;
  }
  TxPart part;
  part.txid = args[1];
  if (args[2] == "-") {
    part.home_key = std::nullopt;
  } else if (!args[2].empty() && args[2][0] == '+') {
    part.home_key = args[2].substr(1);
  } else {
    return std::nullopt;
  }
  size_t at = 4;
  for (size_t i = 0; i < versions; ++i, at += 2) part.versions.emplace_back(args[at], args[at + 1]);
  for (; at < args.size(); at += 2) {
    Result<storage::Cell> cell = storage::decode_cell(args[at + 1]);
    if (!cell.is_ok()) return std::nullopt;
    part.writes.push_back(CollectedWrite{args[at], std::move(*cell)});
  }
  return part;
}

void set_expired_observer(ExpiredObserver fn) {
  std::lock_guard lock(observer_mutex);
  observer = fn ? std::make_shared<const ExpiredObserver>(std::move(fn)) : nullptr;
  observing.store(observer != nullptr, std::memory_order_relaxed);
}

void note_if_expired(std::string_view key, const storage::Cell& cell, int64_t now_ms) {
  if (!observing.load(std::memory_order_relaxed)) return;
  if (cell.tombstone || !cell.expired_at(now_ms)) return;
  std::shared_ptr<const ExpiredObserver> fn;
  {
    std::lock_guard lock(observer_mutex);
    fn = observer;
  }
  if (fn) (*fn)(key, cell.expire_at_ms);
}

}  // namespace cairn::coordinator
