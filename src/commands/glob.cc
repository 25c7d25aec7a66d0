#include "commands/glob.h"

#include <cstddef>
#include <utility>

namespace cairn::commands {
namespace {

// Bytes are compared as signed chars, as redis-server does on x86, so ranges over bytes >= 0x80
// behave identically (e.g. "[a-\xff]" is the range \xff..a after swapping).
int byte_value(char c, bool nocase) {
  int value = static_cast<signed char>(c);
  if (nocase && value >= 'A' && value <= 'Z') value += 'a' - 'A';
  return value;
}

// Matches the byte set that starts just after a '[' at pattern[*p] against `c`. On return *p is
// the index of the set's last byte (its ']' or, for an unterminated set, the pattern's last
// byte), mirroring how stringmatchlen leaves its pointer.
bool match_set(std::string_view pattern, size_t* p, char c, bool nocase) {
  const bool negate = *p < pattern.size() && pattern[*p] == '^';
  if (negate) ++*p;
  const int value = byte_value(c, nocase);
  bool matched = false;
  while (true) {
    const size_t remaining = pattern.size() - *p;
    if (remaining >= 2 && pattern[*p] == '\\') {
      ++*p;
      if (byte_value(pattern[*p], nocase) == value) matched = true;
    } else if (remaining == 0) {
      --*p;  // unterminated set: it ends at the last byte of the pattern
      break;
    } else if (pattern[*p] == ']') {
      break;
    } else if (remaining >= 3 && pattern[*p + 1] == '-') {
      int start = byte_value(pattern[*p], nocase);
      int end = byte_value(pattern[*p + 2], nocase);
      if (start > end) std::swap(start, end);
      *p += 2;
      if (value >= start && value <= end) matched = true;
    } else if (byte_value(pattern[*p], nocase) == value) {
      matched = true;
    }
    ++*p;
  }
  return negate ? !matched : matched;
}

// `give_up` is set once the tail after some '*' matched no suffix of the text: then no longer
// match of an earlier '*' can succeed either, so every enclosing '*' loop stops (this keeps the
// work polynomial, as Redis does since 7.0.9).
bool match_from(std::string_view pattern, std::string_view text, bool nocase, bool* give_up,
                int nesting) {
  if (nesting > kGlobNestingMax) return false;
  size_t p = 0;
  size_t s = 0;
  while (p < pattern.size() && s < text.size()) {
    switch (pattern[p]) {
      case '*': {
        while (p + 1 < pattern.size() && pattern[p + 1] == '*') ++p;
        if (p + 1 == pattern.size()) return true;
        const std::string_view rest = pattern.substr(p + 1);
        for (; s < text.size(); ++s) {
          if (match_from(rest, text.substr(s), nocase, give_up, nesting + 1)) return true;
          if (*give_up) return false;
        }
        *give_up = true;
        return false;
      }
      case '?':
        ++s;
        break;
      case '[':
        ++p;
        if (!match_set(pattern, &p, text[s], nocase)) return false;
        ++s;
        break;
      case '\\':
        if (pattern.size() - p >= 2) ++p;
        [[fallthrough]];
      default:
        if (byte_value(pattern[p], nocase) != byte_value(text[s], nocase)) return false;
        ++s;
        break;
    }
    ++p;
    if (s == text.size()) {
      // Trailing stars match the empty rest of the text.
      while (p < pattern.size() && pattern[p] == '*') ++p;
      break;
    }
  }
  return p == pattern.size() && s == text.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  bool give_up = false;
  return match_from(pattern, text, nocase, &give_up, 0);
}

}  // namespace cairn::commands
