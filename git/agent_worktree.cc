// AgentWorktree (see agent_worktree.h).
//
// libgit2 1.5's git_worktree_add cannot add a detached worktree: it checks out either a new
// branch named like the worktree (which could collide with harness-attempt/...) or a branch
// given in the options, which must not be checked out elsewhere. So the add goes through a
// private branch refs/heads/harness-worktree-add/<agent-id>, made at the repository's HEAD
// commit just before the add; the new worktree's HEAD is then detached and the branch deleted,
// all under the registry lock (so any such branch found later is debris of a crash, removed by
// the next add or prune). The add itself checks nothing out (GIT_CHECKOUT_NONE): the first
// Prepare writes the files, so the registry lock is held for milliseconds, not for a checkout.
#include "git/agent_worktree.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/ids.h"

namespace harness::git {
namespace fs = std::filesystem;
namespace {

constexpr char kRegistryLockFile[] = "harness-worktrees.lock";
constexpr char kAddBranchPrefix[] = "harness-worktree-add/";

// Opens (or creates) `path` and takes an exclusive flock on it, waiting for it if `wait`.
// Unavailable when another open file description holds it and !wait; NotFound when the file
// is missing and !create.
absl::StatusOr<UniqueFd> LockFile(const std::string& path, bool wait, bool create) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open lock file", path);
  int rc;
  do {
    rc = ::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EWOULDBLOCK) return absl::UnavailableError(absl::StrCat(path, " is held"));
    return ErrnoStatus(errno, "cannot lock", path);
  }
  return fd;
}

// Whether `index` holds exactly `tree`: the same paths, ids and modes, no conflict, and no
// entry flagged by the command's own git (assume-unchanged, skip-worktree, intent-to-add),
// which would hide a change from the next CommitAll.
absl::StatusOr<bool> IndexHoldsTree(git_repository* repo, git_index* index, git_tree* tree) {
  if (git_index_has_conflicts(index)) return false;
  const size_t n = git_index_entrycount(index);
  for (size_t i = 0; i < n; ++i) {
    const git_index_entry* e = git_index_get_byindex(index, i);
    if ((e->flags & (GIT_INDEX_ENTRY_VALID | GIT_INDEX_ENTRY_EXTENDED)) != 0) return false;
  }
  git_diff* diff_raw = nullptr;
  int rc = git_diff_tree_to_index(&diff_raw, repo, tree, index, nullptr);
  if (rc < 0) return GitStatus(rc, "cannot compare the index with the base tree");
  const size_t deltas = git_diff_num_deltas(diff_raw);
  git_diff_free(diff_raw);
  return deltas == 0;
}

// Clears what the command's own git may have set on entries that read_tree keeps:
// assume-unchanged (it would hide the next item's change to the file from CommitAll),
// skip-worktree and intent-to-add.
absl::Status ClearEntryFlags(git_index* index) {
  const size_t n = git_index_entrycount(index);
  for (size_t i = 0; i < n; ++i) {
    const git_index_entry* e = git_index_get_byindex(index, i);
    if ((e->flags & GIT_INDEX_ENTRY_VALID) == 0 && e->flags_extended == 0) continue;
    git_index_entry copy = *e;
    copy.flags &= static_cast<uint16_t>(~(GIT_INDEX_ENTRY_VALID | GIT_INDEX_ENTRY_EXTENDED));
    copy.flags_extended = 0;
    if (absl::Status s = GitStatus(git_index_add(index, &copy),
                                   absl::StrCat("cannot reset the index entry of ", e->path));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// Removes an index the command left unreadable (it can write anything under the git dir; the
// worktree is ours alone) and empties the in-memory one.
absl::Status DropUnreadableIndex(git_repository* repo, git_index* index) {
  const std::string index_path = absl::StrCat(git_repository_path(repo), "index");
  if (::unlink(index_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "cannot remove the unreadable index", index_path);
  }
  return GitStatus(git_index_clear(index), "cannot clear the index");
}

std::string WithSlash(std::string dir) {
  if (dir.empty() || dir.back() != '/') dir.push_back('/');
  return dir;
}

std::string Canonical(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  std::string s = ec ? fs::absolute(path).lexically_normal().string() : p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

// What <folder>/.git says about the folder: it is a linked worktree whose registration is
// `entry_dir` (kOurs), it has no .git at all (kNone: a half-removed worktree), or it is
// something else (kForeign: another worktree or repository; never deleted).
enum class Gitlink { kOurs, kNone, kForeign };

Gitlink ReadGitlink(const std::string& folder, const std::string& entry_dir) {
  std::string dotgit = folder + "/.git";
  std::error_code ec;
  fs::file_status st = fs::symlink_status(dotgit, ec);
  if (!fs::exists(st)) return Gitlink::kNone;
  if (!fs::is_regular_file(st)) return Gitlink::kForeign;
  absl::StatusOr<std::string> content = ReadFile(dotgit);
  if (!content.ok()) return Gitlink::kForeign;
  absl::string_view line = absl::StripAsciiWhitespace(*content);
  if (!absl::ConsumePrefix(&line, "gitdir:")) return Gitlink::kForeign;
  line = absl::StripAsciiWhitespace(line);
  return Canonical(std::string(line)) == Canonical(entry_dir) ? Gitlink::kOurs : Gitlink::kForeign;
}

// A registered worktree folder may be deleted unless it is "/" or holds the repository itself.
bool SafeToDelete(const std::string& folder, const std::string& commondir) {
  std::string f = Canonical(folder);
  if (f == "/" || f.empty()) return false;
  return !absl::StartsWith(WithSlash(Canonical(commondir)), WithSlash(f));
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", ec.message()));
  return absl::OkStatus();
}

// Gives the owner full access to every folder under `root` (the top-level .git left alone,
// symbolic links never followed), so a leftover inside a read-only folder can be deleted.
void MakeFoldersWritable(const std::string& root, bool top = true) {
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (top && e.path().filename() == ".git") continue;
    if (!e.is_directory(ec) || e.is_symlink(ec)) continue;
    fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    MakeFoldersWritable(e.path().string(), false);
  }
}

// Deletes a branch by full name if it exists (git_reference_delete, not git_branch_delete:
// the latter refuses a branch that a worktree's HEAD still names).
absl::Status DeleteRefIfPresent(git_repository* repo, const std::string& name) {
  git_reference* raw = nullptr;
  int rc = git_reference_lookup(&raw, repo, name.c_str());
  if (rc == GIT_ENOTFOUND) return absl::OkStatus();
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read ", name));
  Reference ref(raw);
  rc = git_reference_delete(ref.get());
  if (rc == GIT_ENOTFOUND) return absl::OkStatus();
  return GitStatus(rc, absl::StrCat("cannot delete ", name));
}

// Removes the worktree `name` of `repo` for good: registration (through git_worktree_prune
// when libgit2 can open it) and folder (only if its .git points back at the registration or
// is gone). Also handles registrations libgit2 cannot open (a failed add).
absl::Status RemoveEntry(git_repository* repo, const std::string& commondir,
                         const std::string& name) {
  const std::string entry_dir = commondir + "worktrees/" + name;
  std::string folder;
  if (absl::StatusOr<std::string> gitdir = ReadFile(entry_dir + "/gitdir"); gitdir.ok()) {
    std::string dotgit(absl::StripAsciiWhitespace(*gitdir));
    if (!dotgit.empty()) folder = fs::path(dotgit).parent_path().string();
  }
  const Gitlink link = folder.empty() ? Gitlink::kForeign : ReadGitlink(folder, entry_dir);
  const bool delete_folder = !folder.empty() && link != Gitlink::kForeign &&
                             SafeToDelete(folder, commondir) && Exists(folder);

  if (delete_folder) MakeFoldersWritable(folder);
  git_worktree* raw = nullptr;
  if (git_worktree_lookup(&raw, repo, name.c_str()) == 0) {
    Worktree wt(raw);
    git_worktree_unlock(wt.get());
    git_worktree_prune_options opts = GIT_WORKTREE_PRUNE_OPTIONS_INIT;
    opts.flags = GIT_WORKTREE_PRUNE_VALID | GIT_WORKTREE_PRUNE_LOCKED |
                 (delete_folder && link == Gitlink::kOurs ? GIT_WORKTREE_PRUNE_WORKING_TREE : 0);
    // A failure here is finished by hand below.
    git_worktree_prune(wt.get(), &opts);
  }
  if (delete_folder && Exists(folder)) {
    if (absl::Status s = RemoveAll(folder); !s.ok()) return s;
  }
  if (Exists(entry_dir)) return RemoveAll(entry_dir);
  return absl::OkStatus();
}

// A registration libgit2 counts as a worktree: it has commondir, gitdir and HEAD.
bool IsWorktreeDir(const std::string& entry_dir) {
  return Exists(entry_dir + "/commondir") && Exists(entry_dir + "/gitdir") &&
         Exists(entry_dir + "/HEAD");
}

// Removes the "harness-*" registrations (with their folders) whose agent is gone: its liveness
// lock can be taken, or is missing (an add that never finished: it would hold the registry
// lock otherwise). With only_broken, only those libgit2 cannot open as worktrees. The caller
// holds the registry lock. Returns how many were removed; failures go to *first_error.
int PruneDeadEntries(git_repository* repo, const std::string& commondir, bool only_broken,
                     absl::Status* first_error) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(commondir + "worktrees", ec)) {
    std::string name = e.path().filename().string();
    if (absl::StartsWith(name, kWorktreePrefix)) names.push_back(std::move(name));
  }
  int removed = 0;
  for (const std::string& name : names) {
    const std::string entry_dir = commondir + "worktrees/" + name;
    if (only_broken && IsWorktreeDir(entry_dir)) continue;
    absl::StatusOr<UniqueFd> lock = LockFile(entry_dir + "/" + kAgentLockFile, false, false);
    if (absl::IsUnavailable(lock.status())) continue;  // a live agent
    if (!lock.ok() && !absl::IsNotFound(lock.status())) {
      first_error->Update(lock.status());
      continue;
    }
    absl::Status s = RemoveEntry(repo, commondir, name);
    if (s.ok()) {
      ++removed;
    } else {
      first_error->Update(s);
    }
  }
  return removed;
}

// The registrations libgit2 1.5 lists although they are not worktrees. Its git_worktree_list
// drops a broken entry from a vector while iterating over it, so the entry right after a
// broken one is never checked; git_branch_is_checked_out then reports every branch as checked
// out and git_worktree_add with a branch fails ("reference is already checked out").
std::vector<std::string> PhantomWorktrees(git_repository* repo, const std::string& commondir) {
  std::vector<std::string> out;
  git_strarray names = {nullptr, 0};
  if (git_worktree_list(&names, repo) < 0) return out;
  for (size_t i = 0; i < names.count; ++i) {
    if (!IsWorktreeDir(commondir + "worktrees/" + names.strings[i]))
      out.emplace_back(names.strings[i]);
  }
  git_strarray_dispose(&names);
  return out;
}

// Makes way for a new worktree at `dir`: nothing there, an empty folder, or an old worktree
// of this agent (its .git points at `entry_dir`). Anything else is refused.
absl::Status ClearTarget(const std::string& dir, const std::string& entry_dir,
                         const std::string& agent_id) {
  std::error_code ec;
  if (!Exists(dir)) return absl::OkStatus();
  if (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)) return RemoveAll(dir);
  if (fs::is_directory(dir, ec) && ReadGitlink(dir, entry_dir) == Gitlink::kOurs) {
    return RemoveAll(dir);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("folder ", dir, " exists and is not the worktree of agent ", agent_id,
                   ": remove it or choose another folder"));
}

// Records who holds the liveness lock, for people reading the file (liveness is the flock).
void WriteHolder(int fd, const std::string& agent_id) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  std::string text = absl::StrCat("agent ", agent_id, " pid ", getpid(), " host ", host, "\n");
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, text.data(), text.size(), 0);
}

absl::StatusOr<Repository> OpenUserRepository(const std::string& repo_path) {
  absl::StatusOr<Repository> repo = OpenRepository(repo_path);
  if (!repo.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("repository \"", repo_path, "\" cannot be opened: ", repo.status().message()));
  }
  return repo;
}

std::string OneLine(absl::string_view s) {
  std::string out(absl::StripAsciiWhitespace(s));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// Title, blank line, the first kPromptLinesInMessage lines of the prompt (blank lines at its
// ends dropped), blank line, trailers.
std::string CommitMessage(const CommitInfo& info, const std::string& agent) {
  std::string title = OneLine(info.title);
  if (title.empty()) title = absl::StrCat("harness item ", info.item_id);
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(info.prompt, '\n')) {
    if (lines.size() == static_cast<size_t>(kPromptLinesInMessage)) break;
    lines.emplace_back(absl::StripTrailingAsciiWhitespace(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  std::string msg = absl::StrCat(title, "\n\n");
  if (first < lines.size()) {
    for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&msg, lines[i], "\n");
    msg.push_back('\n');
  }
  absl::StrAppend(&msg, "Harness-Item: ", info.item_id, "\n", "Harness-Attempt: ", info.attempt,
                  "\n", "Harness-Lease: ", OneLine(info.lease_token), "\n",
                  "Harness-Agent: ", agent, "\n");
  return msg;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentWorktree>> AgentWorktree::OpenLinked(
    const std::string& repo_path, const std::string& agent_id, const std::string& dir) {
  if (absl::Status s = ValidateAgentId(agent_id); !s.ok()) return s;
  if (dir.empty()) return absl::InvalidArgumentError("worktree folder is empty");
  absl::StatusOr<Repository> repo = OpenUserRepository(repo_path);
  if (!repo.ok()) return repo.status();
  const std::string commondir = WithSlash(git_repository_commondir(repo->get()));
  const std::string name = absl::StrCat(kWorktreePrefix, agent_id);
  const std::string entry_dir = commondir + "worktrees/" + name;
  const std::string abs_dir = fs::absolute(dir).lexically_normal().string();
  const std::string folder = Canonical(abs_dir);

  absl::StatusOr<UniqueFd> registry = LockFile(commondir + kRegistryLockFile, true, true);
  if (!registry.ok()) return registry.status();

  UniqueFd agent_lock;
  bool reuse = false;
  if (Exists(entry_dir)) {
    absl::StatusOr<UniqueFd> lock = LockFile(entry_dir + "/" + kAgentLockFile, false, true);
    if (absl::IsUnavailable(lock.status())) {
      return absl::FailedPreconditionError(
          absl::StrCat("agent id ", agent_id, " is in use by another live agent"));
    }
    if (!lock.ok()) return lock.status();
    // Its agent is gone: reuse the worktree if it is whole and at `dir`, else start afresh.
    git_worktree* raw = nullptr;
    if (git_worktree_lookup(&raw, repo->get(), name.c_str()) == 0) {
      Worktree wt(raw);
      reuse = git_worktree_validate(wt.get()) == 0 &&
              Canonical(git_worktree_path(wt.get())) == folder &&
              ReadGitlink(folder, entry_dir) == Gitlink::kOurs;
    }
    if (reuse) {
      agent_lock = std::move(*lock);
      // A crash between the add and the detach may have left the private add branch behind.
      const std::string branch_ref = absl::StrCat("refs/heads/", kAddBranchPrefix, agent_id);
      if (absl::Status s = DeleteRefIfPresent(repo->get(), branch_ref); !s.ok()) return s;
    } else if (absl::Status s = RemoveEntry(repo->get(), commondir, name); !s.ok()) {
      return s;
    }
  }

  if (!reuse) {
    if (absl::Status s = ClearTarget(abs_dir, entry_dir, agent_id); !s.ok()) return s;
    // Broken registrations of dead agents would trip libgit2 (PhantomWorktrees): drop them.
    absl::Status ignored;
    PruneDeadEntries(repo->get(), commondir, /*only_broken=*/true, &ignored);
    if (std::vector<std::string> phantoms = PhantomWorktrees(repo->get(), commondir);
        !phantoms.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot add worktree ", name, ": ", commondir, "worktrees holds broken entries (",
          absl::StrJoin(phantoms, ", "),
          ") that libgit2 1.5 mistakes for worktrees; remove them (git worktree prune)"));
    }
    if (absl::Status s = MakeDirs(fs::path(abs_dir).parent_path().string()); !s.ok()) return s;
    git_object* head_raw = nullptr;
    int rc = git_revparse_single(&head_raw, repo->get(), "HEAD^{commit}");
    if (rc < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "repository \"", repo_path, "\" has no HEAD commit to start a worktree from"));
    }
    Object head(head_raw);
    const std::string branch = absl::StrCat(kAddBranchPrefix, agent_id);
    const std::string branch_ref = absl::StrCat("refs/heads/", branch);
    if (absl::Status s = DeleteRefIfPresent(repo->get(), branch_ref); !s.ok()) return s;
    git_reference* ref_raw = nullptr;
    rc = git_branch_create(&ref_raw, repo->get(), branch.c_str(),
                           reinterpret_cast<git_commit*>(head.get()), 1);
    if (rc < 0) return GitStatus(rc, absl::StrCat("cannot create branch ", branch));
    Reference ref(ref_raw);

    git_worktree_add_options opts = GIT_WORKTREE_ADD_OPTIONS_INIT;
    opts.ref = ref.get();
    opts.checkout_options.checkout_strategy = GIT_CHECKOUT_NONE;
    git_worktree* wt_raw = nullptr;
    rc = git_worktree_add(&wt_raw, repo->get(), name.c_str(), abs_dir.c_str(), &opts);
    Worktree wt(wt_raw);
    absl::Status status =
        GitStatus(rc, absl::StrCat("cannot add worktree ", name, " at ", abs_dir));
    if (status.ok()) {
      git_repository* wt_repo_raw = nullptr;
      rc = git_repository_open_from_worktree(&wt_repo_raw, wt.get());
      Repository wt_repo(wt_repo_raw);
      status = GitStatus(rc, absl::StrCat("cannot open worktree ", abs_dir));
      if (status.ok()) {
        status =
            GitStatus(git_repository_set_head_detached(wt_repo.get(), git_object_id(head.get())),
                      absl::StrCat("cannot detach HEAD of worktree ", abs_dir));
      }
    }
    absl::Status deleted =
        GitStatus(git_reference_delete(ref.get()), absl::StrCat("cannot delete branch ", branch));
    if (status.ok()) status = deleted;
    if (!status.ok()) {
      RemoveEntry(repo->get(), commondir, name).IgnoreError();  // no debris of our own
      return status;
    }
    absl::StatusOr<UniqueFd> lock = LockFile(entry_dir + "/" + kAgentLockFile, false, true);
    if (!lock.ok()) return lock.status();
    agent_lock = std::move(*lock);
  }
  WriteHolder(agent_lock.get(), agent_id);

  // (Re)lock the registration with our reason, so `git worktree list` names the agent.
  git_worktree* raw = nullptr;
  if (absl::Status s = GitStatus(git_worktree_lookup(&raw, repo->get(), name.c_str()),
                                 absl::StrCat("cannot open worktree ", name));
      !s.ok()) {
    return s;
  }
  Worktree wt(raw);
  git_worktree_unlock(wt.get());
  const std::string reason = absl::StrCat("harness agent ", agent_id);
  if (absl::Status s = GitStatus(git_worktree_lock(wt.get(), reason.c_str()),
                                 absl::StrCat("cannot lock worktree ", name));
      !s.ok()) {
    return s;
  }

  absl::StatusOr<Repository> wt_repo = OpenRepository(folder);
  if (!wt_repo.ok()) return wt_repo.status();
  std::unique_ptr<AgentWorktree> out(new AgentWorktree());
  out->repo_ = std::move(*wt_repo);
  out->path_ = folder;
  out->agent_id_ = agent_id;
  out->name_ = name;
  out->commondir_ = commondir;
  out->linked_ = true;
  out->agent_lock_ = std::move(agent_lock);
  return out;
}

absl::StatusOr<std::unique_ptr<AgentWorktree>> AgentWorktree::OpenClone(
    const std::string& clone_dir, const std::string& agent_id) {
  if (!agent_id.empty()) {
    if (absl::Status s = ValidateAgentId(agent_id); !s.ok()) return s;
  }
  absl::StatusOr<Repository> repo = OpenUserRepository(clone_dir);
  if (!repo.ok()) return repo.status();
  if (git_repository_is_bare(repo->get()) || git_repository_is_worktree(repo->get())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", clone_dir, "\" is not the main work tree of a clone (bare or linked worktree)"));
  }
  const std::string gitdir = WithSlash(git_repository_path(repo->get()));
  absl::StatusOr<UniqueFd> lock = LockFile(gitdir + kAgentLockFile, false, true);
  if (absl::IsUnavailable(lock.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("clone ", clone_dir, " is in use by another live agent"));
  }
  if (!lock.ok()) return lock.status();
  WriteHolder(lock->get(), agent_id);
  std::string workdir = git_repository_workdir(repo->get());
  while (workdir.size() > 1 && workdir.back() == '/') workdir.pop_back();

  std::unique_ptr<AgentWorktree> out(new AgentWorktree());
  out->repo_ = std::move(*repo);
  out->path_ = workdir;
  out->agent_id_ = agent_id;
  out->commondir_ = gitdir;
  out->linked_ = false;
  out->agent_lock_ = std::move(*lock);
  return out;
}

AgentWorktree::~AgentWorktree() = default;

absl::StatusOr<std::string> AgentWorktree::ResolveBase(const std::string& base_branch) {
  if (!repo_) return absl::FailedPreconditionError("worktree was removed");
  return ResolveBaseBranch(repo_.get(), base_branch);
}

absl::Status AgentWorktree::Prepare(const std::string& base_commit) {
  if (!repo_) return absl::FailedPreconditionError("worktree was removed");
  absl::StatusOr<git_oid> oid = ParseOid(base_commit);
  if (!oid.ok()) return oid.status();
  git_commit* commit_raw = nullptr;
  int rc = git_commit_lookup(&commit_raw, repo_.get(), &*oid);
  if (rc == GIT_ENOTFOUND) {
    return absl::NotFoundError(
        absl::StrCat("base commit ", base_commit, " is not in the repository"));
  }
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read base commit ", base_commit));
  Commit commit(commit_raw);
  git_tree* tree_raw = nullptr;
  rc = git_commit_tree(&tree_raw, commit.get());
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot read the tree of ", base_commit));
  Tree tree(tree_raw);

  // The command may have deleted or rewritten the worktree's .git file: put it back.
  if (linked_) {
    std::string gitlink = absl::StrCat("gitdir: ", git_repository_path(repo_.get()));
    while (!gitlink.empty() && gitlink.back() == '/') gitlink.pop_back();
    gitlink.push_back('\n');
    if (ReadGitlink(path_, git_repository_path(repo_.get())) != Gitlink::kOurs) {
      std::error_code ec;
      fs::remove_all(path_ + "/.git", ec);
      if (absl::Status s = WriteFileAtomically(path_ + "/.git", gitlink); !s.ok()) return s;
    }
  }

  // A git command the agent ran and that was killed may have left the index or HEAD locked;
  // the worktree is ours alone (liveness lock), so such locks are stale.
  for (const char* lock : {"index.lock", "HEAD.lock"}) {
    ::unlink(absl::StrCat(git_repository_path(repo_.get()), lock).c_str());
  }

  // The index as the command left it on disk (its own git commands may have staged things).
  git_index* index_raw = nullptr;
  rc = git_repository_index(&index_raw, repo_.get());
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot open the index of ", path_));
  Index index(index_raw);
  absl::StatusOr<bool> index_holds_tree = false;
  if (git_index_read(index.get(), /*force=*/1) < 0) {
    // Rebuilt from the base tree below.
    if (absl::Status s = DropUnreadableIndex(repo_.get(), index.get()); !s.ok()) return s;
  } else {
    index_holds_tree = IndexHoldsTree(repo_.get(), index.get(), tree.get());
    if (!index_holds_tree.ok()) return index_holds_tree.status();
  }

  // Force the work tree to the tree: only files that differ from it are rewritten (the index
  // carries their stat data), untracked and ignored ones -- folders and nested repositories
  // included -- are removed. Files rewritten are counted: their stat data changes.
  // The index is written at most once, below (each write is a new file renamed over the old).
  int rewritten = 0;
  git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
  opts.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_REMOVE_UNTRACKED |
                           GIT_CHECKOUT_REMOVE_IGNORED | GIT_CHECKOUT_DONT_WRITE_INDEX;
  opts.notify_flags =
      GIT_CHECKOUT_NOTIFY_UPDATED | GIT_CHECKOUT_NOTIFY_DIRTY | GIT_CHECKOUT_NOTIFY_CONFLICT;
  opts.notify_cb = [](git_checkout_notify_t, const char*, const git_diff_file*,
                      const git_diff_file*, const git_diff_file*, void* payload) -> int {
    ++*static_cast<int*>(payload);
    return 0;
  };
  opts.notify_payload = &rewritten;
  rc = git_checkout_tree(repo_.get(), reinterpret_cast<git_object*>(tree.get()), &opts);
  if (rc < 0) {
    // Typically a leftover in a folder the command made read-only (build caches do).
    MakeFoldersWritable(path_);
    rc = git_checkout_tree(repo_.get(), reinterpret_cast<git_object*>(tree.get()), &opts);
  }
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot check out ", base_commit, " in ", path_));

  // The index exactly the tree (whatever the agent staged), keeping the stat data of unchanged
  // entries so the next status or checkout stays cheap. Left alone when it already is and no
  // file was rewritten (an item that changed nothing): writing it costs a new file per item.
  if (!*index_holds_tree || rewritten > 0) {
    if (absl::Status s = GitStatus(git_index_read_tree(index.get(), tree.get()),
                                   "cannot set the index to the base tree");
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ClearEntryFlags(index.get()); !s.ok()) return s;
    if (absl::Status s = GitStatus(git_index_write(index.get()), "cannot write the index");
        !s.ok()) {
      return s;
    }
  }
  // HEAD already detached at the base (the usual case from one item to the next) is left
  // alone: moving it writes HEAD and its reflog.
  git_oid head;
  const bool at_base = git_repository_head_detached(repo_.get()) == 1 &&
                       git_reference_name_to_id(&head, repo_.get(), "HEAD") == 0 &&
                       git_oid_equal(&head, &*oid);
  if (!at_base) {
    if (absl::Status s = GitStatus(git_repository_set_head_detached(repo_.get(), &*oid),
                                   absl::StrCat("cannot detach HEAD at ", base_commit));
        !s.ok()) {
      return s;
    }
  }
  prepared_base_ = *oid;
  has_prepared_base_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> AgentWorktree::CommitAll(const CommitInfo& info) {
  if (!repo_) return absl::FailedPreconditionError("worktree was removed");
  const std::string agent = info.agent_id.empty() ? agent_id_ : info.agent_id;
  if (agent.empty()) return absl::InvalidArgumentError("no agent id for the result commit");
  if (absl::Status s = ValidateAgentId(agent); !s.ok()) return s;
  if (absl::Status s = ValidateItemId(info.item_id); !s.ok()) return s;
  if (info.attempt < 0) {
    return absl::InvalidArgumentError(absl::StrCat("attempt ", info.attempt, " is negative"));
  }

  git_object* head_raw = nullptr;
  int rc = git_revparse_single(&head_raw, repo_.get(), "HEAD^{commit}");
  if (rc < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("worktree ", path_, " has no HEAD commit: Prepare it first"));
  }
  Commit parent(reinterpret_cast<git_commit*>(head_raw));

  git_index* index_raw = nullptr;
  rc = git_repository_index(&index_raw, repo_.get());
  if (rc < 0) return GitStatus(rc, absl::StrCat("cannot open the index of ", path_));
  Index index(index_raw);
  // Pick up whatever the agent's own git commands staged, then `git add -A`: new and modified
  // files added, deleted ones removed; untracked ignored files skipped, tracked ones updated.
  if (git_index_read(index.get(), 1) < 0) {
    // An index the command left unreadable: what it staged is gone with it, but its files are
    // not: start from HEAD's tree and stage them all.
    git_tree* head_tree_raw = nullptr;
    rc = git_commit_tree(&head_tree_raw, parent.get());
    if (rc < 0) return GitStatus(rc, "cannot read the tree of HEAD");
    Tree head_tree(head_tree_raw);
    if (absl::Status s = DropUnreadableIndex(repo_.get(), index.get()); !s.ok()) return s;
    if (absl::Status s = GitStatus(git_index_read_tree(index.get(), head_tree.get()),
                                   "cannot set the index to HEAD's tree");
        !s.ok()) {
      return s;
    }
  }
  // A nested repository (a folder with its own .git that is not a submodule) comes as
  // "path/": its content belongs to that repository, and libgit2 cannot add it, so skip it.
  git_index_matched_path_cb skip_nested = [](const char* path, const char*, void*) -> int {
    size_t n = strlen(path);
    return n > 0 && path[n - 1] == '/' ? 1 : 0;
  };
  if (absl::Status s = GitStatus(
          git_index_add_all(index.get(), nullptr, GIT_INDEX_ADD_DEFAULT, skip_nested, nullptr),
          absl::StrCat("cannot stage the changes in ", path_));
      !s.ok()) {
    return s;
  }
  git_oid tree_oid;
  if (absl::Status s = GitStatus(git_index_write_tree(&tree_oid, index.get()),
                                 "cannot write the tree of the index");
      !s.ok()) {
    return s;
  }
  // "No change" is measured against the prepared base, so commits the command made itself
  // still count (and a change it committed and then reverted does not). With no change the
  // index is not written: the next Prepare() sets it to its base anyway.
  if (has_prepared_base_ && !git_oid_equal(&prepared_base_, git_commit_id(parent.get()))) {
    git_commit* base_raw = nullptr;
    rc = git_commit_lookup(&base_raw, repo_.get(), &prepared_base_);
    if (rc < 0) return GitStatus(rc, "cannot read the prepared base commit");
    Commit base(base_raw);
    if (git_oid_equal(&tree_oid, git_commit_tree_id(base.get()))) return std::string();
  } else if (git_oid_equal(&tree_oid, git_commit_tree_id(parent.get()))) {
    return std::string();
  }
  if (absl::Status s = GitStatus(git_index_write(index.get()), "cannot write the index"); !s.ok()) {
    return s;
  }

  git_tree* tree_raw = nullptr;
  rc = git_tree_lookup(&tree_raw, repo_.get(), &tree_oid);
  if (rc < 0) return GitStatus(rc, "cannot read the tree of the index");
  Tree tree(tree_raw);

  const std::string name =
      info.author_name.empty() ? absl::StrCat("Harness Agent ", agent) : info.author_name;
  const std::string email =
      info.author_email.empty() ? absl::StrCat(agent, "@harness.local") : info.author_email;
  git_signature* sig_raw = nullptr;
  rc = git_signature_now(&sig_raw, name.c_str(), email.c_str());
  if (rc < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("author \"", name, " <", email, ">\" is not a valid git signature"));
  }
  Signature sig(sig_raw);

  const std::string message = CommitMessage(info, agent);
  const git_commit* parents[] = {parent.get()};
  git_oid commit_oid;
  // No ref is updated by the commit itself: HEAD is detached afterwards, so a branch the agent
  // command may have checked out is never moved.
  rc = git_commit_create(&commit_oid, repo_.get(), nullptr, sig.get(), sig.get(), nullptr,
                         message.c_str(), tree.get(), 1, parents);
  if (rc < 0) return GitStatus(rc, "cannot create the result commit");
  if (absl::Status s = GitStatus(git_repository_set_head_detached(repo_.get(), &commit_oid),
                                 "cannot move HEAD to the result commit");
      !s.ok()) {
    return s;
  }
  return OidHex(commit_oid);
}

absl::Status AgentWorktree::Remove() {
  if (!repo_) return absl::FailedPreconditionError("worktree was already removed");
  repo_.reset();
  if (!linked_) {
    agent_lock_.Reset();
    return absl::OkStatus();
  }
  absl::StatusOr<UniqueFd> registry = LockFile(commondir_ + kRegistryLockFile, true, true);
  if (!registry.ok()) return registry.status();
  absl::StatusOr<Repository> main = OpenRepository(commondir_);
  if (!main.ok()) return main.status();
  absl::Status s = RemoveEntry(main->get(), commondir_, name_);
  agent_lock_.Reset();
  return s;
}

absl::StatusOr<int> PruneDeadWorktrees(const std::string& repo_path) {
  absl::StatusOr<Repository> repo = OpenUserRepository(repo_path);
  if (!repo.ok()) return repo.status();
  const std::string commondir = WithSlash(git_repository_commondir(repo->get()));
  absl::StatusOr<UniqueFd> registry = LockFile(commondir + kRegistryLockFile, true, true);
  if (!registry.ok()) return registry.status();
  absl::Status first_error;
  int removed = PruneDeadEntries(repo->get(), commondir, /*only_broken=*/false, &first_error);

  // Private add branches outlive only a crash inside OpenLinked (which holds the registry lock).
  git_reference_iterator* it_raw = nullptr;
  const std::string glob = absl::StrCat("refs/heads/", kAddBranchPrefix, "*");
  if (git_reference_iterator_glob_new(&it_raw, repo->get(), glob.c_str()) == 0) {
    std::vector<std::string> refs;
    const char* ref_name = nullptr;
    while (git_reference_next_name(&ref_name, it_raw) == 0) refs.emplace_back(ref_name);
    git_reference_iterator_free(it_raw);
    for (const std::string& r : refs) first_error.Update(DeleteRefIfPresent(repo->get(), r));
  }
  if (!first_error.ok()) return first_error;
  return removed;
}

}  // namespace harness::git
