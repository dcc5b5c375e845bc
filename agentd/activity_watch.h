// ActivityWatch: tells whether anything in a directory tree changed (a file written, created,
// removed, renamed or touched) since the last look. CommandRunner uses it to detect a stalled
// command: no output and no file change in its worktree for `stall_timeout`. It does not
// record what changed, only that something did; reads do not count.
//
// Two mechanisms, chosen at Open():
//   * inotify (preferred): a watch on every directory of the tree, added as directories
//     appear (created or moved in), `.git` skipped, symbolic links never followed. Costs
//     nothing while the tree is quiet. A queue overflow counts as a change and re-walks the
//     tree to watch what it missed.
//   * a scan of the tree (fallback, when inotify cannot be set up or its watch limit,
//     fs.inotify.max_user_watches, is reached): every `scan_interval`, the newest
//     mtime/ctime of any entry and the number of entries, compared with the last scan. A
//     deletion changes its folder's mtime, a touch a file's ctime. Costs one lstat per entry
//     per scan.
//
// One ActivityWatch can watch one tree after another (Watch() again): agentd keeps one for all
// its items, because closing an inotify instance waits for the kernel (an SRCU grace period,
// 5-20 ms measured here), while removing and adding watches costs microseconds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "absl/time/time.h"

namespace harness::agentd {

class ActivityWatch {
 public:
  enum class Mode { kInotify, kScan };

  // Watches `root` (a directory): a new ActivityWatch, then Watch().
  static std::unique_ptr<ActivityWatch> Open(const std::string& root,
                                             Mode preferred = Mode::kInotify,
                                             absl::Duration scan_interval = absl::Seconds(5));
  // Watches nothing until Watch().
  ActivityWatch() = default;
  ~ActivityWatch();

  // Watches `root` (a directory) from now on, instead of what it watched before (whose
  // changes are forgotten); the inotify instance, if one is open, is kept. With `preferred`
  // kInotify, falls back to kScan if inotify fails; never fails itself (a tree that cannot be
  // read is scanned as far as it can be).
  void Watch(const std::string& root, Mode preferred = Mode::kInotify,
             absl::Duration scan_interval = absl::Seconds(5));
  // Stops watching (the inotify instance stays open for the next Watch()).
  void Unwatch();
  ActivityWatch(const ActivityWatch&) = delete;
  ActivityWatch& operator=(const ActivityWatch&) = delete;

  Mode mode() const { return mode_; }
  // "inotify (N folders)" or "scan every S s" (for logs).
  std::string Describe() const;
  // Readable when a change may have happened (inotify); -1 in scan mode.
  int fd() const { return mode_ == Mode::kInotify ? inotify_fd_ : -1; }
  // Whether anything changed since the previous call (or since Watch). Non-blocking. In scan
  // mode it scans only when `scan_interval` has passed since the last scan (by `now`).
  bool Changed(absl::Time now);

 private:
  // Adds watches on `dir` and every folder under it; false when the watch limit is reached.
  bool WatchTree(const std::string& dir);
  void SwitchToScan();
  struct Signature {
    int64_t newest_ns = 0;
    uint64_t entries = 0;
    bool operator==(const Signature&) const = default;
  };
  Signature Scan() const;

  std::string root_;  // "": nothing watched
  absl::Duration scan_interval_ = absl::Seconds(5);
  Mode mode_ = Mode::kScan;
  int inotify_fd_ = -1;
  std::unordered_map<int, std::string> dirs_;  // watch descriptor -> folder
  Signature last_;
  absl::Time next_scan_ = absl::InfinitePast();
};

}  // namespace harness::agentd
