#include "commands/parse.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace cairn::commands {

std::optional<int64_t> parse_int64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text.size() == 1 && text[0] == '0') return 0;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) {
    i = 1;
    if (text.size() == 1) return std::nullopt;
  }
  // Like string2ll: the first digit must be 1-9, so "01", "-0" and "+1" are all rejected.
  if (text[i] < '1' || text[i] > '9') return std::nullopt;
  constexpr uint64_t kMagnitudeMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1;
  uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (magnitude > (kMagnitudeMax - digit) / 10) return std::nullopt;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    if (magnitude == kMagnitudeMax) return std::numeric_limits<int64_t>::min();
    return -static_cast<int64_t>(magnitude);
  }
  if (magnitude == kMagnitudeMax) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

namespace {

// strtold/strtod need a NUL-terminated buffer; the text is copied once. The checks are those of
// Redis's string2ld/string2d: whole text consumed, no leading space, no overflow, no NaN.
template <typename Float, typename Convert>
std::optional<Float> parse_floating(std::string_view text, Convert convert, Float huge) {
  if (text.empty() || text.size() >= kLongDoubleCharsMax) return std::nullopt;
  if (std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  const std::string buffer(text);
  char* end = nullptr;
  errno = 0;
  const Float value = convert(buffer.c_str(), &end);
  if (end != buffer.c_str() + buffer.size()) return std::nullopt;
  if (errno == ERANGE && (value == huge || value == -huge || std::fpclassify(value) == FP_ZERO)) {
    return std::nullopt;
  }
  if (std::isnan(value)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<long double> parse_long_double(std::string_view text) {
  return parse_floating<long double>(
      text, [](const char* s, char** end) { return std::strtold(s, end); }, HUGE_VALL);
}

std::optional<double> parse_double(std::string_view text) {
  return parse_floating<double>(
      text, [](const char* s, char** end) { return std::strtod(s, end); }, HUGE_VAL);
}

std::optional<uint64_t> parse_scan_cursor(std::string_view text) {
  // Redis's SCAN cursor is parsed with strtoul, which accepts "", "+1" and "-1" (wrapping);
  // the same inputs are accepted here so clients see identical behaviour.
  if (!text.empty() && std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  const std::string buffer(text);
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(buffer.c_str(), &end, 10);
  if (end != buffer.c_str() + buffer.size() || errno == ERANGE) return std::nullopt;
  return static_cast<uint64_t>(value);
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

std::string invalid_expire_time_error(std::string_view command) {
  return fmt::format("ERR invalid expire time in '{}' command", to_lower(command));
}

std::string storage_error_reply(const Status& status) {
  static constexpr std::string_view kCodeWords[] = {"UNCERTAIN",  "UNAVAILABLE", "CROSSSHARD",
                                                    "NOLEADER",   "NOTABLE",     "REDIRECT",
                                                    "CLOCKSKEW"};
  const std::string& message = status.message();
  const std::string_view first_word = std::string_view(message).substr(0, message.find(' '));
  for (std::string_view code : kCodeWords) {
    if (first_word == code) return message;
  }
  return "ERR " + message;
}

}  // namespace cairn::commands
