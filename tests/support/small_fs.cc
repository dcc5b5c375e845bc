// A small tmpfs for disk-full tests (see small_fs.h).
#include "tests/support/small_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"

namespace harness::testing {

absl::Status SmallFs::Mount(const std::string& dir, int mib) {
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  std::string options = absl::StrCat("size=", mib, "m,mode=0755");
  if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot mount a tmpfs at ", dir, ": ", strerror(errno)));
  }
  dir_ = dir;
  return absl::OkStatus();
}

SmallFs::~SmallFs() {
  if (!dir_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
}

size_t SmallFs::Fill() {
  // A new filler file each time, so what an earlier Fill left stays taken.
  std::string path = absl::StrCat(dir_, "/filler-", fillers_++);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  size_t total = 0;
  std::string chunk(1 << 16, 'f');
  for (size_t size = chunk.size(); size > 0; size /= 2) {
    for (;;) {
      ssize_t n = ::write(fd, chunk.data(), size);
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
  }
  ::fsync(fd);
  ::close(fd);
  return total;
}

void SmallFs::Free() {
  for (int i = 0; i < fillers_; ++i) ::unlink(absl::StrCat(dir_, "/filler-", i).c_str());
}

}  // namespace harness::testing
