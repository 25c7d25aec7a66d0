#include "replica/tx_intents.h"

#include <fmt/format.h>

#include <charconv>
#include <utility>

#include "common/assert.h"
#include "storage/cell.h"
#include "topology/token.h"

namespace cairn::replica {
namespace {

constexpr std::string_view kIntentPrefix = "txi/";
constexpr std::string_view kRecordPrefix = "txr/";

// Length-prefixed strings: "<size>:<bytes>".
void put_string(std::string& out, std::string_view bytes) {
  out += std::to_string(bytes.size());
  out += ':';
  out += bytes;
}

std::optional<std::string_view> take_string(std::string_view& in) {
  const size_t colon = in.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  size_t size = 0;
  const auto [end, error] = std::from_chars(in.data(), in.data() + colon, size);
  if (error != std::errc() || end != in.data() + colon || size > in.size() - colon - 1) {
    return std::nullopt;
  }
  const std::string_view bytes = in.substr(colon + 1, size);
  in.remove_prefix(colon + 1 + size);
  return bytes;
}

std::optional<int64_t> take_number(std::string_view& in) {
  const std::optional<std::string_view> text = take_string(in);
  if (!text) return std::nullopt;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

// Every key an intent holds: those it writes and those it read.
std::vector<std::string_view> held_keys(const TxIntent& intent) {
  std::vector<std::string_view> keys;
  keys.reserve(intent.cells.size() + intent.reads.size());
  for (const storage::WalChange& change : intent.cells) keys.push_back(change.key);
  for (const std::string& key : intent.reads) keys.push_back(key);
  return keys;
}

}  // namespace

std::string encode_intent(const TxIntent& intent) {
  std::string out;
  put_string(out, intent.txid);
  put_string(out, intent.home_key);
  put_string(out, std::to_string(intent.prepared_ms));
  put_string(out, std::to_string(intent.cells.size()));
  for (const storage::WalChange& change : intent.cells) {
    put_string(out, change.key);
    put_string(out, storage::encode_cell(change.cell));
  }
  put_string(out, std::to_string(intent.reads.size()));
  for (const std::string& key : intent.reads) put_string(out, key);
  return out;
}

std::optional<TxIntent> decode_intent(std::string_view bytes) {
  TxIntent intent;
  const std::optional<std::string_view> txid = take_string(bytes);
  const std::optional<std::string_view> home_key = take_string(bytes);
  const std::optional<int64_t> prepared_ms = take_number(bytes);
  const std::optional<int64_t> count = take_number(bytes);
  if (!txid || !home_key || !prepared_ms || !count || *count < 0 ||
      static_cast<uint64_t>(*count) > bytes.size()) {
    return std::nullopt;
  }
  intent.txid = *txid;
  intent.home_key = *home_key;
  intent.prepared_ms = *prepared_ms;
  for (int64_t i = 0; i < *count; ++i) {
    const std::optional<std::string_view> key = take_string(bytes);
    const std::optional<std::string_view> cell_bytes = take_string(bytes);
    if (!key || !cell_bytes) return std::nullopt;
    Result<storage::Cell> cell = storage::decode_cell(*cell_bytes);
    if (!cell.is_ok()) return std::nullopt;
    storage::WalChange change;
    change.token = topology::token_of(*key);
    change.key = *key;
    change.cell = std::move(*cell);
    intent.cells.push_back(std::move(change));
  }
  const std::optional<int64_t> reads = take_number(bytes);
  if (!reads || *reads < 0 || static_cast<uint64_t>(*reads) > bytes.size()) return std::nullopt;
  for (int64_t i = 0; i < *reads; ++i) {
    const std::optional<std::string_view> key = take_string(bytes);
    if (!key) return std::nullopt;
    intent.reads.emplace_back(*key);
  }
  if (!bytes.empty()) return std::nullopt;
  return intent;
}

std::optional<std::vector<storage::WalChange>> decode_key_cells(std::span<const std::string> args) {
  if (args.size() % 2 != 0) return std::nullopt;
  std::vector<storage::WalChange> cells;
  cells.reserve(args.size() / 2);
  for (size_t at = 0; at < args.size(); at += 2) {
    Result<storage::Cell> cell = storage::decode_cell(args[at + 1]);
    if (!cell.is_ok()) return std::nullopt;
    cells.push_back(
        storage::WalChange{topology::token_of(args[at]), args[at], std::move(*cell), {}});
  }
  return cells;
}

std::vector<std::string> intent_put_args(uint64_t epoch, const TxIntent& intent) {
  std::vector<std::string> args = {"CAIRN.INTENT",        "PUT",
                                   std::to_string(epoch), intent.txid,
                                   intent.home_key,       std::to_string(intent.cells.size())};
  for (const storage::WalChange& change : intent.cells) {
    args.push_back(change.key);
    args.push_back(storage::encode_cell(change.cell));
  }
  args.insert(args.end(), intent.reads.begin(), intent.reads.end());
  return args;
}

std::optional<std::pair<uint64_t, TxIntent>> parse_intent_put(std::span<const std::string> args) {
  if (args.size() < 6) return std::nullopt;
  uint64_t epoch = 0;
  size_t cells = 0;
  const auto number = [](const std::string& text, auto& out) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
  };
  if (!number(args[2], epoch) || !number(args[5], cells) || cells > (args.size() - 6) / 2) {
    return std::nullopt;
  }
  TxIntent intent;
  intent.txid = args[3];
  intent.home_key = args[4];
  std::optional<std::vector<storage::WalChange>> decoded =
      decode_key_cells(args.subspan(6, cells * 2));
  if (!decoded) return std::nullopt;
  intent.cells = std::move(*decoded);
  intent.reads.assign(args.begin() + static_cast<ptrdiff_t>(6 + cells * 2), args.end());
  return std::make_pair(epoch, std::move(intent));
}

TxIntents::TxIntents(storage::Engine& engine, std::function<int64_t()> wall_clock_ms)
    : engine_(engine), wall_clock_ms_(std::move(wall_clock_ms)) {}

Status TxIntents::load() {
  std::lock_guard lock(mu_);
  intents_.clear();
  holders_.clear();
  Status corrupt = Status::ok();
  Status scanned =
      engine_.scan_meta(kIntentPrefix, [&](std::string_view name, std::string_view value) {
        std::optional<TxIntent> intent = decode_intent(value);
        if (!intent) {
          corrupt = Status::corruption(fmt::format("unreadable transaction intent {}", name));
          return false;
        }
        for (std::string_view key : held_keys(*intent)) holders_[std::string(key)] = intent->txid;
        std::string txid = intent->txid;
        intents_.emplace(std::move(txid), std::move(*intent));
        return intents_.size() < kIntentsMax;
      });
  if (!scanned.is_ok()) return scanned;
  return corrupt;
}

Status TxIntents::prepare(TxIntent intent) {
  std::lock_guard lock(mu_);
  for (std::string_view key : held_keys(intent)) {
    auto it = holders_.find(key);
    if (it != holders_.end() && it->second != intent.txid) {
      return Status::busy(fmt::format("TXCONFLICT key held by transaction {}", it->second));
    }
  }
  auto known = intents_.find(intent.txid);
  if (known == intents_.end() && intents_.size() >= kIntentsMax) {
    return Status::busy(fmt::format("TXCONFLICT {} transactions prepared here", kIntentsMax));
  }
  if (known != intents_.end()) {
    for (std::string_view key : held_keys(known->second)) {
      if (auto holder = holders_.find(key); holder != holders_.end()) holders_.erase(holder);
    }
  }
  intent.prepared_ms = wall_clock_ms_();
  if (Status stored =
          engine_.put_meta(std::string(kIntentPrefix) + intent.txid, encode_intent(intent));
      !stored.is_ok()) {
    return stored;
  }
  for (std::string_view key : held_keys(intent)) holders_[std::string(key)] = intent.txid;
  std::string txid = intent.txid;
  intents_.insert_or_assign(std::move(txid), std::move(intent));
  return Status::ok();
}

std::optional<std::string> TxIntents::holder(std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = holders_.find(key);
  if (it == holders_.end()) return std::nullopt;
  return it->second;
}

Status TxIntents::resolve(const std::string& txid, TxDecision decision,
                          const std::vector<storage::WalChange>* cells) {
  std::lock_guard lock(mu_);
  auto it = intents_.find(txid);
  const std::vector<storage::WalChange>* to_apply =
      it != intents_.end() ? &it->second.cells : cells;
  if (decision == TxDecision::kCommit && to_apply != nullptr && !to_apply->empty()) {
    Result<size_t> applied = engine_.apply_batch(*to_apply);
    if (!applied.is_ok()) return applied.status();
  }
  if (it == intents_.end()) return Status::ok();
  // delete_meta syncs the log: the cells applied above are durable before the intent goes.
  if (Status removed = engine_.delete_meta(std::string(kIntentPrefix) + txid); !removed.is_ok()) {
    return removed;
  }
  for (std::string_view key : held_keys(it->second)) {
    auto holder = holders_.find(key);
    if (holder != holders_.end() && holder->second == txid) holders_.erase(holder);
  }
  intents_.erase(it);
  return Status::ok();
}

std::vector<TxIntent> TxIntents::prepared_before(int64_t prepared_before_ms, size_t max) const {
  std::lock_guard lock(mu_);
  std::vector<TxIntent> old;
  for (const auto& [txid, intent] : intents_) {
    if (old.size() >= max) break;
    if (intent.prepared_ms <= prepared_before_ms) old.push_back(intent);
  }
  return old;
}

size_t TxIntents::pending() const {
  std::lock_guard lock(mu_);
  return intents_.size();
}

Result<TxDecision> TxIntents::record_first(const std::string& txid, TxDecision decision) {
  std::lock_guard lock(mu_);
  const std::string name = std::string(kRecordPrefix) + txid;
  Result<std::optional<std::string>> stored = engine_.get_meta(name);
  if (!stored.is_ok()) return stored.status();
  if (stored->has_value() && (*stored)->size() == 1) return static_cast<TxDecision>((**stored)[0]);
  if (Status put = engine_.put_meta(name, std::string(1, static_cast<char>(decision)));
      !put.is_ok()) {
    return put;
  }
  return decision;
}

}  // namespace cairn::replica
