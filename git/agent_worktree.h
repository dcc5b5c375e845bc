// AgentWorktree: the one work tree an agent runs its items in, and the commit of its result.
// A local agent gets a linked worktree of the shared repository (registered as `git worktree
// add` does, locked while the agent lives); a remote agent uses the main work tree of its own
// clone. Either way, Prepare() makes the tree an exact, clean copy of the base before each item
// and CommitAll() turns whatever the agent command did into one commit on a detached HEAD.
// Agents never write branches: the commit id goes to the controller, which sets harness/<item>
// (git/result_refs.h). Not thread-safe: one object per agent, used by one thread at a time.
//
// Liveness: the agent holds an exclusive flock(2) on <common gitdir>/worktrees/<name>/
// harness-agent.lock for as long as the object lives. flock works across processes and pid
// namespaces (containers sharing the repository), and the kernel drops it when the agent dies,
// so PruneDeadWorktrees() can tell a dead agent's worktree from a live one without pids.
// Creating, reusing, removing and pruning worktrees are serialised between processes by a
// second flock on <common gitdir>/harness-worktrees.lock (held for milliseconds).
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/file_util.h"
#include "git/git_util.h"

namespace harness::git {

// What goes into a result commit. Author and committer are both author_name/author_email.
struct CommitInfo {
  std::string item_id;
  int attempt = 0;
  std::string lease_token;
  std::string title;
  std::string prompt;        // its first kPromptLinesInMessage lines go into the message
  std::string agent_id;      // empty: the worktree's agent id
  std::string author_name;   // empty: "Harness Agent <agent-id>"
  std::string author_email;  // empty: "<agent-id>@harness.local"
};

inline constexpr int kPromptLinesInMessage = 20;
// Worktree names are this prefix plus the agent id; PruneDeadWorktrees looks only at these.
inline constexpr char kWorktreePrefix[] = "harness-";
// Per-worktree liveness lock, inside <common gitdir>/worktrees/<name>/.
inline constexpr char kAgentLockFile[] = "harness-agent.lock";

class AgentWorktree {
 public:
  // The linked worktree of the local repository `repo_path` for `agent_id`, at folder `dir`,
  // named "harness-<agent_id>": created if missing (detached HEAD; the work tree stays empty
  // until the first Prepare), reused if it exists (a dead agent with the same id left it; a
  // registration for another folder is replaced). Locked with the reason
  // "harness agent <agent_id>". InvalidArgument for a bad agent id or a repo_path that is not a
  // repository; FailedPrecondition "agent id X is in use by another live agent" when a live
  // agent holds it, or when `dir` exists and is not this agent's worktree.
  static absl::StatusOr<std::unique_ptr<AgentWorktree>> OpenLinked(const std::string& repo_path,
                                                                   const std::string& agent_id,
                                                                   const std::string& dir);

  // The same interface over the main work tree of an agent's own non-bare clone (made by
  // someone else). `agent_id`, if given, is the default for CommitInfo::agent_id. Holds the
  // liveness flock on <clone gitdir>/harness-agent.lock, so two agents never share a clone.
  static absl::StatusOr<std::unique_ptr<AgentWorktree>> OpenClone(const std::string& clone_dir,
                                                                  const std::string& agent_id = "");

  ~AgentWorktree();  // releases the liveness lock; the worktree stays (reusable, prunable)
  AgentWorktree(const AgentWorktree&) = delete;
  AgentWorktree& operator=(const AgentWorktree&) = delete;

  // Commit id at the tip of base_branch ("" = the main repository's HEAD branch); NotFound
  // naming the branch if it is missing.
  absl::StatusOr<std::string> ResolveBase(const std::string& base_branch);

  // Detached HEAD at base_commit, index and work tree forced to it, every untracked and
  // ignored file or folder removed (nested repositories included): `git checkout -f --detach
  // X && git clean -fdx`. Only files that differ are rewritten, so reuse is cheap.
  absl::Status Prepare(const std::string& base_commit);

  // Stages every change (added, modified, deleted, renamed; untracked ignored files left out,
  // tracked files stay tracked even if a .gitignore matches them; a nested repository the
  // command made is left out: its content is another repository's) and commits it on the
  // detached HEAD. Message: title, blank line, the first kPromptLinesInMessage lines of the
  // prompt, blank line, trailers Harness-Item, Harness-Attempt, Harness-Lease, Harness-Agent.
  // Returns the commit id, or "" when the tree equals the prepared base's (no commit is made).
  // Commits the agent command made itself are kept below this one; if they hold all the
  // changes, the harness commit is still made (with no change of its own) so the result
  // always carries the trailers. Never moves a branch, even one the command checked out.
  absl::StatusOr<std::string> CommitAll(const CommitInfo& info);

  // Linked worktree: unlocks it, deletes its folder and its registration, and releases the
  // liveness lock. A clone is left in place (its owner deletes it); only the lock is released.
  // The object is unusable afterwards.
  absl::Status Remove();

  // The work tree folder (absolute, no trailing slash).
  const std::string& path() const { return path_; }
  const std::string& agent_id() const { return agent_id_; }
  // "harness-<agent_id>" for a linked worktree, "" for a clone.
  const std::string& name() const { return name_; }

 private:
  AgentWorktree() = default;

  Repository repo_;
  std::string path_;
  std::string agent_id_;
  std::string name_;
  std::string commondir_;  // the shared git dir, with a trailing slash
  bool linked_ = false;
  UniqueFd agent_lock_;
  // The commit of the last Prepare: CommitAll measures "changed" against it.
  git_oid prepared_base_{};
  bool has_prepared_base_ = false;
};

// At controller and agentd start: removes every worktree named "harness-*" of `repo_path`
// whose agent is gone (its harness-agent.lock can be flocked, or is missing) -- folder and
// registration, locked or not, half-removed or with its folder missing -- and the debris of
// failed adds (<gitdir>/worktrees/harness-* entries libgit2 cannot open). A worktree whose lock
// is held by a live process, in any pid namespace, is never touched. Returns how many entries
// were removed.
absl::StatusOr<int> PruneDeadWorktrees(const std::string& repo_path);

}  // namespace harness::git
