// WorkDir: the files of one agent under its --workdir root. Every path agentd writes is named
// here (as core/paths.h does for the controller's state dir):
//   <root>/work/                          where the command runs without git (no base commit in
//                                         the lease); emptied before every such item
//   <root>/worktree/                      --repo PATH: this agent's linked worktree
//   <root>/clone/                         --repo URL or no --repo: this agent's own clone (its
//                                         work tree is where the command runs)
//   <root>/tmp/                           scratch (the pack of a result being uploaded)
//   <root>/logs/<item>-<attempt>.log      stdout+stderr of setup and command, one per attempt;
//                                         the last kept_logs attempts' (the oldest one's file
//                                         emptied and renamed for the next attempt)
//   <root>/prompts/<item>-<attempt>.txt   the prompt (HARNESS_PROMPT_FILE); only the current one
//                                         (the previous one's file renamed and rewritten)
// It does not know about git: workspace.h decides which folder an item runs in.
#pragma once

#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace harness::agentd {

// Where one attempt's files go. All paths are absolute.
struct ItemPaths {
  std::string work_dir;
  std::string log_file;
  std::string prompt_file;
};

class WorkDir {
 public:
  // `root` may be relative; it is made absolute (against the current directory) by Init().
  // logs/ keeps the logs of the last `kept_logs` attempts (the controller keeps each
  // attempt's tail for `harnessctl show`).
  static constexpr int kDefaultKeptLogs = 100;
  explicit WorkDir(std::string root, int kept_logs = kDefaultKeptLogs);

  // Creates the root and its folders if missing.
  absl::Status Init();

  // Readies the folders for one attempt: validates `item_id` (core/ids.h) before it names a
  // file, empties work/ (everything inside, dot files too; symbolic links are removed, never
  // followed) and prompts/ (but for the previous prompt file: PrepareFiles). The log file is
  // not created here (the runner appends to it).
  // PrepareFiles() + PrepareWork().
  absl::StatusOr<ItemPaths> Prepare(absl::string_view item_id, int attempt);

  // The log and prompt paths of one attempt (`work_dir` left empty): validates `item_id`,
  // leaves in prompts/ nothing but the previous prompt file renamed to this attempt's (if it
  // is a regular file with a single link; the runner rewrites it), recreates logs/ and
  // prompts/ if something removed them, and with kept_logs logs in logs/ already empties the
  // oldest and renames it to this attempt's (the runner appends to it): the folder stays
  // bounded, and no inode is created and another deleted per item.
  absl::StatusOr<ItemPaths> PrepareFiles(absl::string_view item_id, int attempt);
  // Empties work/ (recreated as a real folder if it was removed or replaced) and returns it.
  absl::StatusOr<std::string> PrepareWork();

  const std::string& root() const { return root_; }
  std::string work_path() const { return root_ + "/work"; }
  std::string worktree_path() const { return root_ + "/worktree"; }
  std::string clone_path() const { return root_ + "/clone"; }
  std::string tmp_path() const { return root_ + "/tmp"; }
  std::string logs_path() const { return root_ + "/logs"; }
  std::string prompts_path() const { return root_ + "/prompts"; }

 private:
  // Leaves room for one more log: the oldest kept log renamed to `name` and emptied, or
  // removed; nothing to do below kept_logs.
  void RecycleOldestLog(const std::string& name);

  std::string root_;
  const int kept_logs_;
  std::deque<std::string> logs_;  // names in logs/, oldest first (seeded by Init from mtimes)
};

// Removes everything inside the directory `path` (not `path` itself) without following
// symbolic links: a link is unlinked, its target untouched. Folders without write or search
// permission (e.g. a read-only module cache) are made writable first.
absl::Status EmptyDirectory(const std::string& path);

}  // namespace harness::agentd
