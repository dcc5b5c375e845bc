// A remote agent's own repository in its workdir: the objects and the few refs an agent needs
// when it does not share the controller's repository. It fills the object database from a
// FetchBase pack (BeginPack, SetBase) or from a URL (FetchFromUrl) and records the base commit
// on refs it owns (refs/harness-base/...), never on a branch.
//
// Not here: the work tree (AgentWorktree::OpenClone checks the base out), result commits and
// the RPCs. Nothing here runs the git CLI.
#pragma once

#include <git2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "git/git_util.h"
#include "git/pack_receiver.h"

namespace harness::git {

// Refs owned by AgentClone: every base it was given lives under kBaseRefPrefix; the current
// one is kCurrentBaseRef.
inline constexpr char kBaseRefPrefix[] = "refs/harness-base/";
inline constexpr char kCurrentBaseRef[] = "refs/harness-base/current";

// One agent's clone. Not thread-safe (one libgit2 repository handle).
class AgentClone {
 public:
  // Opens the repository at `dir`, or creates it there (a non-bare, empty repository; the
  // folder is created as needed) when `dir` holds none.
  static absl::StatusOr<std::unique_ptr<AgentClone>> Open(const std::string& dir);

  git_repository* repo() const { return repo_.get(); }
  const std::string& dir() const { return dir_; }

  // The commits this clone already has, to send as FetchBase `haves`: the targets of the refs
  // under refs/harness-base/ and HEAD's commit if HEAD resolves. A handful of ids; empty for a
  // new clone (or if the refs cannot be read: the answer is then a full pack, never a wrong one).
  std::vector<std::string> Haves();

  // Starts receiving a FetchBase pack into this clone's object database (see PackReceiver);
  // SetBase once it is committed.
  absl::StatusOr<std::unique_ptr<PackReceiver>> BeginPack(uint64_t max_bytes);

  // Records `commit` as the current base (refs/harness-base/current). InvalidArgument for a
  // malformed id or a non-commit; NotFound when the commit is not in the clone (the pack that
  // should have brought it was not applied).
  absl::Status SetBase(const std::string& commit);

  // The current base commit; NotFound when none was set.
  absl::StatusOr<std::string> Base();

  // Fetches `base_ref` from `url` (anything libgit2 can fetch: file:// URLs and plain paths
  // included) and records its commit as the current base, returned in `base_commit`.
  // `base_ref` is a full ref name ("refs/heads/main"), a branch name ("main"), or "" / "HEAD"
  // for the remote's HEAD. Only the objects are fetched: no FETCH_HEAD, no remote-tracking
  // branch, no tags. Errors: Unavailable "cannot fetch from ...: <libgit2's message>" when the
  // URL cannot be reached or read; NotFound when the remote has no such ref.
  absl::Status FetchFromUrl(const std::string& url, const std::string& base_ref,
                            std::string* base_commit);

 private:
  AgentClone(std::string dir, Repository repo) : dir_(std::move(dir)), repo_(std::move(repo)) {}

  std::string dir_;
  Repository repo_;
};

}  // namespace harness::git
