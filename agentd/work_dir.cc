// WorkDir (see work_dir.h).
#include "agentd/work_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/ids.h"

namespace harness::agentd {
namespace {

// Removes the entries of the open directory `dir_fd` (named `path` in messages), recursively.
absl::Status EmptyDirFd(int dir_fd, const std::string& path, int depth) {
  if (depth > 256) return absl::FailedPreconditionError(absl::StrCat(path, ": nested too deep"));
  // fdopendir takes ownership of its fd: give it a duplicate and keep ours for *at() calls.
  int list_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (list_fd < 0) return ErrnoStatus(errno, "cannot duplicate the descriptor of", path);
  DIR* dir = fdopendir(list_fd);
  if (dir == nullptr) {
    int err = errno;
    close(list_fd);
    return ErrnoStatus(err, "cannot read directory", path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int read_err = errno;
  closedir(dir);
  if (read_err != 0) return ErrnoStatus(read_err, "cannot read directory", path);

  for (const std::string& name : names) {
    std::string child = absl::StrCat(path, "/", name);
    struct stat st;
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, "cannot stat", child);
    }
    if (S_ISDIR(st.st_mode)) {
      // O_NOFOLLOW: if it was swapped for a symbolic link since fstatat, this fails instead of
      // descending outside the tree.
      int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
      if ((st.st_mode & S_IRWXU) != S_IRWXU) fchmodat(dir_fd, name.c_str(), S_IRWXU, 0);
      UniqueFd child_fd(openat(dir_fd, name.c_str(), flags));
      if (!child_fd.valid()) return ErrnoStatus(errno, "cannot open directory", child);
      if (absl::Status s = EmptyDirFd(child_fd.get(), child, depth + 1); !s.ok()) return s;
      if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "cannot remove directory", child);
      }
    } else if (unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "cannot remove", child);
    }
  }
  return absl::OkStatus();
}

// Makes `path` a real directory: a symbolic link or file left in its place (say, by a command
// that replaced its own work dir) is removed first, so the tree is never entered through a link.
absl::Status EnsureRealDirectory(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return absl::OkStatus();  // the usual case: one call per item
    if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, "cannot remove", path);
  }
  return MakeDirs(path);
}

// Keeps the one prompt file an earlier attempt left in `dir` under the name `name` (renamed),
// when it is a regular file with a single link; anything else in `dir` is removed. Reusing
// the inode matters: a file created and another deleted per item makes ext4's inode
// allocation skip every recently deleted inode (seen as a third of agentd's CPU time).
absl::Status KeepOnePromptFile(const std::string& dir, const std::string& name) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open directory", dir);
  int list_fd = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  if (list_fd < 0) return ErrnoStatus(errno, "cannot duplicate the descriptor of", dir);
  DIR* d = fdopendir(list_fd);
  if (d == nullptr) {
    int err = errno;
    close(list_fd);
    return ErrnoStatus(err, "cannot read directory", dir);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    if (names.size() > 1) break;
  }
  closedir(d);
  struct stat st;
  if (names.size() == 1 &&
      fstatat(fd.get(), names[0].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(st.st_mode) && st.st_nlink == 1 &&
      (names[0] == name ||
       renameat(fd.get(), names[0].c_str(), fd.get(), name.c_str()) == 0)) {
    return absl::OkStatus();
  }
  // The listing above moved the offset `fd` shares with its duplicate: from the start again.
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus(errno, "cannot read directory", dir);
  return EmptyDirFd(fd.get(), dir, 0);
}

}  // namespace

absl::Status EmptyDirectory(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open directory", path);
  return EmptyDirFd(fd.get(), path, 0);
}

WorkDir::WorkDir(std::string root, int kept_logs)
    : root_(std::move(root)), kept_logs_(std::max(kept_logs, 1)) {}

void WorkDir::RecycleOldestLog(const std::string& name) {
  if (std::find(logs_.begin(), logs_.end(), name) != logs_.end()) return;  // appended to again
  const std::string dir = logs_path();
  while (static_cast<int>(logs_.size()) >= kept_logs_) {
    const std::string oldest = dir + "/" + logs_.front();
    logs_.pop_front();
    struct stat st;
    // Only a plain file of ours is reused; anything else put in its place is removed.
    if (lstat(oldest.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
        static_cast<int>(logs_.size()) + 1 == kept_logs_ &&
        renameat2(AT_FDCWD, oldest.c_str(), AT_FDCWD, (dir + "/" + name).c_str(),
                  RENAME_NOREPLACE) == 0) {
      UniqueFd fd(open((dir + "/" + name).c_str(), O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) unlink((dir + "/" + name).c_str());
      break;
    }
    unlink(oldest.c_str());
  }
  logs_.push_back(name);
}

absl::Status WorkDir::Init() {
  if (root_.empty()) return absl::InvalidArgumentError("the work dir path is empty");
  if (root_[0] != '/') {
    char buf[4096];
    if (getcwd(buf, sizeof buf) == nullptr) return ErrnoStatus(errno, "cannot resolve", root_);
    root_ = absl::StrCat(buf, "/", root_);
  }
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  for (const std::string& dir : {root_, work_path(), logs_path(), prompts_path()}) {
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  }
  // The logs a previous run of this agent left count towards kept_logs, oldest first (anything
  // else named *.log too: it is removed, never followed, when its turn comes).
  std::vector<std::pair<int64_t, std::string>> found;
  if (DIR* d = opendir(logs_path().c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      struct stat st;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0 &&
          lstat((logs_path() + "/" + name).c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
        found.emplace_back(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                               st.st_mtim.tv_nsec,
                           std::move(name));
      }
    }
    closedir(d);
  }
  std::sort(found.begin(), found.end());
  logs_.clear();
  for (auto& [mtime, name] : found) logs_.push_back(std::move(name));
  return absl::OkStatus();
}

absl::StatusOr<ItemPaths> WorkDir::Prepare(absl::string_view item_id, int attempt) {
  absl::StatusOr<ItemPaths> paths = PrepareFiles(item_id, attempt);
  if (!paths.ok()) return paths.status();
  absl::StatusOr<std::string> work = PrepareWork();
  if (!work.ok()) return work.status();
  paths->work_dir = *std::move(work);
  return paths;
}

absl::StatusOr<ItemPaths> WorkDir::PrepareFiles(absl::string_view item_id, int attempt) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  if (attempt < 0) {
    return absl::InvalidArgumentError(absl::StrCat("attempt ", attempt, " is negative"));
  }
  // Recreated if something removed or replaced them while the agent ran.
  for (const std::string& dir : {logs_path(), prompts_path()}) {
    if (absl::Status s = EnsureRealDirectory(dir); !s.ok()) return s;
  }
  std::string stem = absl::StrCat(item_id, "-", attempt);
  if (absl::Status s = KeepOnePromptFile(prompts_path(), stem + ".txt"); !s.ok()) return s;
  RecycleOldestLog(stem + ".log");
  return ItemPaths{"", absl::StrCat(logs_path(), "/", stem, ".log"),
                   absl::StrCat(prompts_path(), "/", stem, ".txt")};
}

absl::StatusOr<std::string> WorkDir::PrepareWork() {
  if (absl::Status s = EnsureRealDirectory(work_path()); !s.ok()) return s;
  if (absl::Status s = EmptyDirectory(work_path()); !s.ok()) return s;
  return work_path();
}

}  // namespace harness::agentd
