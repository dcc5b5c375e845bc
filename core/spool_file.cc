// SpoolFile (see spool_file.h).
#include "core/spool_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace harness {

absl::StatusOr<std::unique_ptr<SpoolFile>> SpoolFile::Create(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    // No O_TMPFILE here: a named file, unlinked at once.
    std::string name = dir + "/spool-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, "create a temp file in", dir);
    if (::unlink(name.c_str()) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "unlink temp file", name);
    }
  } else if (fd < 0) {
    return ErrnoStatus(errno, "create a temp file in", dir);
  }
  return std::unique_ptr<SpoolFile>(new SpoolFile(UniqueFd(fd), dir));
}

absl::Status SpoolFile::Append(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(size_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "write a temp file in", dir_);
    size_ += static_cast<uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpoolFile::ReadAt(uint64_t offset, size_t max) const {
  std::string out;
  if (offset >= size_) return out;
  out.resize(static_cast<size_t>(std::min<uint64_t>(max, size_ - offset)));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd_.get(), out.data() + got, out.size() - got,
                        static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "read a temp file in", dir_);
    if (n == 0) {
      return absl::DataLossError(absl::StrCat("a temp file in ", dir_, " ends at ", offset + got,
                                              " bytes; ", size_, " were written"));
    }
    got += static_cast<size_t>(n);
  }
  return out;
}

absl::StatusOr<int> ClearSpoolDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoStatus(ec.value(), "create", dir);
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) return ErrnoStatus(ec.value(), "remove", entry.path().string());
    ++removed;
  }
  if (ec) return ErrnoStatus(ec.value(), "list", dir);
  return removed;
}

}  // namespace harness
