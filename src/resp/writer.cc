#include "resp/writer.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/assert.h"

namespace cairn::resp {

namespace {

// Appends `prefix`, the decimal `value` and "\r\n": the shape of every RESP header line.
template <typename Integer>
void append_line(std::string* out, char prefix, Integer value) {
  char buffer[32];
  buffer[0] = prefix;
  const auto result = std::to_chars(buffer + 1, buffer + sizeof(buffer) - 2, value);
  CAIRN_ASSERT(result.ec == std::errc(), "an integer fits in 29 characters");
  char* end = result.ptr;
  *end++ = '\r';
  *end++ = '\n';
  out->append(buffer, static_cast<size_t>(end - buffer));
}

// A simple string or error cannot carry CR or LF: Redis replaces them with spaces so the reply
// stays one line instead of desynchronising the client.
void append_one_line(std::string* out, char prefix, std::string_view text) {
  out->push_back(prefix);
  const size_t start = out->size();
  out->append(text);
  if (text.find_first_of("\r\n") != std::string_view::npos) {
    for (size_t i = start; i < out->size(); ++i) {
      if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
    }
  }
  out->append("\r\n", 2);
}

// addReplyDouble's text for a finite or infinite double.
std::string_view double_text(double value, char (&buffer)[64]) {
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (std::isnan(value)) return "nan";
  const int length = std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  CAIRN_ASSERT(length > 0 && static_cast<size_t>(length) < sizeof(buffer), "%.17g fits in 64");
  return std::string_view(buffer, static_cast<size_t>(length));
}

}  // namespace

void ReplyWriter::simple(std::string_view text) { append_one_line(out_, '+', text); }

void ReplyWriter::error(std::string_view message) { append_one_line(out_, '-', message); }

void ReplyWriter::integer(int64_t value) { append_line(out_, ':', value); }

void ReplyWriter::bulk(std::string_view data) {
  append_line(out_, '$', data.size());
  out_->append(data);
  out_->append("\r\n", 2);
}

void ReplyWriter::null() { out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n"); }

void ReplyWriter::null_array() { out_->append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n"); }

void ReplyWriter::array(size_t count) { append_line(out_, '*', count); }

void ReplyWriter::map(size_t pairs) {
  if (protocol_ >= 3) {
    append_line(out_, '%', pairs);
  } else {
    append_line(out_, '*', pairs * 2);
  }
}

void ReplyWriter::set(size_t count) { append_line(out_, protocol_ >= 3 ? '~' : '*', count); }

void ReplyWriter::push(size_t count) { append_line(out_, protocol_ >= 3 ? '>' : '*', count); }

void ReplyWriter::double_value(double value) {
  char buffer[64];
  const std::string_view text = double_text(value, buffer);
  if (protocol_ >= 3) {
    out_->push_back(',');
    out_->append(text);
    out_->append("\r\n", 2);
  } else {
    bulk(text);
  }
}

void ReplyWriter::boolean(bool value) {
  if (protocol_ >= 3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    out_->append(value ? ":1\r\n" : ":0\r\n");
  }
}

void ReplyWriter::verbatim(std::string_view text) {
  if (protocol_ >= 3) {
    append_line(out_, '=', text.size() + 4);
    out_->append("txt:", 4);
    out_->append(text);
    out_->append("\r\n", 2);
  } else {
    bulk(text);
  }
}

std::string format_double(long double value) {
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  if (std::isnan(value)) return "nan";
  // Fixed notation of the largest long double has about 4950 digits; Redis's buffer is 5 KiB.
  char buffer[5 * 1024 + 32];
  const int printed = std::snprintf(buffer, sizeof(buffer), "%.17Lf", value);
  CAIRN_ASSERT(printed > 0 && static_cast<size_t>(printed) < sizeof(buffer),
               "a finite long double fits in the buffer");
  auto length = static_cast<size_t>(printed);
  if (std::memchr(buffer, '.', length) != nullptr) {
    while (buffer[length - 1] == '0') --length;
    if (buffer[length - 1] == '.') --length;
  }
  if (length == 2 && buffer[0] == '-' && buffer[1] == '0') return "0";
  return std::string(buffer, length);
}

}  // namespace cairn::resp
