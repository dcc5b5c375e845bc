// Small shared pieces for libgit2 use: one-time init, owning pointers for libgit2 objects and
// the conversion of libgit2 error codes into absl::Status with libgit2's own message.
// libgit2 objects are not shared across threads (TOOLCHAIN.md): open a repository per thread.
#pragma once

#include <git2.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace harness::git {

// Calls git_libgit2_init() once per process (thread-safe); later calls do nothing.
void EnsureInit();

// OK if rc >= 0, else a status whose message is "<what>: <libgit2's message>". The code
// follows the libgit2 error: GIT_ENOTFOUND -> NotFound, GIT_EEXISTS -> AlreadyExists,
// GIT_EMODIFIED/GIT_ELOCKED -> Aborted (lost a race; retry), others -> Internal.
absl::Status GitStatus(int rc, absl::string_view what);

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using Repository = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using Reference = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;
using Commit = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using Tree = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using Index = std::unique_ptr<git_index, Deleter<git_index, git_index_free>>;
using Signature = std::unique_ptr<git_signature, Deleter<git_signature, git_signature_free>>;
using Worktree = std::unique_ptr<git_worktree, Deleter<git_worktree, git_worktree_free>>;
using Object = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using Revwalk = std::unique_ptr<git_revwalk, Deleter<git_revwalk, git_revwalk_free>>;
using Packbuilder =
    std::unique_ptr<git_packbuilder, Deleter<git_packbuilder, git_packbuilder_free>>;
using Odb = std::unique_ptr<git_odb, Deleter<git_odb, git_odb_free>>;
using Remote = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;
using StatusList = std::unique_ptr<git_status_list, Deleter<git_status_list, git_status_list_free>>;

// Opens the repository at `path` (a work tree, a linked worktree or a bare repository).
absl::StatusOr<Repository> OpenRepository(const std::string& path);

// Hex of an oid, and back. ParseOid refuses anything but 40 hex digits.
std::string OidHex(const git_oid& oid);
absl::StatusOr<git_oid> ParseOid(absl::string_view hex);

// The commit id at the tip of the base branch of `repo`. `base_branch` empty: the branch HEAD
// points at (in a linked worktree: the main repository's HEAD), or, when HEAD is detached (a
// clone whose work tree was prepared), the branch refs/remotes/origin/HEAD points at. A name
// is looked up as refs/heads/<name>, then refs/remotes/origin/<name>; a full "refs/..." name
// as is. NotFound names the branch when it does not exist or has no commit yet.
absl::StatusOr<std::string> ResolveBaseBranch(git_repository* repo, const std::string& base_branch);

}  // namespace harness::git
