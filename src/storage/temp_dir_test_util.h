#pragma once
// For the storage tests: a fresh directory under /tmp, removed with everything in it when the
// test ends.

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "common/assert.h"

namespace cairn::storage::test {

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/cairn-storage-test-XXXXXX";
    CAIRN_ASSERT(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace cairn::storage::test
