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
#include <memory>
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
    kNull,       // $-1, *-1, _ (integer 1 for *-1, so a relayed reply keeps its RESP2 form)
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
  // Attributes (`|n`, RESP3) are skipped: they are in `raw` but not in `out`. After kError the
  // parser must not be used again (further calls return the same error); the stream is lost.
  ParseOutcome parse(std::string_view data, Value& out, std::string* raw = nullptr);

  // True if no byte of an unfinished reply is buffered.
  bool idle() const { return pending_.empty() && position_ == 0; }

 private:
  // One aggregate being filled. `value` points into the tree under root_ (or at an attribute's
  // scratch map); it stays valid because a parent gets no new element until this one is done.
  struct Frame {
    Value* value;
    size_t remaining;  // elements still to parse
    bool attribute;    // an attribute map: discarded when complete
  };

  ParseOutcome step(std::string_view buffer, bool buffered, size_t old_pending, Value& out,
                    std::string* raw);
  ParseOutcome fail(std::string error);
  Value* next_slot();
  // A value is whole: pops the aggregates it completes. True once the top-level reply is whole.
  bool finish_value();
  void reset();

  ReplyLimits limits_;
  // Bytes of the unfinished reply when it spans calls. Positions below are offsets from the
  // reply's first byte, in `pending_` or (when nothing is buffered) in the caller's `data`.
  std::string pending_;
  size_t position_ = 0;      // where parsing resumes
  size_t line_scanned_ = 0;  // bytes after position_ already known to hold no line end
  bool in_bulk_ = false;     // a bulk/verbatim/blob-error header was read; its payload is due
  char bulk_type_ = 0;
  size_t bulk_length_ = 0;
  Value* bulk_slot_ = nullptr;
  Value root_;
  std::vector<Frame> stack_;
  std::vector<std::unique_ptr<Value>> attributes_;  // scratch maps of attributes in progress
  std::string error_;  // set once the stream failed
};

// Encodes a command as a RESP multibulk request (what a client sends).
void append_command(std::string& out, const std::vector<std::string>& args);

}  // namespace cairn::resp
