#pragma once
// Argument parsing shared by the command handlers. Each function accepts exactly what
// redis-server 7.0 accepts for the same kind of argument, so error replies match byte for byte:
//  - parse_int64: Redis's string2ll — no spaces, no '+', no leading zeros, no "-0".
//  - parse_long_double / parse_double: Redis's string2ld / string2d — strtold/strtod over the
//    whole text, no leading space, NaN rejected, overflow rejected, infinities accepted.
//  - parse_scan_cursor: Redis's parseScanCursorOrReply — strtoull over the whole text (so "",
//    "+5" and "-1" are accepted, as there).
// Pure: no I/O, no clock, no allocation beyond the returned values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn::commands {

// The byte-exact error replies shared by the data commands.
inline constexpr std::string_view kErrSyntax = "ERR syntax error";
inline constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kErrWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kErrOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kErrNanOrInfinity = "ERR increment would produce NaN or Infinity";
inline constexpr std::string_view kErrStringTooLong =
    "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
inline constexpr std::string_view kErrOffsetOutOfRange = "ERR offset is out of range";
inline constexpr std::string_view kErrNoSuchKey = "ERR no such key";
inline constexpr std::string_view kErrInvalidCursor = "ERR invalid cursor";

// The largest string value a command may build (Redis's default proto-max-bulk-len, 512 MB).
inline constexpr int64_t kStringBytesMax = 512ll * 1024 * 1024;

// Longest text parse_long_double accepts (Redis's MAX_LONG_DOUBLE_CHARS).
inline constexpr size_t kLongDoubleCharsMax = 5 * 1024;

std::optional<int64_t> parse_int64(std::string_view text);
std::optional<long double> parse_long_double(std::string_view text);
std::optional<double> parse_double(std::string_view text);
std::optional<uint64_t> parse_scan_cursor(std::string_view text);

// ASCII case-insensitive equality, for option names ("EX", "nx", "Match"...).
bool equals_ignore_case(std::string_view a, std::string_view b);

// ASCII lower case copy.
std::string to_lower(std::string_view text);

// The error reply (without '-') for a keyspace failure. Cluster errors whose message starts with
// their own code word (UNCERTAIN, UNAVAILABLE, CROSSSHARD, NOLEADER, NOTABLE, REDIRECT; see
// src/coordinator/cluster.h) are sent as they are, so clients can tell them apart; any other
// message gets the generic "ERR " prefix.
std::string storage_error_reply(const Status& status);

// "ERR invalid expire time in '<command>' command", with the command's lower-case name.
std::string invalid_expire_time_error(std::string_view command);

}  // namespace cairn::commands
