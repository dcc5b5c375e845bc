// The git workspaces (see workspace.h): a linked worktree of a local repository, or the
// agent's own clone filled from the controller (FetchBase) or from a URL. Results are
// committed with git/agent_worktree.h and, from a clone, uploaded (UploadResult).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agentd/plain_workspace.h"
#include "agentd/workspace.h"
#include "core/file_util.h"
#include "core/log.h"
#include "git/agent_clone.h"
#include "git/agent_worktree.h"
#include "git/git_util.h"
#include "git/pack_builder.h"
#include "git/pack_receiver.h"

namespace harness::agentd {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::string s = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (ec) s = path;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

std::string Short(const std::string& commit) { return commit.substr(0, 12); }

// Whether `repo` has the commit `hex` (and so, as packs and fetches are stored whole with
// their connectivity checked, everything it needs).
bool HasCommit(git_repository* repo, const std::string& hex) {
  absl::StatusOr<git_oid> oid = git::ParseOid(hex);
  if (!oid.ok()) return false;
  git_commit* commit = nullptr;
  if (git_commit_lookup(&commit, repo, &*oid) != 0) {
    git_error_clear();
    return false;
  }
  git_commit_free(commit);
  return true;
}

absl::Status Annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

class GitWorkspace : public Workspace {
 public:
  GitWorkspace(RepoMode mode, WorkspaceOptions options, WorkDir* work_dir,
               ControllerApi* controller, RetryFn retry)
      : mode_(mode),
        options_(std::move(options)),
        work_dir_(work_dir),
        controller_(controller),
        retry_(std::move(retry)),
        plain_(work_dir) {
    if (mode_ == RepoMode::kLocal) repo_path_ = AbsolutePath(options_.repo);
  }

  absl::Status Open() override;
  absl::StatusOr<std::string> Prepare(const v1::Lease& lease) override;
  const std::string& base_commit() const override { return base_; }
  FinishResult Finish(const v1::Lease& lease, bool success) override;
  absl::Status Close() override;
  std::string Describe() const override;

 private:
  // Makes sure the clone has `want` (a commit id): from the controller, as a pack of what
  // the clone lacks.
  absl::Status FetchFromController(const std::string& want);
  // Opens (or creates) the clone and locks it.
  absl::Status OpenClone();
  // Whether the clone's repository is still there: the command runs in its work tree and may
  // have deleted .git (git clean cannot, rm -rf can).
  bool CloneIntact() const;
  // Replaces a damaged clone by a new, empty one.
  absl::Status RecreateClone();
  // --repo URL: the base for `lease` (normally its base commit) into the clone; returns the
  // commit to check out.
  absl::StatusOr<std::string> FetchForUrl(const v1::Lease& lease);
  // Sends the commits from base_ to `commit` to the controller.
  absl::Status Upload(const v1::Lease& lease, const std::string& commit);

  const RepoMode mode_;
  const WorkspaceOptions options_;
  WorkDir* const work_dir_;
  ControllerApi* const controller_;
  const RetryFn retry_;
  PlainWorkspace plain_;
  std::string repo_path_;  // kLocal: --repo, absolute

  std::unique_ptr<git::AgentWorktree> worktree_;
  std::unique_ptr<git::AgentClone> clone_;  // kController, kUrl
  bool closed_ = false;

  // The current item.
  bool plain_item_ = false;  // the lease had no base commit
  bool prepared_ = false;
  std::string base_;
};

absl::Status GitWorkspace::Open() {
  if (mode_ == RepoMode::kLocal) {
    absl::StatusOr<int> pruned = git::PruneDeadWorktrees(repo_path_);
    if (!pruned.ok()) {
      // Not fatal: a worktree we could not prune is no reason not to work.
      LogWarning(absl::StrCat("cannot prune the worktrees of dead agents in ", repo_path_, ": ",
                              pruned.status().message()));
    } else if (*pruned > 0) {
      LogInfo(absl::StrCat("pruned ", *pruned, " worktree(s) of agents that are gone from ",
                           repo_path_));
    }
    absl::StatusOr<std::unique_ptr<git::AgentWorktree>> wt =
        git::AgentWorktree::OpenLinked(repo_path_, options_.agent_id, work_dir_->worktree_path());
    if (!wt.ok()) {
      return Annotate(wt.status(), absl::StrCat("cannot set up the worktree of ", repo_path_,
                                                " at ", work_dir_->worktree_path()));
    }
    worktree_ = *std::move(wt);
    return absl::OkStatus();
  }
  return OpenClone();
}

absl::Status GitWorkspace::OpenClone() {
  const std::string dir = work_dir_->clone_path();
  absl::StatusOr<std::unique_ptr<git::AgentClone>> clone = git::AgentClone::Open(dir);
  if (!clone.ok()) return Annotate(clone.status(), "cannot set up the clone");
  absl::StatusOr<std::unique_ptr<git::AgentWorktree>> wt =
      git::AgentWorktree::OpenClone(dir, options_.agent_id);
  if (!wt.ok()) return Annotate(wt.status(), "cannot set up the clone");
  clone_ = *std::move(clone);
  worktree_ = *std::move(wt);
  // Packs a crashed run of this agent was receiving (the clone is ours alone: we hold its lock).
  absl::StatusOr<int> removed = git::RemoveAbandonedIncomingPacks(clone_->repo());
  if (!removed.ok()) {
    LogWarning(absl::StrCat("cannot remove abandoned incoming packs in ", dir, ": ",
                            removed.status().message()));
  }
  return absl::OkStatus();
}

bool GitWorkspace::CloneIntact() const {
  const std::string git_dir = work_dir_->clone_path() + "/.git";
  struct stat st;
  for (const char* sub : {"", "/objects", "/refs"}) {
    if (lstat((git_dir + sub).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  }
  return lstat((git_dir + "/HEAD").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::Status GitWorkspace::RecreateClone() {
  const std::string dir = work_dir_->clone_path();
  LogWarning(absl::StrCat("the clone at ", dir,
                          " lost its repository (the last command deleted .git?): starting a new "
                          "one, which fetches the whole base again"));
  worktree_.reset();
  clone_.reset();
  if (Exists(dir)) {
    if (absl::Status s = EmptyDirectory(dir); !s.ok()) return s;
  }
  return OpenClone();
}

std::string GitWorkspace::Describe() const {
  switch (mode_) {
    case RepoMode::kLocal:
      return absl::StrCat("linked worktree of ", repo_path_, " at ", work_dir_->worktree_path());
    case RepoMode::kUrl:
      return absl::StrCat("clone at ", work_dir_->clone_path(), ", base fetched from ",
                          options_.repo);
    case RepoMode::kController:
      break;
  }
  return absl::StrCat("clone at ", work_dir_->clone_path(), ", base fetched from the controller");
}

absl::StatusOr<std::string> GitWorkspace::Prepare(const v1::Lease& lease) {
  prepared_ = false;
  base_.clear();
  plain_item_ = lease.base_commit().empty();
  if (plain_item_) return plain_.Prepare(lease);
  if (closed_) return absl::FailedPreconditionError("the workspace is closed");
  if (absl::StatusOr<git_oid> oid = git::ParseOid(lease.base_commit()); !oid.ok()) {
    return Annotate(oid.status(), "the lease's base commit");
  }
  if (mode_ != RepoMode::kLocal && (clone_ == nullptr || !CloneIntact())) {
    if (absl::Status s = RecreateClone(); !s.ok()) return s;
  }
  if (worktree_ == nullptr) return absl::FailedPreconditionError("the worktree is not open");
  std::string base = lease.base_commit();
  switch (mode_) {
    case RepoMode::kLocal:
      break;  // the objects are the repository's
    case RepoMode::kController:
      if (!HasCommit(clone_->repo(), base)) {
        if (absl::Status s = FetchFromController(base); !s.ok()) return s;
      }
      break;
    case RepoMode::kUrl: {
      absl::StatusOr<std::string> got = FetchForUrl(lease);
      if (!got.ok()) return got.status();
      base = *std::move(got);
      break;
    }
  }
  if (clone_ != nullptr) {
    // Recorded as the current base: the next FetchBase names it among its haves.
    if (absl::Status s = clone_->SetBase(base); !s.ok()) return s;
  }
  absl::Status s = worktree_->Prepare(base);
  if (absl::IsNotFound(s) && mode_ == RepoMode::kLocal) {
    return absl::NotFoundError(
        absl::StrCat("base commit ", base, " is not in ", repo_path_,
                     ": --repo PATH must be the controller's repository (or share its objects)"));
  }
  if (!s.ok()) return s;
  base_ = base;
  prepared_ = true;
  return worktree_->path();
}

absl::Status GitWorkspace::FetchFromController(const std::string& want) {
  v1::FetchBaseRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_want(want);
  for (std::string& have : clone_->Haves()) request.add_haves(std::move(have));

  v1::FetchBaseHeader header;
  git::PackStats stats;
  absl::Status s = retry_("fetch", /*fenced=*/false, [&]() -> absl::Status {
    std::unique_ptr<git::PackReceiver> receiver;  // a fresh one per attempt
    header.Clear();
    absl::Status call = controller_->FetchBase(
        request,
        [&](const v1::FetchBaseHeader& h) -> absl::Status {
          header = h;
          uint64_t limit =
              h.pack_size() > 0 ? static_cast<uint64_t>(h.pack_size()) : options_.max_fetch_bytes;
          absl::StatusOr<std::unique_ptr<git::PackReceiver>> rx = clone_->BeginPack(limit);
          if (!rx.ok()) return rx.status();
          receiver = *std::move(rx);
          return absl::OkStatus();
        },
        [&](absl::string_view chunk) { return receiver->Append(chunk); });
    if (!call.ok()) return call;
    if (header.pack_size() > 0 &&
        receiver->received_bytes() != static_cast<uint64_t>(header.pack_size())) {
      return absl::DataLossError(absl::StrCat("the controller announced a pack of ",
                                              header.pack_size(), " bytes and sent ",
                                              receiver->received_bytes()));
    }
    absl::StatusOr<git::PackStats> committed = receiver->Commit();
    if (!committed.ok()) return committed.status();
    stats = *committed;
    return absl::OkStatus();
  });
  if (!s.ok())
    return Annotate(s, absl::StrCat("cannot fetch base commit ", want, " from the controller"));
  if (!header.base_commit().empty() && header.base_commit() != want) {
    LogWarning(
        absl::StrCat("FetchBase for ", want, " answered base commit ", header.base_commit()));
  }
  if (!HasCommit(clone_->repo(), want)) {
    return absl::DataLossError(
        absl::StrCat("the controller's pack for base commit ", want, " did not bring it"));
  }
  LogInfo(absl::StrCat("fetched base ", Short(want), " from the controller: ", stats.objects,
                       " object(s), ", stats.bytes, " bytes (", request.haves_size(),
                       " commit(s) already here)"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> GitWorkspace::FetchForUrl(const v1::Lease& lease) {
  const std::string& want = lease.base_commit();
  if (HasCommit(clone_->repo(), want)) return want;
  std::string fetched;
  absl::Status s = clone_->FetchFromUrl(options_.repo, lease.base_ref(), &fetched);
  if (s.ok()) {
    if (HasCommit(clone_->repo(), want)) {
      LogInfo(absl::StrCat("fetched base ", Short(want), " (", lease.base_ref(), ") from ",
                           options_.repo));
      return want;
    }
    LogWarning(absl::StrCat(options_.repo, " has ",
                            lease.base_ref().empty() ? "HEAD" : lease.base_ref(), " at ",
                            Short(fetched), ", not at the lease's base ", Short(want),
                            ": fetching the base from the controller"));
  } else {
    LogWarning(absl::StrCat("cannot fetch the base from ", options_.repo, " (", s.message(),
                            "): fetching it from the controller"));
  }
  absl::Status from_controller = FetchFromController(want);
  if (from_controller.ok()) return want;
  // The controller cannot serve it either: what the URL has is the best there is.
  if (!fetched.empty() &&
      (absl::IsFailedPrecondition(from_controller) || absl::IsUnimplemented(from_controller) ||
       absl::IsNotFound(from_controller))) {
    LogWarning(absl::StrCat("starting from ", Short(fetched), " (", options_.repo,
                            ") instead of the lease's base ", Short(want), ": ",
                            from_controller.message()));
    return fetched;
  }
  if (!s.ok()) {
    return absl::Status(from_controller.code(),
                        absl::StrCat(s.message(), "; and ", from_controller.message()));
  }
  return from_controller;
}

FinishResult GitWorkspace::Finish(const v1::Lease& lease, bool success) {
  FinishResult out;
  if (plain_item_ || !prepared_) return out;
  git::CommitInfo info;
  info.item_id = lease.item_id();
  info.attempt = lease.attempt();
  info.lease_token = absl::StrCat(lease.lease_token());
  info.title = lease.item().title();
  info.prompt = lease.item().prompt();
  info.agent_id = options_.agent_id;
  info.author_name = options_.author_name;
  info.author_email = options_.author_email;
  absl::StatusOr<std::string> commit = worktree_->CommitAll(info);
  if (!commit.ok()) {
    out.status = Annotate(commit.status(),
                          success ? "cannot commit the result" : "cannot commit the partial work");
    return out;
  }
  if (commit->empty()) return out;  // no change
  if (clone_ != nullptr) {
    absl::Status s = Upload(lease, *commit);
    if (absl::IsFailedPrecondition(s) || absl::IsCancelled(s)) {
      out.lease_lost = true;
      out.status = s;
      return out;
    }
    if (!s.ok()) {
      out.status = Annotate(s, absl::StrCat("cannot upload commit ", *commit));
      return out;
    }
  }
  out.commit = *std::move(commit);
  return out;
}

absl::Status GitWorkspace::Upload(const v1::Lease& lease, const std::string& commit) {
  // The pack goes to a file first: its size is then known (the header says it, and the call's
  // deadline follows it) and a retry resends it without building it again.
  if (absl::Status s = MakeDirs(work_dir_->tmp_path()); !s.ok()) return s;
  const std::string spool = work_dir_->tmp_path() + "/upload.pack";
  git::PackStats stats;
  {
    UniqueFd fd(::open(spool.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus(errno, "cannot create", spool);
    absl::Status built = git::BuildPack(
        clone_->repo(), {commit}, {base_}, git::kDefaultPackChunkBytes,
        [&](absl::string_view chunk) { return WriteAll(fd.get(), chunk, spool); }, &stats);
    if (!built.ok()) {
      ::unlink(spool.c_str());
      return Annotate(built, "cannot build the pack");
    }
  }
  v1::UploadHeader header;
  header.set_agent_id(options_.agent_id);
  header.set_item_id(lease.item_id());
  header.set_lease_token(lease.lease_token());
  header.set_attempt(lease.attempt());
  header.set_commit(commit);
  header.set_base_commit(base_);
  header.set_pack_size(static_cast<int64_t>(stats.bytes));
  int64_t stored = 0;
  absl::Status s = retry_("upload", /*fenced=*/true, [&]() -> absl::Status {
    absl::StatusOr<v1::UploadResultResponse> r = controller_->UploadResult(
        header, [&](const ControllerApi::ChunkSink& write) -> absl::Status {
          UniqueFd in(::open(spool.c_str(), O_RDONLY | O_CLOEXEC));
          if (!in.valid()) return ErrnoStatus(errno, "cannot open", spool);
          std::string buf(git::kDefaultPackChunkBytes, '\0');
          while (true) {
            ssize_t n = ::read(in.get(), buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return ErrnoStatus(errno, "cannot read", spool);
            if (n == 0) return absl::OkStatus();
            if (absl::Status w = write(absl::string_view(buf.data(), n)); !w.ok()) return w;
          }
        });
    if (r.ok()) stored = r->stored_bytes();
    return r.status();
  });
  ::unlink(spool.c_str());
  if (s.ok()) {
    LogInfo(absl::StrCat("uploaded ", lease.item_id(), " commit ", Short(commit), ": ",
                         stats.objects, " object(s), ", stats.bytes, " bytes (", stored,
                         " stored)"));
  }
  return s;
}

absl::Status GitWorkspace::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  if (worktree_ == nullptr) return absl::OkStatus();
  absl::Status s = worktree_->Remove();
  worktree_.reset();
  clone_.reset();
  if (s.ok() && mode_ == RepoMode::kLocal) {
    LogInfo(absl::StrCat("removed the worktree ", work_dir_->worktree_path()));
  }
  return s;
}

}  // namespace

RepoMode ClassifyRepo(const std::string& repo) {
  if (repo.empty()) return RepoMode::kController;
  if (absl::StrContains(repo, "://") || absl::StartsWith(repo, "file:")) return RepoMode::kUrl;
  size_t colon = repo.find(':');
  if (colon != std::string::npos && colon < repo.find('/') && !Exists(repo)) {
    return RepoMode::kUrl;  // scp-like: host:path
  }
  return RepoMode::kLocal;
}

v1::RepoAccess RepoAccessOf(RepoMode mode) {
  switch (mode) {
    case RepoMode::kLocal:
      return v1::REPO_ACCESS_LOCAL;
    case RepoMode::kUrl:
      return v1::REPO_ACCESS_URL;
    case RepoMode::kController:
      break;
  }
  return v1::REPO_ACCESS_CONTROLLER;
}

absl::Status CheckLocalRepository(const std::string& path) {
  absl::StatusOr<git::Repository> repo = git::OpenRepository(path);
  if (!repo.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--repo: ", repo.status().message()));
  }
  return absl::OkStatus();
}

std::unique_ptr<Workspace> NewWorkspace(const WorkspaceOptions& options, WorkDir* work_dir,
                                        ControllerApi* controller, RetryFn retry) {
  return std::make_unique<GitWorkspace>(ClassifyRepo(options.repo), options, work_dir, controller,
                                        std::move(retry));
}

}  // namespace harness::agentd
