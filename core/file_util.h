// Small POSIX file helpers shared by the store: an owning fd, errno -> absl::Status, atomic
// file replacement (temp, fsync, rename, fsync dir) and directory fsync.
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace harness {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// "<what> <path>: <strerror>" with a status code that fits the errno.
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path);

absl::Status MakeDirs(const std::string& path);
absl::StatusOr<UniqueFd> OpenDir(const std::string& path);
absl::Status FsyncFd(int fd, absl::string_view path_for_errors);
absl::Status FsyncDir(const std::string& path);
absl::Status WriteAll(int fd, absl::string_view data, absl::string_view path_for_errors);
absl::StatusOr<std::string> ReadFile(const std::string& path);
bool PathExists(const std::string& path);

// Replaces `path` with `content` so that a crash leaves either the old or the new file, never
// a mix: writes a temp file beside it, fsyncs it, renames it over `path`, fsyncs the folder.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view content);

// Names beginning with this are temp files of WriteFileAtomically; recovery removes them.
inline constexpr absl::string_view kTempInfix = ".tmp.";

}  // namespace harness
