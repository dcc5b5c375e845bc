// ActivityWatch (see activity_watch.h).
#include "agentd/activity_watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agentd/command_runner.h"

namespace harness::agentd {
namespace {

constexpr uint32_t kEvents = IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                             IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF;

int64_t Ns(const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; }

bool Skipped(const char* name) {
  return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".git") == 0;
}

// The sub-folders of `dir` (not following links), without `.git`.
std::vector<std::string> SubFolders(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (Skipped(e->d_name)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.push_back(absl::StrCat(dir, "/", e->d_name));
  }
  closedir(d);
  return out;
}

}  // namespace

ActivityWatch::~ActivityWatch() {
  if (inotify_fd_ >= 0) close(inotify_fd_);
}

std::unique_ptr<ActivityWatch> ActivityWatch::Open(const std::string& root, Mode preferred,
                                                   absl::Duration scan_interval) {
  auto w = std::make_unique<ActivityWatch>();
  w->Watch(root, preferred, scan_interval);
  return w;
}

void ActivityWatch::Unwatch() {
  if (inotify_fd_ >= 0) {
    for (const auto& [wd, dir] : dirs_) inotify_rm_watch(inotify_fd_, wd);
    // The events still queued (IN_IGNORED for each removed watch, anything before) are
    // about the old tree.
    alignas(inotify_event) char buf[16384];
    while (read(inotify_fd_, buf, sizeof buf) > 0) {
    }
  }
  dirs_.clear();
  root_.clear();
  last_ = Signature{};
  next_scan_ = absl::InfinitePast();
}

void ActivityWatch::Watch(const std::string& root, Mode preferred, absl::Duration scan_interval) {
  Unwatch();
  root_ = root;
  scan_interval_ = scan_interval;
  mode_ = Mode::kScan;
  if (preferred == Mode::kInotify) {
    if (inotify_fd_ < 0) inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ >= 0) {
      mode_ = Mode::kInotify;
      if (!WatchTree(root_)) SwitchToScan();
    }
  }
  if (mode_ == Mode::kScan) last_ = Scan();
}

std::string ActivityWatch::Describe() const {
  if (mode_ == Mode::kInotify) return absl::StrCat("inotify (", dirs_.size(), " folders)");
  return absl::StrCat("a scan every ", FormatSeconds(scan_interval_), " s");
}

bool ActivityWatch::WatchTree(const std::string& dir) {
  std::vector<std::string> todo = {dir};
  while (!todo.empty()) {
    std::string d = std::move(todo.back());
    todo.pop_back();
    int wd = inotify_add_watch(inotify_fd_, d.c_str(), kEvents | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) {
      if (errno == ENOSPC || errno == ENOMEM) return false;
      continue;  // gone already, or not a folder: nothing to watch
    }
    dirs_[wd] = d;
    for (std::string& sub : SubFolders(d)) todo.push_back(std::move(sub));
  }
  return true;
}

void ActivityWatch::SwitchToScan() {
  if (inotify_fd_ >= 0) close(inotify_fd_);
  inotify_fd_ = -1;
  dirs_.clear();
  mode_ = Mode::kScan;
  last_ = Scan();
}

ActivityWatch::Signature ActivityWatch::Scan() const {
  Signature sig;
  if (root_.empty()) return sig;
  std::vector<std::string> todo = {root_};
  while (!todo.empty()) {
    std::string d = std::move(todo.back());
    todo.pop_back();
    DIR* dir = opendir(d.c_str());
    if (dir == nullptr) continue;
    struct stat st;
    if (fstat(dirfd(dir), &st) == 0) {
      sig.newest_ns = std::max({sig.newest_ns, Ns(st.st_mtim), Ns(st.st_ctim)});
    }
    while (dirent* e = readdir(dir)) {
      if (Skipped(e->d_name)) continue;
      if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      ++sig.entries;
      sig.newest_ns = std::max({sig.newest_ns, Ns(st.st_mtim), Ns(st.st_ctim)});
      if (S_ISDIR(st.st_mode)) todo.push_back(absl::StrCat(d, "/", e->d_name));
    }
    closedir(dir);
  }
  return sig;
}

bool ActivityWatch::Changed(absl::Time now) {
  if (root_.empty()) return false;
  if (mode_ == Mode::kScan) {
    if (now < next_scan_) return false;
    next_scan_ = now + scan_interval_;
    Signature sig = Scan();
    bool changed = !(sig == last_);
    last_ = sig;
    return changed;
  }
  bool changed = false;
  bool rewalk = false;
  alignas(inotify_event) char buf[16384];
  while (true) {
    ssize_t n = read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        changed = rewalk = true;
        continue;
      }
      if (e->mask & IN_IGNORED) {
        dirs_.erase(e->wd);
        continue;
      }
      changed = true;
      if ((e->mask & (IN_CREATE | IN_MOVED_TO)) && (e->mask & IN_ISDIR) && e->len > 0 &&
          !Skipped(e->name)) {
        auto it = dirs_.find(e->wd);
        if (it != dirs_.end() && !WatchTree(absl::StrCat(it->second, "/", e->name))) {
          SwitchToScan();
          return true;
        }
      }
    }
  }
  if (rewalk && !WatchTree(root_)) SwitchToScan();
  return changed;
}

}  // namespace harness::agentd
