#pragma once
// CAIRN_ASSERT checks an invariant. A failed assertion is a bug: it prints where and why and
// aborts the process, in every build type.

#include <string_view>

namespace cairn::detail {
[[noreturn]] void assertion_failed(const char* expression, const char* file, int line,
                                   std::string_view message);
}  // namespace cairn::detail

#define CAIRN_ASSERT(condition, message)                                            \
  do {                                                                              \
    if (!(condition)) [[unlikely]] {                                                \
      ::cairn::detail::assertion_failed(#condition, __FILE__, __LINE__, (message)); \
    }                                                                               \
  } while (0)
