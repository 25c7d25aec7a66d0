#pragma once
// RESP request parser (DESIGN.md §4 step 1). Pure: no I/O.
//
// Accepts what redis-server accepts from a client: multibulk requests (`*N\r\n$len\r\n...`) and
// inline commands (a line of space-separated words, with Redis's quoting rules). The parser is
// incremental and stateful: feeding it a partial request consumes what it can and remembers
// where it stopped, so a 512 MB value arriving in small reads is scanned once, not again on
// every read.
//
// Invariants:
//  1. parse() never reads past data.size() and never allocates more than the limits allow
//     (a bulk length or argument count over the limit is an error before any allocation).
//  2. After kError the parser must not be used again: the connection is closed, as in Redis.
//  3. Error texts are exactly redis-server 7.0's ("Protocol error: invalid bulk length", ...),
//     without the leading "ERR " (the writer adds the prefix).

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::resp {

struct ParserLimits {
  size_t bulk_bytes_max = 512ull * 1024 * 1024;   // Redis proto-max-bulk-len
  size_t arguments_max = 1024 * 1024;             // Redis: multibulk length limit
  size_t inline_bytes_max = 64 * 1024;            // Redis PROTO_INLINE_MAX_SIZE
};

enum class ParseState {
  kComplete,  // one request is in `args`; `consumed` bytes of `data` were used
  kNeedMore,  // all of `data` was consumed (`consumed == data.size()`), the request is unfinished
  kError,     // a protocol error; `error` holds Redis's text
};

struct ParseOutcome {
  ParseState state;
  size_t consumed;    // bytes of `data` consumed by this call; the caller drops them
  std::string error;  // set when state == kError
};

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Consumes bytes of one request from `data`. On kComplete `args` holds the request's arguments
  // (an inline empty line yields an empty `args`; callers skip it). `args` is overwritten on
  // kComplete and must not be inspected otherwise. Restartable after kNeedMore with the bytes
  // that follow the consumed ones.
  ParseOutcome parse(std::string_view data, std::vector<std::string>& args);

  // True if the parser is between requests (nothing buffered inside it).
  bool idle() const;

  void set_limits(ParserLimits limits) { limits_ = limits; }
  const ParserLimits& limits() const { return limits_; }

 private:
  // Implementation state (helper owns the details).
  ParserLimits limits_;
  enum class Phase { kStart, kMultibulkLength, kBulkHeader, kBulkBody, kInline } phase_ = Phase::kStart;
  size_t arguments_expected_ = 0;
  size_t bulk_remaining_ = 0;
  std::vector<std::string> pending_;
  std::string line_;
};

// Splits one inline command line into arguments using Redis's rules (sdssplitargs: quotes,
// escapes \n \r \t \b \a \\ \" \xHH, single quotes). Returns false on unbalanced quotes.
bool split_inline(std::string_view line, std::vector<std::string>& args);

}  // namespace cairn::resp
