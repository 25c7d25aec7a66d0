#pragma once
// Glob matching with exactly the semantics of Redis's stringmatchlen (KEYS, SCAN MATCH,
// CONFIG GET): `*` any run of bytes, `?` one byte, `[abc]` `[a-z]` `[^a]` byte sets (a range may
// be written backwards; `\` escapes inside a set), `\x` the literal byte x. Quirks kept on
// purpose so replies match redis-server: an unterminated `[` set ends at the end of the pattern,
// and a pattern never matches the empty string unless it is empty itself (callers treat the
// pattern "*" as "match all" before calling, as Redis does).
//
// Bounded: a pattern with more than kGlobNestingMax `*` groups matches nothing (Redis's guard
// against abusive patterns), and a failed `*` stops the search early, so the work is
// O(pattern × string) per call.
// Pure: no I/O, no allocation.

#include <string_view>

namespace cairn::commands {

inline constexpr int kGlobNestingMax = 1000;

bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace cairn::commands
