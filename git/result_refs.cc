// ResultRefs (see result_refs.h).
#include "git/result_refs.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/ids.h"

namespace harness::git {
namespace {

constexpr char kResultPrefix[] = "refs/heads/harness/";
constexpr char kAttemptPrefix[] = "refs/heads/harness-attempt/";

// The oid `name` points at, or NotFound.
absl::StatusOr<git_oid> RefTarget(git_repository* repo, const std::string& name) {
  git_reference* raw = nullptr;
  int rc = git_reference_lookup(&raw, repo, name.c_str());
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read ", name));
  Reference ref(raw);
  git_reference* resolved_raw = nullptr;
  rc = git_reference_resolve(&resolved_raw, ref.get());
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot resolve ", name));
  Reference resolved(resolved_raw);
  return *git_reference_target(resolved.get());
}

}  // namespace

std::string ResultRefName(const std::string& item_id) {
  return absl::StrCat(kResultPrefix, item_id);
}

std::string AttemptRefName(const std::string& item_id, int attempt) {
  return absl::StrCat(kAttemptPrefix, item_id, "/", attempt);
}

absl::StatusOr<std::unique_ptr<ResultRefs>> ResultRefs::Open(const std::string& repo_path) {
  absl::StatusOr<Repository> repo = OpenRepository(repo_path);
  if (!repo.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("repository \"", repo_path, "\" cannot be opened: ", repo.status().message()));
  }
  return std::unique_ptr<ResultRefs>(new ResultRefs(std::move(*repo)));
}

absl::StatusOr<std::vector<std::string>> ResultRefs::RemoveStaleLocks() {
  absl::MutexLock lock(&mu_);
  const std::string common = git_repository_commondir(repo_.get());
  std::vector<std::string> removed;
  for (const char* dir : {"refs/heads/harness", "refs/heads/harness-attempt",
                          "logs/refs/heads/harness", "logs/refs/heads/harness-attempt"}) {
    const std::filesystem::path root = std::filesystem::path(common) / dir;
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) continue;
    for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->path().extension() != ".lock") continue;
      if (!std::filesystem::remove(it->path(), ec) && ec) break;
      removed.push_back(it->path().string());
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot clear stale ref locks under ", root.string(), ": ", ec.message()));
    }
  }
  return removed;
}

absl::StatusOr<std::string> ResultRefs::ResolveBase(const std::string& base_branch) {
  absl::MutexLock lock(&mu_);
  return ResolveBaseBranch(repo_.get(), base_branch);
}

absl::Status ResultRefs::VerifyResult(const std::string& commit, const std::string& base) {
  absl::StatusOr<git_oid> commit_oid = ParseOid(commit);
  if (!commit_oid.ok()) return commit_oid.status();
  absl::StatusOr<git_oid> base_oid = ParseOid(base);
  if (!base_oid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("base: ", base_oid.status().message()));
  }
  absl::MutexLock lock(&mu_);
  git_object* raw = nullptr;
  int rc = git_object_lookup(&raw, repo_.get(), &*commit_oid, GIT_OBJECT_ANY);
  if (rc == GIT_ENOTFOUND) {
    return absl::NotFoundError(
        absl::StrCat("result commit ", commit, " is not in the repository"));
  }
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read result commit ", commit));
  Object obj(raw);
  if (git_object_type(obj.get()) != GIT_OBJECT_COMMIT) {
    return absl::InvalidArgumentError(
        absl::StrCat("result ", commit, " is a ",
                     git_object_type2string(git_object_type(obj.get())), ", not a commit"));
  }
  if (git_oid_equal(&*commit_oid, &*base_oid)) {
    return absl::FailedPreconditionError(
        absl::StrCat("result commit ", commit, " is the base itself: no change"));
  }
  rc = git_graph_descendant_of(repo_.get(), &*commit_oid, &*base_oid);
  if (rc < 0) {
    return GitStatus(rc,
                     absl::StrCat("cannot tell whether ", commit, " descends from base ", base));
  }
  if (rc == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("result commit ", commit, " does not descend from base ", base));
  }
  return absl::OkStatus();
}

absl::Status ResultRefs::SetResultBranch(const std::string& item_id, const std::string& commit) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  absl::StatusOr<git_oid> oid = ParseOid(commit);
  if (!oid.ok()) return oid.status();
  const std::string name = ResultRefName(item_id);
  const std::string log = absl::StrCat("harness: result of item ", item_id);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<git_oid> old = RefTarget(repo_.get(), name);
  git_reference* raw = nullptr;
  int rc;
  if (absl::IsNotFound(old.status())) {
    rc = git_reference_create(&raw, repo_.get(), name.c_str(), &*oid, /*force=*/0, log.c_str());
    if (rc == GIT_EEXISTS) {
      // Someone created it since we looked: fine if it is our commit, else a lost race.
      absl::StatusOr<git_oid> now = RefTarget(repo_.get(), name);
      if (now.ok() && git_oid_equal(&*now, &*oid)) return absl::OkStatus();
      return absl::AbortedError(
          absl::StrCat(name, " was created concurrently with another commit"));
    }
  } else if (!old.ok()) {
    return old.status();
  } else if (git_oid_equal(&*old, &*oid)) {
    return absl::OkStatus();  // a retried completion
  } else {
    rc = git_reference_create_matching(&raw, repo_.get(), name.c_str(), &*oid, /*force=*/1, &*old,
                                       log.c_str());
    if (rc == GIT_EMODIFIED) {
      return absl::AbortedError(absl::StrCat(name, " changed from ", OidHex(*old),
                                             " while being set to ", commit, ": lost a race"));
    }
  }
  Reference ref(raw);
  return GitStatus(rc, absl::StrCat("cannot set ", name, " to ", commit));
}

absl::StatusOr<std::string> ResultRefs::ResultBranch(const std::string& item_id) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<git_oid> oid = RefTarget(repo_.get(), ResultRefName(item_id));
  if (absl::IsNotFound(oid.status())) {
    return absl::NotFoundError(absl::StrCat("item ", item_id, " has no result branch"));
  }
  if (!oid.ok()) return oid.status();
  return OidHex(*oid);
}

std::vector<std::pair<int, std::string>> ResultRefs::AttemptsLocked(const std::string& item_id) {
  std::vector<std::pair<int, std::string>> out;
  const std::string prefix = absl::StrCat(kAttemptPrefix, item_id, "/");
  git_reference_iterator* raw = nullptr;
  if (git_reference_iterator_glob_new(&raw, repo_.get(), absl::StrCat(prefix, "*").c_str()) < 0) {
    return out;
  }
  const char* name = nullptr;
  while (git_reference_next_name(&name, raw) == 0) {
    absl::string_view rest(name);
    if (!absl::ConsumePrefix(&rest, prefix)) continue;
    int n;
    // Only plain decimal numbers are attempts (the glob's '*' also spans '/').
    if (rest.empty() || rest.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(rest, &n)) {
      continue;
    }
    out.emplace_back(n, name);
  }
  git_reference_iterator_free(raw);
  std::sort(out.begin(), out.end());
  return out;
}

absl::Status ResultRefs::KeepAttempt(const std::string& item_id, int attempt,
                                     const std::string& commit) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  if (attempt < 0) {
    return absl::InvalidArgumentError(absl::StrCat("attempt ", attempt, " is negative"));
  }
  absl::StatusOr<git_oid> oid = ParseOid(commit);
  if (!oid.ok()) return oid.status();
  const std::string name = AttemptRefName(item_id, attempt);
  absl::MutexLock lock(&mu_);
  git_reference* raw = nullptr;
  int rc = git_reference_create(
      &raw, repo_.get(), name.c_str(), &*oid, /*force=*/1,
      absl::StrCat("harness: attempt ", attempt, " of item ", item_id).c_str());
  Reference ref(raw);
  if (absl::Status s = GitStatus(rc, absl::StrCat("cannot set ", name, " to ", commit)); !s.ok()) {
    return s;
  }
  std::vector<std::pair<int, std::string>> attempts = AttemptsLocked(item_id);
  absl::Status status;
  for (size_t i = 0; i + kKeptAttempts < attempts.size(); ++i) {
    rc = git_reference_remove(repo_.get(), attempts[i].second.c_str());
    if (rc != GIT_ENOTFOUND) {
      status.Update(GitStatus(rc, absl::StrCat("cannot delete ", attempts[i].second)));
    }
  }
  return status;
}

std::vector<std::string> ResultRefs::ListAttemptRefs(const std::string& item_id) {
  std::vector<std::string> out;
  if (!ValidateItemId(item_id).ok()) return out;
  absl::MutexLock lock(&mu_);
  for (auto& [n, name] : AttemptsLocked(item_id)) out.push_back(std::move(name));
  return out;
}

}  // namespace harness::git
