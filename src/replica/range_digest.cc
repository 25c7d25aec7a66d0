#include "replica/range_digest.h"

#include <xxhash.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "common/assert.h"
#include "storage/cell.h"
#include "topology/token_range.h"

namespace cairn::replica {

using topology::Token;

using topology::TokenWidth;

size_t leaf_of(Token start, Token end, size_t leaves, Token token) {
  CAIRN_ASSERT(leaves >= 1, "a digest has at least one leaf");
  const TokenWidth width = topology::token_span(start, end);
  const TokenWidth offset = static_cast<TokenWidth>(token - start);
  const size_t leaf = static_cast<size_t>(offset * leaves / width);
  return leaf < leaves ? leaf : leaves - 1;
}

Token leaf_start(Token start, Token end, size_t leaves, size_t leaf) {
  CAIRN_ASSERT(leaves >= 1 && leaf <= leaves, "leaf out of range");
  if (leaf == leaves) return end;
  // The smallest token t with leaf_of(t) == leaf: ceil(leaf * width / leaves).
  const TokenWidth width = topology::token_span(start, end);
  const TokenWidth offset = (static_cast<TokenWidth>(leaf) * width + leaves - 1) /
                                   leaves;
  return start + static_cast<Token>(offset);
}

Result<RangeDigest> digest_range(storage::Engine& engine, Token start, Token end, size_t leaves,
                                 size_t max_cells, int64_t now_ms, int64_t purge_before_ms) {
  if (leaves == 0) return Status::invalid_argument("a digest needs at least one leaf");
  if (!topology::before_end(start, end)) {
    return Status::invalid_argument("digest end must be after its start (0 = the ring's end)");
  }
  RangeDigest digest;
  digest.hashes.assign(leaves, 0);
  digest.cells.assign(leaves, 0);
  // The row whose fields are being visited and what its state hides.
  std::string row_key;
  HlcTimestamp row_hidden = 0;
  Status failure;
  std::string buffer;
  const Status scanned = engine.scan(
      start, end,
      [&](Token token, std::string_view key, std::string_view sub_key,
          const storage::Cell& stored) {
        if (digest.visited >= max_cells) {
          digest.truncated = true;
          return false;
        }
        ++digest.visited;
        if (engine.may_have_dropped(stored) || stored.deleted_before(purge_before_ms, now_ms)) {
          return true;
        }
        // A sorted set's index is derived by each replica from its member cells (which are
        // compared): replicas that reached the same members by different paths keep different
        // tombstones of old entries, and no repair could make those equal.
        if (storage::is_score_index_cell(sub_key, stored)) return true;
        if (!sub_key.empty()) {
          if (key != row_key) {
            Result<storage::StoredRow> row = engine.read_row(token, key);
            if (!row.is_ok()) {
              failure = row.status();
              return false;
            }
            row_key.assign(key);
            row_hidden = row->state.hidden_through(now_ms);
          }
          if (stored.timestamp <= row_hidden) return true;
        }
        buffer = storage::encode_key(token, key, sub_key);
        if (stored.expired_at(now_ms) && !stored.tombstone) {
          storage::Cell as_tombstone = stored;
          as_tombstone.tombstone = true;
          as_tombstone.value.clear();
          buffer += storage::encode_cell(as_tombstone);
        } else {
          buffer += storage::encode_cell(stored);
        }
        const size_t leaf = leaf_of(start, end, leaves, token);
        digest.hashes[leaf] += XXH3_64bits(buffer.data(), buffer.size());
        ++digest.cells[leaf];
        return true;
      });
  if (!failure.is_ok()) return failure;
  if (!scanned.is_ok()) return scanned;
  return digest;
}

}  // namespace cairn::replica
