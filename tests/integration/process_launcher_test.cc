// The process launcher against real processes: fake_agentd (tests/support) stands in for
// agentd, so no controller is needed. Every wait polls an observable state with a generous
// deadline; every process a test starts is killed by its pid (group) at the end.
#include "launch/process_launcher.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launch/pid_file.h"
#include "launch/proc_stat.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace harness::launch {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kController = "ctl-1";

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return cond();
}

// Gone, or a zombie nobody has reaped yet: either way it runs no more.
bool IsDead(pid_t pid) {
  absl::StatusOr<ProcStat> st = ReadProcStat(pid);
  return !st.ok() || st->state == 'Z' || st->state == 'X';
}

// Collects the exits a launcher reports.
class ExitLog {
 public:
  ExitCallback Callback() {
    return [this](const LaunchExit& e) {
      absl::MutexLock l(&mu_);
      exits_.push_back(e);
    };
  }
  // The first exit reported for `agent`, waiting for it.
  std::optional<LaunchExit> Await(const std::string& agent) {
    std::optional<LaunchExit> found;
    WaitFor([&] {
      absl::MutexLock l(&mu_);
      for (const LaunchExit& e : exits_) {
        if (e.agent_id == agent) found = e;
      }
      return found.has_value();
    });
    return found;
  }
  size_t size() {
    absl::MutexLock l(&mu_);
    return exits_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<LaunchExit> exits_ ABSL_GUARDED_BY(mu_);
};

// The fake agent's report: key -> values (arg= and env: repeat).
std::multimap<std::string, std::string> ParseReport(const std::string& text) {
  std::multimap<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    out.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return out;
}

std::string RealPath(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) != nullptr ? std::string(buf) : p;
}

class ProcessLauncherTest : public ::testing::Test {
 protected:
  ProcessLauncherTest() : state_(RealPath(tmp_.Sub("state"))), paths_(state_) {
    EXPECT_TRUE(MakeDirs(state_).ok());
    state_ = RealPath(state_);
    paths_ = StatePaths(state_);
  }

  ~ProcessLauncherTest() override {
    launchers_.clear();  // first, so that nothing reaps what is killed below
    for (pid_t pid : started_) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int status;
      ::waitpid(pid, &status, 0);  // ECHILD if a launcher reaped it: fine
    }
  }

  ProcessLauncher* NewLauncher(bool use_pidfd = true, ExitLog* log = nullptr) {
    ProcessLauncherOptions o;
    o.state_dir = state_;
    o.controller_id = std::string(kController);
    o.on_exit = (log != nullptr ? log : &exits_)->Callback();
    o.use_pidfd = use_pidfd;
    absl::StatusOr<std::unique_ptr<ProcessLauncher>> l = ProcessLauncher::Create(std::move(o));
    EXPECT_TRUE(l.ok()) << l.status();
    launchers_.push_back(*std::move(l));
    return launchers_.back().get();
  }

  LaunchSpec Spec(int slot, const std::string& mode = "sleep") {
    LaunchSpec s;
    s.slot = slot;
    s.agent_id = absl::StrCat("agent-", slot);
    s.controller_id = std::string(kController);
    s.controller_address = "127.0.0.1:1";
    s.binary = testing::TestBinDir() + "/fake_agentd";
    s.extra_args = {"--mode", mode};
    return s;
  }

  Launched StartOk(ProcessLauncher* l, const LaunchSpec& spec) {
    absl::StatusOr<Launched> r = l->Start(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    started_.push_back(static_cast<pid_t>(r->pid));
    return *r;
  }

  // Waits for the fake agent's report, which it writes once it is set up.
  std::multimap<std::string, std::string> AwaitReport(const std::string& agent) {
    const std::string path = paths_.AgentDir(agent) + "/report";
    EXPECT_TRUE(WaitFor([&] { return PathExists(path); })) << "no report at " << path;
    absl::StatusOr<std::string> text = ReadFile(path);
    return text.ok() ? ParseReport(*text) : std::multimap<std::string, std::string>{};
  }

  static pid_t PidOf(const std::multimap<std::string, std::string>& report,
                     const std::string& key = "pid") {
    auto it = report.find(key);
    int pid = 0;
    if (it == report.end() || !absl::SimpleAtoi(it->second, &pid)) return 0;
    return pid;
  }

  testing::TempDir tmp_;
  std::string state_;
  StatePaths paths_;
  ExitLog exits_;
  std::vector<std::unique_ptr<ProcessLauncher>> launchers_;
  std::vector<pid_t> started_;
};

TEST_F(ProcessLauncherTest, StartWritesThePidFileAndRunsAgentdWithItsArgvEnvWorkdirAndGroup) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(1));
  ASSERT_GT(a.pid, 0);
  EXPECT_EQ(a.id, absl::StrCat(a.pid));
  EXPECT_EQ(a.agent_id, "agent-1");
  EXPECT_EQ(a.labels["harness.controller"], "ctl-1");
  EXPECT_EQ(a.labels["harness.slot"], "1");
  EXPECT_EQ(a.labels["harness.agent"], "agent-1");
  EXPECT_FALSE(a.adopted);

  absl::StatusOr<std::string> pid_text = ReadFile(paths_.AgentPidFile("agent-1"));
  ASSERT_TRUE(pid_text.ok()) << pid_text.status();
  absl::StatusOr<PidRecord> rec = ParsePidRecord(*pid_text, "pid");
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->pid, a.pid);
  EXPECT_EQ(rec->slot, 1);
  EXPECT_EQ(rec->controller_id, "ctl-1");
  EXPECT_EQ(rec->binary, RealPath(testing::TestBinDir() + "/fake_agentd"));
  absl::StatusOr<ProcStat> st = ReadProcStat(static_cast<pid_t>(a.pid));
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(rec->start_ticks, st->start_ticks);

  auto report = AwaitReport("agent-1");
  EXPECT_EQ(PidOf(report), a.pid);
  EXPECT_EQ(PidOf(report, "pgid"), a.pid) << "not the leader of a process group of its own";
  EXPECT_EQ(report.find("cwd")->second, paths_.AgentDir("agent-1"));
  EXPECT_EQ(report.find("stdin")->second, "/dev/null");
  EXPECT_EQ(report.find("fds")->second, "") << "descriptors leaked into the agent";
  std::vector<std::string> argv;
  for (auto [it, end] = report.equal_range("arg"); it != end; ++it) argv.push_back(it->second);
  EXPECT_THAT(
      argv, ::testing::ElementsAre(rec->binary, "--id", "agent-1", "--controller", "127.0.0.1:1",
                                   "--workdir", paths_.AgentWorkDir("agent-1"), "--mode", "sleep"));
  std::vector<std::string> env;
  for (auto [it, end] = report.equal_range("env:HARNESS_AGENT_ID"); it != end; ++it) {
    env.push_back(it->second);
  }
  EXPECT_THAT(env, ::testing::ElementsAre("agent-1"));
  EXPECT_EQ(report.find("env:HARNESS_SLOT")->second, "1");
  EXPECT_EQ(report.find("env:HARNESS_CONTROLLER")->second, "127.0.0.1:1");
  EXPECT_EQ(report.find("env:HARNESS_CONTROLLER_ID")->second, "ctl-1");
  EXPECT_TRUE(PathExists(paths_.AgentWorkDir("agent-1")));
  absl::StatusOr<std::string> log = ReadFile(paths_.AgentLogFile("agent-1"));
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr(absl::StrCat("fake_agentd ", a.pid, " starting")));

  absl::StatusOr<std::vector<Launched>> listed = l->List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].pid, a.pid);
  EXPECT_EQ(exits_.size(), 0u);
}

TEST_F(ProcessLauncherTest, ARelativeStateDirGivesTheAgentAbsolutePaths) {
  // The agent runs in its own folder: a relative --workdir would resolve below it.
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(state_.c_str()), 0);
  ProcessLauncherOptions o;
  o.state_dir = "rel-state";
  o.controller_id = std::string(kController);
  absl::StatusOr<std::unique_ptr<ProcessLauncher>> l = ProcessLauncher::Create(std::move(o));
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(l.ok()) << l.status();
  launchers_.push_back(*std::move(l));
  Launched a = StartOk(launchers_.back().get(), Spec(1));
  const StatePaths rel(state_ + "/rel-state");
  const std::string report_path = rel.AgentDir("agent-1") + "/report";
  ASSERT_TRUE(WaitFor([&] { return PathExists(report_path); })) << report_path;
  std::multimap<std::string, std::string> report = ParseReport(*ReadFile(report_path));
  std::vector<std::string> argv;
  for (auto [it, end] = report.equal_range("arg"); it != end; ++it) argv.push_back(it->second);
  ASSERT_GE(argv.size(), 7u);
  EXPECT_EQ(argv[6], rel.AgentWorkDir("agent-1"));
  EXPECT_TRUE(PathExists(rel.AgentWorkDir("agent-1")));
  EXPECT_EQ(PidOf(report), a.pid);
}

TEST_F(ProcessLauncherTest, AnExitIsReportedWithItsStatusAndThePidFileRemoved) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(3, "exit3"));
  std::optional<LaunchExit> e = exits_.Await("agent-3");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "exited with status 3");
  EXPECT_EQ(e->exit_status, 3);
  EXPECT_EQ(e->id, a.id);
  EXPECT_EQ(e->slot, 3);
  EXPECT_FALSE(PathExists(paths_.AgentPidFile("agent-3")));
  EXPECT_TRUE(PathExists(paths_.AgentLogFile("agent-3"))) << "the log outlives the agent";
  ASSERT_TRUE(l->List().ok());
  EXPECT_TRUE(l->List()->empty());
}

TEST_F(ProcessLauncherTest, AKillNineFromOutsideIsReportedAsKilledBySignal9) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(1));
  AwaitReport("agent-1");
  ASSERT_EQ(::kill(static_cast<pid_t>(a.pid), SIGKILL), 0);
  std::optional<LaunchExit> e = exits_.Await("agent-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "killed by signal 9");
  EXPECT_EQ(e->signal, 9);
  // The slot can be started again once its end is reported.
  Launched b = StartOk(l, Spec(1));
  EXPECT_NE(b.pid, a.pid);
}

TEST_F(ProcessLauncherTest, StopSendsSigtermAndTheAgentEnds) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(2));
  AwaitReport("agent-2");
  ASSERT_TRUE(l->Stop(a.id, absl::Seconds(60)).ok());
  std::optional<LaunchExit> e = exits_.Await("agent-2");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "exited with status 0");  // fake_agentd exits 0 on SIGTERM
  absl::StatusOr<std::string> log = ReadFile(paths_.AgentLogFile("agent-2"));
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("SIGTERM, exiting"));
  EXPECT_TRUE(absl::IsNotFound(l->Stop(a.id, absl::Seconds(1))));
}

TEST_F(ProcessLauncherTest, StopKillsTheWholeGroupAfterTheGraceWhenSigtermIsIgnored) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(1, "fork"));
  auto report = AwaitReport("agent-1");
  const pid_t grandchild = PidOf(report, "grandchild");
  ASSERT_GT(grandchild, 0);
  ASSERT_EQ(::getpgid(grandchild), a.pid);
  // Stop does not wait for the grace: it returns with the agent still running.
  ASSERT_TRUE(l->Stop(a.id, absl::Hours(1)).ok());
  EXPECT_FALSE(IsDead(static_cast<pid_t>(a.pid)));
  ASSERT_TRUE(l->Stop(a.id, absl::Milliseconds(300)).ok());  // a shorter grace replaces it
  std::optional<LaunchExit> e = exits_.Await("agent-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "killed by signal 9");
  EXPECT_TRUE(WaitFor([&] { return IsDead(grandchild); }))
      << "grandchild " << grandchild << " survived its agent";
}

TEST_F(ProcessLauncherTest, AGrandchildLeftBehindByAnAgentThatExitsIsKilled) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(1, "fork"));
  const pid_t grandchild = PidOf(AwaitReport("agent-1"), "grandchild");
  ASSERT_GT(grandchild, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(a.pid), SIGKILL), 0);  // the leader only
  ASSERT_TRUE(exits_.Await("agent-1").has_value());
  EXPECT_TRUE(WaitFor([&] { return IsDead(grandchild); }));
}

TEST_F(ProcessLauncherTest, ANewLauncherAdoptsLiveAgentsAndDropsStalePidFiles) {
  ProcessLauncher* first = NewLauncher();
  Launched a1 = StartOk(first, Spec(1));
  Launched a2 = StartOk(first, Spec(2));
  AwaitReport("agent-1");
  AwaitReport("agent-2");
  launchers_.clear();  // the controller goes away; its agents stay
  ASSERT_FALSE(IsDead(static_cast<pid_t>(a1.pid)));

  // Stale pid files: a dead pid, a live pid with another start time, a live pid with the right
  // start time but another binary; and one of another controller, to be left alone.
  pid_t dead = ::fork();
  if (dead == 0) _exit(0);
  int status;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);
  absl::StatusOr<ProcStat> self = ReadProcStat(::getpid());
  ASSERT_TRUE(self.ok());
  const std::string fake = RealPath(testing::TestBinDir() + "/fake_agentd");
  auto write = [&](const std::string& agent, int64_t pid, uint64_t ticks, const std::string& bin,
                   const std::string& controller) {
    ASSERT_TRUE(MakeDirs(paths_.AgentDir(agent)).ok());
    PidRecord r{pid, ticks, bin, 9, agent, controller, 0};
    ASSERT_TRUE(WriteFileAtomically(paths_.AgentPidFile(agent), FormatPidRecord(r)).ok());
  };
  write("agent-3", dead, 1, fake, "ctl-1");
  write("agent-4", ::getpid(), self->start_ticks + 1, RealPath("/proc/self/exe"), "ctl-1");
  write("agent-5", ::getpid(), self->start_ticks, fake, "ctl-1");
  write("agent-6", a1.pid, 1, fake, "ctl-other");
  ASSERT_TRUE(MakeDirs(paths_.AgentDir("agent-7")).ok());
  ASSERT_TRUE(WriteFileAtomically(paths_.AgentPidFile("agent-7"), "garbage").ok());

  ProcessLauncher* second = NewLauncher();
  absl::StatusOr<std::vector<Launched>> listed = second->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].pid, a1.pid);
  EXPECT_EQ((*listed)[1].pid, a2.pid);
  EXPECT_TRUE((*listed)[0].adopted);
  EXPECT_EQ((*listed)[1].labels["harness.slot"], "2");
  for (const char* stale : {"agent-3", "agent-4", "agent-5", "agent-7"}) {
    EXPECT_FALSE(PathExists(paths_.AgentPidFile(stale))) << stale;
  }
  EXPECT_TRUE(PathExists(paths_.AgentPidFile("agent-6"))) << "another controller's pid file";
  EXPECT_TRUE(PathExists(paths_.AgentPidFile("agent-1")));

  // Adopted means it is this launcher's now: no second agent for the slot, and a second List
  // gives the same answer.
  absl::StatusOr<Launched> dup = second->Start(Spec(1));
  EXPECT_TRUE(absl::IsFailedPrecondition(dup.status())) << dup.status();
  ASSERT_EQ(second->List()->size(), 2u);
}

class AdoptedExitTest : public ProcessLauncherTest, public ::testing::WithParamInterface<bool> {};

TEST_P(AdoptedExitTest, AnAdoptedAgentsEndIsReportedAndStopWorksOnIt) {
  ProcessLauncher* first = NewLauncher();
  Launched a1 = StartOk(first, Spec(1));
  Launched a2 = StartOk(first, Spec(2, "fork"));
  AwaitReport("agent-1");
  const pid_t grandchild = PidOf(AwaitReport("agent-2"), "grandchild");
  launchers_.clear();

  ProcessLauncher* second = NewLauncher(/*use_pidfd=*/GetParam());
  ASSERT_EQ(second->List()->size(), 2u);
  ASSERT_EQ(::kill(static_cast<pid_t>(a1.pid), SIGKILL), 0);
  std::optional<LaunchExit> e1 = exits_.Await("agent-1");
  ASSERT_TRUE(e1.has_value());
  EXPECT_EQ(e1->reason, "ended (exit status unknown: adopted, not our child)");
  EXPECT_FALSE(e1->exit_status.has_value());
  EXPECT_FALSE(PathExists(paths_.AgentPidFile("agent-1")));

  ASSERT_TRUE(second->Stop(a2.id, absl::Milliseconds(200)).ok());
  ASSERT_TRUE(exits_.Await("agent-2").has_value());
  EXPECT_TRUE(WaitFor([&] { return IsDead(grandchild); }));
  EXPECT_TRUE(second->List()->empty());
}

INSTANTIATE_TEST_SUITE_P(PidfdAndPolling, AdoptedExitTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Pidfd" : "Polling"; });

TEST_F(ProcessLauncherTest, OwnChildExitsAreSeenWithoutPidfdToo) {
  ProcessLauncher* l = NewLauncher(/*use_pidfd=*/false);
  StartOk(l, Spec(3, "exit3"));
  std::optional<LaunchExit> e = exits_.Await("agent-3");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "exited with status 3");
}

TEST_F(ProcessLauncherTest, ChildrenItDidNotStartAreLeftToTheirOwner) {
  ProcessLauncher* l = NewLauncher();
  StartOk(l, Spec(1, "exit3"));  // the launcher is busy reaping its own at the same time
  testing::ChildProcess other = testing::ChildProcess::Spawn(
      {testing::TestBinDir() + "/fake_agentd", "--mode", "exit3"}, tmp_.Sub("other.out"));
  int status = other.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
  ASSERT_TRUE(exits_.Await("agent-1").has_value());
  EXPECT_EQ(exits_.size(), 1u);
}

TEST_F(ProcessLauncherTest, BadAgentIdsAndSpecsAreRefusedBeforeTouchingTheDisk) {
  ProcessLauncher* l = NewLauncher();
  for (const std::string& bad :
       std::vector<std::string>{"../x", "", "a/b", ".hidden", std::string(65, 'a')}) {
    LaunchSpec s = Spec(1);
    s.agent_id = bad;
    absl::StatusOr<Launched> r = l->Start(s);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad << ": " << r.status();
  }
  EXPECT_FALSE(PathExists(paths_.AgentsDir()));
  EXPECT_FALSE(PathExists(state_ + "/x"));

  LaunchSpec missing = Spec(1);
  missing.binary = tmp_.Sub("no-such-agentd");
  absl::StatusOr<Launched> r = l->Start(missing);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no-such-agentd"));

  LaunchSpec other = Spec(1);
  other.controller_id = "ctl-2";
  EXPECT_TRUE(absl::IsInvalidArgument(l->Start(other).status()));
  LaunchSpec slot0 = Spec(1);
  slot0.slot = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(l->Start(slot0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(l->Stop("12abc", absl::Seconds(1))));
  EXPECT_TRUE(l->List()->empty());
}

TEST_F(ProcessLauncherTest, AWorkdirGivenInTheSpecIsCreatedAndPassedOn) {
  ProcessLauncher* l = NewLauncher();
  LaunchSpec s = Spec(1);
  s.workdir = tmp_.Sub("elsewhere/work");
  StartOk(l, s);
  auto report = AwaitReport("agent-1");
  std::vector<std::string> argv;
  for (auto [it, end] = report.equal_range("arg"); it != end; ++it) argv.push_back(it->second);
  EXPECT_THAT(argv, ::testing::Contains(s.workdir));
  EXPECT_TRUE(PathExists(s.workdir));
  EXPECT_FALSE(PathExists(paths_.AgentWorkDir("agent-1")));
}

TEST_F(ProcessLauncherTest, ASecondStartOfARunningAgentIsRefused) {
  ProcessLauncher* l = NewLauncher();
  Launched a = StartOk(l, Spec(1));
  absl::StatusOr<Launched> again = l->Start(Spec(1));
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_THAT(again.status().message(), HasSubstr(absl::StrCat("pid ", a.pid)));
}

TEST(NoneLauncher, StartAndStopAreRefusedAndListIsEmpty) {
  NoneLauncher none;
  LaunchSpec s;
  s.slot = 1;
  s.agent_id = "agent-1";
  absl::StatusOr<Launched> r = none.Start(s);
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("\"none\""));
  EXPECT_TRUE(absl::IsFailedPrecondition(none.Stop("1", absl::Seconds(1))));
  ASSERT_TRUE(none.List().ok());
  EXPECT_TRUE(none.List()->empty());
}

}  // namespace
}  // namespace harness::launch
