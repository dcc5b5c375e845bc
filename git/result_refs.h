// ResultRefs: the controller's side of results in its repository. It checks that a commit an
// agent reports is a real result (present, a commit, a descendant of the base), sets
// refs/heads/harness/<item-id> to it with a compare-and-swap, and keeps failed attempts' work
// on refs/heads/harness-attempt/<item-id>/<n> (the last kKeptAttempts per item). Only the
// controller writes these refs, and only after its own lease (fencing) check: that check is
// the caller's, not this class's. Thread-safe (one mutex around the repository handle).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "git/git_util.h"

namespace harness::git {

inline constexpr int kKeptAttempts = 3;

// "refs/heads/harness/<item_id>" and "refs/heads/harness-attempt/<item_id>/<attempt>".
// The item id must have passed ValidateItemId.
std::string ResultRefName(const std::string& item_id);
std::string AttemptRefName(const std::string& item_id, int attempt);

class ResultRefs {
 public:
  // InvalidArgument naming repo_path if it is not a repository.
  static absl::StatusOr<std::unique_ptr<ResultRefs>> Open(const std::string& repo_path);

  // Commit id at the tip of base_branch ("" = the repository's HEAD branch); NotFound naming
  // the branch if it is missing.
  absl::StatusOr<std::string> ResolveBase(const std::string& base_branch);

  // OK if `commit` is in the object database, is a commit and strictly descends from `base`.
  // InvalidArgument: not a 40-hex id, or an object that is not a commit. NotFound: not in the
  // repository (not uploaded yet). FailedPrecondition: equal to the base ("no change"), or not
  // a descendant of the base.
  absl::Status VerifyResult(const std::string& commit, const std::string& base);

  // Points harness/<item_id> at `commit`: created if absent; already there: OK (a retried
  // completion); at another commit: replaced, but only if it still holds the value read just
  // before (git_reference_create_matching), so a concurrent writer is never overwritten
  // silently: Aborted on a lost race. The caller decides whether the replacement is allowed
  // (it has fenced the lease); a retry after a crash may legitimately find an older value.
  // InvalidArgument for a bad item id or commit id, before any ref is touched.
  absl::Status SetResultBranch(const std::string& item_id, const std::string& commit);

  // Removes the lock files (`*.lock`) under refs/heads/harness/, refs/heads/harness-attempt/
  // and their reflogs: what a writer killed in the middle of an update leaves, and what would
  // keep that ref from ever being set again (libgit2: "failed to lock file"). Only for the one
  // writer of these refs, before it writes (the controller at start, holding its state dir).
  // Returns the paths removed.
  absl::StatusOr<std::vector<std::string>> RemoveStaleLocks();

  // The commit harness/<item_id> points at; NotFound if there is none.
  absl::StatusOr<std::string> ResultBranch(const std::string& item_id);

  // Points harness-attempt/<item_id>/<attempt> at `commit` (attempt >= 0), then deletes all
  // but the kKeptAttempts highest attempt numbers of that item.
  absl::Status KeepAttempt(const std::string& item_id, int attempt, const std::string& commit);

  // The attempt refs of item_id (full names), lowest attempt first; empty for a bad id.
  std::vector<std::string> ListAttemptRefs(const std::string& item_id);

 private:
  explicit ResultRefs(Repository repo) : repo_(std::move(repo)) {}
  // (attempt, full ref name) of item_id, lowest first.
  std::vector<std::pair<int, std::string>> AttemptsLocked(const std::string& item_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  Repository repo_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness::git
