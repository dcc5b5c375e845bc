// State dir lock (see state_lock.h).
#include "core/state_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace harness {

absl::StatusOr<std::unique_ptr<StateLock>> StateLock::Acquire(const std::string& lock_file) {
  UniqueFd fd(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open lock file", lock_file);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      std::string holder;
      if (absl::StatusOr<std::string> c = ReadFile(lock_file); c.ok()) {
        holder = std::string(absl::StripAsciiWhitespace(*c));
      }
      std::string who = holder.empty() ? "" : absl::StrCat(" (pid ", holder, ")");
      return absl::FailedPreconditionError(absl::StrCat("state dir is in use by another controller",
                                                        who, ": ", lock_file, " is locked"));
    }
    return ErrnoStatus(errno, "cannot lock", lock_file);
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) == 0) {
    (void)::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  return std::unique_ptr<StateLock>(new StateLock(std::move(fd)));
}

StateLock::~StateLock() {
  if (fd_.valid()) ::flock(fd_.get(), LOCK_UN);
}

}  // namespace harness
