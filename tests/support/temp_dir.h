// TempDir: a fresh directory under $TMPDIR (or /tmp) for one test, removed with everything in it
// when the test ends (kept if HARNESS_KEEP_TEMP is set, for debugging).
#pragma once

#include <string>

namespace harness::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Directory of the test binaries (helper executables live there).
std::string TestBinDir();

}  // namespace harness::testing
