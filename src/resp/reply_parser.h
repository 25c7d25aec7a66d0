#pragma once
// RESP reply parser: the client side of RESP2/RESP3, used by machines talking to each other
// (src/net/peer_pool.h) and by tests. Pure: no I/O. Incremental like RequestParser.
//
// Invariants:
//  1. parse() never reads past data.size(); nesting depth, aggregate sizes and bulk lengths are
//     bounded by ReplyLimits, and exceeding them is an error, never an allocation.
//  2. On kComplete, `raw` of the Value's top level is exactly the bytes of that reply, so a
//     machine can relay a reply it did not produce byte for byte (CAIRN.FORWARD).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"

namespace cairn::resp {

struct Value {
  enum class Type {
    kSimple,     // +text
    kError,      // -text (str holds the text without '-')
    kInteger,    // :n
    kBulk,       // $n
    kNull,       // $-1, *-1, _
    kArray,      // *n
    kMap,        // %n (elements hold key, value, key, value...)
    kSet,        // ~n
    kPush,       // >n
    kDouble,     // ,d (str holds the text)
    kBoolean,    // #t / #f (integer 1 / 0)
    kVerbatim,   // =n (str holds the text after "txt:")
    kBigNumber,  // (n (str holds the digits)
  };
  Type type = Type::kNull;
  std::string str;
  int64_t integer = 0;
  std::vector<Value> elements;

  bool is_error() const { return type == Type::kError; }
};

struct ReplyLimits {
  size_t bulk_bytes_max = 512ull * 1024 * 1024;
  size_t elements_max = 16 * 1024 * 1024;  // per aggregate
  size_t depth_max = 32;
};

class ReplyParser {
 public:
  explicit ReplyParser(ReplyLimits limits = {}) : limits_(limits) {}
  // Consumes bytes of one reply from `data`. On kComplete `out` holds it and `raw` (if not null)
  // the exact bytes it spanned, including those of earlier calls. Restartable after kNeedMore.
  ParseOutcome parse(std::string_view data, Value& out, std::string* raw = nullptr);

 private:
  ReplyLimits limits_;
  std::string pending_;  // bytes of an unfinished reply (simple implementation: re-parse)
};

// Encodes a command as a RESP multibulk request (what a client sends).
void append_command(std::string& out, const std::vector<std::string>& args);

}  // namespace cairn::resp
