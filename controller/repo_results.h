// RepoResults: the controller's side of git (no gRPC): which commit agents start from, whether
// a result is acceptable (it exists and descends from the base its attempt was given), and
// landing it on harness/<item-id> once the queue has fenced the lease and recorded the item
// done. Failed attempts' work goes to harness-attempt/<item-id>/<n> (the last 3 kept).
//
// Order and crashes: the queue records "done" (durably) first and the ref moves after, so the
// journal is the truth and the branch follows it: LandDone() at every start removes the ref
// lock files a killed controller left and sets any result branch a crash left behind, and a
// result whose lease was fenced never reaches a ref.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/work_queue.h"
#include "git/result_refs.h"

namespace harness {

class RepoResults {
 public:
  // Opens the repository at `path`. base_branch "" = its HEAD branch, which must exist.
  static absl::StatusOr<std::unique_ptr<RepoResults>> Open(const std::string& path,
                                                           const std::string& base_branch,
                                                           uint64_t max_pack_bytes);

  const std::string& path() const { return path_; }
  uint64_t max_pack_bytes() const { return max_pack_bytes_; }
  // The full name of the base branch ("refs/heads/main").
  const std::string& base_ref() const { return base_ref_; }
  // The commit at the tip of the base branch now.
  absl::StatusOr<std::string> BaseCommit();
  // Whether `commit` may be the result of an attempt given `base` (see ResultRefs).
  absl::Status VerifyResult(const std::string& commit, const std::string& base);
  // harness/<item_id> -> commit.
  absl::Status Land(const std::string& item_id, const std::string& commit);
  // harness-attempt/<item_id>/<attempt> -> commit, if the commit exists here.
  absl::Status KeepAttempt(const std::string& item_id, int attempt, const std::string& commit);
  // Sets the result branch of every done item whose branch is missing or elsewhere (a crash
  // between recording an item done and moving its ref). Returns how many were set.
  absl::StatusOr<int> LandDone(const WorkQueue& queue);

 private:
  RepoResults() = default;
  std::string path_;
  std::string base_branch_;
  std::string base_ref_;
  uint64_t max_pack_bytes_ = 0;
  std::unique_ptr<git::ResultRefs> refs_;
};

}  // namespace harness
