#pragma once
// RESP request parser (docs/cluster.md). Pure: no I/O.
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
//  4. The result does not depend on how the bytes are split between calls: feeding a stream in
//     one call or in any chunking yields the same requests and the same error.
//
// Deliberate copies of redis-server quirks (so a client sees the same behaviour):
//  * The two bytes after a bulk payload are skipped without being checked, and so is the byte
//    after the '\r' that ends a `*`/`$` header line.
//  * Redis looks for line ends with strchr(), which stops at a NUL byte: a NUL before the end of a
//    header or inline line hides every later line end, and the request can only end with the
//    "too big" error once more than inline_bytes_max bytes arrived.
//  * Redis reports "too big" when a line has no end within the bytes read so far, which depends
//    on its read sizes; here a line longer than inline_bytes_max is always too big (invariant 4).
//  * The unauthenticated-client limits (`unauthenticated multibulk length`) belong to the
//    front end, which knows whether the client is authenticated.
//
// Thread safety: none; one parser per connection.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::resp {

struct ParserLimits {
  size_t bulk_bytes_max = 512ull * 1024 * 1024;   // Redis proto-max-bulk-len
  // Redis 7.0 accepts up to INT_MAX arguments (allocating as they arrive); we cap lower.
  size_t arguments_max = 1024 * 1024;
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
  //
  // A multibulk request with a count <= 0 (`*0\r\n`, `*-1\r\n`) is also kComplete with an empty
  // `args`, which callers skip as Redis does. The strings of the previous `args` are reused for
  // the next request, so a caller that keeps passing the same vector allocates little.
  // REQUIRES: no earlier call returned kError.
  ParseOutcome parse(std::string_view data, std::vector<std::string>& args);

  // True if the parser is between requests (nothing buffered inside it).
  bool idle() const;

  void set_limits(ParserLimits limits) { limits_ = limits; }
  const ParserLimits& limits() const { return limits_; }

 private:
  enum class Phase { kStart, kMultibulkLength, kBulkHeader, kBulkBody, kInline, kFailed };
  enum class LineStatus { kLine, kNeedMore, kTooBig };

  // Finds the end of the header or inline line that starts at (or continues before) `pos`.
  // On kLine `line` is the line without its terminator (it may point into `data` or into
  // `line_`; call finish_line() once done with it) and `pos` is past the terminator.
  LineStatus take_line(std::string_view data, size_t& pos, std::string_view& line);
  void finish_line();
  // Consumes bulk payload and its two trailing bytes; true once the argument is whole.
  bool take_bulk_body(std::string_view data, size_t& pos);
  std::string& next_argument();
  ParseOutcome complete(size_t consumed, std::vector<std::string>& args);
  ParseOutcome fail(size_t consumed, std::string error);

  ParserLimits limits_;
  Phase phase_ = Phase::kStart;
  size_t arguments_expected_ = 0;  // arguments of the current multibulk not yet started
  size_t bulk_remaining_ = 0;      // payload bytes of the current bulk not yet read
  size_t trailer_remaining_ = 0;   // bytes after the payload (Redis's "\r\n") not yet skipped
  size_t argument_count_ = 0;      // leading elements of pending_ that hold this request's args
  std::vector<std::string> pending_;
  std::string line_;               // the part of a line seen in earlier calls
  bool line_wants_byte_ = false;   // a header's '\r' was seen; the byte after it is still due
  bool line_blocked_ = false;      // a NUL came before the line's end (see the quirks above)
  size_t blocked_bytes_ = 0;       // bytes of a blocked line seen so far
};

// Splits one inline command line into arguments using Redis's rules (sdssplitargs: quotes,
// escapes \n \r \t \b \a \\ \" \xHH, single quotes). Returns false on unbalanced quotes (or a
// closing quote not followed by a space). On success `args` holds exactly the arguments; on
// failure its content is unspecified. As in sdssplitargs (a C string), a NUL byte ends the line.
bool split_inline(std::string_view line, std::vector<std::string>& args);

}  // namespace cairn::resp
