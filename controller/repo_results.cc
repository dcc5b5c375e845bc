// The controller's git results (see repo_results.h).
#include "controller/repo_results.h"

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "git/git_util.h"

namespace harness {

absl::StatusOr<std::unique_ptr<RepoResults>> RepoResults::Open(const std::string& path,
                                                               const std::string& base_branch,
                                                               uint64_t max_pack_bytes) {
  auto r = std::unique_ptr<RepoResults>(new RepoResults());
  r->path_ = path;
  r->base_branch_ = base_branch;
  r->max_pack_bytes_ = max_pack_bytes;
  absl::StatusOr<std::unique_ptr<git::ResultRefs>> refs = git::ResultRefs::Open(path);
  if (!refs.ok()) return refs.status();
  r->refs_ = std::move(*refs);
  absl::StatusOr<std::string> base = r->refs_->ResolveBase(base_branch);
  if (!base.ok()) {
    return absl::Status(base.status().code(),
                        absl::StrCat("repository ", path, ": ", base.status().message()));
  }
  if (base_branch.empty()) {
    absl::StatusOr<git::Repository> repo = git::OpenRepository(path);
    if (!repo.ok()) return repo.status();
    git_reference* head = nullptr;
    if (git_reference_lookup(&head, repo->get(), "HEAD") == 0) {
      const char* target = git_reference_symbolic_target(head);
      r->base_ref_ = target ? target : "";
      git_reference_free(head);
    }
  } else {
    r->base_ref_ = base_branch.rfind("refs/", 0) == 0 ? base_branch : "refs/heads/" + base_branch;
  }
  return r;
}

absl::StatusOr<std::string> RepoResults::BaseCommit() { return refs_->ResolveBase(base_branch_); }

absl::Status RepoResults::VerifyResult(const std::string& commit, const std::string& base) {
  return refs_->VerifyResult(commit, base);
}

absl::Status RepoResults::Land(const std::string& item_id, const std::string& commit) {
  return refs_->SetResultBranch(item_id, commit);
}

absl::Status RepoResults::KeepAttempt(const std::string& item_id, int attempt,
                                      const std::string& commit) {
  return refs_->KeepAttempt(item_id, attempt, commit);
}

absl::StatusOr<int> RepoResults::LandDone(const WorkQueue& queue) {
  // A controller killed while it moved a ref left that ref's lock file: without this, the ref
  // could never be set again (found by the chaos soak: a done item without its branch).
  absl::StatusOr<std::vector<std::string>> locks = refs_->RemoveStaleLocks();
  if (!locks.ok()) return locks.status();
  for (const std::string& lock : *locks) {
    LogWarning(absl::StrCat("removed ", lock, ", left by a controller killed while it moved a ref"));
  }
  int landed = 0;
  for (const store::ItemRecord& item : queue.List(store::ITEM_DONE, SIZE_MAX)) {
    if (item.result_commit().empty()) continue;
    absl::StatusOr<std::string> at = refs_->ResultBranch(item.spec().id());
    if (at.ok() && *at == item.result_commit()) continue;
    if (absl::Status s = refs_->SetResultBranch(item.spec().id(), item.result_commit()); !s.ok()) {
      LogError(absl::StrCat("cannot set the result branch of done item ", item.spec().id(), ": ",
                            s.message()));
      continue;
    }
    LogInfo(absl::StrCat("set the result branch of done item ", item.spec().id(),
                         " (a restart came between recording it and moving the ref)"));
    ++landed;
  }
  return landed;
}

}  // namespace harness
