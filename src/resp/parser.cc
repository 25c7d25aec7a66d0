#include "resp/parser.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/assert.h"

namespace cairn::resp {

namespace {

// Argument slots are reserved up front at most this many at a time, as Redis does, so a
// `*1000000` header alone cannot make us allocate a million slots.
constexpr size_t kArgumentsReservedMax = 1024;
// Argument strings are reused between requests to save allocations, but one that grew larger
// than this is freed instead, so a single 512 MB value does not stay pinned to the connection.
constexpr size_t kRetainedArgumentBytesMax = 64 * 1024;
// Likewise for the vector of arguments and the partial-line buffer.
constexpr size_t kRetainedArgumentsMax = 4096;
constexpr size_t kRetainedLineBytesMax = 128 * 1024;

// Redis's string2ll(): an optional '-', no leading zeros (except "0" itself), no '+', no spaces,
// fewer than 21 characters, within int64_t. Anything else is not a number.
bool parse_integer(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() >= 21) return false;
  if (text.size() == 1 && text[0] == '0') {
    *value = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (text[0] == '-') {
    negative = true;
    i = 1;
    if (text.size() == 1) return false;
  }
  if (text[i] < '1' || text[i] > '9') return false;
  uint64_t magnitude = static_cast<uint64_t>(text[i] - '0');
  for (++i; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (magnitude > std::numeric_limits<uint64_t>::max() / 10) return false;
    magnitude *= 10;
    if (magnitude > std::numeric_limits<uint64_t>::max() - digit) return false;
    magnitude += digit;
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (magnitude > kMax + 1) return false;
    *value = magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min()
                                   : -static_cast<int64_t>(magnitude);
  } else {
    if (magnitude > kMax) return false;
    *value = static_cast<int64_t>(magnitude);
  }
  return true;
}

// isspace() in the C locale; bytes >= 0x80 are not spaces.
bool is_c_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Returns the string at `index` of `args`, emptied, reusing its storage when it is small.
std::string& reuse_slot(std::vector<std::string>& args, size_t index) {
  if (index == args.size()) return args.emplace_back();
  std::string& slot = args[index];
  if (slot.capacity() > kRetainedArgumentBytesMax) {
    slot = std::string();
  } else {
    slot.clear();
  }
  return slot;
}

}  // namespace

bool split_inline(std::string_view line, std::vector<std::string>& args) {
  line = line.substr(0, line.find('\0'));
  const size_t size = line.size();
  // Past the end reads as NUL, like the C string sdssplitargs walks.
  auto at = [&](size_t k) -> char { return k < size ? line[k] : '\0'; };
  size_t count = 0;
  size_t i = 0;
  while (true) {
    while (i < size && is_c_space(line[i])) ++i;
    if (i == size) break;
    std::string& current = reuse_slot(args, count++);
    bool in_double_quotes = false;
    bool in_single_quotes = false;
    bool done = false;
    while (!done) {
      const char c = at(i);
      if (in_double_quotes) {
        if (c == '\\' && at(i + 1) == 'x' && is_hex_digit(at(i + 2)) &&
            is_hex_digit(at(i + 3))) {
          current.push_back(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          switch (at(i)) {
            case 'n': current.push_back('\n'); break;
            case 'r': current.push_back('\r'); break;
            case 't': current.push_back('\t'); break;
            case 'b': current.push_back('\b'); break;
            case 'a': current.push_back('\a'); break;
            default: current.push_back(at(i)); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or the end of the line.
          if (at(i + 1) != '\0' && !is_c_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else if (in_single_quotes) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          current.push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !is_c_space(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else {
        switch (c) {
          // Only these end an unquoted word (not \v or \f, which sdssplitargs keeps).
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = true;
            break;
          case '"': in_double_quotes = true; break;
          case '\'': in_single_quotes = true; break;
          default: current.push_back(c); break;
        }
      }
      if (at(i) != '\0') ++i;
    }
  }
  args.resize(count);
  return true;
}

bool RequestParser::idle() const { return phase_ == Phase::kStart; }

ParseOutcome RequestParser::parse(std::string_view data, std::vector<std::string>& args) {
  CAIRN_ASSERT(phase_ != Phase::kFailed, "RequestParser used after a protocol error");
  size_t pos = 0;
  std::string_view line;
  while (true) {
    switch (phase_) {
      case Phase::kStart: {
        if (pos == data.size()) return {ParseState::kNeedMore, pos, {}};
        phase_ = data[pos] == '*' ? Phase::kMultibulkLength : Phase::kInline;
        break;
      }

      case Phase::kInline: {
        const LineStatus status = take_line(data, pos, line);
        if (status == LineStatus::kNeedMore) return {ParseState::kNeedMore, pos, {}};
        if (status == LineStatus::kTooBig) {
          return fail(pos, "Protocol error: too big inline request");
        }
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const bool balanced = split_inline(line, pending_);
        finish_line();
        if (!balanced) return fail(pos, "Protocol error: unbalanced quotes in request");
        argument_count_ = pending_.size();
        return complete(pos, args);
      }

      case Phase::kMultibulkLength: {
        const LineStatus status = take_line(data, pos, line);
        if (status == LineStatus::kNeedMore) return {ParseState::kNeedMore, pos, {}};
        if (status == LineStatus::kTooBig) {
          return fail(pos, "Protocol error: too big mbulk count string");
        }
        CAIRN_ASSERT(!line.empty() && line[0] == '*', "a multibulk header starts with '*'");
        int64_t count = 0;
        const bool ok = parse_integer(line.substr(1), &count);
        finish_line();
        if (!ok || (count > 0 && static_cast<uint64_t>(count) > limits_.arguments_max)) {
          return fail(pos, "Protocol error: invalid multibulk length");
        }
        if (count <= 0) return complete(pos, args);
        arguments_expected_ = static_cast<size_t>(count);
        pending_.reserve(std::min(arguments_expected_, kArgumentsReservedMax));
        phase_ = Phase::kBulkHeader;
        break;
      }

      case Phase::kBulkHeader: {
        const LineStatus status = take_line(data, pos, line);
        if (status == LineStatus::kNeedMore) return {ParseState::kNeedMore, pos, {}};
        if (status == LineStatus::kTooBig) {
          return fail(pos, "Protocol error: too big bulk count string");
        }
        // An empty line means Redis looked at the '\r' itself.
        const char first = line.empty() ? '\r' : line[0];
        if (first != '$') {
          finish_line();
          std::string error = "Protocol error: expected '$', got '";
          error += first;
          error += '\'';
          return fail(pos, std::move(error));
        }
        int64_t length = 0;
        const bool ok = parse_integer(line.substr(1), &length);
        finish_line();
        if (!ok || length < 0 || static_cast<uint64_t>(length) > limits_.bulk_bytes_max) {
          return fail(pos, "Protocol error: invalid bulk length");
        }
        const auto bulk_bytes = static_cast<size_t>(length);
        std::string& argument = next_argument();
        --arguments_expected_;
        if (data.size() - pos >= bulk_bytes + 2) {
          // The whole payload is here: one copy, no state.
          argument.assign(data.data() + pos, bulk_bytes);
          pos += bulk_bytes + 2;
          if (arguments_expected_ == 0) return complete(pos, args);
          break;
        }
        // Reserving once keeps a large value arriving in small reads linear in its size.
        argument.reserve(bulk_bytes);
        bulk_remaining_ = bulk_bytes;
        trailer_remaining_ = 2;
        phase_ = Phase::kBulkBody;
        break;
      }

      case Phase::kBulkBody: {
        if (!take_bulk_body(data, pos)) {
          CAIRN_ASSERT(pos == data.size(), "an unfinished bulk consumes all the data");
          return {ParseState::kNeedMore, pos, {}};
        }
        if (arguments_expected_ == 0) return complete(pos, args);
        phase_ = Phase::kBulkHeader;
        break;
      }

      case Phase::kFailed:
        CAIRN_ASSERT(false, "unreachable: checked on entry");
    }
  }
}

RequestParser::LineStatus RequestParser::take_line(std::string_view data, size_t& pos,
                                                   std::string_view& line) {
  // Header lines end at '\r' and the byte after it is skipped unseen; inline lines end at '\n'.
  const bool header = phase_ != Phase::kInline;
  const size_t available = data.size() - pos;
  if (line_wants_byte_) {
    if (available == 0) return LineStatus::kNeedMore;
    ++pos;
    line_wants_byte_ = false;
    line = line_;
    return LineStatus::kLine;
  }
  if (line_blocked_) {
    blocked_bytes_ += available;
    pos = data.size();
    return blocked_bytes_ > limits_.inline_bytes_max ? LineStatus::kTooBig
                                                     : LineStatus::kNeedMore;
  }
  const char* begin = data.data() + pos;
  const auto* end = static_cast<const char*>(std::memchr(begin, header ? '\r' : '\n', available));
  const size_t length = end != nullptr ? static_cast<size_t>(end - begin) : available;
  if (std::memchr(begin, '\0', length) != nullptr) {
    // Redis's strchr() stops at this NUL and will never see a line end again.
    const size_t seen = line_.size() + available;
    finish_line();
    line_blocked_ = true;
    blocked_bytes_ = seen;
    pos = data.size();
    return blocked_bytes_ > limits_.inline_bytes_max ? LineStatus::kTooBig
                                                     : LineStatus::kNeedMore;
  }
  if (line_.size() + length > limits_.inline_bytes_max) return LineStatus::kTooBig;
  if (end == nullptr || (header && length + 1 == available)) {
    line_.append(begin, length);
    pos = data.size();
    line_wants_byte_ = end != nullptr;
    return LineStatus::kNeedMore;
  }
  pos += length + (header ? 2 : 1);
  if (line_.empty()) {
    line = std::string_view(begin, length);  // the common case: no copy
  } else {
    line_.append(begin, length);
    line = line_;
  }
  return LineStatus::kLine;
}

void RequestParser::finish_line() {
  if (line_.capacity() > kRetainedLineBytesMax) {
    line_ = std::string();
  } else {
    line_.clear();
  }
  line_wants_byte_ = false;
  line_blocked_ = false;
  blocked_bytes_ = 0;
}

bool RequestParser::take_bulk_body(std::string_view data, size_t& pos) {
  size_t available = data.size() - pos;
  if (bulk_remaining_ > 0) {
    const size_t n = std::min(available, bulk_remaining_);
    pending_[argument_count_ - 1].append(data.data() + pos, n);
    pos += n;
    available -= n;
    bulk_remaining_ -= n;
  }
  const size_t skipped = std::min(available, trailer_remaining_);
  pos += skipped;
  trailer_remaining_ -= skipped;
  return bulk_remaining_ == 0 && trailer_remaining_ == 0;
}

std::string& RequestParser::next_argument() { return reuse_slot(pending_, argument_count_++); }

ParseOutcome RequestParser::complete(size_t consumed, std::vector<std::string>& args) {
  pending_.resize(argument_count_);
  args.swap(pending_);
  // pending_ now holds the caller's previous arguments, whose storage the next request reuses.
  argument_count_ = 0;
  arguments_expected_ = 0;
  phase_ = Phase::kStart;
  if (pending_.capacity() > kRetainedArgumentsMax) {
    pending_ = std::vector<std::string>();
  } else {
    for (std::string& old : pending_) {
      if (old.capacity() > kRetainedArgumentBytesMax) old = std::string();
    }
  }
  return {ParseState::kComplete, consumed, {}};
}

ParseOutcome RequestParser::fail(size_t consumed, std::string error) {
  phase_ = Phase::kFailed;
  return {ParseState::kError, consumed, std::move(error)};
}

}  // namespace cairn::resp
