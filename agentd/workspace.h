// Workspace: the folder an item's command runs in, and what becomes of the work done there.
// No gRPC here: the git transport goes through ControllerApi (controller_api.h).
//
// Modes (`agentd --repo`):
//   * --repo PATH (a local repository, shared with the controller): one linked worktree per
//     agent at <workdir>/worktree, registered as `git worktree add` does and locked with the
//     reason "harness agent <id>" while the agent lives; made once and reused. At start the
//     worktrees of agents that are gone are pruned (never a live agent's). Objects are shared
//     with the repository, so a result needs no transfer.
//   * no --repo: the agent's own clone at <workdir>/clone. When it lacks the lease's base
//     commit it gets a pack of just the objects it lacks from the controller (FetchBase, with
//     the commits it has as haves), so later items fetch only the increment. Results go back
//     as a pack of the new commits (UploadResult, haves = the base).
//   * --repo URL (anything libgit2 fetches, file:// included): as without --repo, but the base
//     is fetched from the URL (Lease.base_ref). Should the URL not have the lease's base commit
//     (or not answer), it comes from the controller instead. Results go through the controller.
// Before each item the work tree is forced to exactly Lease.base_commit (detached HEAD) and
// every untracked and ignored file is removed, so nothing leaks from one item to the next. A
// lease without a base commit (a controller without a repository) runs in the plain
// <workdir>/work, emptied, in every mode.
//
// After the command, Finish() commits every change (git/agent_worktree.h CommitAll: author
// "Harness Agent <id>" <id>@harness.local unless configured, trailers Harness-Item, -Attempt,
// -Lease, -Agent) and, for a clone, uploads it; it returns the commit the controller can now
// see ("" when the command changed nothing).
//
// Not thread-safe: the agent's main loop alone uses it (libgit2 handles are not shared).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agentd/controller_api.h"
#include "agentd/work_dir.h"
#include "harness/v1/agent.pb.h"

namespace harness::agentd {

enum class RepoMode {
  kController,  // no --repo: the base comes from the controller
  kLocal,       // --repo PATH: linked worktrees of a local repository
  kUrl,         // --repo URL: the base comes from that URL
};

// "" -> kController. A URL: contains "://", starts with "file:", or is scp-like ("host:path",
// a ':' before any '/') and names no existing file -> kUrl. Anything else is a PATH -> kLocal.
RepoMode ClassifyRepo(const std::string& repo);

// What Register tells the controller (RegisterRequest.capabilities.repo_access).
v1::RepoAccess RepoAccessOf(RepoMode mode);

// For --repo PATH, at start: OK if `path` opens as a git repository; otherwise
// InvalidArgument "--repo \"PATH\" is not a git repository: <why>".
absl::Status CheckLocalRepository(const std::string& path);

struct WorkspaceOptions {
  std::string agent_id;
  std::string repo;          // --repo: "", a PATH or a URL
  std::string author_name;   // "": "Harness Agent <agent_id>"
  std::string author_email;  // "": "<agent_id>@harness.local"
  // The largest FetchBase pack accepted when the controller does not announce its size.
  uint64_t max_fetch_bytes = uint64_t{8} << 30;
};

// The agent's retry policy for a call to the controller: runs `attempt` until it succeeds or
// fails for good (backing off through outages, giving up when the lease ends or the agent's
// stop grace has passed). `fenced`: FAILED_PRECONDITION means the lease is not live.
using RetryFn = std::function<absl::Status(absl::string_view what, bool fenced,
                                           const std::function<absl::Status()>& attempt)>;

// The outcome of Finish().
struct FinishResult {
  // The commit of the work, present in the controller's repository (shared, or uploaded);
  // "" when there is none (no change, the plain work dir, or `status` is not OK).
  std::string commit;
  // Why the work could not be handed in (committing or uploading failed); OK otherwise.
  absl::Status status;
  // The controller refused the upload because the lease is not live (or it ended while
  // retrying): drop the result, report nothing.
  bool lease_lost = false;
};

class Workspace {
 public:
  virtual ~Workspace() = default;

  // Once, at start, before the agent registers: --repo PATH prunes dead agents' worktrees and
  // creates (or reuses) this agent's; a clone is opened (created if missing) and locked.
  // An error here is fatal (e.g. "agent id X is in use by another live agent").
  virtual absl::Status Open() = 0;

  // Readies the folder for one attempt and returns it (absolute).
  virtual absl::StatusOr<std::string> Prepare(const v1::Lease& lease) = 0;

  // The commit the last successful Prepare checked out ("" for the plain work dir). Normally
  // Lease.base_commit; see the --repo URL fallback above.
  virtual const std::string& base_commit() const = 0;

  // After the command (not after a dropped lease): commits every change and, for a clone,
  // uploads it. `success`: the command exited 0 (only the commit message would differ; the
  // work is kept either way). Nothing to do after a failed Prepare or in the plain work dir.
  virtual FinishResult Finish(const v1::Lease& lease, bool success) = 0;

  // On exit: a linked worktree is removed (folder and registration); a clone stays for the
  // next start, its lock released. The object is unusable afterwards.
  virtual absl::Status Close() = 0;

  // One line for the start log: "linked worktree of /repo at ...", ...
  virtual std::string Describe() const = 0;
};

// The workspace for `options.repo`. `work_dir` (initialised), `controller` and `retry` must
// outlive it.
std::unique_ptr<Workspace> NewWorkspace(const WorkspaceOptions& options, WorkDir* work_dir,
                                        ControllerApi* controller, RetryFn retry);

// Only the plain work dir, whatever the lease says (tests; agents use NewWorkspace).
std::unique_ptr<Workspace> NewPlainWorkspace(WorkDir* work_dir);

}  // namespace harness::agentd
