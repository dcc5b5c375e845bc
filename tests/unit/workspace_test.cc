// agentd's workspaces (agentd/workspace.h), without a controller: the linked worktree of a local
// repository (--repo PATH), the agent's own clone filled by FetchBase from a fake controller (no
// --repo) and from a file:// URL (--repo URL), and the plain work dir for leases without a base.
// The fake controller serves FetchBase with git::BuildPack from a source repository and stores
// UploadResult packs there with git::PackReceiver, as the real one does. Fixture repositories
// are made and inspected with the git CLI, independently of libgit2.
#include "agentd/workspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/agent.h"
#include "agentd/controller_api.h"
#include "agentd/work_dir.h"
#include "core/file_util.h"
#include "git/git_util.h"
#include "git/pack_builder.h"
#include "git/pack_receiver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/git_cli.h"
#include "tests/support/temp_dir.h"

namespace harness::agentd {
namespace {

namespace fs = std::filesystem;
using ::harness::testing::CommitAll;
using ::harness::testing::Git;
using ::harness::testing::SourceText;
using ::harness::testing::ShellQuote;
using ::harness::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

void Write(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : std::string("<missing>");
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

std::string Canonical(const std::string& path) { return fs::weakly_canonical(path).string(); }


// A source repository on branch main: README, a .gitignore (build/, *.log) and some 40 files.
std::string MakeSourceRepo(const std::string& dir) {
  fs::create_directories(dir);
  Git(dir, {"init", "-q"});
  Write(dir + "/README.md", "# fixture\n");
  Write(dir + "/.gitignore", "build/\n*.log\n");
  for (int i = 0; i < 40; ++i) {
    Write(absl::StrCat(dir, "/src/dir", i % 5, "/file", i, ".cc"), SourceText(i, 60));
  }
  return CommitAll(dir, "base");
}

v1::Lease MakeLease(const std::string& item, int attempt, uint64_t token, const std::string& base) {
  v1::Lease lease;
  lease.set_item_id(item);
  lease.set_attempt(attempt);
  lease.set_lease_token(token);
  lease.set_base_commit(base);
  if (!base.empty()) lease.set_base_ref("refs/heads/main");
  lease.mutable_item()->set_title(absl::StrCat("Title of ", item));
  lease.mutable_item()->set_prompt(absl::StrCat("Do ", item, ".\nCarefully.\n"));
  return lease;
}

// Retries UNAVAILABLE a few times, like the agent's policy but without waiting.
RetryFn QuickRetry() {
  return [](absl::string_view, bool, const std::function<absl::Status()>& attempt) {
    absl::Status s;
    for (int i = 0; i < 5; ++i) {
      s = attempt();
      if (!absl::IsUnavailable(s)) return s;
    }
    return s;
  };
}

// The controller's side of the git transport over a source repository; everything else of
// ControllerApi is unused here.
class FakeController : public ControllerApi {
 public:
  explicit FakeController(std::string repo) : repo_(std::move(repo)) {}

  absl::Status FetchBase(
      const v1::FetchBaseRequest& request,
      const std::function<absl::Status(const v1::FetchBaseHeader& header)>& on_header,
      const ChunkSink& on_chunk) override {
    ++fetch_calls;
    last_haves.assign(request.haves().begin(), request.haves().end());
    absl::StatusOr<git::Repository> repo = git::OpenRepository(repo_);
    if (!repo.ok()) return repo.status();
    std::vector<std::string> chunks;
    git::PackStats stats;
    absl::Status s = git::BuildPack(
        repo->get(), {request.want()}, last_haves, /*chunk_bytes=*/4096,
        [&](absl::string_view c) {
          chunks.emplace_back(c);
          return absl::OkStatus();
        },
        &stats);
    if (!s.ok()) return s;
    v1::FetchBaseHeader header;
    header.set_base_commit(request.want());
    header.set_base_ref("refs/heads/main");
    header.set_pack_size(static_cast<int64_t>(stats.bytes));
    header.set_object_count(static_cast<int64_t>(stats.objects));
    if (absl::Status h = on_header(header); !h.ok()) return h;
    for (size_t i = 0; i < chunks.size(); ++i) {
      if (break_fetches > 0 && i == 1) {  // the connection drops after the first chunk
        --break_fetches;
        return absl::UnavailableError("connection reset");
      }
      bytes_sent += chunks[i].size();
      if (absl::Status c = on_chunk(chunks[i]); !c.ok()) return c;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::UploadResultResponse> UploadResult(
      const v1::UploadHeader& header,
      const std::function<absl::Status(const ChunkSink& write)>& source) override {
    ++upload_calls;
    last_upload = header;
    if (!refuse_upload.ok()) return refuse_upload;
    if (auto it = refuse_upload_for.find(header.item_id()); it != refuse_upload_for.end()) {
      return it->second;
    }
    absl::StatusOr<git::Repository> repo = git::OpenRepository(repo_);
    if (!repo.ok()) return repo.status();
    absl::StatusOr<std::unique_ptr<git::PackReceiver>> rx =
        git::PackReceiver::Begin(repo->get(), uint64_t{1} << 30);
    if (!rx.ok()) return rx.status();
    absl::Status s = source([&](absl::string_view chunk) { return (*rx)->Append(chunk); });
    if (!s.ok()) return s;
    absl::StatusOr<git::PackStats> stats = (*rx)->Commit();
    if (!stats.ok()) return stats.status();
    if (stats->bytes != static_cast<uint64_t>(header.pack_size())) {
      return absl::InvalidArgumentError("pack size differs from the header's");
    }
    absl::Status v = git::VerifyDescends(repo->get(), header.commit(), header.base_commit());
    if (!v.ok()) return absl::InvalidArgumentError(v.message());
    v1::UploadResultResponse response;
    response.set_stored_bytes(static_cast<int64_t>(stats->bytes));
    response.set_commit(header.commit());
    return response;
  }

  // For the Agent tests: hands out `leases` in order, then tells the agent to drain (or, with
  // `drain_with_one_left`, as it hands out the second last); records the reports.
  absl::Status Start(SessionListener* l) override {
    listener = l;
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<v1::Lease>> Acquire(absl::Duration) override {
    if (leases.empty()) {
      listener->OnDrain();
      return std::optional<v1::Lease>();
    }
    v1::Lease lease = leases.front();
    leases.pop_front();
    // The drain arrives while the agent runs this item, its next one already granted.
    if (drain_with_one_left && leases.size() == 1) listener->OnDrain();
    return std::optional<v1::Lease>(lease);
  }
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& r) override {
    completes.push_back(r);
    return v1::CompleteResponse();
  }
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& r) override {
    fails.push_back(r);
    return v1::FailResponse();
  }
  absl::StatusOr<v1::ReleaseResponse> Release(const v1::ReleaseRequest& r) override {
    releases.push_back(r);
    return v1::ReleaseResponse();
  }
  bool Holds(const v1::LeaseRef&) override { return true; }
  void ForgetLease(const v1::LeaseRef&) override {}
  void SetState(v1::AgentState) override {}
  void StopAcquiring() override {}
  void Shutdown() override {}

  int fetch_calls = 0;
  int upload_calls = 0;
  int break_fetches = 0;
  uint64_t bytes_sent = 0;
  std::vector<std::string> last_haves;
  v1::UploadHeader last_upload;
  absl::Status refuse_upload;
  std::map<std::string, absl::Status> refuse_upload_for;  // by item id
  SessionListener* listener = nullptr;
  std::deque<v1::Lease> leases;
  bool drain_with_one_left = false;
  std::vector<v1::CompleteRequest> completes;
  std::vector<v1::FailRequest> fails;
  std::vector<v1::ReleaseRequest> releases;

 private:
  std::string repo_;
};

struct TestAgent {
  TestAgent(const std::string& root, const WorkspaceOptions& options, ControllerApi* controller)
      : work_dir(root) {
    EXPECT_OK(work_dir.Init());
    ws = NewWorkspace(options, &work_dir, controller, QuickRetry());
  }
  WorkDir work_dir;
  std::unique_ptr<Workspace> ws;
};

WorkspaceOptions Options(const std::string& id, const std::string& repo) {
  WorkspaceOptions o;
  o.agent_id = id;
  o.repo = repo;
  return o;
}

// `git worktree list --porcelain` of `repo`, as "path -> lock reason" lines.
std::string Worktrees(const std::string& repo) {
  std::string out;
  for (absl::string_view block :
       absl::StrSplit(Git(repo, {"worktree", "list", "--porcelain"}), "\n\n")) {
    std::string path, lock = "-";
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, "worktree ")) path = std::string(line);
      if (line == "locked") lock = "locked";
      if (absl::ConsumePrefix(&line, "locked ")) lock = std::string(line);
    }
    absl::StrAppend(&out, path, " -> ", lock, "\n");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

TEST(RepoFlag, ClassifiesPathsAndUrls) {
  EXPECT_EQ(ClassifyRepo(""), RepoMode::kController);
  EXPECT_EQ(ClassifyRepo("/srv/repo"), RepoMode::kLocal);
  EXPECT_EQ(ClassifyRepo("relative/repo"), RepoMode::kLocal);
  EXPECT_EQ(ClassifyRepo("."), RepoMode::kLocal);
  EXPECT_EQ(ClassifyRepo("file:///srv/repo"), RepoMode::kUrl);
  EXPECT_EQ(ClassifyRepo("file:/srv/repo"), RepoMode::kUrl);
  EXPECT_EQ(ClassifyRepo("https://example.com/r.git"), RepoMode::kUrl);
  EXPECT_EQ(ClassifyRepo("git@example.com:r.git"), RepoMode::kUrl);
  EXPECT_EQ(ClassifyRepo("./a:b"), RepoMode::kLocal);
  EXPECT_EQ(RepoAccessOf(RepoMode::kLocal), v1::REPO_ACCESS_LOCAL);
  EXPECT_EQ(RepoAccessOf(RepoMode::kUrl), v1::REPO_ACCESS_URL);
  EXPECT_EQ(RepoAccessOf(RepoMode::kController), v1::REPO_ACCESS_CONTROLLER);
}

TEST(RepoFlag, APathThatIsNotARepositoryIsNamed) {
  TempDir tmp;
  fs::create_directories(tmp.Sub("plain"));
  absl::Status s = CheckLocalRepository(tmp.Sub("plain"));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(tmp.Sub("plain")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a git repository"));
  EXPECT_FALSE(CheckLocalRepository(tmp.Sub("missing")).ok());
  EXPECT_TRUE(testing::ListNames(tmp.Sub("plain")).empty());  // nothing created

  MakeSourceRepo(tmp.Sub("repo"));
  EXPECT_OK(CheckLocalRepository(tmp.Sub("repo")));
}

// ---------------------------------------------------------------------------------------------
// --repo PATH

TEST(LocalWorkspace, LinkedWorktreeIsCleanAtEachBaseCommitsWithTrailersAndIsRemovedOnClose) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  const std::string base1 = MakeSourceRepo(repo);
  TestAgent agent(tmp.Sub("agent-1"), Options("a1", repo), nullptr);
  ASSERT_OK(agent.ws->Open());
  const std::string wt = Canonical(agent.work_dir.worktree_path());
  EXPECT_THAT(agent.ws->Describe(), HasSubstr("linked worktree"));

  // Registered as `git worktree add` does, locked with the agent id in the reason.
  EXPECT_THAT(Worktrees(repo), HasSubstr(absl::StrCat(wt, " -> harness agent a1\n")));

  // Item 1 at base1: the command changes, adds and deletes files and leaves ignored ones.
  absl::StatusOr<std::string> dir = agent.ws->Prepare(MakeLease("item-1", 1, 7, base1));
  ASSERT_OK(dir.status());
  EXPECT_EQ(Canonical(*dir), wt);
  EXPECT_EQ(agent.ws->base_commit(), base1);
  EXPECT_EQ(Read(wt + "/README.md"), "# fixture\n");
  EXPECT_EQ(Git(wt, {"rev-parse", "HEAD"}), base1);
  Write(wt + "/README.md", "# changed by item 1\n");
  Write(wt + "/new/item1.txt", "new\n");
  fs::remove(wt + "/src/dir0/file0.cc");
  Write(wt + "/build/out.o", "ignored\n");
  Write(wt + "/debug.log", "ignored too\n");
  FinishResult r1 = agent.ws->Finish(MakeLease("item-1", 1, 7, base1), /*success=*/true);
  ASSERT_OK(r1.status);
  ASSERT_EQ(r1.commit.size(), 40u);
  EXPECT_FALSE(r1.lease_lost);

  // The commit is in the repository itself (shared objects): parent base1, author, trailers.
  EXPECT_EQ(Git(repo, {"rev-parse", r1.commit + "^"}), base1);
  EXPECT_EQ(Git(repo, {"log", "-1", "--format=%an <%ae>|%cn <%ce>", r1.commit}),
            "Harness Agent a1 <a1@harness.local>|Harness Agent a1 <a1@harness.local>");
  const std::string message = Git(repo, {"log", "-1", "--format=%B", r1.commit});
  EXPECT_THAT(message, HasSubstr("Title of item-1"));
  EXPECT_THAT(message, HasSubstr("Do item-1."));
  EXPECT_THAT(message, HasSubstr("Harness-Item: item-1\n"));
  EXPECT_THAT(message, HasSubstr("Harness-Attempt: 1\n"));
  EXPECT_THAT(message, HasSubstr("Harness-Lease: 7\n"));
  EXPECT_THAT(message, HasSubstr("Harness-Agent: a1"));
  const std::string changed =
      Git(repo, {"diff-tree", "--no-commit-id", "--name-status", "-r", base1, r1.commit});
  EXPECT_THAT(changed, HasSubstr("M\tREADME.md"));
  EXPECT_THAT(changed, HasSubstr("A\tnew/item1.txt"));
  EXPECT_THAT(changed, HasSubstr("D\tsrc/dir0/file0.cc"));
  EXPECT_THAT(changed, Not(HasSubstr("build/")));
  EXPECT_THAT(changed, Not(HasSubstr("debug.log")));
  // Agents never write branches.
  EXPECT_EQ(Git(repo, {"for-each-ref", "--format=%(refname)", "refs/heads/"}), "refs/heads/main");

  // The base branch moves on; item 2 starts from its new tip, with nothing of item 1 left, and
  // its command (killed, say) leaves untracked and ignored files without a Finish.
  Write(repo + "/README.md", "# base 2\n");
  const std::string base2 = CommitAll(repo, "base 2");
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-2", 1, 8, base2)).status());
  EXPECT_EQ(Git(wt, {"rev-parse", "HEAD"}), base2);
  EXPECT_EQ(Read(wt + "/README.md"), "# base 2\n");
  EXPECT_TRUE(Exists(wt + "/src/dir0/file0.cc"));
  EXPECT_FALSE(Exists(wt + "/new"));
  EXPECT_FALSE(Exists(wt + "/build"));
  EXPECT_FALSE(Exists(wt + "/debug.log"));
  EXPECT_EQ(Git(wt, {"status", "--porcelain", "--ignored"}), "");
  Write(wt + "/left/untracked.txt", "x\n");
  Write(wt + "/build/cache/o", "x\n");
  Write(wt + "/src/dir1/file1.cc", "modified, never committed\n");

  // Item 3: all of that is gone; a command that changes nothing gives no commit.
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-3", 2, 9, base2)).status());
  EXPECT_FALSE(Exists(wt + "/left"));
  EXPECT_FALSE(Exists(wt + "/build"));
  EXPECT_EQ(Read(wt + "/src/dir1/file1.cc"), SourceText(1, 60));
  EXPECT_EQ(Git(wt, {"status", "--porcelain", "--ignored"}), "");
  Write(wt + "/build/again.o", "only ignored output\n");
  FinishResult r3 = agent.ws->Finish(MakeLease("item-3", 2, 9, base2), /*success=*/true);
  ASSERT_OK(r3.status);
  EXPECT_EQ(r3.commit, "");

  // A failed attempt's work is committed too (the controller keeps it).
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-4", 1, 10, base2)).status());
  Write(wt + "/partial.txt", "half done\n");
  FinishResult r4 = agent.ws->Finish(MakeLease("item-4", 1, 10, base2), /*success=*/false);
  ASSERT_OK(r4.status);
  ASSERT_EQ(r4.commit.size(), 40u);
  EXPECT_EQ(Git(repo, {"show", r4.commit + ":partial.txt"}), "half done");

  // A lease without a base commit (a controller without a repository): the plain work dir.
  Write(agent.work_dir.work_path() + "/stale", "x");
  absl::StatusOr<std::string> plain = agent.ws->Prepare(MakeLease("item-5", 1, 11, ""));
  ASSERT_OK(plain.status());
  EXPECT_EQ(*plain, agent.work_dir.work_path());
  EXPECT_TRUE(testing::ListNames(*plain).empty());
  EXPECT_EQ(agent.ws->base_commit(), "");
  Write(*plain + "/out.txt", "x");
  FinishResult r5 = agent.ws->Finish(MakeLease("item-5", 1, 11, ""), true);
  EXPECT_OK(r5.status);
  EXPECT_EQ(r5.commit, "");

  // Close removes the worktree: folder and registration.
  ASSERT_OK(agent.ws->Close());
  EXPECT_FALSE(Exists(wt));
  EXPECT_THAT(Worktrees(repo), Not(HasSubstr(wt)));
  EXPECT_EQ(Git(repo, {"worktree", "list"}).find('\n'), std::string::npos);
}

TEST(LocalWorkspace, ConfiguredAuthorIsUsed) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  const std::string base = MakeSourceRepo(repo);
  WorkspaceOptions o = Options("a1", repo);
  o.author_name = "Robot";
  o.author_email = "robot@example.com";
  TestAgent agent(tmp.Sub("agent"), o, nullptr);
  ASSERT_OK(agent.ws->Open());
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-1", 1, 1, base)).status());
  Write(agent.work_dir.worktree_path() + "/x.txt", "x\n");
  FinishResult r = agent.ws->Finish(MakeLease("item-1", 1, 1, base), true);
  ASSERT_OK(r.status);
  EXPECT_EQ(Git(repo, {"log", "-1", "--format=%an <%ae>|%cn <%ce>", r.commit}),
            "Robot <robot@example.com>|Robot <robot@example.com>");
  EXPECT_THAT(Git(repo, {"log", "-1", "--format=%B", r.commit}), HasSubstr("Harness-Agent: a1"));
  EXPECT_OK(agent.ws->Close());
}

TEST(LocalWorkspace, StartPrunesDeadAgentsWorktreesAndNeverALiveOnes) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  const std::string base = MakeSourceRepo(repo);

  TestAgent live(tmp.Sub("live"), Options("live", repo), nullptr);
  ASSERT_OK(live.ws->Open());
  ASSERT_OK(live.ws->Prepare(MakeLease("item-1", 1, 1, base)).status());
  const std::string live_wt = Canonical(live.work_dir.worktree_path());

  std::string dead_wt;
  {
    // An agent that dies without Close (its process is gone: the lock is released).
    TestAgent dead(tmp.Sub("dead"), Options("dead", repo), nullptr);
    ASSERT_OK(dead.ws->Open());
    dead_wt = Canonical(dead.work_dir.worktree_path());
  }
  EXPECT_TRUE(Exists(dead_wt));
  EXPECT_THAT(Worktrees(repo), HasSubstr(dead_wt));

  // The same id while the live agent holds it: refused.
  TestAgent twin(tmp.Sub("twin"), Options("live", repo), nullptr);
  absl::Status twin_open = twin.ws->Open();
  EXPECT_TRUE(absl::IsFailedPrecondition(twin_open)) << twin_open;
  EXPECT_THAT(std::string(twin_open.message()), HasSubstr("in use by another live agent"));

  TestAgent next(tmp.Sub("next"), Options("next", repo), nullptr);
  ASSERT_OK(next.ws->Open());
  EXPECT_FALSE(Exists(dead_wt));
  const std::string list = Worktrees(repo);
  EXPECT_THAT(list, Not(HasSubstr(dead_wt)));
  EXPECT_THAT(list, HasSubstr(absl::StrCat(live_wt, " -> harness agent live\n")));
  EXPECT_EQ(Read(live_wt + "/README.md"), "# fixture\n");
  EXPECT_OK(next.ws->Close());
  EXPECT_OK(live.ws->Close());
}

TEST(LocalWorkspace, ABaseTheRepositoryLacksFailsThePrepareClearly) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  MakeSourceRepo(repo);
  TestAgent agent(tmp.Sub("agent"), Options("a1", repo), nullptr);
  ASSERT_OK(agent.ws->Open());
  absl::StatusOr<std::string> dir =
      agent.ws->Prepare(MakeLease("item-1", 1, 1, std::string(40, 'a')));
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(std::string(dir.status().message()), HasSubstr("controller's repository"));
  EXPECT_EQ(agent.ws->Finish(MakeLease("item-1", 1, 1, std::string(40, 'a')), false).commit, "");
  EXPECT_OK(agent.ws->Close());
}

// ---------------------------------------------------------------------------------------------
// No --repo: the base from the controller

TEST(RemoteWorkspace, FetchesTheFullBaseThenOnlyIncrementsAndUploadsResults) {
  TempDir tmp;
  const std::string source = tmp.Sub("controller-repo");
  const std::string base1 = MakeSourceRepo(source);
  FakeController controller(source);
  WorkspaceOptions o = Options("r1", "");
  o.author_name = "Remote Robot";
  TestAgent agent(tmp.Sub("agent"), o, &controller);
  ASSERT_OK(agent.ws->Open());
  EXPECT_THAT(agent.ws->Describe(), HasSubstr("from the controller"));
  const std::string clone = agent.work_dir.clone_path();

  // Item 1: the full base, in 4 KiB chunks, over a connection that drops once.
  controller.break_fetches = 1;
  absl::StatusOr<std::string> dir = agent.ws->Prepare(MakeLease("item-1", 1, 21, base1));
  ASSERT_OK(dir.status());
  EXPECT_EQ(*dir, clone);
  EXPECT_EQ(controller.fetch_calls, 2);
  EXPECT_TRUE(controller.last_haves.empty());
  const uint64_t full = controller.bytes_sent;
  EXPECT_GT(full, 8192u);
  EXPECT_EQ(Git(clone, {"rev-parse", "HEAD"}), base1);
  EXPECT_EQ(Read(clone + "/src/dir3/file8.cc"), SourceText(8, 60));
  EXPECT_EQ(Git(clone, {"status", "--porcelain", "--ignored"}), "");

  Write(clone + "/README.md", "# changed remotely\n");
  Write(clone + "/src/new.cc", "// new\n");
  Write(clone + "/build/ignored.o", "x\n");
  FinishResult r1 = agent.ws->Finish(MakeLease("item-1", 1, 21, base1), true);
  ASSERT_OK(r1.status);
  ASSERT_EQ(r1.commit.size(), 40u);
  EXPECT_EQ(controller.upload_calls, 1);
  EXPECT_EQ(controller.last_upload.commit(), r1.commit);
  EXPECT_EQ(controller.last_upload.base_commit(), base1);
  EXPECT_EQ(controller.last_upload.item_id(), "item-1");
  EXPECT_EQ(controller.last_upload.lease_token(), 21u);
  EXPECT_EQ(controller.last_upload.agent_id(), "r1");
  // The result arrived in the controller's repository and descends from the base.
  EXPECT_EQ(Git(source, {"cat-file", "-t", r1.commit}), "commit");
  int st = -1;
  Git(source, {"merge-base", "--is-ancestor", base1, r1.commit}, &st);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(Git(source, {"show", r1.commit + ":README.md"}), "# changed remotely");
  EXPECT_EQ(Git(source, {"log", "-1", "--format=%an <%ae>", r1.commit}),
            "Remote Robot <r1@harness.local>");
  EXPECT_THAT(Git(source, {"log", "-1", "--format=%B", r1.commit}),
              HasSubstr("Harness-Lease: 21\n"));
  EXPECT_THAT(Git(source, {"fsck", "--connectivity-only"}), Not(HasSubstr("missing")));

  // The base moves on by one small change: item 2 fetches only that.
  Write(source + "/src/dir0/file5.cc", SourceText(500, 3));
  const std::string base2 = CommitAll(source, "base 2");
  const uint64_t before = controller.bytes_sent;
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-2", 1, 22, base2)).status());
  const uint64_t increment = controller.bytes_sent - before;
  EXPECT_EQ(controller.fetch_calls, 3);
  EXPECT_THAT(controller.last_haves, ::testing::Contains(base1));
  EXPECT_GT(increment, 0u);
  EXPECT_LT(increment * 10, full) << "increment " << increment << " full " << full;
  EXPECT_EQ(Git(clone, {"rev-parse", "HEAD"}), base2);
  EXPECT_EQ(Read(clone + "/README.md"), "# fixture\n");  // item 1's change is gone
  EXPECT_FALSE(Exists(clone + "/src/new.cc"));
  EXPECT_FALSE(Exists(clone + "/build"));
  EXPECT_EQ(Read(clone + "/src/dir0/file5.cc"), SourceText(500, 3));

  // Nothing changed: no commit, no upload.
  FinishResult r2 = agent.ws->Finish(MakeLease("item-2", 1, 22, base2), true);
  ASSERT_OK(r2.status);
  EXPECT_EQ(r2.commit, "");
  EXPECT_EQ(controller.upload_calls, 1);

  // The same base again: nothing to fetch.
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-3", 1, 23, base2)).status());
  EXPECT_EQ(controller.fetch_calls, 3);

  // An upload the controller refuses: the error, no commit. A lost lease: dropped.
  Write(clone + "/x.txt", "x\n");
  controller.refuse_upload = absl::ResourceExhaustedError("pack is larger than the limit");
  FinishResult refused = agent.ws->Finish(MakeLease("item-3", 1, 23, base2), true);
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status)) << refused.status;
  EXPECT_EQ(refused.commit, "");
  EXPECT_FALSE(refused.lease_lost);
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-4", 1, 24, base2)).status());
  Write(clone + "/y.txt", "y\n");
  controller.refuse_upload = absl::FailedPreconditionError("lease token 24 is no longer valid");
  FinishResult lost = agent.ws->Finish(MakeLease("item-4", 1, 24, base2), false);
  EXPECT_TRUE(lost.lease_lost);
  EXPECT_EQ(lost.commit, "");
  EXPECT_TRUE(testing::ListNames(agent.work_dir.tmp_path()).empty());  // no spooled pack left

  // Close keeps the clone (and releases it); a restarted agent reuses it without fetching.
  ASSERT_OK(agent.ws->Close());
  EXPECT_TRUE(Exists(clone + "/.git"));
  TestAgent restarted(tmp.Sub("agent"), o, &controller);
  ASSERT_OK(restarted.ws->Open());
  ASSERT_OK(restarted.ws->Prepare(MakeLease("item-5", 1, 25, base2)).status());
  EXPECT_EQ(controller.fetch_calls, 3);
  EXPECT_FALSE(Exists(clone + "/y.txt"));
  EXPECT_OK(restarted.ws->Close());
}

TEST(RemoteWorkspace, ACloneWhoseRepositoryTheCommandDeletedIsMadeAgain) {
  TempDir tmp;
  const std::string source = tmp.Sub("controller-repo");
  const std::string base = MakeSourceRepo(source);
  FakeController controller(source);
  TestAgent agent(tmp.Sub("agent"), Options("r1", ""), &controller);
  ASSERT_OK(agent.ws->Open());
  const std::string clone = agent.work_dir.clone_path();
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-1", 1, 1, base)).status());
  const uint64_t full = controller.bytes_sent;

  // The command wipes everything, .git included.
  fs::remove_all(clone + "/.git");
  fs::remove_all(clone + "/src");
  FinishResult r = agent.ws->Finish(MakeLease("item-1", 1, 1, base), false);
  EXPECT_FALSE(r.status.ok());  // nothing to commit with
  EXPECT_EQ(r.commit, "");

  ASSERT_OK(agent.ws->Prepare(MakeLease("item-2", 1, 2, base)).status());
  EXPECT_EQ(controller.fetch_calls, 2);
  // The whole base again (not an increment of a few bytes). Not byte-equal: libgit2's threaded
  // delta search may build the same objects into a pack a few hundred bytes apart.
  EXPECT_GT(controller.bytes_sent - full, full * 9 / 10);
  EXPECT_EQ(Git(clone, {"rev-parse", "HEAD"}), base);
  EXPECT_EQ(Read(clone + "/src/dir0/file0.cc"), SourceText(0, 60));
  Write(clone + "/z.txt", "z\n");
  FinishResult r2 = agent.ws->Finish(MakeLease("item-2", 1, 2, base), true);
  ASSERT_OK(r2.status);
  EXPECT_EQ(Git(source, {"show", r2.commit + ":z.txt"}), "z");
  EXPECT_OK(agent.ws->Close());
}

TEST(RemoteWorkspace, TwoAgentsCannotShareAClone) {
  TempDir tmp;
  FakeController controller(tmp.Sub("none"));
  TestAgent first(tmp.Sub("agent"), Options("r1", ""), &controller);
  ASSERT_OK(first.ws->Open());
  TestAgent second(tmp.Sub("agent"), Options("r2", ""), &controller);
  absl::Status s = second.ws->Open();
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_OK(first.ws->Close());
}

// ---------------------------------------------------------------------------------------------
// --repo URL

TEST(UrlWorkspace, FetchesTheBaseFromAFileUrlAndUploadsResultsToTheController) {
  TempDir tmp;
  const std::string source = tmp.Sub("controller-repo");
  const std::string base1 = MakeSourceRepo(source);
  FakeController controller(source);
  const std::string url = "file://" + source;
  TestAgent agent(tmp.Sub("agent"), Options("u1", url), &controller);
  ASSERT_OK(agent.ws->Open());
  EXPECT_THAT(agent.ws->Describe(), HasSubstr(url));
  const std::string clone = agent.work_dir.clone_path();

  ASSERT_OK(agent.ws->Prepare(MakeLease("item-1", 1, 31, base1)).status());
  EXPECT_EQ(controller.fetch_calls, 0);  // all from the URL
  EXPECT_EQ(Git(clone, {"rev-parse", "HEAD"}), base1);
  EXPECT_EQ(Read(clone + "/src/dir2/file7.cc"), SourceText(7, 60));
  Write(clone + "/url.txt", "from a url agent\n");
  FinishResult r1 = agent.ws->Finish(MakeLease("item-1", 1, 31, base1), true);
  ASSERT_OK(r1.status);
  EXPECT_EQ(controller.upload_calls, 1);
  EXPECT_EQ(Git(source, {"show", r1.commit + ":url.txt"}), "from a url agent");
  int st = -1;
  Git(source, {"merge-base", "--is-ancestor", base1, r1.commit}, &st);
  EXPECT_EQ(st, 0);

  // The URL moves on: the next item fetches the new tip from it.
  Write(source + "/README.md", "# base 2\n");
  const std::string base2 = CommitAll(source, "base 2");
  ASSERT_OK(agent.ws->Prepare(MakeLease("item-2", 1, 32, base2)).status());
  EXPECT_EQ(controller.fetch_calls, 0);
  EXPECT_EQ(Read(clone + "/README.md"), "# base 2\n");
  EXPECT_FALSE(Exists(clone + "/url.txt"));
  EXPECT_OK(agent.ws->Close());
}

TEST(UrlWorkspace, AUrlBehindTheLeaseOrUnreachableFallsBackToTheController) {
  TempDir tmp;
  const std::string source = tmp.Sub("controller-repo");
  const std::string base1 = MakeSourceRepo(source);
  // A mirror that stays at base1 while the controller's repository moves on.
  Git(tmp.path(), {"clone", "-q", "--bare", source, tmp.Sub("mirror.git")});
  Write(source + "/README.md", "# base 2\n");
  const std::string base2 = CommitAll(source, "base 2");
  FakeController controller(source);
  TestAgent agent(tmp.Sub("agent"), Options("u1", "file://" + tmp.Sub("mirror.git")), &controller);
  ASSERT_OK(agent.ws->Open());

  ASSERT_OK(agent.ws->Prepare(MakeLease("item-1", 1, 41, base2)).status());
  EXPECT_EQ(agent.ws->base_commit(), base2);
  EXPECT_EQ(controller.fetch_calls, 1);
  EXPECT_THAT(controller.last_haves, ::testing::Contains(base1));  // only the increment
  EXPECT_EQ(Read(agent.work_dir.clone_path() + "/README.md"), "# base 2\n");

  // A URL that does not answer at all: the controller too.
  TestAgent broken(tmp.Sub("agent-2"), Options("u2", "file://" + tmp.Sub("nowhere")), &controller);
  ASSERT_OK(broken.ws->Open());
  ASSERT_OK(broken.ws->Prepare(MakeLease("item-2", 1, 42, base2)).status());
  EXPECT_EQ(controller.fetch_calls, 2);
  EXPECT_EQ(Git(broken.work_dir.clone_path(), {"rev-parse", "HEAD"}), base2);
  EXPECT_OK(broken.ws->Close());
  EXPECT_OK(agent.ws->Close());
}

// ---------------------------------------------------------------------------------------------
// The agent loop with a workspace: what Complete and Fail carry.

// A lease whose command is `script` (run by /bin/sh in the worktree).
v1::Lease ScriptLease(const std::string& item, uint64_t token, const std::string& base,
                      const std::string& script) {
  v1::Lease lease = MakeLease(item, 1, token, base);
  lease.add_command("/bin/sh");
  lease.add_command("-c");
  lease.add_command(script);
  return lease;
}

AgentOptions RunOptions(const std::string& id, const std::string& root, const std::string& repo) {
  AgentOptions o;
  o.agent_id = id;
  o.work_root = root;
  o.repo = repo;
  o.acquire_wait = absl::Milliseconds(10);
  return o;
}

TEST(AgentWithWorkspace, RemoteAgentCompletesWithUploadedCommitsAndFailsWithPartialWork) {
  TempDir tmp;
  const std::string source = tmp.Sub("controller-repo");
  const std::string base = MakeSourceRepo(source);
  FakeController controller(source);
  controller.leases.push_back(ScriptLease("done-1", 1, base, "echo result > result.txt"));
  controller.leases.push_back(
      ScriptLease("noop-2", 2, base, "test ! -e result.txt && mkdir -p build && touch build/x"));
  controller.leases.push_back(ScriptLease("fail-3", 3, base, "echo half > partial.txt; exit 3"));
  controller.leases.push_back(ScriptLease("refused-4", 4, base, "echo big > big.txt"));
  controller.leases.push_back(ScriptLease("lost-5", 5, base, "echo late > late.txt"));
  v1::Lease setup = ScriptLease("setup-6", 6, base, "echo never > never.txt");
  setup.add_setup("/bin/sh");
  setup.add_setup("-c");
  setup.add_setup("test -f README.md || exit 0; exit 4");  // in the worktree it fails
  controller.leases.push_back(setup);
  controller.leases.push_back(ScriptLease("plain-7", 7, "", "echo plain > plain.txt"));
  controller.refuse_upload_for["refused-4"] =
      absl::InvalidArgumentError("commit does not descend from the base");
  controller.refuse_upload_for["lost-5"] =
      absl::FailedPreconditionError("lease token 5 is no longer valid");

  Agent agent(RunOptions("r1", tmp.Sub("agent"), ""), &controller);
  EXPECT_EQ(agent.Run(), 0);

  ASSERT_EQ(controller.completes.size(), 3u);
  const v1::CompleteRequest& done = controller.completes[0];
  EXPECT_EQ(done.item_id(), "done-1");
  EXPECT_EQ(done.base_commit(), base);
  ASSERT_EQ(done.commit().size(), 40u);
  EXPECT_EQ(Git(source, {"show", done.commit() + ":result.txt"}), "result");
  EXPECT_EQ(Git(source, {"rev-parse", done.commit() + "^"}), base);
  const v1::CompleteRequest& noop = controller.completes[1];
  EXPECT_EQ(noop.item_id(), "noop-2");  // item 1's file was gone; ignored output is no change
  EXPECT_EQ(noop.commit(), "");
  EXPECT_EQ(noop.base_commit(), base);
  const v1::CompleteRequest& plain = controller.completes[2];
  EXPECT_EQ(plain.item_id(), "plain-7");
  EXPECT_EQ(plain.commit(), "");
  EXPECT_EQ(plain.base_commit(), "");

  ASSERT_EQ(controller.fails.size(), 3u);
  const v1::FailRequest& failed = controller.fails[0];
  EXPECT_EQ(failed.item_id(), "fail-3");
  EXPECT_EQ(failed.exit_code().value(), 3);
  EXPECT_EQ(failed.base_commit(), base);
  ASSERT_EQ(failed.commit().size(), 40u);
  EXPECT_EQ(Git(source, {"show", failed.commit() + ":partial.txt"}), "half");
  const v1::FailRequest& refused = controller.fails[1];
  EXPECT_EQ(refused.item_id(), "refused-4");
  EXPECT_EQ(refused.outcome(), v1::ATTEMPT_OUTCOME_FAILED);
  EXPECT_TRUE(refused.retryable());
  EXPECT_EQ(refused.commit(), "");
  EXPECT_THAT(refused.error(), HasSubstr("does not descend from the base"));
  const v1::FailRequest& setup_failed = controller.fails[2];
  EXPECT_EQ(setup_failed.item_id(), "setup-6");
  EXPECT_THAT(setup_failed.error(), HasSubstr("setup failed"));
  EXPECT_THAT(setup_failed.error(), HasSubstr("status 4"));
  EXPECT_EQ(setup_failed.commit(), "");  // setup changed nothing
  // lost-5: neither completed nor failed nor released.
  EXPECT_TRUE(controller.releases.empty());
  EXPECT_EQ(controller.upload_calls, 4);  // done-1, fail-3, refused-4, lost-5
}

TEST(AgentWithWorkspace, LocalAgentCompletesWithTheSharedCommitAndRemovesItsWorktreeOnExit) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  const std::string base = MakeSourceRepo(repo);
  FakeController controller(repo);
  controller.leases.push_back(
      ScriptLease("item-1", 1, base, "test -n \"$HARNESS_PROMPT_FILE\" && echo one > one.txt"));
  controller.leases.push_back(
      ScriptLease("item-2", 2, base, "test ! -e one.txt && echo two > two.txt"));
  AgentOptions o = RunOptions("l1", tmp.Sub("agent"), repo);
  o.author_email = "bot@example.com";
  Agent agent(o, &controller);
  EXPECT_EQ(agent.Run(), 0);

  ASSERT_EQ(controller.completes.size(), 2u) << controller.fails.size();
  for (const v1::CompleteRequest& c : controller.completes) {
    EXPECT_EQ(c.base_commit(), base);
    ASSERT_EQ(c.commit().size(), 40u);
    EXPECT_EQ(Git(repo, {"rev-parse", c.commit() + "^"}), base);
    EXPECT_EQ(Git(repo, {"log", "-1", "--format=%an <%ae>", c.commit()}),
              "Harness Agent l1 <bot@example.com>");
  }
  EXPECT_EQ(Git(repo, {"show", controller.completes[1].commit() + ":two.txt"}), "two");
  EXPECT_EQ(controller.upload_calls, 0);  // shared objects: nothing to transfer
  EXPECT_EQ(controller.fetch_calls, 0);
  EXPECT_FALSE(Exists(tmp.Sub("agent/worktree")));
  EXPECT_EQ(Git(repo, {"worktree", "list"}).find('\n'), std::string::npos);
}

// A drain that comes while the agent holds a lease it has not started (granted before the drain)
// lets that item run: the agent exits after it, having handed nothing back.
TEST(AgentWithWorkspace, ADrainLetsTheLeaseGrantedBeforeItRunThenTheAgentExits) {
  TempDir tmp;
  const std::string repo = tmp.Sub("repo");
  const std::string base = MakeSourceRepo(repo);
  FakeController controller(repo);
  controller.leases.push_back(ScriptLease("item-1", 1, base, "echo one > one.txt"));
  controller.leases.push_back(ScriptLease("item-2", 2, base, "echo two > two.txt"));
  controller.leases.push_back(ScriptLease("item-3", 3, base, "echo three > three.txt"));
  controller.drain_with_one_left = true;  // as item-2 is handed out
  Agent agent(RunOptions("d1", tmp.Sub("agent"), repo), &controller);
  EXPECT_EQ(agent.Run(), 0);
  ASSERT_EQ(controller.completes.size(), 3u) << controller.fails.size();
  EXPECT_EQ(controller.completes[2].item_id(), "item-3");
  EXPECT_TRUE(controller.releases.empty());
  EXPECT_TRUE(controller.fails.empty());
}

}  // namespace
}  // namespace harness::agentd
