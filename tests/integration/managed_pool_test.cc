// The managed pool with real processes: a controller with `agent.launcher: process` launches
// agentd workers itself, keeps them at the target through kill -9, silence and scaling, and
// gives up on a slot that keeps dying. Counts the agent command's own side effects, not only
// the controller's view. Every launched agent is killed by its pid (from its pid file) at the
// end of each test, since launched agents outlive a killed controller on purpose.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launch/pid_file.h"
#include "launch/proc_stat.h"
#include "tests/support/cluster.h"
#include "tests/support/git_cli.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

class ManagedPool : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.listen = absl::StrCat("127.0.0.1:", FreePort());
    config_.launcher = "process";
    config_.parallel_agents = 2;
    // Long enough that an item moving to another agent can only be the death path's doing.
    config_.lease_ttl = 30;
    config_.heartbeat_interval = 0.2;
    config_.heartbeat_timeout = 2;
    effects_ = tmp_.Sub("effects");
    // "<item> <agent>" to the effects file, then as the prompt says: "sleep:S", "hang",
    // "crash" (kills its agentd), "ok".
    script_ = tmp_.Sub("agent.sh");
    std::ofstream s(script_);
    s << "#!/bin/sh\n"
      << "prompt=$(cat \"$HARNESS_PROMPT_FILE\")\n"
      << "case \"$prompt\" in\n"
      << "  sleep:*) sleep \"${prompt#sleep:}\" ;;\n"
      << "  hang) sleep 1000 ;;\n"
      << "  crash) kill -9 $PPID; sleep 1000 ;;\n"
      << "esac\n"
      << "echo \"$HARNESS_ITEM_ID $HARNESS_AGENT_ID\" >> " << effects_ << "\n";
    s.close();
    chmod(script_.c_str(), 0755);
    config_.command = {"/bin/sh", script_};
    pool_yaml_ = "  agent_startup_stagger: 0.2\n  agent_restart_delay: 0.2\n";
  }
  void TearDown() override {
    controller_.reset();
    KillLaunchedAgents();
  }
  void StartController() {
    config_.extra_yaml = pool_yaml_;
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  // Every agent a pid file names, with whatever runs in its session.
  void KillLaunchedAgents() {
    for (const auto& [agent, pid] : PidFiles()) {
      for (pid_t p : launch::ProcessesInSession(static_cast<pid_t>(pid))) ::kill(p, SIGKILL);
    }
  }
  // agent -> pid, from <state>/agents/*/pid.
  std::map<std::string, int64_t> PidFiles() {
    std::map<std::string, int64_t> out;
    StatePaths paths(config_.state_dir);
    for (int slot = 1; slot <= 20; ++slot) {
      std::string agent = absl::StrCat("agent-", slot);
      absl::StatusOr<std::string> text = ReadFile(paths.AgentPidFile(agent));
      if (!text.ok()) continue;
      absl::StatusOr<launch::PidRecord> r = launch::ParsePidRecord(*text, agent);
      if (r.ok()) out[agent] = r->pid;
    }
    return out;
  }
  v1::StatusSnapshot Status() { return GetStatus(controller_->control()); }
  // "agent-1 running 0" per slot.
  std::vector<std::string> Slots() {
    std::vector<std::string> out;
    const v1::StatusSnapshot status = Status();
    for (const v1::PoolSlot& s : status.pool().slots()) {
      out.push_back(absl::StrCat(s.agent(), " ", s.state(), " ", s.failures()));
    }
    return out;
  }
  // Registered, healthy agents by id -> pid.
  std::map<std::string, int> Healthy() {
    std::map<std::string, int> out;
    const v1::StatusSnapshot status = Status();
    for (const v1::AgentInfo& a : status.agents()) {
      if (a.health() == v1::HEALTH_HEALTHY) out[a.id()] = a.pid();
    }
    return out;
  }
  bool AllRunning(int n) {
    std::vector<std::string> want;
    for (int i = 1; i <= n; ++i) want.push_back(absl::StrCat("agent-", i));
    std::map<std::string, int> healthy = Healthy();
    if (static_cast<int>(healthy.size()) != n) return false;
    for (const std::string& a : want) {
      if (!healthy.count(a)) return false;
    }
    return Status().pool().slots_size() == n;
  }
  std::map<std::string, int> Effects() {
    std::map<std::string, int> out;
    std::ifstream f(effects_);
    std::string line;
    while (std::getline(f, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (!parts.empty() && !parts[0].empty()) ++out[parts[0]];
    }
    return out;
  }
  std::string LeasedBy(const std::string& id) {
    v1::Item item = GetItem(controller_->control(), id);
    return item.state() == v1::ITEM_STATE_LEASED ? item.agent() : "";
  }
  int64_t Done() { return Status().queue().done(); }
  bool Alive(int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0; }
  std::string ControllerLog() {
    absl::StatusOr<std::string> s = ReadFile(controller_->log_file());
    return s.ok() ? *s : "";
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::string pool_yaml_;
  std::unique_ptr<ControllerProcess> controller_;
  std::string effects_;
  std::string script_;
};

TEST_F(ManagedPool, LaunchesTheTargetStaggeredAndItsAgentsFinishEveryItemOnce) {
  config_.parallel_agents = 3;
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(3); }, absl::Seconds(30))) << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0",
                                               "agent-3 running 0"}));
  // The registered pids are the launched ones, and the starts were staggered.
  std::map<std::string, int64_t> pids = PidFiles();
  ASSERT_EQ(pids.size(), 3u);
  for (const auto& [agent, pid] : Healthy()) EXPECT_EQ(pids[agent], pid) << agent;
  std::vector<int64_t> starts;
  StatePaths paths(config_.state_dir);
  for (const auto& [agent, pid] : pids) {
    absl::StatusOr<launch::PidRecord> r =
        launch::ParsePidRecord(*ReadFile(paths.AgentPidFile(agent)), agent);
    ASSERT_TRUE(r.ok()) << r.status();
    starts.push_back(r->started_unix_ms);
  }
  // Starts are 200 ms apart when the pool emits them; the recorded times follow each spawn, so
  // they may be a little closer. Unstaggered, all three would be within a few milliseconds.
  // (The exact rule is tested on a FakeClock in pool_test.)
  std::sort(starts.begin(), starts.end());
  EXPECT_GE(starts[1] - starts[0], 100);
  EXPECT_GE(starts[2] - starts[1], 100);

  std::vector<v1::ItemSpec> items;
  // Items long enough that all three idle agents are woken by the submit and take one.
  for (int i = 0; i < 12; ++i) items.push_back(MakeItem(absl::StrCat("w-", i), "sleep:0.2"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return Done() == 12; }, absl::Seconds(60))) << Done();
  std::map<std::string, int> effects = Effects();
  std::set<std::string> workers;
  for (int i = 0; i < 12; ++i) EXPECT_EQ(effects[absl::StrCat("w-", i)], 1) << i;
  std::ifstream f(effects_);
  std::string item, agent;
  while (f >> item >> agent) workers.insert(agent);
  EXPECT_GE(workers.size(), 2u) << "the work was shared";
}

// `controller --repo .` (and the default repo.path ".") run from the repository: launched
// agents work in their own folders, so they must be handed the repository's absolute path.
// Before, they got "--repo ." and every one exited with status 2 ("not a git repository").
TEST_F(ManagedPool, ARelativeRepoPathReachesLaunchedAgentsAsAnAbsoluteOne) {
  const std::string repo = tmp_.Sub("repo");
  Sh(absl::StrCat("git init -q -b main ", ShellQuote(repo), " && cd ", ShellQuote(repo),
                  " && echo base > README.md && git add -A && git -c user.name=B -c "
                  "user.email=b@test commit -q -m base"));
  config_.wrapper = {"/usr/bin/env", absl::StrCat("--chdir=", repo)};
  config_.extra_args = {"--repo", "."};
  config_.parallel_agents = 1;
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(1); }, absl::Seconds(30))) << ControllerLog();
  Submit(controller_->control(), {MakeItem("rel-1", "ok")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30))) << ControllerLog();
  EXPECT_EQ(Effects()["rel-1"], 1);
  EXPECT_EQ(Status().pool().slots(0).failures(), 0);
}

TEST_F(ManagedPool, AKilledAgentsItemRunsElsewhereAtOnceAndItsSlotIsRestarted) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  Submit(controller_->control(), {MakeItem("long", "hang")});
  std::string first;
  // Killed once it has the lease in hand (its log says so), not merely granted.
  ASSERT_TRUE(WaitFor(
      [&] {
        first = LeasedBy("long");
        if (first.empty()) return false;
        absl::StatusOr<std::string> log =
            ReadFile(StatePaths(config_.state_dir).AgentLogFile(first));
        return log.ok() && absl::StrContains(*log, "acquired item long (");
      },
      absl::Seconds(20)));
  const std::string other = first == "agent-1" ? "agent-2" : "agent-1";
  const int64_t victim = PidFiles()[first];
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  // The lease TTL is 30 s: the item moves because the death was seen, not because it expired.
  ASSERT_TRUE(WaitFor([&] { return LeasedBy("long") == other; }, absl::Seconds(15)))
      << ControllerLog();
  v1::Item item = GetItem(controller_->control(), "long");
  ASSERT_GE(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  EXPECT_TRUE(absl::StrContains(item.attempts(0).error(), "its agent died: killed by signal 9"))
      << item.attempts(0).error();
  // The context folder the attempt names holds the reason, the item and the agent's log.
  std::string error = item.attempts(0).error();
  size_t at = error.find("context in ");
  ASSERT_NE(at, std::string::npos) << error;
  std::string dir = error.substr(at + 11, error.find(')', at) - at - 11);
  EXPECT_TRUE(absl::StartsWith(dir, config_.state_dir + "/crashes/" + first + "/")) << dir;
  // The lease ends first (the item runs elsewhere at once); the folder appears, whole, after.
  ASSERT_TRUE(WaitFor([&] { return PathExists(dir); }, absl::Seconds(10))) << dir;
  absl::StatusOr<std::string> reason = ReadFile(dir + "/reason");
  ASSERT_TRUE(reason.ok()) << reason.status();
  EXPECT_TRUE(absl::StrContains(*reason, "killed by signal 9")) << *reason;
  EXPECT_TRUE(absl::StrContains(*ReadFile(dir + "/item"), "item long")) << *ReadFile(dir + "/item");
  absl::StatusOr<std::string> tail = ReadFile(dir + "/log.tail");
  EXPECT_TRUE(absl::StrContains(*tail, "acquired item long")) << *tail;
  // The slot came back with a new process, and the killed agent's command did not outlive it.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        return h.count(first) && h[first] != victim;
      },
      absl::Seconds(20)));
  EXPECT_EQ(Status().pool().slots(first == "agent-1" ? 0 : 1).failures(), 1);
  EXPECT_TRUE(launch::ProcessesInSession(static_cast<pid_t>(victim)).empty());
}

TEST_F(ManagedPool, ThreeAgentsKilledAtOnceAreAllReplaced) {
  config_.parallel_agents = 3;
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(3); }, absl::Seconds(30))) << ControllerLog();
  std::map<std::string, int64_t> before = PidFiles();
  for (const auto& [agent, pid] : before) ::kill(static_cast<pid_t>(pid), SIGKILL);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        if (h.size() != 3) return false;
        for (const auto& [agent, pid] : h) {
          if (pid == before[agent]) return false;
        }
        return true;
      },
      absl::Seconds(30)))
      << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 1", "agent-2 running 1",
                                               "agent-3 running 1"}));
}

TEST_F(ManagedPool, AnItemThatKillsItsAgentEveryTimeIsParkedAfterMaxAttempts) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  v1::ItemSpec spec = MakeItem("poison", "crash");
  spec.set_max_attempts(2);
  Submit(controller_->control(), {spec});
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "poison").state() == v1::ITEM_STATE_PARKED; },
      absl::Seconds(30)))
      << ControllerLog();
  v1::Item item = GetItem(controller_->control(), "poison");
  EXPECT_EQ(item.attempts_size(), 2);
  for (const v1::Attempt& a : item.attempts()) {
    EXPECT_TRUE(absl::StrContains(a.error(), "its agent died")) << a.error();
  }
  // The pool is whole again.
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
}

TEST_F(ManagedPool, ASilentAgentIsDeclaredDeadKilledAndReplaced) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  const int64_t stopped = PidFiles()["agent-2"];
  ASSERT_EQ(::kill(static_cast<pid_t>(stopped), SIGSTOP), 0);
  // suspect first (missed heartbeats), then dead, then a fresh process.
  ASSERT_TRUE(WaitFor(
      [&] {
        const v1::StatusSnapshot status = Status();
        for (const v1::AgentInfo& a : status.agents()) {
          if (a.id() == "agent-2") return a.health() == v1::HEALTH_SUSPECT;
        }
        return false;
      },
      absl::Seconds(10)));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        return h.count("agent-2") && h["agent-2"] != stopped;
      },
      absl::Seconds(30)))
      << ControllerLog();
  EXPECT_TRUE(launch::ProcessesInSession(static_cast<pid_t>(stopped)).empty());
  v1::StatusSnapshot s = Status();
  EXPECT_EQ(s.pool().slots(1).failures(), 1);
  EXPECT_TRUE(absl::StrContains(s.pool().slots(1).reason(), "no heartbeat"))
      << s.pool().slots(1).reason();
}

TEST_F(ManagedPool, ASlotThatKeepsDyingFailsAndRunsTheAlertOnce) {
  // agentd that exits at once: every start is a death.
  std::string bad = tmp_.Sub("bad-agentd.sh");
  std::ofstream(bad) << "#!/bin/sh\necho 'bad agentd starting' >&2\nexit 7\n";
  chmod(bad.c_str(), 0755);
  std::string alerts = tmp_.Sub("alerts");
  std::string alert = tmp_.Sub("alert.sh");
  std::ofstream(alert) << "#!/bin/sh\necho \"$HARNESS_ALERT_AGENT|$HARNESS_ALERT_FAILURES|"
                          "$HARNESS_ALERT_REASON|$HARNESS_ALERT\" >> "
                       << alerts << "\n";
  chmod(alert.c_str(), 0755);
  config_.parallel_agents = 1;
  config_.agent_yaml = absl::StrCat("    binary: ", bad, "\n");
  pool_yaml_ += absl::StrCat("  coordinator:\n    max_agent_failures: 2\n    failure_window: 600\n",
                             "    on_alert: [\"", alert, "\"]\n");
  StartController();
  ASSERT_TRUE(WaitFor(
      [&] { return Slots() == std::vector<std::string>{"agent-1 failed 3"}; }, absl::Seconds(30)))
      << ControllerLog();
  ASSERT_TRUE(WaitFor([&] { return PathExists(alerts); }, absl::Seconds(10)));
  std::string line;
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> a = ReadFile(alerts);
        line = a.ok() ? *a : "";
        return absl::EndsWith(line, "\n");
      },
      absl::Seconds(10)));
  EXPECT_TRUE(absl::StartsWith(line, "agent-1|3|exited with status 7|pool slot 1 (agent-1) failed"))
      << line;
  EXPECT_EQ(Status().pool().slots(0).reason(), "exited with status 7");
  // A crash folder was kept for each death, with the agent's own output.
  std::string crashes = config_.state_dir + "/crashes/agent-1";
  std::vector<std::string> folders;
  if (DIR* d = ::opendir(crashes.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') folders.push_back(e->d_name);
    }
    ::closedir(d);
  }
  ASSERT_EQ(folders.size(), 3u);
  absl::StatusOr<std::string> tail = ReadFile(crashes + "/" + folders[0] + "/log.tail");
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_TRUE(absl::StrContains(*tail, "bad agentd starting")) << *tail;
  EXPECT_EQ(Slots(), std::vector<std::string>{"agent-1 failed 3"});
  // A scale re-arms it (and it fails again, with a second alert).
  std::string out;
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "scale", "1"},
                       &out),
            0)
      << out;
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> a = ReadFile(alerts);
        return a.ok() && std::count(a->begin(), a->end(), '\n') == 2;
      },
      absl::Seconds(30)))
      << ControllerLog();
}

TEST_F(ManagedPool, ScaleUpLaunchesAndScaleDownDrainsTheIdleAgentFirst) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  std::string out;
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, &out);
  };
  ASSERT_EQ(ctl({"scale", "4"}), 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "target: 2 -> 4")) << out;
  ASSERT_TRUE(WaitFor([&] { return AllRunning(4); }, absl::Seconds(30))) << ControllerLog();
  // agent-3 works on a long item; scaling to 3 drains an idle one (agent-4, the highest idle).
  Submit(controller_->control(), {MakeItem("long", "sleep:1000")});
  std::string worker;
  ASSERT_TRUE(WaitFor([&] { return !(worker = LeasedBy("long")).empty(); }, absl::Seconds(20)));
  ASSERT_EQ(ctl({"scale", "3"}), 0) << out;
  ASSERT_TRUE(WaitFor([&] { return Status().pool().slots_size() == 3; }, absl::Seconds(30)))
      << ControllerLog();
  std::set<std::string> slots;
  const v1::StatusSnapshot after = Status();
  for (const v1::PoolSlot& s : after.pool().slots()) slots.insert(s.agent());
  EXPECT_TRUE(slots.count(worker)) << "the working agent stays: " << worker;
  EXPECT_EQ(LeasedBy("long"), worker);
  // --force: down to 0 stops everyone now; the long item goes back, not counted.
  ASSERT_EQ(ctl({"scale", "0", "--force"}), 0) << out;
  ASSERT_TRUE(WaitFor([&] { return Status().pool().slots_size() == 0; }, absl::Seconds(60)))
      << ControllerLog();
  v1::Item item = GetItem(controller_->control(), "long");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_PENDING);
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_RELEASED);
  EXPECT_TRUE(PidFiles().empty()) << "no launched agent left";
}

TEST_F(ManagedPool, DrainAndStopOfALaunchedAgentReplaceIt) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  const int64_t first = PidFiles()["agent-1"];
  std::string out;
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "drain",
                        "agent-1"},
                       &out),
            0)
      << out;
  // The answer says what the drain did (it printed "agent-1: idle" while the pool had yet to
  // tell the agent): draining, or already stopped when the idle agent was quicker than the answer.
  EXPECT_THAT(out, ::testing::AnyOf(::testing::Eq("agent-1: draining\n"),
                                    ::testing::Eq("agent-1: stopped\n")));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        return h.count("agent-1") && h["agent-1"] != first;
      },
      absl::Seconds(30)))
      << ControllerLog();
  Submit(controller_->control(), {MakeItem("long", "sleep:1000")});
  std::string worker;
  ASSERT_TRUE(WaitFor([&] { return !(worker = LeasedBy("long")).empty(); }, absl::Seconds(20)));
  const int64_t working = PidFiles()[worker];
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "stop", worker},
                       &out),
            0)
      << out;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        return h.count(worker) && h[worker] != working;
      },
      absl::Seconds(30)))
      << ControllerLog();
  // Neither was a death; the stopped agent's item was handed back, not counted.
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0"}));
  v1::Item item = GetItem(controller_->control(), "long");
  ASSERT_GE(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_RELEASED);
}

TEST_F(ManagedPool, AControllerKill9AdoptsItsAgentsAndStartsNoSecondOnes) {
  config_.parallel_agents = 3;
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(3); }, absl::Seconds(30))) << ControllerLog();
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 40; ++i) items.push_back(MakeItem(absl::StrCat("k-", i), "sleep:0.1"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return Done() >= 5; }, absl::Seconds(60)));
  std::map<std::string, int64_t> before = PidFiles();
  ASSERT_EQ(before.size(), 3u);
  controller_->Signal(SIGKILL);
  controller_->Wait();
  for (const auto& [agent, pid] : before) EXPECT_TRUE(Alive(pid)) << agent << " outlived it";
  StartController();
  ASSERT_TRUE(WaitFor([&] { return Done() == 40; }, absl::Seconds(90))) << ControllerLog();
  // The same three processes, re-registered; no second agent for any slot.
  ASSERT_TRUE(WaitFor([&] { return AllRunning(3); }, absl::Seconds(30))) << ControllerLog();
  std::map<std::string, int> healthy = Healthy();
  for (const auto& [agent, pid] : before) EXPECT_EQ(healthy[agent], pid) << agent;
  EXPECT_EQ(PidFiles(), before);
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0",
                                               "agent-3 running 0"}));
  EXPECT_TRUE(absl::StrContains(ControllerLog(), "adopted agent-1"));
  std::map<std::string, int> effects = Effects();
  for (int i = 0; i < 40; ++i) {
    v1::Item item = GetItem(controller_->control(), absl::StrCat("k-", i));
    int done = 0;
    for (const v1::Attempt& a : item.attempts()) done += a.outcome() == v1::ATTEMPT_OUTCOME_DONE;
    EXPECT_EQ(done, 1) << i;
  }
}

TEST_F(ManagedPool, SigtermStopsEveryLaunchedAgentAndLosesNothing) {
  config_.parallel_agents = 3;
  pool_yaml_ += "  coordinator:\n    max_agent_failures: 1\n";
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(3); }, absl::Seconds(30))) << ControllerLog();
  // One death of agent-1 first: a stop counted as a second one would fail its slot.
  const int64_t first = PidFiles()["agent-1"];
  ASSERT_EQ(::kill(static_cast<pid_t>(first), SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::map<std::string, int> h = Healthy();
        return h.count("agent-1") && h["agent-1"] != first;
      },
      absl::Seconds(30)))
      << ControllerLog();
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 30; ++i) items.push_back(MakeItem(absl::StrCat("t-", i), "sleep:0.2"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return Done() >= 3; }, absl::Seconds(60)));
  std::map<std::string, int64_t> pids = PidFiles();
  controller_->Signal(SIGTERM);
  int status = controller_->Wait();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (const auto& [agent, pid] : pids) {
    EXPECT_TRUE(launch::ProcessesInSession(static_cast<pid_t>(pid)).empty()) << agent;
  }
  EXPECT_TRUE(PidFiles().empty());
  EXPECT_FALSE(absl::StrContains(ControllerLog(), "failed:")) << "a stop is not a death";
  // A new controller (agents started again) finishes the rest: nothing lost, nothing twice.
  StartController();
  ASSERT_TRUE(WaitFor([&] { return Done() == 30; }, absl::Seconds(90))) << ControllerLog();
  for (int i = 0; i < 30; ++i) {
    v1::Item item = GetItem(controller_->control(), absl::StrCat("t-", i));
    int done = 0;
    for (const v1::Attempt& a : item.attempts()) {
      done += a.outcome() == v1::ATTEMPT_OUTCOME_DONE;
      EXPECT_NE(a.outcome(), v1::ATTEMPT_OUTCOME_EXPIRED) << i << ": nothing was cut off";
    }
    EXPECT_EQ(done, 1) << i;
  }
}

TEST_F(ManagedPool, TheTargetSurvivesARestartUnlessTheConfigChanged) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return AllRunning(2); }, absl::Seconds(30))) << ControllerLog();
  std::string out;
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "scale", "1"},
                       &out),
            0)
      << out;
  controller_->Signal(SIGTERM);
  controller_->Wait();
  StartController();
  EXPECT_EQ(Status().pool().target(), 1);
  ASSERT_TRUE(WaitFor([&] { return AllRunning(1); }, absl::Seconds(30))) << ControllerLog();
  controller_->Signal(SIGTERM);
  controller_->Wait();
  config_.parallel_agents = 3;  // the operator edited the config since: it wins
  StartController();
  EXPECT_EQ(Status().pool().target(), 3);
}

}  // namespace
}  // namespace harness::testing
