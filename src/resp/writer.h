#pragma once
// RESP2/RESP3 reply writer. Pure: appends to a caller-owned buffer.
//
// Every method writes one complete RESP value (or an aggregate header, after which the caller
// writes exactly that many elements, twice as many for maps). In protocol 2 the RESP3-only types
// degrade exactly as redis-server degrades them: map → flat array, set → array, null → `$-1`,
// null array → `*-1`, double → bulk string, boolean → integer 1/0, verbatim → bulk string.

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::resp {

class ReplyWriter {
 public:
  // `out` must outlive the writer. protocol is 2 or 3.
  explicit ReplyWriter(std::string* out, int protocol = 2) : out_(out), protocol_(protocol) {}

  void set_protocol(int protocol) { protocol_ = protocol; }
  int protocol() const { return protocol_; }
  std::string* buffer() { return out_; }

  void simple(std::string_view text);         // +text  (CR/LF in text become spaces)
  void ok() { simple("OK"); }
  // `message` includes its prefix word, e.g. "ERR syntax error" or "WRONGTYPE ...".
  void error(std::string_view message);       // -message (CR/LF become spaces)
  void integer(int64_t value);                // :value
  void bulk(std::string_view data);           // $len data
  void null();                                // RESP2 $-1, RESP3 _
  void null_array();                          // RESP2 *-1, RESP3 _
  void array(size_t count);                   // *count
  void map(size_t pairs);                     // RESP3 %pairs, RESP2 *(2*pairs)
  void set(size_t count);                     // RESP3 ~count, RESP2 *count
  void push(size_t count);                    // RESP3 >count, RESP2 *count
  void double_value(double value);            // RESP3 ,value; RESP2 bulk, formatted as Redis does
  void boolean(bool value);                   // RESP3 #t/#f, RESP2 :1/:0
  void verbatim(std::string_view text);       // RESP3 =len txt:text, RESP2 bulk

 private:
  std::string* out_;
  int protocol_;
};

// Formats a double the way redis-server 7.0 replies with one (INCRBYFLOAT uses "%.17Lg" with
// trailing zeros trimmed; inf as "inf"/"-inf").
std::string format_double(long double value);

}  // namespace cairn::resp
