// libgit2 helpers (see git_util.h).
#include "git/git_util.h"

#include <cstring>
#include <mutex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace harness::git {

void EnsureInit() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

absl::Status GitStatus(int rc, absl::string_view what) {
  if (rc >= 0) return absl::OkStatus();
  const git_error* e = git_error_last();
  std::string msg =
      absl::StrCat(what, ": ", e && e->message ? e->message : "libgit2 error", " (", rc, ")");
  switch (rc) {
    case GIT_ENOTFOUND:
      return absl::NotFoundError(msg);
    case GIT_EEXISTS:
      return absl::AlreadyExistsError(msg);
    case GIT_EMODIFIED:
    case GIT_ELOCKED:
      return absl::AbortedError(msg);
    case GIT_EINVALIDSPEC:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<Repository> OpenRepository(const std::string& path) {
  EnsureInit();
  git_repository* repo = nullptr;
  int rc = git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  if (rc < 0) {
    absl::Status s = GitStatus(rc, absl::StrCat("\"", path, "\" is not a git repository"));
    return rc == GIT_ENOTFOUND ? absl::InvalidArgumentError(s.message()) : s;
  }
  return Repository(repo);
}

std::string OidHex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

absl::StatusOr<git_oid> ParseOid(absl::string_view hex) {
  if (hex.size() != GIT_OID_HEXSZ ||
      hex.find_first_not_of("0123456789abcdef") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", hex, "\" is not a commit id (40 lowercase hex digits)"));
  }
  git_oid oid;
  std::string s(hex);
  if (git_oid_fromstr(&oid, s.c_str()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("\"", hex, "\" is not a commit id"));
  }
  return oid;
}

namespace {

// The name of the branch a symbolic HEAD of `repo` (a repository opened at its common dir, so
// the main HEAD) points at; "" if HEAD is detached.
absl::StatusOr<std::string> SymbolicTarget(git_repository* repo, const char* name) {
  git_reference* raw = nullptr;
  int rc = git_reference_lookup(&raw, repo, name);
  if (rc == GIT_ENOTFOUND) return std::string();
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read ", name));
  Reference ref(raw);
  if (git_reference_type(ref.get()) != GIT_REFERENCE_SYMBOLIC) return std::string();
  return std::string(git_reference_symbolic_target(ref.get()));
}

}  // namespace

absl::StatusOr<std::string> ResolveBaseBranch(git_repository* repo,
                                              const std::string& base_branch) {
  std::vector<std::string> candidates;
  std::string shown = base_branch;
  if (base_branch.empty()) {
    // HEAD of the main repository: a linked worktree's own HEAD is per-worktree, so read it
    // from the common dir.
    Repository main;
    if (git_repository_is_worktree(repo)) {
      absl::StatusOr<Repository> m = OpenRepository(git_repository_commondir(repo));
      if (!m.ok()) return m.status();
      main = std::move(*m);
    }
    git_repository* head_repo = main ? main.get() : repo;
    absl::StatusOr<std::string> head = SymbolicTarget(head_repo, "HEAD");
    if (!head.ok()) return head.status();
    if (head->empty()) {
      head = SymbolicTarget(head_repo, "refs/remotes/origin/HEAD");
      if (!head.ok()) return head.status();
    }
    if (head->empty()) {
      return absl::FailedPreconditionError(
          "the repository's HEAD is detached, so it names no base branch: set the base branch");
    }
    candidates.push_back(*head);
    shown = *head;
    if (absl::StartsWith(shown, "refs/heads/")) shown = shown.substr(strlen("refs/heads/"));
  } else if (absl::StartsWith(base_branch, "refs/")) {
    candidates.push_back(base_branch);
  } else {
    candidates.push_back(absl::StrCat("refs/heads/", base_branch));
    candidates.push_back(absl::StrCat("refs/remotes/origin/", base_branch));
  }
  for (const std::string& name : candidates) {
    int valid = 0;
    if (git_reference_name_is_valid(&valid, name.c_str()) < 0 || !valid) {
      return absl::InvalidArgumentError(
          absl::StrCat("base branch \"", shown, "\" is not a valid branch name"));
    }
    git_reference* raw = nullptr;
    int rc = git_reference_lookup(&raw, repo, name.c_str());
    if (rc == GIT_ENOTFOUND) continue;
    if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read base branch \"", shown, "\""));
    Reference ref(raw);
    git_object* obj = nullptr;
    rc = git_reference_peel(&obj, ref.get(), GIT_OBJECT_COMMIT);
    if (rc == GIT_ENOTFOUND) continue;  // a symbolic ref to a branch with no commit yet
    if (rc < 0) return GitStatus(rc, absl::StrCat("base branch \"", shown, "\" names no commit"));
    Object commit(obj);
    return OidHex(*git_object_id(commit.get()));
  }
  return absl::NotFoundError(
      absl::StrCat("base branch \"", shown, "\" not found (or it has no commit yet)"));
}

}  // namespace harness::git
