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
  // RESP3 ,value; RESP2 bulk. Formatted as redis-server 7.0's addReplyDouble: "%.17g", with
  // "inf"/"-inf" spelled out (and "nan" for any NaN).
  void double_value(double value);
  void boolean(bool value);                   // RESP3 #t/#f, RESP2 :1/:0
  void verbatim(std::string_view text);       // RESP3 =len txt:text, RESP2 bulk

 private:
  std::string* out_;
  int protocol_;
};

// Formats a number the way redis-server 7.0 stores and returns the result of INCRBYFLOAT and
// HINCRBYFLOAT (ld2string in "human" mode): fixed notation "%.17Lf", then the trailing zeros
// after the decimal point and a dangling '.' are removed, and "-0" becomes "0"; infinities are
// "inf"/"-inf". Examples: 10.5+0.1 -> "10.6", 5.0e3 -> "5000", 3.0 -> "3", 1e20 ->
// "100000000000000000000". (Callers reject NaN and infinite results before formatting, as Redis
// does; NaN formats as "nan".)
std::string format_double(long double value);

}  // namespace cairn::resp
