// SmallFs: a tmpfs of a few MiB mounted for one test, to fill the disk under a state dir for
// real (mount(2); tests run as root in CI). Fill() takes every free byte with a filler file and
// Free() gives them back. Unmounted (lazily) when the object goes away.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace harness::testing {

class SmallFs {
 public:
  // Mounts a tmpfs of `mib` MiB at `dir` (created if needed). The error says why mount(2)
  // refused (callers GTEST_SKIP with it: not root, or no CAP_SYS_ADMIN).
  absl::Status Mount(const std::string& dir, int mib);
  ~SmallFs();

  const std::string& dir() const { return dir_; }
  // Writes the filler until the file system has no free byte left; returns the bytes taken.
  size_t Fill();
  // Removes the filler.
  void Free();

 private:
  std::string dir_;
  int fillers_ = 0;
};

}  // namespace harness::testing
