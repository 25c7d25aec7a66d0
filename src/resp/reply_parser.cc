#include "resp/reply_parser.h"

#include <algorithm>
#include <charconv>
#include <string>
#include <system_error>

#include "common/assert.h"

namespace cairn::resp {

namespace {

// Header lines of numeric types (`:`, `$`, `*`, `#`, `_`...) are at most a sign and 20 digits; a
// longer one is garbage, found without buffering up to bulk_bytes_max bytes of it.
constexpr size_t kHeaderLineBytesMax = 64;
// Aggregates reserve at most this many slots up front, so a `*16000000` header alone does not
// allocate; larger ones grow as their elements arrive.
constexpr size_t kReservedElementsMax = 1024;
// The buffer of a reply that spanned reads is freed, not kept, once it grew larger than this, so
// one large reply does not stay pinned to a long-lived connection.
constexpr size_t kRetainedPendingBytesMax = 1024 * 1024;

bool parse_int64(std::string_view text, int64_t* value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

bool is_big_number(std::string_view text) {
  if (!text.empty() && text[0] == '-') text.remove_prefix(1);
  if (text.empty()) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Text of types whose line is free text; every other type has a short numeric line.
bool is_text_line(char type) { return type == '+' || type == '-' || type == ',' || type == '('; }

bool is_known_type(char type) {
  static constexpr std::string_view kTypes = "+-:$*_,#(=!%~>|";
  return kTypes.find(type) != std::string_view::npos;
}

std::string describe_byte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

}  // namespace

ParseOutcome ReplyParser::parse(std::string_view data, Value& out, std::string* raw) {
  if (!error_.empty()) return {ParseState::kError, 0, error_};
  if (pending_.empty()) {
    // Common case: the reply starts in `data`; parse it there without copying. Only when it is
    // unfinished are its bytes kept (and then parsing resumes where it stopped, not at 0).
    CAIRN_ASSERT(position_ == 0 && stack_.empty() && !in_bulk_, "reply parser state without bytes");
    ParseOutcome outcome = step(data, /*buffered=*/false, 0, out, raw);
    if (outcome.state == ParseState::kNeedMore) pending_.assign(data);
    return outcome;
  }
  const size_t old_pending = pending_.size();
  pending_.append(data);
  return step(pending_, /*buffered=*/true, old_pending, out, raw);
}

ParseOutcome ReplyParser::step(std::string_view buffer, bool buffered, size_t old_pending,
                               Value& out, std::string* raw) {
  const size_t new_bytes = buffer.size() - old_pending;
  while (true) {
    if (in_bulk_) {
      if (buffer.size() - position_ < bulk_length_ + 2) {
        return {ParseState::kNeedMore, new_bytes, {}};
      }
      const size_t end = position_ + bulk_length_;
      if (buffer[end] != '\r' || buffer[end + 1] != '\n') {
        return fail("invalid reply: bulk payload not followed by CRLF");
      }
      std::string_view payload = buffer.substr(position_, bulk_length_);
      if (bulk_type_ == '$') {
        bulk_slot_->type = Value::Type::kBulk;
      } else if (bulk_type_ == '!') {
        bulk_slot_->type = Value::Type::kError;
      } else {
        // Verbatim: a three-letter format, ':', then the text (RESP3).
        if (payload.size() < 4 || payload[3] != ':') {
          return fail("invalid reply: verbatim string without a format prefix");
        }
        payload.remove_prefix(4);
        bulk_slot_->type = Value::Type::kVerbatim;
      }
      bulk_slot_->str.assign(payload);
      position_ = end + 2;
      in_bulk_ = false;
      bulk_slot_ = nullptr;
      if (finish_value()) break;
      continue;
    }

    if (position_ == buffer.size()) return {ParseState::kNeedMore, new_bytes, {}};
    const char type = buffer[position_];
    if (!is_known_type(type)) {
      return fail("invalid reply: unknown type byte " + describe_byte(type));
    }
    const size_t line_end = buffer.find("\r\n", position_ + 1 + line_scanned_);
    const size_t line_bytes_max = is_text_line(type) ? limits_.bulk_bytes_max : kHeaderLineBytesMax;
    if (line_end == std::string_view::npos) {
      const size_t available = buffer.size() - position_ - 1;
      if (available > line_bytes_max + 1) return fail("invalid reply: line too long");
      // A trailing '\r' may be completed by the next byte, so it is scanned again.
      line_scanned_ = available > 0 ? available - 1 : 0;
      return {ParseState::kNeedMore, new_bytes, {}};
    }
    const std::string_view line = buffer.substr(position_ + 1, line_end - position_ - 1);
    if (line.size() > line_bytes_max) return fail("invalid reply: line too long");
    position_ = line_end + 2;
    line_scanned_ = 0;

    int64_t number = 0;
    switch (type) {
      case '+':
      case '-':
      case ',':
      case '(': {
        if (type == '(' && !is_big_number(line)) return fail("invalid reply: bad big number");
        if (type == ',' && line.empty()) return fail("invalid reply: empty double");
        Value* slot = next_slot();
        slot->type = type == '+'   ? Value::Type::kSimple
                     : type == '-' ? Value::Type::kError
                     : type == ',' ? Value::Type::kDouble
                                   : Value::Type::kBigNumber;
        slot->str.assign(line);
        break;
      }
      case ':': {
        if (!parse_int64(line, &number)) return fail("invalid reply: bad integer");
        Value* slot = next_slot();
        slot->type = Value::Type::kInteger;
        slot->integer = number;
        break;
      }
      case '_': {
        if (!line.empty()) return fail("invalid reply: bad null");
        next_slot()->type = Value::Type::kNull;
        break;
      }
      case '#': {
        if (line != "t" && line != "f") return fail("invalid reply: bad boolean");
        Value* slot = next_slot();
        slot->type = Value::Type::kBoolean;
        slot->integer = line == "t" ? 1 : 0;
        break;
      }
      case '$':
      case '=':
      case '!': {
        if (!parse_int64(line, &number) || number < -1) {
          return fail("invalid reply: bad bulk length");
        }
        if (number == -1) {
          if (type != '$') return fail("invalid reply: bad bulk length");
          next_slot()->type = Value::Type::kNull;
          break;
        }
        if (static_cast<uint64_t>(number) > limits_.bulk_bytes_max) {
          return fail("invalid reply: bulk longer than the limit");
        }
        in_bulk_ = true;
        bulk_type_ = type;
        bulk_length_ = static_cast<size_t>(number);
        bulk_slot_ = next_slot();
        continue;
      }
      default: {  // aggregates: * % ~ > |
        if (!parse_int64(line, &number) || number < -1) {
          return fail("invalid reply: bad aggregate length");
        }
        if (number == -1) {
          if (type != '*') return fail("invalid reply: bad aggregate length");
          Value* slot = next_slot();
          slot->type = Value::Type::kNull;
          slot->integer = 1;  // a null array (LPOP key count, BLPOP...), not a null bulk
          break;
        }
        const bool pairs = type == '%' || type == '|';
        const auto count = static_cast<uint64_t>(number);
        if (count > limits_.elements_max / (pairs ? 2 : 1)) {
          return fail("invalid reply: aggregate larger than the limit");
        }
        const size_t elements = static_cast<size_t>(count) * (pairs ? 2 : 1);
        if (elements > 0 && stack_.size() >= limits_.depth_max) {
          return fail("invalid reply: nested deeper than the limit");
        }
        if (type == '|') {
          // Attributes describe the reply that follows; nobody here uses them, so they are parsed
          // (to find where they end) and dropped.
          if (elements == 0) continue;
          attributes_.push_back(std::make_unique<Value>());
          attributes_.back()->type = Value::Type::kMap;
          stack_.push_back({attributes_.back().get(), elements, /*attribute=*/true});
          continue;
        }
        Value* slot = next_slot();
        slot->type = type == '*'   ? Value::Type::kArray
                     : type == '%' ? Value::Type::kMap
                     : type == '~' ? Value::Type::kSet
                                   : Value::Type::kPush;
        if (elements == 0) break;
        slot->elements.reserve(std::min(elements, kReservedElementsMax));
        stack_.push_back({slot, elements, /*attribute=*/false});
        continue;
      }
    }
    if (finish_value()) break;
  }

  // The top-level reply is whole: it spans buffer[0, position_).
  const size_t end = position_;
  CAIRN_ASSERT(end > old_pending, "a reply completed without new bytes");
  if (raw != nullptr) raw->assign(buffer.substr(0, end));
  out = std::move(root_);
  const size_t consumed = buffered ? end - old_pending : end;
  reset();
  return {ParseState::kComplete, consumed, {}};
}

Value* ReplyParser::next_slot() {
  if (stack_.empty()) return &root_;
  return &stack_.back().value->elements.emplace_back();
}

bool ReplyParser::finish_value() {
  while (!stack_.empty()) {
    Frame& top = stack_.back();
    CAIRN_ASSERT(top.remaining > 0, "reply parser frame overfilled");
    if (--top.remaining > 0) return false;
    const bool attribute = top.attribute;
    stack_.pop_back();
    if (attribute) {
      // A finished attribute is not a value of its parent: the value it describes comes next.
      attributes_.pop_back();
      return false;
    }
  }
  return true;
}

void ReplyParser::reset() {
  root_ = Value{};
  stack_.clear();
  attributes_.clear();
  position_ = 0;
  line_scanned_ = 0;
  in_bulk_ = false;
  bulk_slot_ = nullptr;
  if (pending_.capacity() > kRetainedPendingBytesMax) {
    std::string().swap(pending_);
  } else {
    pending_.clear();
  }
}

ParseOutcome ReplyParser::fail(std::string error) {
  reset();
  std::string().swap(pending_);
  error_ = std::move(error);
  return {ParseState::kError, 0, error_};
}

void append_command(std::string& out, const std::vector<std::string>& args) {
  char digits[24];
  const auto append_header = [&](char type, size_t n) {
    out.push_back(type);
    const auto result = std::to_chars(digits, digits + sizeof(digits), n);
    out.append(digits, result.ptr);
    out.append("\r\n");
  };
  append_header('*', args.size());
  for (const std::string& arg : args) {
    append_header('$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
}

}  // namespace cairn::resp
