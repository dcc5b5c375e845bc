// Git end to end, real processes and a real repository made by the test: agents commit in
// their own worktrees (or clones, for agents without --repo), only the controller moves
// harness/<item-id>, a fenced result never lands, nothing leaks from one item to the next,
// and bad packs are refused while the controller keeps serving. The git CLI inspects results.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

class GitEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_.Sub("repo");
    Git({"init", "-q", "-b", "main", repo_});
    std::ofstream(repo_ + "/README.md") << "the base\n";
    std::ofstream(repo_ + "/.gitignore") << "*.ignored\nbuild/\n";
    Git({"-C", repo_, "add", "-A"});
    Git({"-C", repo_, "-c", "user.name=Base", "-c", "user.email=base@test", "commit", "-q", "-m",
         "base"});
    base_ = Git({"-C", repo_, "rev-parse", "HEAD"});
    // The agent command: notes any leftover it finds, then writes <item>.txt, an untracked
    // file that is committed, and ignored files that must not be.
    script_ = tmp_.Sub("agent.sh");
    std::ofstream s(script_);
    s << "#!/bin/sh\n"
      << "for f in * .[!.]*; do case \"$f\" in README.md|CHANGES.md|.gitignore|.git|'*'|'.[!.]*') ;; *) echo "
         "\"$HARNESS_ITEM_ID saw $f\" >> "
      << tmp_.Sub("leftovers") << " ;; esac; done\n"
      << "prompt=$(cat \"$HARNESS_PROMPT_FILE\")\n"
      << "case \"$prompt\" in sleep:*) sleep \"${prompt#sleep:}\" ;; esac\n"
      << "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"\n"
      << "echo junk > junk.ignored; mkdir -p build; echo obj > build/out.o\n"
      << "case \"$prompt\" in fail) exit 4 ;; esac\n";
    s.close();
    chmod(script_.c_str(), 0755);
    config_.state_dir = tmp_.Sub("state");
    config_.listen = absl::StrCat("127.0.0.1:", FreePort());
    config_.repo_path = repo_;
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  // Runs git; returns stdout without the trailing newline; fails the test on an error.
  std::string Git(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    std::string out;
    int status = RunCommand(args, &out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << absl::StrJoin(args, " ") << ": " << out;
    return std::string(absl::StripTrailingAsciiWhitespace(out));
  }
  void StartLocal(const std::string& id) { StartWith(id, {"--repo", repo_}); }
  void StartWith(const std::string& id, std::vector<std::string> extra) {
    agents_[id] = StartAgent(id, controller_->address(), tmp_.Sub("work-" + id),
                             "/bin/sh " + script_, tmp_.Sub(id + ".log"), extra);
  }
  int64_t Done() { return GetStatus(controller_->control()).queue().done(); }
  std::string AgentLog(const std::string& id) {
    absl::StatusOr<std::string> s = ReadFile(tmp_.Sub(id + ".log"));
    return s.ok() ? *s : "";
  }
  // harness/<id> holds exactly <id>.txt on top of the base, authored by `agent`.
  bool RefExists(const std::string& ref) {
    std::string out;
    int st = RunCommand({"/usr/bin/git", "-C", repo_, "rev-parse", "--verify", "-q", ref}, &out);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  void ExpectResultBranch(const std::string& id, const std::string& agent, std::string base = "") {
    SCOPED_TRACE(id);
    if (base.empty()) base = base_;
    std::string branch = "harness/" + id;
    // The ref follows the durable "done" (the agent's Complete is answered once it is set).
    ASSERT_TRUE(WaitFor([&] { return RefExists(branch); }, absl::Seconds(10)));
    EXPECT_EQ(Git({"-C", repo_, "rev-parse", branch + "^"}), base);
    EXPECT_EQ(Git({"-C", repo_, "diff", "--name-status", base, branch}), "A\t" + id + ".txt");
    EXPECT_EQ(Git({"-C", repo_, "show", "-s", "--format=%an <%ae>", branch}),
              absl::StrCat("Harness Agent ", agent, " <", agent, "@harness.local>"));
    std::string message = Git({"-C", repo_, "show", "-s", "--format=%B", branch});
    EXPECT_NE(message.find("Harness-Item: " + id), std::string::npos) << message;
    EXPECT_NE(message.find("Harness-Agent: " + agent), std::string::npos) << message;
    EXPECT_NE(message.find("Harness-Lease: "), std::string::npos) << message;
    v1::Item item = GetItem(controller_->control(), id);
    EXPECT_EQ(item.result().branch(), branch);
    EXPECT_EQ(item.result().commit(), Git({"-C", repo_, "rev-parse", branch}));
    EXPECT_EQ(item.result().base(), base);
  }

  TempDir tmp_;
  std::string repo_, base_, script_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::map<std::string, std::unique_ptr<ChildProcess>> agents_;
};

TEST_F(GitEndToEnd, FiveLocalAgentsLandFortyItemsEachOnItsOwnBranch) {
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 40; ++i) items.push_back(MakeItem(absl::StrCat("g", i), "ok"));
  Submit(controller_->control(), items);
  for (int a = 1; a <= 5; ++a) StartLocal(absl::StrCat("local-", a));
  ASSERT_TRUE(WaitFor([&] { return Done() == 40; }, absl::Seconds(120))) << Done();
  std::string worktrees = Git({"-C", repo_, "worktree", "list", "--porcelain"});
  for (int a = 1; a <= 5; ++a) {
    EXPECT_NE(worktrees.find(absl::StrCat("harness agent local-", a)), std::string::npos)
        << worktrees;
  }
  for (int i = 0; i < 40; ++i) {
    std::string id = absl::StrCat("g", i);
    v1::Item item = GetItem(controller_->control(), id);
    ExpectResultBranch(id, item.attempts(item.attempts_size() - 1).agent());
  }
  EXPECT_FALSE(PathExists(tmp_.Sub("leftovers"))) << *ReadFile(tmp_.Sub("leftovers"));
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "main"}), base_) << "agents never move a branch";
}

TEST_F(GitEndToEnd, AgentsTheControllerLaunchesWorkInWorktreesAndLandEveryItem) {
  controller_.reset();
  config_.launcher = "process";
  config_.parallel_agents = 3;
  config_.command = {"/bin/sh", script_};
  config_.extra_yaml = "  agent_startup_stagger: 0\n";
  controller_ = ControllerProcess::Start(config_, tmp_.path());
  ASSERT_NE(controller_, nullptr);
  // A clean stop stops the agents it launched, however the test ends.
  absl::Cleanup stop = [&] {
    controller_->Signal(SIGTERM);
    controller_->Wait();
  };
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 12; ++i) items.push_back(MakeItem(absl::StrCat("p", i), "ok"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return Done() == 12; }, absl::Seconds(120))) << Done();
  std::string worktrees = Git({"-C", repo_, "worktree", "list", "--porcelain"});
  EXPECT_NE(worktrees.find("harness agent agent-1"), std::string::npos) << worktrees;
  for (int i = 0; i < 12; ++i) {
    std::string id = absl::StrCat("p", i);
    v1::Item item = GetItem(controller_->control(), id);
    ExpectResultBranch(id, item.attempts(item.attempts_size() - 1).agent());
  }
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "main"}), base_) << "agents never move a branch";
}

// `controller --config harness.yaml` with `repo.path: repo`, both relative to the controller's
// working directory: its launched agents run in their own folders and still find the repository.
TEST_F(GitEndToEnd, LaunchedAgentsFindARepositoryGivenByARelativePath) {
  controller_.reset();
  config_.launcher = "process";
  config_.parallel_agents = 2;
  config_.command = {"/bin/sh", script_};
  config_.repo_path = "repo";
  config_.extra_yaml = "  agent_startup_stagger: 0\n";
  // Run from the test's folder with the config (which Start writes there) named relatively.
  config_.wrapper = {"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" --config harness.yaml",
                     tmp_.path()};
  controller_ = ControllerProcess::Start(config_, tmp_.path());
  ASSERT_NE(controller_, nullptr);
  absl::Cleanup stop = [&] {
    controller_->Signal(SIGTERM);
    controller_->Wait();
  };
  Submit(controller_->control(), {MakeItem("r1", "ok"), MakeItem("r2", "ok")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 2; }, absl::Seconds(60)))
      << GetStatus(controller_->control()).DebugString();
  ExpectResultBranch("r1", GetItem(controller_->control(), "r1").attempts(0).agent());
  ExpectResultBranch("r2", GetItem(controller_->control(), "r2").attempts(0).agent());
}

TEST_F(GitEndToEnd, AgentsWithoutARepositoryAndWithAFileUrlWorkBesideLocalOnes) {
  auto batch = [&](int from, int to) {
    std::vector<v1::ItemSpec> items;
    for (int i = from; i < to; ++i) items.push_back(MakeItem(absl::StrCat("m", i), "ok"));
    Submit(controller_->control(), items);
  };
  auto stop = [&](const std::string& id) {
    agents_[id]->Signal(SIGTERM);
    agents_[id]->Wait();
  };
  // Phase 1: only agents without a local repository (the base comes over gRPC).
  batch(0, 4);
  StartWith("remote-1", {});
  StartWith("remote-2", {});
  ASSERT_TRUE(WaitFor([&] { return Done() == 4; }, absl::Seconds(60))) << Done();
  stop("remote-1");
  stop("remote-2");
  // Phase 2: only an agent fetching from a file:// URL.
  batch(4, 8);
  StartWith("url-1", {"--repo", "file://" + repo_});
  ASSERT_TRUE(WaitFor([&] { return Done() == 8; }, absl::Seconds(60))) << Done();
  // Phase 3: all kinds side by side on a newer base; remote-1 comes back to its clone and
  // fetches only the increment.
  std::ofstream(repo_ + "/CHANGES.md") << "a newer base\n";
  Git({"-C", repo_, "add", "-A"});
  Git({"-C", repo_, "-c", "user.name=Base", "-c", "user.email=base@test", "commit", "-q", "-m",
       "newer base"});
  const std::string old_base = base_;
  base_ = Git({"-C", repo_, "rev-parse", "HEAD"});
  StartWith("remote-1", {});
  StartLocal("local-1");
  batch(8, 24);
  ASSERT_TRUE(WaitFor([&] { return Done() == 24; }, absl::Seconds(120))) << Done();
  for (int i = 0; i < 24; ++i) {
    std::string id = absl::StrCat("m", i);
    v1::Item item = GetItem(controller_->control(), id);
    std::string agent = item.attempts(item.attempts_size() - 1).agent();
    ExpectResultBranch(id, agent, i < 8 ? old_base : base_);
    if (i < 4) {
      EXPECT_TRUE(agent == "remote-1" || agent == "remote-2") << id << " " << agent;
    } else if (i < 8) {
      EXPECT_EQ(agent, "url-1") << id;
    }
  }
  EXPECT_FALSE(PathExists(tmp_.Sub("leftovers"))) << "an item saw another's files: "
                                                  << ReadFile(tmp_.Sub("leftovers")).value_or("");
  EXPECT_EQ(Git({"-C", repo_, "fsck", "--no-dangling"}), "");
}

TEST_F(GitEndToEnd, AFencedResultNeverLandsAndTheOtherAgentsCommitStands) {
  Submit(controller_->control(), {MakeItem("fenced", "sleep:1")});
  StartLocal("a1");
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Item i = GetItem(controller_->control(), "fenced");
        return i.state() == v1::ITEM_STATE_LEASED && i.agent() == "a1";
      },
      absl::Seconds(10)));
  agents_["a1"]->Signal(SIGSTOP);
  StartLocal("a2");
  ASSERT_TRUE(
      WaitFor([&] { return Done() == 1 && RefExists("harness/fenced"); }, absl::Seconds(30)));
  std::string landed = Git({"-C", repo_, "rev-parse", "harness/fenced"});
  agents_["a1"]->Signal(SIGCONT);
  ASSERT_TRUE(WaitFor(
      [&] {
        return AgentLog("a1").find("no longer valid") != std::string::npos ||
               AgentLog("a1").find("lost") != std::string::npos;
      },
      absl::Seconds(20)))
      << AgentLog("a1");
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/fenced"}), landed);
  ExpectResultBranch("fenced", "a2");
}

TEST_F(GitEndToEnd, AFailedAttemptsWorkIsKeptOnAnAttemptBranch) {
  v1::ItemSpec bad = MakeItem("broken", "fail");
  bad.set_max_attempts(1);
  Submit(controller_->control(), {bad});
  StartLocal("a1");
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "broken").state() == v1::ITEM_STATE_PARKED; },
      absl::Seconds(30)));
  // The ref follows the durable state (the agent's Fail is answered once it is set).
  ASSERT_TRUE(WaitFor([&] { return RefExists("harness-attempt/broken/1"); }, absl::Seconds(10)));
  EXPECT_EQ(Git({"-C", repo_, "diff", "--name-status", base_, "harness-attempt/broken/1"}),
            "A\tbroken.txt");
  std::string out;
  RunCommand({"/usr/bin/git", "-C", repo_, "rev-parse", "--verify", "-q", "harness/broken"}, &out);
  EXPECT_EQ(out, "") << "no result branch for a failed item";
}

TEST_F(GitEndToEnd, AnItemThatChangesNothingIsDoneWithoutACommit) {
  std::string noop = tmp_.Sub("noop.sh");
  std::ofstream(noop) << "#!/bin/sh\nexit 0\n";
  chmod(noop.c_str(), 0755);
  Submit(controller_->control(), {MakeItem("nothing", "ok")});
  agents_["a1"] = StartAgent("a1", controller_->address(), tmp_.Sub("work-a1"), noop,
                             tmp_.Sub("a1.log"), {"--repo", repo_});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30)));
  v1::Item item = GetItem(controller_->control(), "nothing");
  EXPECT_EQ(item.result().commit(), "");
  std::string out;
  RunCommand({"/usr/bin/git", "-C", repo_, "rev-parse", "--verify", "-q", "harness/nothing"}, &out);
  EXPECT_EQ(out, "");
  std::string show;
  RunCommand({HarnessctlBin(), "--controller", controller_->address(), "show", "nothing"}, &show);
  EXPECT_NE(show.find("no changes"), std::string::npos) << show;
}

TEST_F(GitEndToEnd, CorruptAndOversizedPacksAreRefusedAndTheControllerKeepsServing) {
  Submit(controller_->control(), {MakeItem("upload", "x")});
  v1::RegisterRequest reg;
  reg.set_agent_id("uploader");
  v1::RegisterResponse reg_resp;
  ASSERT_TRUE(controller_->agent().Register(Ctx().get(), reg, &reg_resp).ok());
  v1::AcquireRequest acq;
  acq.set_agent_id("uploader");
  acq.set_session_id(reg_resp.session_id());
  acq.set_wait_ms(1000);
  v1::AcquireResponse lease;
  ASSERT_TRUE(controller_->agent().Acquire(Ctx().get(), acq, &lease).ok());
  ASSERT_EQ(lease.lease().base_commit(), base_);
  auto upload = [&](const std::string& data, int64_t declared) {
    v1::UploadResultResponse resp;
    auto ctx = Ctx();
    auto writer = controller_->agent().UploadResult(ctx.get(), &resp);
    v1::UploadResultRequest h;
    h.mutable_header()->set_agent_id("uploader");
    h.mutable_header()->set_item_id("upload");
    h.mutable_header()->set_lease_token(lease.lease().lease_token());
    h.mutable_header()->set_commit(base_);
    h.mutable_header()->set_base_commit(base_);
    h.mutable_header()->set_pack_size(declared);
    writer->Write(h);
    v1::UploadResultRequest d;
    d.set_pack_data(data);
    writer->Write(d);
    writer->WritesDone();
    return writer->Finish();
  };
  grpc::Status corrupt = upload(std::string("PACK\0\0\0\2\0\0\0\1garbage-garbage-garbage", 33), 0);
  EXPECT_EQ(corrupt.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << corrupt.error_message();
  EXPECT_NE(corrupt.error_message().find("pack"), std::string::npos) << corrupt.error_message();
  grpc::Status big = upload(std::string(1000, 'x'), int64_t{1} << 40);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << big.error_message();
  v1::UploadResultResponse resp;
  auto ctx = Ctx();
  auto writer = controller_->agent().UploadResult(ctx.get(), &resp);
  v1::UploadResultRequest stale;
  stale.mutable_header()->set_agent_id("uploader");
  stale.mutable_header()->set_item_id("upload");
  stale.mutable_header()->set_lease_token(lease.lease().lease_token() + 7);
  writer->Write(stale);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Still serving, and a completion with a commit the repository lacks is refused.
  v1::CompleteRequest complete;
  complete.set_agent_id("uploader");
  complete.set_item_id("upload");
  complete.set_lease_token(lease.lease().lease_token());
  complete.set_commit(std::string(40, 'a'));
  complete.set_base_commit(base_);
  v1::CompleteResponse cresp;
  EXPECT_NE(controller_->agent().Complete(Ctx().get(), complete, &cresp).error_code(),
            grpc::StatusCode::OK);
  EXPECT_EQ(GetStatus(controller_->control()).queue().total(), 1);
}

// An outside gRPC client holding a lease: once its Complete landed commit A, repeating the
// Complete with another commit (or failing, or uploading, with that token) changes nothing.
TEST_F(GitEndToEnd, AnOutsideClientRepeatingACompleteWithAnotherCommitFindsTheRefUnchanged) {
  auto side_commit = [&](const std::string& branch, const std::string& file) {
    Git({"-C", repo_, "checkout", "-q", "-b", branch, "main"});
    std::ofstream(repo_ + "/" + file) << branch << "\n";
    Git({"-C", repo_, "add", file});
    Git({"-C", repo_, "-c", "user.name=T", "-c", "user.email=t@test", "commit", "-q", "-m",
         branch});
    std::string id = Git({"-C", repo_, "rev-parse", "HEAD"});
    Git({"-C", repo_, "checkout", "-q", "main"});
    return id;
  };
  const std::string a = side_commit("side-a", "a.txt");
  const std::string b = side_commit("side-b", "b.txt");
  Submit(controller_->control(), {MakeItem("fence", "x")});
  v1::RegisterRequest reg;
  reg.set_agent_id("outsider");
  v1::RegisterResponse reg_resp;
  ASSERT_TRUE(controller_->agent().Register(Ctx().get(), reg, &reg_resp).ok());
  v1::AcquireRequest acq;
  acq.set_agent_id("outsider");
  acq.set_session_id(reg_resp.session_id());
  acq.set_wait_ms(1000);
  v1::AcquireResponse lease;
  ASSERT_TRUE(controller_->agent().Acquire(Ctx().get(), acq, &lease).ok());
  ASSERT_TRUE(lease.has_lease());
  auto complete = [&](const std::string& commit, v1::CompleteResponse* resp) {
    v1::CompleteRequest req;
    req.set_agent_id("outsider");
    req.set_item_id("fence");
    req.set_lease_token(lease.lease().lease_token());
    req.set_commit(commit);
    req.set_base_commit(base_);
    return controller_->agent().Complete(Ctx().get(), req, resp);
  };
  v1::CompleteResponse first;
  grpc::Status st = complete(a, &first);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(first.result().commit(), a);
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/fence"}), a);

  v1::CompleteResponse other;
  st = complete(b, &other);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  EXPECT_NE(st.error_message().find(a), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find(b), std::string::npos) << st.error_message();
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/fence"}), a);

  v1::CompleteResponse same;
  st = complete(a, &same);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(same.result().commit(), a);
  EXPECT_EQ(same.result().branch(), first.result().branch());

  v1::FailRequest fail;
  fail.set_agent_id("outsider");
  fail.set_item_id("fence");
  fail.set_lease_token(lease.lease().lease_token());
  fail.set_commit(b);
  v1::FailResponse fresp;
  EXPECT_EQ(controller_->agent().Fail(Ctx().get(), fail, &fresp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::UploadResultResponse uresp;
  auto ctx = Ctx();
  auto writer = controller_->agent().UploadResult(ctx.get(), &uresp);
  v1::UploadResultRequest h;
  h.mutable_header()->set_agent_id("outsider");
  h.mutable_header()->set_item_id("fence");
  h.mutable_header()->set_lease_token(lease.lease().lease_token());
  h.mutable_header()->set_commit(b);
  h.mutable_header()->set_base_commit(base_);
  writer->Write(h);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/fence"}), a);
  EXPECT_EQ(GetItem(controller_->control(), "fence").result().commit(), a);
}

TEST_F(GitEndToEnd, BadRepositoriesAndBaseBranchesAreClearErrors) {
  std::string out;
  int status = RunCommand({AgentdBin(), "--id", "x1", "--controller", controller_->address(),
                           "--repo", tmp_.Sub("not-a-repo")},
                          &out);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("not-a-repo"), std::string::npos) << out;
  status = RunCommand({ControllerBin(), "--listen", "127.0.0.1:0", "--state-dir", tmp_.Sub("s2"),
                       "--repo", tmp_.Sub("not-a-repo")},
                      &out);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("not-a-repo"), std::string::npos) << out;
  std::string cfg = tmp_.Sub("nobranch.yaml");
  std::ofstream(cfg) << "harness:\n  listen: 127.0.0.1:0\n  state_dir: " << tmp_.Sub("s3")
                     << "\n  repo:\n    path: " << repo_ << "\n    base_branch: no-such-branch\n";
  status = RunCommand({ControllerBin(), "--config", cfg}, &out);
  EXPECT_EQ(WEXITSTATUS(status), 2) << out;
  EXPECT_NE(out.find("no-such-branch"), std::string::npos) << out;
  EXPECT_FALSE(PathExists(tmp_.Sub("s2") + "/journal")) << "nothing was changed";
}

}  // namespace
}  // namespace harness::testing
