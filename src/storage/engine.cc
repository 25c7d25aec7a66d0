#include "storage/engine.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <array>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <thread>
#include <utility>

#include "common/big_endian.h"
#include "common/clock.h"
#include "storage/cell_compaction_filter.h"
#include "storage/rank_block_cache.h"
#include "topology/token_range.h"

namespace cairn::storage {
namespace {

// Column family of the engine's own metadata, and the key of the recorded clock in it.
constexpr char kMetaFamily[] = "meta";
constexpr char kClockKey[] = "hlc";
// The key of the data directory's format version in the meta family (docs/formats.md "Format
// version"), and the version this build writes and reads. Version 1 (never written: directories
// without the key) placed keys by xxh3 alone; version 2 places them by Redis Cluster slot first
// (topology/token.h), which changes every key's token and so the order of the storage keys.
constexpr char kFormatVersionKey[] = "format-version";
constexpr uint32_t kFormatVersion = 2;
// Column family of the derived state of rows (RowState), keyed by the row's storage key without
// sub-key. Local: written in the same batch as the cell that changes it, never relayed.
constexpr char kRowsFamily[] = "rows";
// RowState layout, version 1: version(1) delete_through(8) header_expire_at_ms(8) count(8)
// newest_field(8), integers big-endian (docs/formats.md "Rows").
constexpr uint8_t kRowStateVersion = 1;
constexpr size_t kRowStateBytes = 1 + 8 + 8 + 8 + 8;
// Column family of hinted-handoff records (Engine::store_hint).
constexpr char kHintsFamily[] = "hints";
constexpr size_t kHintKeyBytes = 16;  // target (8 BE) | sequence (8 BE)
constexpr size_t kHintKeyLengthBytes = 4;

// Internal stripes serialize apply()'s read-compare-write per key. The caller-visible stripes of
// lock_key() are a separate array so a caller holding one can call apply() without deadlock.
constexpr size_t kApplyStripes = 256;
constexpr size_t kKeyStripes = 1024;

// Bounds that keep an idle server small (idle RSS < 64 MiB for the whole process).
constexpr int kMaxOpenFiles = 256;
constexpr size_t kMinWriteBufferBytes = 64 * 1024;
constexpr int kMaxBackgroundJobs = 2;
constexpr size_t kInfoLogFilesKept = 4;
constexpr size_t kInfoLogFileBytesMax = 4 * 1024 * 1024;
constexpr int kBloomBitsPerKey = 10;
// Share of the memtable budget given to its whole-key Bloom filter (RocksDB suggests <= 0.25).
constexpr double kMemtableBloomRatio = 0.02;
// Share of the block cache kept for index and filter blocks.
constexpr double kCacheHighPriorityRatio = 0.5;
// Size of an index or filter partition.
constexpr uint64_t kMetadataBlockBytes = 4096;
// Flushes and compactions hand their output to the disk every this many bytes instead of all at
// the file's final fsync: a burst of tens of megabytes otherwise sits in front of the WAL fsync
// every acknowledged write waits for.
constexpr uint64_t kSstBytesPerSync = 1 << 20;

// Archived WAL files are kept for migration readers (GetUpdatesSince, docs/formats.md). RocksDB
// deletes an archived file once it is older than the TTL or the archive exceeds the size limit,
// whichever comes first; a migration that falls further behind must restart from a range scan.
// The defaults are EngineOptions::wal_retention_seconds / wal_retention_megabytes; a hold
// (Engine::hold_wal) keeps every WAL file regardless.

// An upper bound past every stored key of the data: token 2^64-1 followed by a key length of
// 2^32-1, which no stored key has (keys are far shorter), so every real key sorts below it.
constexpr size_t kRingEndKeyBytes = 12;
const std::string kRingEndKey(kRingEndKeyBytes, '\xff');
// The WAL-only blob (WriteBatch::PutLogData) that marks a batch's range deletion as this
// machine's own housekeeping (Engine::drop_range), which migration readers skip. docs/formats.md.
constexpr std::string_view kLocalDropMarker = "cairn:local-drop";

Status from_rocksdb(const rocksdb::Status& status, std::string_view what) {
  std::string message = std::string(what) + ": " + status.ToString();
  if (status.IsCorruption()) return Status::corruption(std::move(message));
  if (status.IsBusy() || status.IsTryAgain()) return Status::busy(std::move(message));
  if (status.IsInvalidArgument()) return Status::invalid_argument(std::move(message));
  return Status::io_error(std::move(message));
}

size_t stripe_of(topology::Token token, std::string_view key) {
  // Keys that share a hash tag share a token, so mix in the key itself.
  return std::hash<std::string_view>{}(key) ^ (token * 0x9e3779b97f4a7c15ull);
}

rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Whether a cell at `sub_key` is one of the row's fields (members): the row's count and
// newest_field are about these only.
bool counts_toward_row(std::string_view sub_key) {
  return !sub_key.empty() && sub_key[0] == kFieldNamespace;
}

// ---- Rank blocks (docs/formats.md "Rank blocks") ----
// In the rows column family, after the row's state: row key | namespace | the block's end (the
// first sub-key after it; kLastBlockEnd for the last block) -> u64 count of the cells of that
// namespace in the block that count (rank_entry_counts) | the block's first sub-key (empty for
// the first block). Keyed by the end, so the block holding a sub-key is found by a forward seek
// (a backward one steps over every old version of a block rewritten by each write). The
// namespaces are a row's fields (kFieldNamespace) and a sorted set's score index
// (kScoreIndexNamespace). A block that would count more than kRankBlockSplit is split at its
// middle, so a walk to a rank steps over at most that many cells (plus the tombstones among
// them); a row gets blocks once it holds kRankBlocksFrom fields (below, it walks from the nearer
// end instead and each write spares the upkeep). Blocks are many (a 1 M-member row has about
// 6,000), but readers take them from memory (RankBlockCache) and writers change one at a time.
constexpr uint64_t kRankBlockSplit = 256;
constexpr uint64_t kRankBlocksFrom = 2048;
constexpr std::string_view kLastBlockEnd = "\xff";  // above every sub-key of a namespace

bool has_rank_blocks(std::string_view sub_key) {
  return !sub_key.empty() &&
         (sub_key[0] == kFieldNamespace || sub_key[0] == kScoreIndexNamespace);
}

bool rank_entry_counts(const Cell& cell, HlcTimestamp delete_through) {
  return !cell.tombstone && cell.timestamp > delete_through;
}

std::string rank_block_key(const std::string& row_key, char ns, std::string_view end) {
  std::string key = row_key;
  key.push_back(ns);
  key.append(end.empty() ? kLastBlockEnd : end);
  return key;
}

std::string rank_blocks_end(const std::string& row_key, char ns) {
  std::string key = row_key;
  key.push_back(static_cast<char>(ns + 1));
  return key;
}

std::string encode_rank_block(const RankBlock& block) {
  std::string out;
  put_u64(out, block.count);
  out.append(block.start);
  return out;
}

Result<RankBlock> decode_rank_block(std::string_view key_end, std::string_view value) {
  if (value.size() < 8) return Status::corruption("storage: malformed rank block");
  RankBlock block;
  block.count = get_u64(value);
  block.start = std::string(value.substr(8));
  if (key_end != kLastBlockEnd) block.end = std::string(key_end);
  return block;
}

// Where a walk to a rank or to a sub-key starts, with the row's deletion bound, read from one
// snapshot that lives as long as this view (Engine::scan_from_rank, Engine::index_rank).
struct RankView {
  explicit RankView(rocksdb::DB* db) : db(db) {}
  ~RankView() { release(); }
  RankView(const RankView&) = delete;
  RankView& operator=(const RankView&) = delete;
  void take() { snapshot = db->GetSnapshot(); }
  void release() {
    if (snapshot != nullptr) db->ReleaseSnapshot(snapshot);
    snapshot = nullptr;
  }
  rocksdb::DB* db;
  const rocksdb::Snapshot* snapshot = nullptr;
  std::string start;    // the first sub-key of the block to walk from
  uint64_t before = 0;  // the cells that count before that block
  HlcTimestamp delete_through = 0;
};

// Picks the block to walk from among a row's blocks (its index).
using BlockPicker = std::function<size_t(const std::vector<RankBlock>&)>;

// Rows whose blocks the engine keeps in memory, counted in blocks (about 100 bytes each).
constexpr size_t kRankCacheBlocks = 256 * 1024;


std::string hint_key(uint64_t target, uint64_t sequence) {
  std::string key;
  key.reserve(kHintKeyBytes);
  put_u64(key, target);
  put_u64(key, sequence);
  return key;
}

// A hint's value (docs/formats.md "Hints"): key length | key | cell for a key's own cell; a
// field of a row starts with the marker 0xffffffff (no key is 4 GiB long) and carries its
// sub-key: marker | key length | key | sub-key length | sub-key | cell.
constexpr std::string_view kHintSubKeyMarker("\xff\xff\xff\xff", 4);

std::string encode_hint_value(std::string_view key, std::string_view sub_key, const Cell& cell) {
  std::string value;
  if (!sub_key.empty()) value.append(kHintSubKeyMarker);
  put_u32(value, static_cast<uint32_t>(key.size()));
  value.append(key);
  if (!sub_key.empty()) {
    put_u32(value, static_cast<uint32_t>(sub_key.size()));
    value.append(sub_key);
  }
  value.append(encode_cell(cell));
  return value;
}

// Reads a u32 length and that many bytes from the front of `rest`; nullopt if it does not fit.
std::optional<std::string_view> take_prefixed(std::string_view& rest) {
  if (rest.size() < kHintKeyLengthBytes) return std::nullopt;
  uint32_t length = 0;
  for (size_t i = 0; i < kHintKeyLengthBytes; ++i) {
    length = (length << 8) | static_cast<unsigned char>(rest[i]);
  }
  rest.remove_prefix(kHintKeyLengthBytes);
  if (rest.size() < length) return std::nullopt;
  std::string_view taken = rest.substr(0, length);
  rest.remove_prefix(length);
  return taken;
}

Result<Hint> decode_hint(std::string_view raw_key, std::string_view raw_value) {
  if (raw_key.size() != kHintKeyBytes) return Status::corruption("storage: hint key is not 16 bytes");
  if (raw_value.size() < kHintKeyLengthBytes) return Status::corruption("storage: short hint");
  std::string_view rest = raw_value;
  const bool has_sub_key = rest.starts_with(kHintSubKeyMarker);
  if (has_sub_key) rest.remove_prefix(kHintKeyLengthBytes);
  std::optional<std::string_view> key = take_prefixed(rest);
  if (!key) return Status::corruption("storage: hint key length exceeds the record");
  std::optional<std::string_view> sub_key;
  if (has_sub_key) {
    sub_key = take_prefixed(rest);
    if (!sub_key || sub_key->empty()) {
      return Status::corruption("storage: hint sub-key length exceeds the record");
    }
  }
  Result<Cell> cell = decode_cell(rest);
  if (!cell.is_ok()) return cell.status();
  Hint hint;
  hint.target = get_u64(raw_key.substr(0, 8));
  hint.sequence = get_u64(raw_key.substr(8, 8));
  hint.key = std::string(*key);
  if (sub_key) hint.sub_key = std::string(*sub_key);
  hint.cell = std::move(cell).value();
  return hint;
}

Status validate(const EngineOptions& options) {
  if (options.path.empty()) return Status::invalid_argument("storage: path is empty");
  if (options.batch_sync_interval_ms <= 0) {
    return Status::invalid_argument("storage: batch_sync_interval_ms must be positive");
  }
  if (options.tombstone_grace_ms < 0) {
    return Status::invalid_argument("storage: tombstone_grace_ms must not be negative");
  }
  if (options.write_buffer_bytes < kMinWriteBufferBytes) {
    return Status::invalid_argument("storage: write_buffer_bytes must be at least 64 KiB");
  }
  return Status::ok();
}

rocksdb::Options make_rocksdb_options(const EngineOptions& options,
                                      const rocksdb::CompactionFilter* filter) {
  rocksdb::Options db;
  db.create_if_missing = true;
  // Recover up to the first damaged WAL record and stop there: a torn tail after a crash is
  // expected, and everything before it (all synced writes) is kept.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db.avoid_flush_during_shutdown = false;
  // WAL records collect in RocksDB's buffer until sync() flushes them: one write() (and, with
  // durability `always`, one fsync) per event-loop iteration instead of one per command. This is
  // the group commit of docs/formats.md
  db.manual_wal_flush = true;
  db.max_open_files = kMaxOpenFiles;
  db.max_background_jobs = kMaxBackgroundJobs;
  db.bytes_per_sync = kSstBytesPerSync;
  db.keep_log_file_num = kInfoLogFilesKept;
  db.max_log_file_size = kInfoLogFileBytesMax;
  db.WAL_ttl_seconds = options.wal_retention_seconds;
  db.WAL_size_limit_MB = options.wal_retention_megabytes;
  db.write_buffer_size = options.write_buffer_bytes;
  db.max_write_buffer_number = 2;
  // A Bloom filter over the memtable's whole keys: the read before each write is mostly for a
  // key the memtable does not hold (a new key, a new list element, a new stream entry), and
  // without it every such read walks the skiplist to the bottom.
  db.memtable_prefix_bloom_size_ratio = kMemtableBloomRatio;
  db.memtable_whole_key_filtering = true;
  db.level_compaction_dynamic_level_bytes = true;
  db.compaction_filter = filter;

  rocksdb::BlockBasedTableOptions table;
  // Index and filter blocks live in the high-priority part of the cache, so a stream of data
  // blocks (random reads, a migration's scan) does not push them out.
  rocksdb::LRUCacheOptions cache(options.block_cache_bytes, /*num_shard_bits=*/-1,
                                 /*strict_capacity_limit=*/false, kCacheHighPriorityRatio);
  table.block_cache = rocksdb::NewLRUCache(cache);
  // apply() reads before every write, often for keys that do not exist yet: a Bloom filter
  // answers those without touching data blocks.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  // Index and filter blocks count against the block cache, so memory stays bounded by options.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  // Partitioned: a read loads one small index and filter partition, not the whole index of a
  // big SST file. With one index block per file, a file of a gigabyte of values has an index of
  // megabytes; once the cache evicted it, every Get read and decompressed all of it again (a
  // sixfold throughput loss measured after a migration, and the slow-down of a sustained load).
  // Only the top level of each file stays pinned.
  table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = kMetadataBlockBytes;
  table.pin_top_level_index_and_filter = true;
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return db;
}


// The first token of a range deletion whose begin key is `bound`. The engine's own deletions
// begin at a token prefix (or at the empty key), so the token is covered from its first key.
topology::Token token_at_or_after(std::string_view bound) {
  std::string padded(bound.substr(0, std::min<size_t>(bound.size(), 8)));
  padded.resize(8, '\0');
  return get_u64(padded);
}

// The end token (exclusive, 0 = ring end) of a range deletion whose end key is `bound`: every
// token holding a key below `bound`.
topology::Token token_before(std::string_view bound) {
  if (bound.size() >= kRingEndKeyBytes &&
      bound.substr(0, kRingEndKeyBytes) == std::string_view(kRingEndKey)) {
    return 0;
  }
  std::string padded(bound.substr(0, std::min<size_t>(bound.size(), 8)));
  padded.resize(8, '\0');
  const topology::Token token = get_u64(padded);
  const bool longer =
      bound.size() > 8 && bound.substr(8).find_first_not_of('\0') != std::string_view::npos;
  // Some keys of `token` sort below a longer bound: the range reaches into that token.
  return longer ? token + 1 : token;  // token + 1 wraps to 0 (the ring end) at the last token
}

// Reads the records of write batches from the WAL (Engine::wal_changes). Every record that
// consumes a sequence number advances `sequence`, so records before `from` inside the first batch
// are skipped exactly.
class WalReader final : public rocksdb::WriteBatch::Handler {
 public:
  WalReader(uint64_t from, topology::Token start, topology::Token end, WalChanges& out)
      : from_(from), start_(start), end_(end), out_(out) {}

  void begin_batch(uint64_t sequence) {
    sequence_ = sequence;
    local_drop_ = false;
  }
  const Status& error() const { return error_; }

  rocksdb::Status PutCF(uint32_t family, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    if (!take(family)) return rocksdb::Status::OK();
    Result<DecodedKey> decoded = decode_key(std::string_view(key.data(), key.size()));
    if (!decoded.is_ok()) return fail(decoded.status());
    if (!in_range(decoded->token)) return rocksdb::Status::OK();
    Result<Cell> cell = decode_cell(std::string_view(value.data(), value.size()));
    if (!cell.is_ok()) return fail(cell.status());
    out_.entries.push_back(WalEntry{
        record_, WalChange{decoded->token, std::string(decoded->key),
                                 std::move(cell).value(), std::string(decoded->sub_key)}});
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteRangeCF(uint32_t family, const rocksdb::Slice& begin,
                                const rocksdb::Slice& end) override {
    if (!take(family)) return rocksdb::Status::OK();
    // This machine's own housekeeping (Engine::drop_range): never repeated elsewhere.
    if (local_drop_) return rocksdb::Status::OK();
    topology::Token first = token_at_or_after(std::string_view(begin.data(), begin.size()));
    topology::Token last = token_before(std::string_view(end.data(), end.size()));
    // Clip to [start_, end_) (0 = ring end on both sides).
    first = std::max(first, start_);
    if (end_ != 0 && (last == 0 || last > end_)) last = end_;
    if (last != 0 && last <= first) return rocksdb::Status::OK();
    out_.entries.push_back(WalEntry{record_, WalRangeDelete{first, last}});
    return rocksdb::Status::OK();
  }
  // Takes no sequence number.
  void LogData(const rocksdb::Slice& blob) override {
    if (blob == slice(kLocalDropMarker)) local_drop_ = true;
  }
  // The data is only ever written with Put and DeleteRange; other records only count.
  rocksdb::Status DeleteCF(uint32_t family, const rocksdb::Slice&) override {
    take(family);
    return rocksdb::Status::OK();
  }
  rocksdb::Status SingleDeleteCF(uint32_t family, const rocksdb::Slice&) override {
    take(family);
    return rocksdb::Status::OK();
  }
  rocksdb::Status MergeCF(uint32_t family, const rocksdb::Slice&,
                          const rocksdb::Slice&) override {
    take(family);
    return rocksdb::Status::OK();
  }
  rocksdb::Status PutEntityCF(uint32_t family, const rocksdb::Slice&,
                              const rocksdb::Slice&) override {
    take(family);
    return rocksdb::Status::OK();
  }
  rocksdb::Status PutBlobIndexCF(uint32_t family, const rocksdb::Slice&,
                                 const rocksdb::Slice&) override {
    take(family);
    return rocksdb::Status::OK();
  }

 private:
  // Consumes one sequence number; true if the record is of the data and at or after `from_`.
  bool take(uint32_t family) {
    record_ = sequence_++;
    return family == 0 && record_ >= from_;
  }
  bool in_range(topology::Token token) const {
    return token >= start_ && (end_ == 0 || token < end_);
  }
  rocksdb::Status fail(Status status) {
    error_ = std::move(status);
    return rocksdb::Status::Corruption("storage: undecodable WAL record");
  }

  const uint64_t from_;
  const topology::Token start_;
  const topology::Token end_;
  WalChanges& out_;
  uint64_t sequence_ = 0;  // the next record's sequence number
  uint64_t record_ = 0;    // the sequence number of the record being read (set by take)
  bool local_drop_ = false;  // the current batch is a local drop (Engine::drop_range)
  Status error_;
};

}  // namespace

std::string encode_row_state(const RowState& state) {
  std::string out;
  out.reserve(kRowStateBytes);
  out.push_back(static_cast<char>(kRowStateVersion));
  put_u64(out, state.delete_through);
  put_u64(out, static_cast<uint64_t>(state.header_expire_at_ms));
  put_u64(out, state.count);
  put_u64(out, state.newest_field);
  return out;
}

Result<RowState> decode_row_state(std::string_view bytes) {
  if (bytes.size() != kRowStateBytes || static_cast<uint8_t>(bytes[0]) != kRowStateVersion) {
    return Status::corruption("storage: row state of " + std::to_string(bytes.size()) +
                              " bytes is not version 1");
  }
  RowState state;
  state.delete_through = get_u64(bytes.substr(1));
  state.header_expire_at_ms = static_cast<int64_t>(get_u64(bytes.substr(9)));
  state.count = get_u64(bytes.substr(17));
  state.newest_field = get_u64(bytes.substr(25));
  return state;
}

HlcTimestamp RowState::hidden_through(int64_t now_ms) const {
  if (header_expire_at_ms != 0 && header_expire_at_ms <= now_ms) {
    return std::max(delete_through, expiry_bound(header_expire_at_ms));
  }
  return delete_through;
}

Result<Durability> parse_durability(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "always") return Durability::kAlways;
  if (lower == "batch") return Durability::kBatch;
  if (lower == "none") return Durability::kNone;
  return Status::invalid_argument("durability must be always, batch or none, not '" +
                                  std::string(text) + "'");
}

std::string_view durability_name(Durability durability) {
  switch (durability) {
    case Durability::kAlways:
      return "always";
    case Durability::kBatch:
      return "batch";
    case Durability::kNone:
      return "none";
  }
  return "unknown";
}

struct Engine::Impl {
  // Read by the filter: declared first, destroyed last.
  PurgeBounds purge_bounds;
  // Declared before `db` so it is destroyed after it: RocksDB holds a raw pointer to the filter.
  std::unique_ptr<CellCompactionFilter> filter;
  std::unique_ptr<rocksdb::DB> db;
  // The "meta" column family: the recorded clock (see EngineOptions::clock_to_record). It shares
  // the WAL with the data, so a record is durable together with the writes before it.
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  std::atomic<uint64_t> clock_recorded{0};
  // The "rows" column family (RowState of each row).
  rocksdb::ColumnFamilyHandle* rows = nullptr;

  // The stored RowState of a row (a default one if none is stored).
  Result<RowState> get_row_state(const std::string& row_key, bool* found = nullptr) {
    std::string stored;
    const rocksdb::Status status = db->Get(rocksdb::ReadOptions(), rows, row_key, &stored);
    if (found != nullptr) *found = status.ok();
    if (status.IsNotFound()) return RowState{};
    if (!status.ok()) return from_rocksdb(status, "storage: read row state");
    return decode_row_state(stored);
  }

  // The number of stored fields of a row that are neither tombstones nor at or before `bound`.
  // REQUIRES: the row's apply stripe is held. O(fields of the row): only run when a header
  // raises delete_through below a field newer than it (fields that arrived before the header).
  Result<uint64_t> count_fields(const std::string& row_key, HlcTimestamp bound) {
    std::string lower = row_key;
    lower.push_back('\0');  // the first sub-key after the header
    std::string upper = row_key;
    upper.push_back('\xff');
    // Sub-keys start with a namespace byte below 0xff, so prefix + 0xff bounds them all.
    rocksdb::ReadOptions read_options;
    const rocksdb::Slice upper_slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options));
    uint64_t count = 0;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      // Only fields count; other namespaces (a sorted set's score index) mirror them.
      if (!counts_toward_row(std::string_view(it->key().data(), it->key().size())
                                 .substr(row_key.size()))) {
        continue;
      }
      Result<Cell> cell = decode_cell(std::string_view(it->value().data(), it->value().size()));
      if (!cell.is_ok()) return cell.status();
      if (!cell->tombstone && cell->timestamp > bound) ++count;
    }
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: count row");
    return count;
  }

  // Every rank block of a row's namespace `ns`, in order; empty when it keeps none.
  Result<std::vector<RankBlock>> rank_blocks(const std::string& row_key, char ns,
                                             const rocksdb::Snapshot* snapshot = nullptr) {
    std::string lower = row_key;
    lower.push_back(ns);
    const std::string upper = rank_blocks_end(row_key, ns);
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot;
    const rocksdb::Slice upper_slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options, rows));
    std::vector<RankBlock> blocks;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      Result<RankBlock> block = decode_rank_block(
          std::string_view(it->key().data() + lower.size(), it->key().size() - lower.size()),
          std::string_view(it->value().data(), it->value().size()));
      if (!block.is_ok()) return block.status();
      blocks.push_back(std::move(*block));
    }
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: read rank blocks");
    return blocks;
  }

  // Fills `view` for the row: the block `pick` chooses, the snapshot to walk and the deletion
  // bound; false when the row keeps no blocks or they do not add up to `total`. The blocks come
  // from the cache (loaded on a miss) under the row's apply stripe, where they match the
  // snapshot taken there; a range deletion meanwhile sends the reader to its snapshot.
  Result<bool> read_rank_view(std::mutex& stripe, const std::string& row_key, char ns,
                              uint64_t total, const BlockPicker& pick, RankView& view) {
    std::string row_ns = row_key;
    row_ns.push_back(ns);
    bool usable = false;
    bool settled = false;
    const uint64_t epoch = rank_cache.epoch();
    if (epoch % 2 == 0) {
      std::lock_guard<std::mutex> guard(stripe);
      std::shared_ptr<RankBlockCache::Entry> cached = rank_cache.find(row_ns);
      if (!cached) {
        Result<std::vector<RankBlock>> blocks = rank_blocks(row_key, ns);
        if (!blocks.is_ok()) return blocks.status();
        cached = rank_cache.insert(row_ns, std::move(*blocks), epoch);
      }
      view.take();
      usable = choose_block(cached->blocks, total, pick, view);
      settled = rank_cache.epoch() == epoch;
      if (!settled) view.release();
    }
    if (!settled) {
      view.take();
      Result<std::vector<RankBlock>> blocks = rank_blocks(row_key, ns, view.snapshot);
      if (!blocks.is_ok()) return blocks.status();
      usable = choose_block(*blocks, total, pick, view);
    }
    if (!usable) return false;
    std::string state_bytes;
    rocksdb::ReadOptions read_options;
    read_options.snapshot = view.snapshot;
    const rocksdb::Status got = db->Get(read_options, rows, row_key, &state_bytes);
    if (!got.ok() && !got.IsNotFound()) return from_rocksdb(got, "storage: read row state");
    if (got.ok()) {
      Result<RowState> state = decode_row_state(state_bytes);
      if (!state.is_ok()) return state.status();
      view.delete_through = state->delete_through;
    }
    return true;
  }

  // Sets view.start and view.before from the block `pick` chooses; false when there are no
  // blocks or their counts do not add up to `total`.
  static bool choose_block(const std::vector<RankBlock>& blocks, uint64_t total,
                           const BlockPicker& pick, RankView& view) {
    uint64_t sum = 0;
    for (const RankBlock& block : blocks) sum += block.count;
    if (blocks.empty() || sum != total) return false;
    const size_t at = pick(blocks);
    view.start = blocks[at].start;
    view.before = 0;
    for (size_t i = 0; i < at; ++i) view.before += blocks[i].count;
    return true;
  }

  // Puts `block` of the row's namespace `ns` in `batch` and records it for the cache.
  static void put_rank_block(rocksdb::ColumnFamilyHandle* family, const std::string& row_key,
                             char ns, const RankBlock& block, rocksdb::WriteBatch& batch,
                             RankEdits& edits) {
    batch.Put(family, rank_block_key(row_key, ns, block.end), encode_rank_block(block));
    edits.edits.push_back({row_key + ns, block.end, block});
  }

  // The block of namespace `ns` holding `sub_key` (the first whose end is above it); nullopt
  // when the row keeps no blocks. From the cache when it holds the row. REQUIRES: the row's
  // apply stripe is held.
  Result<std::optional<RankBlock>> rank_block_at(const std::string& row_key, char ns,
                                                 std::string_view sub_key) {
    if (std::shared_ptr<RankBlockCache::Entry> cached = rank_cache.find(row_key + ns)) {
      const RankBlock* block = rank_block_holding(cached->blocks, sub_key);
      return block == nullptr ? std::optional<RankBlock>() : std::optional<RankBlock>(*block);
    }
    std::string prefix = row_key;
    prefix.push_back(ns);
    const std::string upper = rank_blocks_end(row_key, ns);
    rocksdb::ReadOptions read_options;
    const rocksdb::Slice upper_slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options, rows));
    std::string target = prefix;
    target.append(sub_key);
    target.push_back('\0');  // the first end strictly above sub_key
    it->Seek(target);
    if (!it->Valid()) {
      if (!it->status().ok()) return from_rocksdb(it->status(), "storage: read rank blocks");
      return std::optional<RankBlock>();
    }
    Result<RankBlock> block = decode_rank_block(
        std::string_view(it->key().data() + prefix.size(), it->key().size() - prefix.size()),
        std::string_view(it->value().data(), it->value().size()));
    if (!block.is_ok()) return block.status();
    return std::optional<RankBlock>(std::move(*block));
  }

  // Walks the stored cells of a row's namespace `ns` from `from_sub_key` (a sub-key of `ns`,
  // or empty: the namespace's start) in order; `visit(sub_key, cell)` returns false to stop.
  Status walk_index(const std::string& row_key, char ns, std::string_view from_sub_key,
                    const rocksdb::Snapshot* snapshot,
                    const std::function<bool(std::string_view, const Cell&)>& visit) {
    std::string lower = row_key;
    if (from_sub_key.empty()) {
      lower.push_back(ns);
    } else {
      lower.append(from_sub_key);
    }
    std::string upper = row_key;
    upper.push_back(static_cast<char>(ns + 1));
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot;
    const rocksdb::Slice upper_slice(upper);
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read_options));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      Result<Cell> cell = decode_cell(std::string_view(it->value().data(), it->value().size()));
      if (!cell.is_ok()) return cell.status();
      const std::string_view raw(it->key().data(), it->key().size());
      if (!visit(raw.substr(row_key.size()), *cell)) return Status::ok();
    }
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: walk index");
    return Status::ok();
  }

  // The blocks of a row's index as stored now, counted from scratch: a block every
  // kRankBlockSplit / 2 entries that count. REQUIRES: the row's apply stripe is held.
  Result<std::vector<RankBlock>> count_rank_blocks(const std::string& row_key, char ns,
                                                   HlcTimestamp delete_through) {
    std::vector<RankBlock> blocks{RankBlock{}};
    Status walked = walk_index(row_key, ns, {}, nullptr, [&](std::string_view sub_key, const Cell& c) {
      if (!rank_entry_counts(c, delete_through)) return true;
      if (blocks.back().count >= kRankBlockSplit / 2) {
        blocks.back().end = std::string(sub_key);
        blocks.push_back(RankBlock{std::string(sub_key), {}, 0});
      }
      ++blocks.back().count;
      return true;
    });
    if (!walked.is_ok()) return walked;
    return blocks;
  }

  // Replaces the row's stored blocks `old` by `blocks` in `batch` (point deletes: a range
  // deletion per DEL of a sorted set would pile up in a column family read on every write).
  static void put_rank_blocks(rocksdb::ColumnFamilyHandle* family, const std::string& row_key,
                              char ns, const std::vector<RankBlock>& old,
                              const std::vector<RankBlock>& blocks, rocksdb::WriteBatch& batch,
                              RankEdits& edits) {
    std::set<std::string_view> ends;
    for (const RankBlock& block : blocks) ends.insert(block.end);
    for (const RankBlock& block : old) {
      if (!ends.contains(block.end)) {
        batch.Delete(family, rank_block_key(row_key, ns, block.end));
        edits.edits.push_back({row_key + ns, block.end, std::nullopt});
      }
    }
    std::set<std::tuple<std::string_view, std::string_view, uint64_t>> unchanged;
    for (const RankBlock& block : old) unchanged.emplace(block.end, block.start, block.count);
    for (const RankBlock& block : blocks) {
      if (!unchanged.contains({block.end, block.start, block.count})) {
        put_rank_block(family, row_key, ns, block, batch, edits);
      }
    }
  }

  // The "hints" column family (Engine::store_hint). hints_mu serializes the bound check with
  // the write, and drop_hints' count with its delete, so the counters match what is stored.
  struct HintTotals {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  rocksdb::ColumnFamilyHandle* hints = nullptr;
  mutable std::mutex hints_mu;
  std::map<uint64_t, HintTotals> hint_totals;  // by target; no entry once a target has none
  uint64_t last_hint_sequence = 0;             // guarded by hints_mu

  // Rebuilds hint_totals and last_hint_sequence from the stored hints (at open).
  Status load_hint_totals() {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), hints));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice key = it->key();
      if (key.size() != kHintKeyBytes) {
        return Status::corruption("storage: hint key is not 16 bytes");
      }
      const std::string_view view(key.data(), key.size());
      HintTotals& totals = hint_totals[get_u64(view.substr(0, 8))];
      totals.count += 1;
      totals.bytes += key.size() + it->value().size();
      last_hint_sequence = std::max(last_hint_sequence, get_u64(view.substr(8, 8)));
    }
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: load hints");
    return Status::ok();
  }

  // Whether the family holds any entry (deleted ranges may still cost a seek past tombstones).
  bool family_has_entries(rocksdb::ColumnFamilyHandle* family) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), family));
    it->SeekToFirst();
    return it->Valid();
  }

  // Refuses a directory written in another format; records the current one in a directory that
  // has none yet and holds no cells and no hints (a fresh directory, or one whose meta family
  // only has a clock reading or a routing table, which do not depend on the token function).
  Status check_format_version(const std::string& path) {
    std::string value;
    const rocksdb::Status read = db->Get(rocksdb::ReadOptions(), meta, kFormatVersionKey, &value);
    if (!read.ok() && !read.IsNotFound()) return from_rocksdb(read, "storage: read format version");
    if (read.IsNotFound()) {
      if (family_has_entries(db->DefaultColumnFamily()) || family_has_entries(hints)) {
        return Status::invalid_argument(fmt::format(
            "storage: {} holds data written by a Cairn older than format version {} (no format "
            "version recorded). Keys are now placed by Redis Cluster slot, so the data cannot be "
            "read in place: copy the keys over the Redis protocol from the older Cairn running "
            "on this directory, or move the directory aside and start with an empty "
            "--data-dir (docs/formats.md, \"Format version\")",
            path, kFormatVersion));
      }
      const std::string current = std::to_string(kFormatVersion);
      // Written past the WAL and flushed at once into an SST: durable when Flush returns, and
      // the WAL holds nothing of it, so no WAL file is pinned by the meta family's memtable or
      // kept in the archive with an entry older than every data change (migrations read the
      // WAL by sequence number, docs/formats.md "WAL retention"). A crash before the flush
      // leaves no version and no data: the next open writes it again.
      rocksdb::WriteOptions options;
      options.disableWAL = true;
      const rocksdb::Status written = db->Put(options, meta, kFormatVersionKey, current);
      if (!written.ok()) return from_rocksdb(written, "storage: write format version");
      const rocksdb::Status flushed = db->Flush(rocksdb::FlushOptions(), meta);
      if (!flushed.ok()) return from_rocksdb(flushed, "storage: flush format version");
      return Status::ok();
    }
    if (value != std::to_string(kFormatVersion)) {
      return Status::invalid_argument(fmt::format(
          "storage: {} is in format version {}, this Cairn reads format version {} only: open it "
          "with the Cairn that wrote it, or start with an empty --data-dir and copy the keys "
          "over the Redis protocol (docs/formats.md, \"Format version\")",
          path, value.substr(0, 32), kFormatVersion));
    }
    return Status::ok();
  }

  std::array<std::mutex, kApplyStripes> apply_stripes;
  RankBlockCache rank_cache{kRankCacheBlocks};
  std::array<std::mutex, kKeyStripes> key_stripes;

  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> wal_syncs{0};

  // Group commit state (sync_wal): at most one SyncWAL runs; others wait for it.
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  bool sync_running = false;
  // Every write with a sequence number <= this is in a fsynced WAL file. Starts at 0 so the first
  // sync after open also covers whatever recovery left unsynced.
  uint64_t durable_sequence = 0;

  // WAL holds (Engine::hold_wal): id → when it lapses. File deletions are disabled exactly while
  // the map is not empty (deletions_disabled tracks what RocksDB was told).
  mutable std::mutex holds_mu;
  std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> holds;
  bool deletions_disabled = false;

  // Drops lapsed holds and tells RocksDB whether WAL files may be deleted. REQUIRES: holds_mu.
  Status update_holds_locked() {
    const auto now = std::chrono::steady_clock::now();
    std::erase_if(holds, [now](const auto& hold) { return hold.second <= now; });
    if (!holds.empty() && !deletions_disabled) {
      const rocksdb::Status status = db->DisableFileDeletions();
      if (!status.ok()) return from_rocksdb(status, "storage: hold WAL");
      deletions_disabled = true;
    } else if (holds.empty() && deletions_disabled) {
      const rocksdb::Status status = db->EnableFileDeletions(/*force=*/false);
      if (!status.ok()) return from_rocksdb(status, "storage: release WAL");
      deletions_disabled = false;
    }
    return Status::ok();
  }

  // The kBatch background syncer.
  std::mutex batch_mu;
  std::condition_variable batch_cv;
  bool batch_stopping = false;
  std::thread batch_thread;

  // Makes every write that completed before the call durable. Concurrent callers share one
  // fsync: a write is covered by any SyncWAL that *starts* after it completed, so a caller whose
  // writes are already below `durable_sequence` returns at once, and a caller arriving while a
  // sync runs waits for it and then, if still uncovered, one waiter syncs for all the others.
  Status sync_wal() {
    const uint64_t target = db->GetLatestSequenceNumber();
    std::unique_lock<std::mutex> lock(sync_mu);
    while (durable_sequence < target) {
      if (sync_running) {
        sync_cv.wait(lock);
        continue;
      }
      sync_running = true;
      // Every write numbered up to `covered` has already been written to the WAL file (RocksDB
      // publishes a sequence number only after its WAL write), so this SyncWAL covers it.
      const uint64_t covered = db->GetLatestSequenceNumber();
      lock.unlock();
      const rocksdb::Status status = db->FlushWAL(/*sync=*/true);
      wal_syncs.fetch_add(1, std::memory_order_relaxed);
      lock.lock();
      sync_running = false;
      if (status.ok()) durable_sequence = std::max(durable_sequence, covered);
      sync_cv.notify_all();
      // Waiters of a failed sync try once themselves rather than inherit this caller's error.
      if (!status.ok()) return from_rocksdb(status, "storage: WAL sync");
    }
    return Status::ok();
  }

  void run_batch_syncer(std::chrono::milliseconds interval) {
    std::unique_lock<std::mutex> lock(batch_mu);
    while (!batch_stopping) {
      batch_cv.wait_for(lock, interval, [this] { return batch_stopping; });
      if (batch_stopping) break;
      lock.unlock();
      if (Status status = sync_wal(); !status.is_ok()) {
        spdlog::error("storage: background WAL sync failed: {}", status.to_string());
      }
      lock.lock();
    }
  }

  void stop_batch_syncer() {
    if (!batch_thread.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(batch_mu);
      batch_stopping = true;
    }
    batch_cv.notify_all();
    batch_thread.join();
  }
};

namespace {

// The process holding the RocksDB directory's LOCK (an fcntl lock), or 0 if none holds it.
pid_t lock_holder(const std::string& dir) {
  const int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool held = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  return held ? probe.l_pid : 0;
}

// A machine restarted right after kill -9 can find its directory still locked by the old
// process, whose threads are still being torn down: wait for it rather than fail to start.
void wait_for_lock(const std::string& dir, int wait_ms) {
  pid_t holder = lock_holder(dir);
  if (holder == 0) return;
  spdlog::warn("storage: {} is locked by process {}: waiting up to {} ms for it to exit", dir,
               holder, wait_ms);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (holder != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    holder = lock_holder(dir);
  }
}

}  // namespace

Engine::Engine(EngineOptions options, std::unique_ptr<Impl> impl)
    : options_(std::move(options)), impl_(std::move(impl)) {}

Result<std::unique_ptr<Engine>> Engine::open(const EngineOptions& options) {
  if (Status status = validate(options); !status.is_ok()) return status;
  EngineOptions resolved = options;
  if (!resolved.wall_clock_ms) resolved.wall_clock_ms = [] { return wall_clock_ms(); };

  auto impl = std::make_unique<Impl>();
  impl->filter =
      std::make_unique<CellCompactionFilter>(resolved.wall_clock_ms, resolved.tombstone_grace_ms,
                                             &impl->purge_bounds);
  rocksdb::Options db_options = make_rocksdb_options(resolved, impl->filter.get());
  db_options.create_missing_column_families = true;
  // The rows family shares the data's table options (Bloom filters: every write of a string
  // looks for a row state that is almost never there) but not its compaction filter.
  rocksdb::ColumnFamilyOptions rows_options(db_options);
  rows_options.compaction_filter = nullptr;
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(db_options)},
      {kMetaFamily, rocksdb::ColumnFamilyOptions()},
      {kHintsFamily, rocksdb::ColumnFamilyOptions()},
      {kRowsFamily, rows_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  wait_for_lock(resolved.path, resolved.lock_wait_ms);
  rocksdb::Status status = rocksdb::DB::Open(db_options, resolved.path, families, &handles, &db);
  if (!status.ok()) return from_rocksdb(status, "storage: open " + resolved.path);
  impl->db.reset(db);
  // RocksDB keeps the default family's handle itself; ours only needs the meta and hints ones.
  CAIRN_ASSERT(handles.size() == 4, "four column families were opened");
  delete handles[0];
  impl->meta = handles[1];
  impl->hints = handles[2];
  impl->rows = handles[3];
  Status loaded = impl->check_format_version(resolved.path);
  if (loaded.is_ok()) loaded = impl->load_hint_totals();
  if (!loaded.is_ok()) {
    impl->filter->detach_rows();
    impl->db->DestroyColumnFamilyHandle(impl->meta);
    impl->db->DestroyColumnFamilyHandle(impl->hints);
    impl->db->DestroyColumnFamilyHandle(impl->rows);
    return loaded;
  }
  impl->filter->attach_rows(impl->db.get(), impl->rows);

  const Durability durability = resolved.durability;
  const auto interval = std::chrono::milliseconds(resolved.batch_sync_interval_ms);
  std::unique_ptr<Engine> engine(new Engine(std::move(resolved), std::move(impl)));
  if (durability == Durability::kBatch) {
    Impl* raw = engine->impl_.get();
    raw->batch_thread = std::thread([raw, interval] { raw->run_batch_syncer(interval); });
  }
  return engine;
}

Engine::~Engine() {
  impl_->stop_batch_syncer();
  if (options_.durability == Durability::kNone) {
    if (rocksdb::Status status = impl_->db->FlushWAL(false); !status.ok()) {
      spdlog::error("storage: final WAL flush failed: {}", status.ToString());
    }
  } else {
    if (Status status = impl_->sync_wal(); !status.is_ok()) {
      spdlog::error("storage: final WAL sync failed: {}", status.to_string());
    }
  }
  // The compaction filter reads row states through the rows handle: detach it, and let running
  // compactions finish, before the handle goes.
  impl_->filter->detach_rows();
  rocksdb::CancelAllBackgroundWork(impl_->db.get(), /*wait=*/true);
  if (rocksdb::Status status = impl_->db->DestroyColumnFamilyHandle(impl_->rows); !status.ok()) {
    spdlog::error("storage: closing the rows column family failed: {}", status.ToString());
  }
  // Close() flushes the memtables (avoid_flush_during_shutdown is false), so the next open does
  // not have to replay the WAL.
  if (rocksdb::Status status = impl_->db->DestroyColumnFamilyHandle(impl_->meta); !status.ok()) {
    spdlog::error("storage: closing the meta column family failed: {}", status.ToString());
  }
  if (rocksdb::Status status = impl_->db->DestroyColumnFamilyHandle(impl_->hints); !status.ok()) {
    spdlog::error("storage: closing the hints column family failed: {}", status.ToString());
  }
  if (rocksdb::Status status = impl_->db->Close(); !status.ok()) {
    spdlog::error("storage: close failed: {}", status.ToString());
  }
  impl_->db.reset();
}

Result<std::optional<Cell>> Engine::read(topology::Token token, std::string_view key) {
  const std::string storage_key = encode_key(token, key);
  std::string stored;
  const rocksdb::Status status = impl_->db->Get(rocksdb::ReadOptions(), storage_key, &stored);
  if (status.IsNotFound()) return std::optional<Cell>();
  if (!status.ok()) return from_rocksdb(status, "storage: read");
  Result<Cell> cell = decode_cell(stored);
  if (!cell.is_ok()) return cell.status();
  return std::optional<Cell>(std::move(cell).value());
}

Result<bool> Engine::apply(topology::Token token, std::string_view key, const Cell& cell,
                           HlcTimestamp* newer_timestamp) {
  const std::string storage_key = encode_key(token, key);
  std::lock_guard<std::mutex> guard(impl_->apply_stripes[stripe_of(token, key) % kApplyStripes]);
  std::string stored;
  std::optional<Cell> current;
  rocksdb::Status status = impl_->db->Get(rocksdb::ReadOptions(), storage_key, &stored);
  if (status.ok()) {
    Result<Cell> decoded = decode_cell(stored);
    // A stored cell we cannot read is reported, not overwritten: overwriting could hide a newer
    // value and the corruption itself.
    if (!decoded.is_ok()) return decoded.status();
    if (!supersedes(cell, *decoded)) {
      if (newer_timestamp != nullptr && !(*decoded == cell)) *newer_timestamp = decoded->timestamp;
      return false;
    }
    current = std::move(decoded).value();
  } else if (!status.IsNotFound()) {
    return from_rocksdb(status, "storage: read before apply");
  }
  rocksdb::WriteBatch batch;
  RankEdits edits;
  batch.Put(storage_key, encode_cell(cell));
  if (Status row = update_row_for_header(storage_key, current, cell, batch, edits);
      !row.is_ok()) {
    return row;
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // durability is sync()'s job (group commit)
  status = impl_->db->Write(write_options, &batch);
  if (!status.ok()) return from_rocksdb(status, "storage: apply");
  impl_->rank_cache.apply(edits);
  impl_->writes.fetch_add(1, std::memory_order_relaxed);
  if (field_observer_) field_observer_(key, std::string_view(), cell);
  return true;
}

// REQUIRES: the row's apply stripe is held; `cell` supersedes `current`.
Status Engine::update_row_for_header(const std::string& row_key, const std::optional<Cell>& current,
                                     const Cell& cell, rocksdb::WriteBatch& batch,
                                     RankEdits& edits) {
  bool found = false;
  Result<RowState> state = impl_->get_row_state(row_key, &found);
  if (!state.is_ok()) return state.status();
  // Strings that never were rows keep no state: one Bloom-filtered miss per write is their cost.
  if (!found && !is_row_type(cell.type) && (!current || !is_row_type(current->type))) {
    return Status::ok();
  }
  const int64_t now = options_.wall_clock_ms();
  RowState next = *state;
  // What the new header hides, what the replaced header hid if it has expired by now (its
  // writer may not have seen it expire), and the expiry remembered from an earlier header that
  // the compaction filter may since have dropped.
  HlcTimestamp bound = hidden_through(cell, now);
  if (current && current->expired_at(now)) bound = std::max(bound, hidden_through(*current, now));
  if (state->header_expire_at_ms != 0 && state->header_expire_at_ms <= now) {
    bound = std::max(bound, expiry_bound(state->header_expire_at_ms));
  }
  next.header_expire_at_ms = (!cell.tombstone && is_row_type(cell.type)) ? cell.expire_at_ms : 0;
  if (bound > next.delete_through) {
    next.delete_through = bound;
    const bool all_hidden = next.newest_field <= bound;
    if (all_hidden) {
      next.count = 0;  // every counted field is now hidden: no scan needed (the DEL of a big row)
    } else {
      Result<uint64_t> count = impl_->count_fields(row_key, bound);
      if (!count.is_ok()) return count.status();
      next.count = *count;
    }
    // Rank blocks follow: emptied (index entries are written with their members, so they are
    // hidden alike), or counted again when fields newer than the bound are stored.
    for (const char ns : {kFieldNamespace, kScoreIndexNamespace}) {
      Result<std::vector<RankBlock>> blocks = impl_->rank_blocks(row_key, ns);
      if (!blocks.is_ok()) return blocks.status();
      if (blocks->empty()) continue;
      std::vector<RankBlock> fresh{RankBlock{}};
      if (!all_hidden) {
        Result<std::vector<RankBlock>> counted = impl_->count_rank_blocks(row_key, ns, bound);
        if (!counted.is_ok()) return counted.status();
        fresh = std::move(*counted);
      }
      Impl::put_rank_blocks(impl_->rows, row_key, ns, *blocks, fresh, batch, edits);
    }
  }
  if (found && next == *state) return Status::ok();
  batch.Put(impl_->rows, row_key, encode_row_state(next));
  return Status::ok();
}

class Engine::Snapshot {
 public:
  Snapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~Snapshot() { db_->ReleaseSnapshot(snapshot_); }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  // Read options that see storage as of this snapshot.
  rocksdb::ReadOptions options() const {
    rocksdb::ReadOptions read_options;
    read_options.snapshot = snapshot_;
    return read_options;
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

std::shared_ptr<const Engine::Snapshot> Engine::snapshot() {
  return std::make_shared<const Snapshot>(impl_->db.get());
}

Result<StoredRow> Engine::read_row(topology::Token token, std::string_view key,
                                   const Snapshot* at) {
  const rocksdb::ReadOptions read_options = at != nullptr ? at->options() : rocksdb::ReadOptions();
  const std::string row_key = encode_key(token, key);
  StoredRow row;
  std::string stored;
  rocksdb::Status status = impl_->db->Get(read_options, row_key, &stored);
  if (status.ok()) {
    Result<Cell> header = decode_cell(stored);
    if (!header.is_ok()) return header.status();
    row.header = std::move(header).value();
  } else if (!status.IsNotFound()) {
    return from_rocksdb(status, "storage: read");
  }
  status = impl_->db->Get(read_options, impl_->rows, row_key, &stored);
  if (status.ok()) {
    Result<RowState> state = decode_row_state(stored);
    if (!state.is_ok()) return state.status();
    row.state = *state;
  } else if (!status.IsNotFound()) {
    return from_rocksdb(status, "storage: read row state");
  }
  return row;
}

Result<std::optional<Cell>> Engine::read_field(topology::Token token, std::string_view key,
                                               std::string_view sub_key) {
  CAIRN_ASSERT(!sub_key.empty(), "a field has a sub-key");
  std::string stored;
  const rocksdb::Status status =
      impl_->db->Get(rocksdb::ReadOptions(), encode_key(token, key, sub_key), &stored);
  if (status.IsNotFound()) return std::optional<Cell>();
  if (!status.ok()) return from_rocksdb(status, "storage: read field");
  Result<Cell> cell = decode_cell(stored);
  if (!cell.is_ok()) return cell.status();
  return std::optional<Cell>(std::move(cell).value());
}

Result<bool> Engine::apply_field(topology::Token token, std::string_view key,
                                 std::string_view sub_key, const Cell& cell,
                                 HlcTimestamp* newer_timestamp) {
  CAIRN_ASSERT(!sub_key.empty(), "a field has a sub-key");
  // A score index entry is derived here from the member's cell; one sent by another machine (a
  // copy, a repair, an older coordinator) may stand for a score this machine's member cell no
  // longer has, so it is not taken (docs/formats.md "Sorted sets").
  if (is_score_index_cell(sub_key, cell)) return false;
  std::lock_guard<std::mutex> guard(impl_->apply_stripes[stripe_of(token, key) % kApplyStripes]);
  std::optional<Cell> replaced;
  Result<bool> stored =
      apply_field_locked(token, key, sub_key, cell, newer_timestamp, /*derived=*/false, &replaced);
  if (!stored.is_ok() || !*stored || cell.type != ValueType::kZSet) return stored;
  if (Status status = derive_score_index(token, key, sub_key, replaced, cell); !status.is_ok()) {
    return status;
  }
  if (field_observer_) field_observer_(key, sub_key, cell);
  return true;
}

Status Engine::derive_score_index(topology::Token token, std::string_view key,
                                  std::string_view sub_key, const std::optional<Cell>& replaced,
                                  const Cell& cell) {
  const std::optional<std::string> old_entry =
      replaced ? derived_index_sub_key(sub_key, *replaced) : std::nullopt;
  const std::optional<std::string> new_entry = derived_index_sub_key(sub_key, cell);
  // The entries carry the member cell's timestamp, so the row's deletion bound hides them with
  // their member.
  Cell entry;
  entry.type = ValueType::kZSet;
  entry.timestamp = cell.timestamp;
  entry.writer = cell.writer;
  if (old_entry && old_entry != new_entry) {
    entry.tombstone = true;
    Result<bool> removed = apply_field_locked(token, key, *old_entry, entry, nullptr,
                                              /*derived=*/true, nullptr);
    if (!removed.is_ok()) return removed.status();
  }
  if (new_entry) {
    entry.tombstone = false;
    Result<bool> added = apply_field_locked(token, key, *new_entry, entry, nullptr,
                                            /*derived=*/true, nullptr);
    if (!added.is_ok()) return added.status();
  }
  return Status::ok();
}

Result<bool> Engine::apply_field_locked(topology::Token token, std::string_view key,
                                        std::string_view sub_key, const Cell& cell,
                                        HlcTimestamp* newer_timestamp, bool derived,
                                        std::optional<Cell>* replaced) {
  const std::string row_key = encode_key(token, key);
  const std::string storage_key = encode_key(token, key, sub_key);
  Result<RowState> state = impl_->get_row_state(row_key);
  if (!state.is_ok()) return state.status();
  const HlcTimestamp hidden = state->hidden_through(options_.wall_clock_ms());
  if (cell.timestamp <= hidden) {
    // Hidden from the start: an earlier life of the key. Storing it would only feed compaction.
    if (newer_timestamp != nullptr) *newer_timestamp = hidden;
    return false;
  }
  std::string stored;
  rocksdb::Status status = impl_->db->Get(rocksdb::ReadOptions(), storage_key, &stored);
  // Whether the stored cell counts (not a tombstone, not hidden): for the row's count if it is
  // a field, for the rank blocks of its namespace.
  bool stored_counts = false;
  if (status.ok()) {
    Result<Cell> current = decode_cell(stored);
    if (!current.is_ok()) return current.status();
    // A derived index entry follows its member cell, which won already: it replaces whatever
    // entry is stored.
    if (!derived && !supersedes(cell, *current)) {
      if (newer_timestamp != nullptr && !(*current == cell)) *newer_timestamp = current->timestamp;
      return false;
    }
    stored_counts = rank_entry_counts(*current, state->delete_through);
    if (replaced != nullptr) *replaced = std::move(current).value();
  } else if (!status.IsNotFound()) {
    return from_rocksdb(status, "storage: read before apply");
  }
  const bool counted_before = counts_toward_row(sub_key) && stored_counts;
  RowState next = *state;
  rocksdb::WriteBatch batch;
  RankEdits edits;
  if (has_rank_blocks(sub_key)) {
    // The row's rank blocks of the cell's namespace (a big row's fields, a sorted set's index).
    const bool counts_now = rank_entry_counts(cell, state->delete_through);
    const int delta = counts_now == stored_counts ? 0 : (counts_now ? 1 : -1);
    if (Status blocks = update_rank_blocks(row_key, sub_key, delta, state->delete_through,
                                           state->count, batch, edits);
        !blocks.is_ok()) {
      return blocks;
    }
  }
  if (!counts_toward_row(sub_key)) {
    // A cell of another namespace: stored by LWW, never counted.
  } else if (!cell.tombstone) {
    if (!counted_before) ++next.count;
    next.newest_field = std::max(next.newest_field, cell.timestamp);
  } else if (counted_before) {
    CAIRN_ASSERT(next.count > 0, "a counted field was counted");
    --next.count;
  }
  batch.Put(storage_key, encode_cell(cell));
  if (next != *state) batch.Put(impl_->rows, row_key, encode_row_state(next));
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // durability is sync()'s job (group commit)
  status = impl_->db->Write(write_options, &batch);
  if (!status.ok()) return from_rocksdb(status, "storage: apply field");
  impl_->rank_cache.apply(edits);
  impl_->writes.fetch_add(1, std::memory_order_relaxed);
  // A member of a sorted set is announced once its index entry follows (apply_field), so a
  // reader woken by it (BZPOPMIN) finds the entry.
  if (field_observer_ && !derived && cell.type != ValueType::kZSet) {
    field_observer_(key, sub_key, cell);
  }
  return true;
}

Result<size_t> Engine::apply_fields(topology::Token token, std::string_view key,
                                    std::span<const FieldChange> changes) {
  const auto one_by_one = [&]() -> Result<size_t> {
    size_t stored = 0;
    for (const FieldChange& change : changes) {
      Result<bool> applied = apply_field(token, key, change.sub_key, change.cell);
      if (!applied.is_ok()) return applied.status();
      if (*applied) ++stored;
    }
    return stored;
  };
  // A sorted set's member cell also moves its index entry (derive_score_index): one by one.
  const bool zset = std::any_of(changes.begin(), changes.end(), [](const FieldChange& change) {
    return change.cell.type == ValueType::kZSet;
  });
  if (changes.size() <= 1 || zset) return one_by_one();
  std::vector<std::string_view> sub_keys;
  sub_keys.reserve(changes.size());
  for (const FieldChange& change : changes) {
    CAIRN_ASSERT(!change.sub_key.empty(), "a field has a sub-key");
    sub_keys.push_back(change.sub_key);
  }
  std::sort(sub_keys.begin(), sub_keys.end());
  if (std::adjacent_find(sub_keys.begin(), sub_keys.end()) != sub_keys.end()) return one_by_one();

  const std::string row_key = encode_key(token, key);
  std::unique_lock<std::mutex> guard(impl_->apply_stripes[stripe_of(token, key) % kApplyStripes]);
  Result<RowState> state = impl_->get_row_state(row_key);
  if (!state.is_ok()) return state.status();
  std::vector<std::string> storage_keys;
  storage_keys.reserve(changes.size());
  for (const FieldChange& change : changes) {
    storage_keys.push_back(encode_key(token, key, change.sub_key));
  }
  std::vector<rocksdb::Slice> keys(storage_keys.begin(), storage_keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->db->DefaultColumnFamily(), keys.size(),
                      keys.data(), values.data(), statuses.data());

  // What each change does, decided as apply_field would: whether it is stored, and how it
  // changes the count of its namespace's cells that count (rank_entry_counts).
  struct Decision {
    bool store = false;
    bool stored_counts = false;
    int delta = 0;
  };
  const HlcTimestamp hidden = state->hidden_through(options_.wall_clock_ms());
  std::vector<Decision> decisions(changes.size());
  // The changes of a block count, per namespace with blocks (a row's fields, a sorted set's
  // index): each namespace's blocks are apart from the other's.
  std::array<size_t, 2> rank_changes{0, 0};
  const auto rank_slot = [](std::string_view sub_key) {
    return sub_key[0] == kFieldNamespace ? 0 : 1;
  };
  for (size_t i = 0; i < changes.size(); ++i) {
    const FieldChange& change = changes[i];
    Decision& decision = decisions[i];
    if (change.cell.timestamp <= hidden) continue;  // an earlier life of the key (apply_field)
    if (statuses[i].ok()) {
      Result<Cell> current = decode_cell(std::string_view(values[i].data(), values[i].size()));
      if (!current.is_ok()) return current.status();
      if (!supersedes(change.cell, *current)) continue;
      decision.stored_counts = rank_entry_counts(*current, state->delete_through);
    } else if (!statuses[i].IsNotFound()) {
      return from_rocksdb(statuses[i], "storage: read before apply");
    }
    decision.store = true;
    const bool counts_now = rank_entry_counts(change.cell, state->delete_through);
    if (has_rank_blocks(change.sub_key) && counts_now != decision.stored_counts) {
      decision.delta = counts_now ? 1 : -1;
      ++rank_changes[rank_slot(change.sub_key)];
    }
  }
  if (rank_changes[0] > 1 || rank_changes[1] > 1) {
    // Several block counts of one namespace change: fine only while the row keeps no blocks and
    // this batch does not make it outgrow one (update_rank_blocks reads the blocks as stored).
    bool blocks = state->count + changes.size() >= kRankBlocksFrom;
    for (const char ns : {kFieldNamespace, kScoreIndexNamespace}) {
      if (blocks) break;
      std::string last;
      const rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->rows,
                                                 rank_block_key(row_key, ns, ""), &last);
      if (got.ok()) blocks = true;
      if (!got.ok() && !got.IsNotFound()) return from_rocksdb(got, "storage: read rank block");
    }
    if (blocks) {
      guard.unlock();
      return one_by_one();
    }
  }

  RowState next = *state;
  rocksdb::WriteBatch batch;
  RankEdits edits;
  std::vector<const FieldChange*> stored;
  stored.reserve(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const FieldChange& change = changes[i];
    const Decision& decision = decisions[i];
    if (!decision.store) continue;
    if (decision.delta != 0 && rank_changes[rank_slot(change.sub_key)] == 1) {
      // The only change of its namespace's block counts in this batch: the blocks as stored
      // plus this one.
      if (Status blocks = update_rank_blocks(row_key, change.sub_key, decision.delta,
                                             state->delete_through, state->count, batch, edits);
          !blocks.is_ok()) {
        return blocks;
      }
    }
    if (counts_toward_row(change.sub_key)) {
      if (!change.cell.tombstone) {
        if (!decision.stored_counts) ++next.count;
        next.newest_field = std::max(next.newest_field, change.cell.timestamp);
      } else if (decision.stored_counts) {
        CAIRN_ASSERT(next.count > 0, "a counted field was counted");
        --next.count;
      }
    }
    batch.Put(storage_keys[i], encode_cell(change.cell));
    stored.push_back(&change);
  }
  if (stored.empty()) return size_t{0};
  if (next != *state) batch.Put(impl_->rows, row_key, encode_row_state(next));
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // durability is sync()'s job (group commit)
  const rocksdb::Status status = impl_->db->Write(write_options, &batch);
  if (!status.ok()) return from_rocksdb(status, "storage: apply fields");
  impl_->rank_cache.apply(edits);
  impl_->writes.fetch_add(stored.size(), std::memory_order_relaxed);
  if (field_observer_) {
    for (const FieldChange* change : stored) field_observer_(key, change->sub_key, change->cell);
  }
  return stored.size();
}

namespace {

// The index of the block holding `sub_key`: the last one whose start is <= sub_key.
size_t block_holding(const std::vector<RankBlock>& blocks, std::string_view sub_key) {
  size_t index = 0;
  for (size_t i = 1; i < blocks.size() && blocks[i].start <= sub_key; ++i) index = i;
  return index;
}

}  // namespace

Status Engine::update_rank_blocks(const std::string& row_key, std::string_view sub_key,
                                  int delta, HlcTimestamp delete_through, uint64_t row_count,
                                  rocksdb::WriteBatch& batch, RankEdits& edits) {
  if (delta == 0) return Status::ok();
  const char ns = sub_key[0];
  if (row_count < kRankBlocksFrom) {
    // Most rows are small and keep no blocks: one point read of the last block tells (it
    // exists whenever any does), cheaper than a seek among the blocks.
    std::string last;
    const rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->rows,
                                               rank_block_key(row_key, ns, ""), &last);
    if (got.IsNotFound()) return Status::ok();
    if (!got.ok()) return from_rocksdb(got, "storage: read rank block");
  }
  Result<std::optional<RankBlock>> holding = impl_->rank_block_at(row_key, ns, sub_key);
  if (!holding.is_ok()) return holding.status();
  const bool disagree = holding->has_value() && delta < 0 && (*holding)->count == 0;
  if (!holding->has_value() || disagree) {
    // A row that just outgrew a block: count what is stored, once. (Or blocks that disagree
    // with the cells, which only a bug or damage can cause.) Then this change on top.
    if (disagree) spdlog::warn("storage: a row's rank blocks disagreed with its cells: recounted");
    Result<std::vector<RankBlock>> stored = impl_->rank_blocks(row_key, ns);
    if (!stored.is_ok()) return stored.status();
    Result<std::vector<RankBlock>> counted = impl_->count_rank_blocks(row_key, ns, delete_through);
    if (!counted.is_ok()) return counted.status();
    RankBlock& target = (*counted)[block_holding(*counted, sub_key)];
    if (delta > 0) {
      ++target.count;
    } else if (target.count > 0) {
      --target.count;
    }
    Impl::put_rank_blocks(impl_->rows, row_key, ns, *stored, *counted, batch, edits);
    return Status::ok();
  }
  RankBlock block = std::move(**holding);
  if (delta > 0 && block.count >= kRankBlockSplit) {
    // Split at the block's middle entry (the stored cells, which the blocks count exactly).
    const uint64_t half = block.count / 2;
    uint64_t seen = 0;
    std::string middle;
    Status walked = impl_->walk_index(
        row_key, ns, block.start, nullptr, [&](std::string_view entry, const Cell& cell) {
          if (!block.end.empty() && entry >= block.end) return false;
          if (!rank_entry_counts(cell, delete_through)) return true;
          if (seen++ == half) {
            middle = std::string(entry);
            return false;
          }
          return true;
        });
    if (!walked.is_ok()) return walked;
    if (!middle.empty()) {
      const bool upper = sub_key >= middle;
      std::string lower_start = block.start;
      if (!upper && !lower_start.empty() && sub_key < lower_start) lower_start = sub_key;
      const RankBlock lower_half{std::move(lower_start), middle, half + (upper ? 0 : 1)};
      const RankBlock upper_half{middle, block.end, block.count - half + (upper ? 1 : 0)};
      Impl::put_rank_block(impl_->rows, row_key, ns, lower_half, batch, edits);
      Impl::put_rank_block(impl_->rows, row_key, ns, upper_half, batch, edits);
      return Status::ok();
    }
  }
  // A block's start stays at or before its first counting cell, and moves onto the next one
  // when that cell stops counting: a sorted set used as a queue (ZPOPMIN) then never walks past
  // the cells its earlier pops deleted, which stay in storage until compaction. (No counting
  // cell lies between a block's start and the end of the block before it.)
  if (delta > 0 && !block.start.empty() && sub_key < block.start) block.start = sub_key;
  if (delta < 0 && (block.start.empty() || sub_key == block.start)) {
    std::string next;
    Status walked = impl_->walk_index(
        row_key, ns, block.start, nullptr, [&](std::string_view entry, const Cell& cell) {
          if (!block.end.empty() && entry >= block.end) return false;
          if (entry == sub_key || !rank_entry_counts(cell, delete_through)) return true;
          next = std::string(entry);
          return false;
        });
    if (!walked.is_ok()) return walked;
    if (!next.empty()) block.start = std::move(next);
  }
  // (An emptied block stays, counting 0, until the row is counted again: removing it would
  // mean rewriting its neighbour's start.)
  block.count = delta > 0 ? block.count + 1 : block.count - 1;
  Impl::put_rank_block(impl_->rows, row_key, ns, block, batch, edits);
  return Status::ok();
}

Result<bool> Engine::scan_from_rank(topology::Token token, std::string_view key, char ns,
                                    uint64_t rank, uint64_t total, const FieldVisitor& visitor) {
  if (rank >= total) return false;
  const std::string row_key = encode_key(token, key);
  RankView view(impl_->db.get());
  const BlockPicker holding_rank = [rank](const std::vector<RankBlock>& blocks) {
    uint64_t before = 0;
    size_t at = 0;
    while (at + 1 < blocks.size() && before + blocks[at].count <= rank) {
      before += blocks[at].count;
      ++at;
    }
    return at;
  };
  Result<bool> usable =
      impl_->read_rank_view(impl_->apply_stripes[stripe_of(token, key) % kApplyStripes], row_key,
                            ns, total, holding_rank, view);
  if (!usable.is_ok()) return usable.status();
  if (!*usable) return false;
  // Step over the cells of the block before the rank (tombstones do not count), then visit.
  uint64_t skip = rank - view.before;
  Status walked = impl_->walk_index(
      row_key, ns, view.start, view.snapshot,
      [&](std::string_view sub_key, const Cell& cell) {
        if (skip > 0) {
          if (rank_entry_counts(cell, view.delete_through)) --skip;
          return true;
        }
        // Tombstones between here and the cell of the rank are the visitor's to skip.
        return visitor(sub_key, cell);
      });
  if (!walked.is_ok()) return walked;
  return true;
}

Result<std::optional<uint64_t>> Engine::index_rank(topology::Token token, std::string_view key,
                                                   std::string_view sub_key, uint64_t total) {
  if (!has_rank_blocks(sub_key)) return std::optional<uint64_t>();
  const std::string row_key = encode_key(token, key);
  const char ns = sub_key[0];
  RankView view(impl_->db.get());
  const BlockPicker holding_sub_key = [sub_key](const std::vector<RankBlock>& blocks) {
    return block_holding(blocks, sub_key);
  };
  Result<bool> usable =
      impl_->read_rank_view(impl_->apply_stripes[stripe_of(token, key) % kApplyStripes], row_key,
                            ns, total, holding_sub_key, view);
  if (!usable.is_ok()) return usable.status();
  if (!*usable) return std::optional<uint64_t>();
  uint64_t rank = view.before;
  Status walked = impl_->walk_index(
      row_key, ns, view.start, view.snapshot,
      [&](std::string_view entry, const Cell& cell) {
        if (entry >= sub_key) return false;
        if (rank_entry_counts(cell, view.delete_through)) ++rank;
        return true;
      });
  if (!walked.is_ok()) return walked;
  return std::optional<uint64_t>(rank);
}

Status Engine::scan_row(topology::Token token, std::string_view key, std::string_view from_sub_key,
                        const FieldVisitor& visitor, const Snapshot* at) {
  const std::string row_key = encode_key(token, key);
  std::string lower = row_key;
  if (from_sub_key.empty()) {
    lower.push_back('\0');
  } else {
    lower.append(from_sub_key);
  }
  std::string upper = row_key;
  upper.push_back('\xff');
  rocksdb::ReadOptions read_options = at != nullptr ? at->options() : rocksdb::ReadOptions();
  const rocksdb::Slice upper_slice(upper);
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const std::string_view raw_key(it->key().data(), it->key().size());
    Result<Cell> cell = decode_cell(std::string_view(it->value().data(), it->value().size()));
    if (!cell.is_ok()) return cell.status();
    if (!visitor(raw_key.substr(row_key.size()), *cell)) return Status::ok();
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "storage: scan row");
  return Status::ok();
}

Status Engine::scan_row_reverse(topology::Token token, std::string_view key,
                                std::string_view below_sub_key, const FieldVisitor& visitor) {
  const std::string row_key = encode_key(token, key);
  // Every field's sub-key is non-empty and below 0xff (docs/formats.md "Rows").
  std::string lower = row_key;
  lower.push_back('\0');
  std::string upper = row_key;
  if (below_sub_key.empty()) {
    upper.push_back('\xff');
  } else {
    upper.append(below_sub_key);
  }
  rocksdb::ReadOptions read_options;
  const rocksdb::Slice lower_slice(lower);
  const rocksdb::Slice upper_slice(upper);
  read_options.iterate_lower_bound = &lower_slice;
  read_options.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    const std::string_view raw_key(it->key().data(), it->key().size());
    Result<Cell> cell = decode_cell(std::string_view(it->value().data(), it->value().size()));
    if (!cell.is_ok()) return cell.status();
    if (!visitor(raw_key.substr(row_key.size()), *cell)) return Status::ok();
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "storage: scan row backwards");
  return Status::ok();
}

Status Engine::scan(topology::Token start_token, topology::Token end_token,
                    const CellVisitor& visitor, bool keys_only, std::string_view from) {
  if (end_token != 0 && end_token < start_token) {
    return Status::invalid_argument("storage: scan range wraps around the ring; split it");
  }
  if (end_token != 0 && end_token == start_token) return Status::ok();
  std::string start = token_prefix(start_token);
  if (!from.empty()) {
    if (!from.starts_with(start)) {
      return Status::invalid_argument("storage: scan resumes outside its start token");
    }
    start = std::string(from);
  }
  const std::string end = end_token == 0 ? std::string() : token_prefix(end_token);
  rocksdb::Slice upper_bound = slice(end);
  rocksdb::ReadOptions read_options;
  if (end_token != 0) read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options));
  std::string past_fields;
  it->Seek(slice(start));
  while (it->Valid()) {
    const rocksdb::Slice raw_key = it->key();
    Result<DecodedKey> decoded = decode_key(std::string_view(raw_key.data(), raw_key.size()));
    if (!decoded.is_ok()) return decoded.status();
    if (keys_only && !decoded->sub_key.empty()) {
      // A field whose header is gone (or was skipped): step over the rest of its row.
      past_fields = encode_key(decoded->token, decoded->key);
      past_fields.push_back('\xff');
      it->Seek(slice(past_fields));
      continue;
    }
    const rocksdb::Slice raw_value = it->value();
    Result<Cell> cell = decode_cell(std::string_view(raw_value.data(), raw_value.size()));
    if (!cell.is_ok()) return cell.status();
    if (!visitor(decoded->token, decoded->key, decoded->sub_key, *cell)) return Status::ok();
    if (keys_only && is_row_type(cell->type)) {
      past_fields.assign(raw_key.data(), raw_key.size());
      past_fields.push_back('\xff');
      it->Seek(slice(past_fields));
      continue;
    }
    it->Next();
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "storage: scan");
  return Status::ok();
}

Status Engine::clear() {
  std::string last_key;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
    it->SeekToLast();
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: clear");
    if (it->Valid()) last_key = it->key().ToString();
  }
  rocksdb::WriteBatch batch;
  if (!last_key.empty()) {
    // The smallest key after the last one, so the range covers every stored key without having
    // to invent a maximal key.
    last_key.push_back('\0');
    batch.DeleteRange(impl_->db->DefaultColumnFamily(), rocksdb::Slice(), last_key);
  }
  // Row states sort below kRingEndKey like the rows themselves.
  batch.DeleteRange(impl_->rows, rocksdb::Slice(), slice(kRingEndKey));
  rocksdb::WriteOptions write_options;
  write_options.sync = false;
  impl_->rank_cache.begin_range_deletion();
  const rocksdb::Status status = impl_->db->Write(write_options, &batch);
  impl_->rank_cache.end_range_deletion();
  if (!status.ok()) return from_rocksdb(status, "storage: clear");
  Status synced = sync();
  if (clear_observer_) clear_observer_();
  return synced;
}

Status Engine::record_clock() {
  if (!options_.clock_to_record) return Status::ok();
  const uint64_t reading = options_.clock_to_record();
  uint64_t recorded = impl_->clock_recorded.load(std::memory_order_relaxed);
  if (reading <= recorded) return Status::ok();
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(reading >> (56 - 8 * i));
  rocksdb::WriteOptions write_options;
  const rocksdb::Status status =
      impl_->db->Put(write_options, impl_->meta, kClockKey, rocksdb::Slice(bytes, sizeof bytes));
  if (!status.ok()) return from_rocksdb(status, "storage: record clock");
  while (reading > recorded && !impl_->clock_recorded.compare_exchange_weak(recorded, reading)) {
  }
  return Status::ok();
}

Status Engine::put_meta(std::string_view name, std::string_view value) {
  CAIRN_ASSERT(name != kClockKey && name != kFormatVersionKey, "the engine's own meta keys");
  const rocksdb::Status status =
      impl_->db->Put(rocksdb::WriteOptions(), impl_->meta, slice(name), slice(value));
  if (!status.ok()) return from_rocksdb(status, "storage: put meta");
  if (options_.durability == Durability::kNone) {
    const rocksdb::Status flushed = impl_->db->FlushWAL(false);
    if (!flushed.ok()) return from_rocksdb(flushed, "storage: put meta");
    return Status::ok();
  }
  return impl_->sync_wal();
}

Result<std::optional<std::string>> Engine::get_meta(std::string_view name) {
  std::string value;
  const rocksdb::Status status =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->meta, slice(name), &value);
  if (status.IsNotFound()) return std::optional<std::string>();
  if (!status.ok()) return from_rocksdb(status, "storage: get meta");
  return std::optional<std::string>(std::move(value));
}

Result<uint64_t> Engine::recorded_clock() {
  std::string value;
  const rocksdb::Status status = impl_->db->Get(rocksdb::ReadOptions(), impl_->meta, kClockKey,
                                                &value);
  if (status.IsNotFound()) return uint64_t{0};
  if (!status.ok()) return from_rocksdb(status, "storage: read recorded clock");
  if (value.size() != 8) return Status::corruption("storage: recorded clock is not 8 bytes");
  uint64_t reading = 0;
  for (unsigned char byte : value) reading = (reading << 8) | byte;
  return reading;
}

Status Engine::sync() {
  if (Status status = record_clock(); !status.is_ok()) return status;
  if (options_.durability == Durability::kAlways) return impl_->sync_wal();
  // batch and none: hand the buffered WAL records to the kernel, so they survive kill -9 (not
  // power loss; the batch thread fsyncs those every few milliseconds).
  const rocksdb::Status status = impl_->db->FlushWAL(/*sync=*/false);
  if (!status.ok()) return from_rocksdb(status, "storage: WAL flush");
  return Status::ok();
}

uint64_t Engine::estimated_keys() const {
  uint64_t keys = 0;
  impl_->db->GetIntProperty(rocksdb::DB::Properties::kEstimateNumKeys, &keys);
  return keys;
}

uint64_t Engine::approximate_range_bytes(topology::Token start, topology::Token end) const {
  const std::string begin_key = token_prefix(start);
  const std::string end_key = end == 0 ? std::string(kRingEndKey) : token_prefix(end);
  rocksdb::Range range(slice(begin_key), slice(end_key));
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t bytes = 0;
  const rocksdb::Status status =
      impl_->db->GetApproximateSizes(options, impl_->db->DefaultColumnFamily(), &range, 1, &bytes);
  return status.ok() ? bytes : 0;
}

EngineStats Engine::stats() const {
  EngineStats stats;
  uint64_t live = 0;
  uint64_t memtables = 0;
  impl_->db->GetIntProperty(rocksdb::DB::Properties::kEstimateLiveDataSize, &live);
  impl_->db->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
  stats.approximate_bytes = live + memtables;
  stats.wal_syncs = impl_->wal_syncs.load(std::memory_order_relaxed);
  stats.writes = impl_->writes.load(std::memory_order_relaxed);
  stats.latest_sequence = impl_->db->GetLatestSequenceNumber();
  return stats;
}

std::unique_lock<std::mutex> Engine::lock_key(topology::Token token, std::string_view key) {
  return std::unique_lock<std::mutex>(impl_->key_stripes[stripe_of(token, key) % kKeyStripes]);
}

Status Engine::store_hint(uint64_t target, std::string_view key, const Cell& cell,
                          size_t per_target_max_count, size_t per_target_max_bytes,
                          std::string_view sub_key) {
  const std::string value = encode_hint_value(key, sub_key, cell);
  const uint64_t bytes = kHintKeyBytes + value.size();
  std::lock_guard<std::mutex> guard(impl_->hints_mu);
  Impl::HintTotals& totals = impl_->hint_totals[target];
  if (totals.count + 1 > per_target_max_count || totals.bytes + bytes > per_target_max_bytes) {
    const uint64_t count = totals.count;
    if (count == 0) impl_->hint_totals.erase(target);
    return Status::busy("storage: hints for machine " + std::to_string(target) + " are full (" +
                        std::to_string(count) + " stored)");
  }
  CAIRN_ASSERT(impl_->last_hint_sequence < std::numeric_limits<uint64_t>::max(),
               "hint sequence exhausted");
  const uint64_t sequence = impl_->last_hint_sequence + 1;
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // durable with the next sync(), like a write (group commit)
  const rocksdb::Status status =
      impl_->db->Put(write_options, impl_->hints, hint_key(target, sequence), value);
  if (!status.ok()) {
    if (totals.count == 0) impl_->hint_totals.erase(target);
    return from_rocksdb(status, "storage: store hint");
  }
  impl_->last_hint_sequence = sequence;
  totals.count += 1;
  totals.bytes += bytes;
  return Status::ok();
}

Result<std::vector<Hint>> Engine::hints_for(uint64_t target, size_t max_count) {
  std::vector<Hint> hints;
  std::string prefix;
  put_u64(prefix, target);
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->hints));
  for (it->Seek(hint_key(target, 0)); it->Valid() && hints.size() < max_count; it->Next()) {
    const rocksdb::Slice key = it->key();
    if (!key.starts_with(slice(prefix))) break;
    Result<Hint> hint = decode_hint(std::string_view(key.data(), key.size()),
                                    std::string_view(it->value().data(), it->value().size()));
    if (!hint.is_ok()) return hint.status();
    hints.push_back(std::move(hint).value());
  }
  if (!it->status().ok()) return from_rocksdb(it->status(), "storage: read hints");
  return hints;
}

Status Engine::drop_hints(uint64_t target, uint64_t up_to_sequence) {
  std::string prefix;
  put_u64(prefix, target);
  std::lock_guard<std::mutex> guard(impl_->hints_mu);
  // Point deletes of the hints actually stored (bounded by the per-target limits), rather than
  // a range delete: replay drops hints often, and piles of range tombstones slow every read.
  rocksdb::WriteBatch batch;
  uint64_t count = 0;
  uint64_t bytes = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->hints));
    for (it->Seek(hint_key(target, 0)); it->Valid(); it->Next()) {
      const rocksdb::Slice key = it->key();
      if (!key.starts_with(slice(prefix)) || key.size() != kHintKeyBytes) break;
      if (get_u64(std::string_view(key.data() + 8, 8)) > up_to_sequence) break;
      batch.Delete(impl_->hints, key);
      count += 1;
      bytes += key.size() + it->value().size();
    }
    if (!it->status().ok()) return from_rocksdb(it->status(), "storage: drop hints");
  }
  if (count == 0) return Status::ok();
  rocksdb::WriteOptions write_options;
  write_options.sync = false;
  const rocksdb::Status status = impl_->db->Write(write_options, &batch);
  if (!status.ok()) return from_rocksdb(status, "storage: drop hints");
  auto totals = impl_->hint_totals.find(target);
  CAIRN_ASSERT(totals != impl_->hint_totals.end() && totals->second.count >= count,
               "hint counters match the stored hints");
  totals->second.count -= count;
  totals->second.bytes -= std::min(bytes, totals->second.bytes);
  if (totals->second.count == 0) impl_->hint_totals.erase(totals);
  return Status::ok();
}

std::vector<std::pair<uint64_t, uint64_t>> Engine::hint_counts() const {
  std::lock_guard<std::mutex> guard(impl_->hints_mu);
  std::vector<std::pair<uint64_t, uint64_t>> counts;
  counts.reserve(impl_->hint_totals.size());
  for (const auto& [target, totals] : impl_->hint_totals) counts.emplace_back(target, totals.count);
  return counts;
}

bool Engine::may_have_dropped(const Cell& cell) const {
  return CellCompactionFilter::judge(cell, options_.wall_clock_ms(), options_.tombstone_grace_ms) ==
         CellCompactionFilter::Verdict::kRemove;
}

bool Engine::may_have_purged(topology::Token token, const Cell& cell) const {
  return may_have_dropped(cell) ||
         cell.deleted_before(impl_->purge_bounds.bound(token), options_.wall_clock_ms());
}

PurgeBounds& Engine::purge_bounds() { return impl_->purge_bounds; }

uint64_t Engine::latest_sequence() const { return impl_->db->GetLatestSequenceNumber(); }

namespace {

// The first sequence number of the oldest WAL file still on disk (0 if none could be found).
uint64_t oldest_wal_sequence(rocksdb::DB& db) {
  uint64_t oldest = 0;
  rocksdb::VectorLogPtr files;
  if (db.GetSortedWalFiles(files).ok()) {
    for (const std::unique_ptr<rocksdb::LogFile>& file : files) {
      if (file->StartSequence() == 0) continue;  // an empty file
      if (oldest == 0 || file->StartSequence() < oldest) oldest = file->StartSequence();
    }
  }
  return oldest;
}

// The error that tells a migration reader to copy the range again: the WAL no longer holds
// `from`. Names the oldest LSN still readable (0 if none could be found).
Status wal_gone(rocksdb::DB& db) {
  return Status::not_found("WALGONE " + std::to_string(oldest_wal_sequence(db)));
}

// OK while the records from `from` on are still in the WAL files, WALGONE otherwise. Sequence
// numbers missing from the WAL after that are unlogged writes (Engine::apply_batch with logged =
// false), not losses: WAL files are deleted oldest first, so the files from the oldest one on are
// contiguous.
Status wal_reaches_back_to(rocksdb::DB& db, uint64_t from) {
  const uint64_t oldest = oldest_wal_sequence(db);
  if (oldest != 0 && oldest <= from) return Status::ok();
  return Status::not_found("WALGONE " + std::to_string(oldest));
}

// Called when the first batch a WAL read finds starts at `found`, after result.next_sequence.
// The sequence numbers in between are unlogged writes if the WAL files still reach back to
// next_sequence (they are deleted oldest first, so the files from the oldest on are contiguous):
// the read moves on to `found`, or past `latest` if `found` is beyond it. Otherwise they are lost
// with a deleted WAL file: WALGONE.
Status step_over_gap(rocksdb::DB& db, uint64_t found, WalChanges& result) {
  if (Status kept = wal_reaches_back_to(db, result.next_sequence); !kept.is_ok()) return kept;
  result.next_sequence = std::min(found, result.latest_sequence + 1);
  return Status::ok();
}

}  // namespace

Result<WalChanges> Engine::wal_changes(uint64_t from_sequence, topology::Token start,
                                       topology::Token end, size_t max_bytes) {
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument("storage: WAL range end must be after its start");
  }
  expire_wal_holds();
  WalChanges result;
  // The latest sequence first, then the flush: a write publishes its sequence only after its WAL
  // record is in the manual-flush buffer, so every logged record up to `latest` is then in the
  // file GetUpdatesSince reads.
  result.latest_sequence = impl_->db->GetLatestSequenceNumber();
  if (rocksdb::Status flushed = impl_->db->FlushWAL(/*sync=*/false); !flushed.ok()) {
    return from_rocksdb(flushed, "storage: WAL flush");
  }
  result.next_sequence = std::max<uint64_t>(from_sequence, 1);
  if (result.next_sequence > result.latest_sequence) return result;

  std::unique_ptr<rocksdb::TransactionLogIterator> it;
  rocksdb::Status status = impl_->db->GetUpdatesSince(result.next_sequence, &it);
  if (!status.ok() || it == nullptr) return wal_gone(*impl_->db);  // the reader copies again
  if (!it->Valid()) {
    const bool failed = !it->status().ok() && !it->status().IsTryAgain();  // TryAgain: at the end
    if (failed) return wal_gone(*impl_->db);
    // Nothing logged from `from` to `latest`: a gap to the end.
    if (Status kept = step_over_gap(*impl_->db, result.latest_sequence + 1, result);
        !kept.is_ok()) {
      return kept;
    }
    return result;
  }
  WalReader reader(result.next_sequence, start, end, result);
  size_t examined_bytes = 0;
  bool first = true;
  for (; it->Valid(); it->Next()) {
    rocksdb::BatchResult batch = it->GetBatch();
    // A gap: the batch starts after the next sequence number this call must read, so the records
    // in between are not in the WAL. Decided only at the start of a call, from the sequence
    // numbers alone: later in a call, stop and let the next call start at the gap.
    if (batch.sequence > result.next_sequence) {
      if (!first) break;
      if (Status kept = step_over_gap(*impl_->db, batch.sequence, result); !kept.is_ok()) {
        return kept;
      }
    }
    first = false;
    if (batch.sequence > result.latest_sequence) break;
    reader.begin_batch(batch.sequence);
    status = batch.writeBatchPtr->Iterate(&reader);
    if (!reader.error().is_ok()) return reader.error();
    if (!status.ok()) return from_rocksdb(status, "storage: read WAL batch");
    const uint64_t batch_end = batch.sequence + batch.writeBatchPtr->Count();
    result.next_sequence = std::max(result.next_sequence, batch_end);
    examined_bytes += batch.writeBatchPtr->GetDataSize();
    if (examined_bytes >= max_bytes) break;
  }
  // The iterator also stops by itself, with an error status, where the next batch does not
  // follow the last one (a gap) or could not be read. Whichever it was, the next call starts at
  // next_sequence and decides from the sequence numbers it finds there: a gap the WAL still
  // reaches across is stepped over, anything else is WALGONE and the reader copies again.
  return result;
}

Result<uint64_t> Engine::hold_wal(std::string_view id, int64_t ttl_ms) {
  if (ttl_ms <= 0) return Status::invalid_argument("storage: WAL hold ttl must be positive");
  std::lock_guard<std::mutex> guard(impl_->holds_mu);
  if (Status status = impl_->update_holds_locked(); !status.is_ok()) return status;
  auto hold = impl_->holds.find(id);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ttl_ms);
  if (hold != impl_->holds.end()) {
    hold->second = until;
  } else {
    if (impl_->holds.size() >= kWalHoldsMax) {
      return Status::busy("storage: " + std::to_string(kWalHoldsMax) + " WAL holds are live");
    }
    impl_->holds.emplace(std::string(id), until);
  }
  if (Status status = impl_->update_holds_locked(); !status.is_ok()) {
    impl_->holds.erase(std::string(id));
    return status;
  }
  // Read after deletions are disabled: every WAL file holding a later record is kept.
  return impl_->db->GetLatestSequenceNumber();
}

void Engine::release_wal(std::string_view id) {
  std::lock_guard<std::mutex> guard(impl_->holds_mu);
  auto hold = impl_->holds.find(id);
  if (hold != impl_->holds.end()) impl_->holds.erase(hold);
  if (Status status = impl_->update_holds_locked(); !status.is_ok()) {
    spdlog::error("{}", status.to_string());
  }
}

void Engine::expire_wal_holds() {
  std::lock_guard<std::mutex> guard(impl_->holds_mu);
  if (Status status = impl_->update_holds_locked(); !status.is_ok()) {
    spdlog::error("{}", status.to_string());
  }
}

size_t Engine::wal_holds() const {
  std::lock_guard<std::mutex> guard(impl_->holds_mu);
  const auto now = std::chrono::steady_clock::now();
  return static_cast<size_t>(std::count_if(impl_->holds.begin(), impl_->holds.end(),
                                           [now](const auto& hold) { return hold.second > now; }));
}

Status Engine::delete_range(topology::Token start, topology::Token end) {
  return delete_token_range(start, end, /*local=*/false);
}

Status Engine::drop_range(topology::Token start, topology::Token end) {
  return delete_token_range(start, end, /*local=*/true);
}

Status Engine::delete_token_range(topology::Token start, topology::Token end, bool local) {
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument("storage: delete range end must be after its start");
  }
  const std::string begin_key = token_prefix(start);
  const std::string end_key = end == 0 ? kRingEndKey : token_prefix(end);
  rocksdb::WriteBatch batch;
  // The marker lives in the WAL only (it takes no sequence number and reaches no memtable); the
  // WAL reader sees it before the deletion of the same batch.
  if (local) batch.PutLogData(slice(kLocalDropMarker));
  if (rocksdb::Status status = batch.DeleteRange(impl_->db->DefaultColumnFamily(),
                                                 slice(begin_key), slice(end_key));
      !status.ok()) {
    return from_rocksdb(status, "storage: delete range");
  }
  // The derived row states of the range go with it, in the same batch.
  if (rocksdb::Status status = batch.DeleteRange(impl_->rows, slice(begin_key), slice(end_key));
      !status.ok()) {
    return from_rocksdb(status, "storage: delete range");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // synced below, with whatever else is buffered
  impl_->rank_cache.begin_range_deletion();
  const rocksdb::Status status = impl_->db->Write(write_options, &batch);
  impl_->rank_cache.end_range_deletion();
  if (!status.ok()) return from_rocksdb(status, "storage: delete range");
  return impl_->sync_wal();
}

Result<size_t> Engine::apply_batch(const std::vector<WalChange>& cells, bool logged) {
  // Cells of rows (fields, row headers, and any key that has a row state) keep the row's state
  // up to date, which the batch path below does not: they go one by one through apply() and
  // apply_field(), logged. A string that replaces a row is caught by its row state.
  std::vector<const WalChange*> plain;
  plain.reserve(cells.size());
  size_t stored_rows = 0;
  for (const WalChange& change : cells) {
    bool row = !change.sub_key.empty() || is_row_type(change.cell.type);
    if (!row) {
      bool found = false;
      Result<RowState> state = impl_->get_row_state(encode_key(change.token, change.key), &found);
      if (!state.is_ok()) return state.status();
      row = found;
    }
    if (!row) {
      plain.push_back(&change);
      continue;
    }
    Result<bool> stored =
        change.sub_key.empty()
            ? apply(change.token, change.key, change.cell)
            : apply_field(change.token, change.key, change.sub_key, change.cell);
    if (!stored.is_ok()) return stored.status();
    if (*stored) ++stored_rows;
  }
  Result<size_t> stored_plain = apply_plain_batch(plain, logged);
  if (!stored_plain.is_ok()) return stored_plain.status();
  return *stored_plain + stored_rows;
}

Result<size_t> Engine::apply_plain_batch(const std::vector<const WalChange*>& cells, bool logged) {
  // The winner per storage key among the cells given (a key may appear more than once).
  std::map<std::string, const WalChange*> winners;
  for (const WalChange* change_pointer : cells) {
    const WalChange& change = *change_pointer;
    auto [it, inserted] = winners.emplace(encode_key(change.token, change.key), &change);
    if (!inserted && supersedes(change.cell, it->second->cell)) it->second = &change;
  }
  // Lock every stripe involved, in index order, so two batches never wait for each other.
  std::vector<size_t> stripes;
  stripes.reserve(winners.size());
  for (const auto& [storage_key, change] : winners) {
    stripes.push_back(stripe_of(change->token, change->key) % kApplyStripes);
  }
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(stripes.size());
  for (size_t stripe : stripes) locks.emplace_back(impl_->apply_stripes[stripe]);

  // One MultiGet for the stored cells (the keys are sorted, as the map holds them).
  std::vector<rocksdb::Slice> keys;
  keys.reserve(winners.size());
  for (const auto& [storage_key, change] : winners) keys.emplace_back(storage_key);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->db->DefaultColumnFamily(), keys.size(),
                      keys.data(), values.data(), statuses.data(), /*sorted_input=*/true);

  rocksdb::WriteBatch batch;
  size_t stored_count = 0;
  size_t i = 0;
  for (const auto& [storage_key, change] : winners) {
    const rocksdb::Status& status = statuses[i];
    const rocksdb::PinnableSlice& stored = values[i];
    ++i;
    if (status.ok()) {
      Result<Cell> current = decode_cell(std::string_view(stored.data(), stored.size()));
      if (!current.is_ok()) return current.status();  // as apply(): never overwrite unreadable
      if (!supersedes(change->cell, *current)) continue;
    } else if (!status.IsNotFound()) {
      return from_rocksdb(status, "storage: read before apply");
    }
    batch.Put(storage_key, encode_cell(change->cell));
    ++stored_count;
  }
  if (stored_count == 0) return stored_count;
  rocksdb::WriteOptions write_options;
  write_options.sync = false;  // durability is sync()'s job (group commit)
  write_options.disableWAL = !logged;
  const rocksdb::Status status = impl_->db->Write(write_options, &batch);
  if (!status.ok()) return from_rocksdb(status, "storage: apply batch");
  impl_->writes.fetch_add(stored_count, std::memory_order_relaxed);
  return stored_count;
}

Status Engine::flush_memtables() {
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  const rocksdb::Status status = impl_->db->Flush(flush_options);
  if (!status.ok()) return from_rocksdb(status, "storage: flush");
  return Status::ok();
}

Status Engine::compact_all() {
  rocksdb::CompactRangeOptions compact_options;
  // Rewrite the bottommost level too, so the compaction filter sees every cell.
  compact_options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  const rocksdb::Status status = impl_->db->CompactRange(compact_options, nullptr, nullptr);
  if (!status.ok()) return from_rocksdb(status, "storage: compact");
  return Status::ok();
}

}  // namespace cairn::storage
