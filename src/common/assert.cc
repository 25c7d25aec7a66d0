#include "common/assert.h"

#include <cstdio>
#include <cstdlib>

namespace cairn::detail {

void assertion_failed(const char* expression, const char* file, int line,
                      std::string_view message) {
  std::fprintf(stderr, "cairn: assertion failed at %s:%d: %s (%.*s)\n", file, line, expression,
               static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::abort();
}

}  // namespace cairn::detail
