// The whole loop on one host with real processes: a controller, agentd workers running a small
// script, and the operator's calls. Counts the script's own side effects, not only the
// controller's view. Short TTLs and heartbeats come from the test config.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.listen = absl::StrCat("127.0.0.1:", FreePort());
    effects_ = tmp_.Sub("effects");
    // The agent command: appends "<item> <agent> <token>" to the effects file, then behaves as
    // the item's prompt says: "sleep:S", "fail", "hang", or "ok".
    script_ = tmp_.Sub("agent.sh");
    std::ofstream s(script_);
    s << "#!/bin/sh\n"
      << "prompt=$(cat \"$HARNESS_PROMPT_FILE\")\n"
      << "case \"$prompt\" in\n"
      << "  sleep:*) sleep \"${prompt#sleep:}\" ;;\n"
      << "  fail) echo \"failing on purpose\" >&2; exit 3 ;;\n"
      << "  hang) sleep 1000 ;;\n"
      << "  nice) echo \"running at nice $(nice)\" ;;\n"
      << "esac\n"
      << "echo \"$HARNESS_ITEM_ID $HARNESS_AGENT_ID $HARNESS_LEASE_TOKEN\" >> " << effects_ << "\n"
      << "echo \"did $HARNESS_ITEM_ID\"\n";
    s.close();
    chmod(script_.c_str(), 0755);
    StartController();
  }
  void StartController() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  void StartAgents(int n, const std::string& prefix = "agent-") {
    for (int i = 1; i <= n; ++i) StartNamedAgent(absl::StrCat(prefix, i));
  }
  ChildProcess& StartNamedAgent(const std::string& id, std::vector<std::string> extra = {}) {
    agents_[id] = StartAgent(id, controller_->address(), tmp_.Sub("work-" + id),
                             "/bin/sh " + script_, tmp_.Sub(id + ".log"), extra);
    return *agents_[id];
  }
  // item -> how many times the script finished it
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
  int64_t Done() { return GetStatus(controller_->control()).queue().done(); }
  std::string LeasedBy(const std::string& id) {
    v1::Item item = GetItem(controller_->control(), id);
    return item.state() == v1::ITEM_STATE_LEASED ? item.agent() : "";
  }
  // How many times `text` occurs in the agent's log.
  int CountInLog(const std::string& agent, const std::string& text) {
    std::string log = AgentLog(agent);
    int n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }
  int ControllerPort() { return std::stoi(config_.listen.substr(config_.listen.rfind(':') + 1)); }
  std::string AgentLog(const std::string& id) {
    absl::StatusOr<std::string> s = ReadFile(tmp_.Sub(id + ".log"));
    return s.ok() ? *s : "";
  }
  // The agent has the lease in hand (its log says it acquired the item), not merely granted by
  // the controller: a signal sent between the two would race the grant's answer.
  bool Running(const std::string& id, const std::string& agent) {
    return LeasedBy(id) == agent &&
           absl::StrContains(AgentLog(agent), absl::StrCat("acquired item ", id, " ("));
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::map<std::string, std::unique_ptr<ChildProcess>> agents_;
  std::string effects_;
  std::string script_;
};

TEST_F(EndToEnd, ThreeAgentsFinish300ItemsEachExactlyOnce) {
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 300; ++i) items.push_back(MakeItem(absl::StrCat("item-", i), "ok"));
  Submit(controller_->control(), items);
  StartAgents(3);
  ASSERT_TRUE(WaitFor([&] { return Done() == 300; }, absl::Seconds(120))) << Done() << " done";
  std::map<std::string, int> effects = Effects();
  EXPECT_EQ(effects.size(), 300u);
  std::map<std::string, int> per_agent;
  for (int i = 0; i < 300; ++i) {
    std::string id = absl::StrCat("item-", i);
    EXPECT_EQ(effects[id], 1) << id << " ran " << effects[id] << " times";
    v1::Item item = GetItem(controller_->control(), id);
    ASSERT_EQ(item.attempts_size(), 1) << id;
    ++per_agent[item.attempts(0).agent()];
  }
  EXPECT_EQ(per_agent.size(), 3u) << "all three agents took work";
  v1::StatusSnapshot s = GetStatus(controller_->control());
  EXPECT_EQ(s.agents_size(), 3);
  EXPECT_EQ(s.queue().pending(), 0);
  EXPECT_EQ(s.queue().leased(), 0);
}

TEST_F(EndToEnd, AnItemOfAnAgentKilledMidItemIsFinishedByAnotherAfterTheTtl) {
  Submit(controller_->control(), {MakeItem("slow", "sleep:3")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("slow", "a1"); }, absl::Seconds(10)));
  agents_["a1"]->Signal(SIGKILL);
  agents_["a1"]->Wait();
  StartNamedAgent("a2");
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30)));
  v1::Item item = GetItem(controller_->control(), "slow");
  ASSERT_EQ(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).agent(), "a1");
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  EXPECT_EQ(item.attempts(1).agent(), "a2");
  EXPECT_EQ(item.attempts(1).outcome(), v1::ATTEMPT_OUTCOME_DONE);
  absl::SleepFor(absl::Seconds(4));  // the killed agent's command is gone with it
  std::map<std::string, int> effects = Effects();
  EXPECT_EQ(effects["slow"], 1) << "the command of the killed agent must not run on";
}

TEST_F(EndToEnd, EveryItemEndsDoneExactlyOnceAcrossAControllerKill9) {
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 60; ++i) items.push_back(MakeItem(absl::StrCat("r-", i), "sleep:0.05"));
  Submit(controller_->control(), items);
  StartAgents(3);
  ASSERT_TRUE(WaitFor([&] { return Done() >= 15; }, absl::Seconds(60)));
  controller_->Signal(SIGKILL);
  controller_->Wait();
  absl::SleepFor(absl::Milliseconds(500));
  StartController();
  ASSERT_TRUE(WaitFor([&] { return Done() == 60; }, absl::Seconds(90))) << Done() << " done";
  v1::StatusSnapshot s = GetStatus(controller_->control());
  EXPECT_EQ(s.queue().total(), 60);
  std::map<std::string, int> effects = Effects();
  for (int i = 0; i < 60; ++i) {
    std::string id = absl::StrCat("r-", i);
    v1::Item item = GetItem(controller_->control(), id);
    EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE) << id;
    int done_attempts = 0;
    for (const v1::Attempt& a : item.attempts())
      done_attempts += a.outcome() == v1::ATTEMPT_OUTCOME_DONE;
    EXPECT_EQ(done_attempts, 1) << id;
    EXPECT_GE(effects[id], 1) << id;
  }
}

TEST_F(EndToEnd, AStoppedAgentsLateCompletionIsFencedAndTheOtherAgentsResultStands) {
  Submit(controller_->control(), {MakeItem("stopped", "sleep:1")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("stopped", "a1"); }, absl::Seconds(10)));
  agents_["a1"]->Signal(SIGSTOP);
  StartNamedAgent("a2");
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30)));
  agents_["a1"]->Signal(SIGCONT);
  ASSERT_TRUE(WaitFor(
      [&] {
        return AgentLog("a1").find("stopped") != std::string::npos &&
               (AgentLog("a1").find("lost") != std::string::npos ||
                AgentLog("a1").find("no longer valid") != std::string::npos);
      },
      absl::Seconds(20)))
      << AgentLog("a1");
  v1::Item item = GetItem(controller_->control(), "stopped");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE);
  ASSERT_GE(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  const v1::Attempt& last = item.attempts(item.attempts_size() - 1);
  EXPECT_EQ(last.agent(), "a2");
  EXPECT_EQ(last.outcome(), v1::ATTEMPT_OUTCOME_DONE);
}

TEST_F(EndToEnd, AFailingCommandIsRetriedThenParked) {
  v1::ItemSpec bad = MakeItem("bad", "fail");
  bad.set_max_attempts(2);
  Submit(controller_->control(), {bad});
  StartAgents(1);
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "bad").state() == v1::ITEM_STATE_PARKED; },
      absl::Seconds(30)));
  v1::Item item = GetItem(controller_->control(), "bad");
  ASSERT_EQ(item.attempts_size(), 2);
  for (const v1::Attempt& a : item.attempts()) {
    EXPECT_EQ(a.outcome(), v1::ATTEMPT_OUTCOME_FAILED);
    EXPECT_EQ(a.exit_code().value(), 3);
  }
  EXPECT_NE(item.error().find("gave up after 2 attempts"), std::string::npos) << item.error();
  // The tail is written by the lander's thread just after the state changes: wait for it.
  EXPECT_TRUE(WaitFor(
      [&] {
        return GetItem(controller_->control(), "bad").log_tail().find("failing on purpose") !=
               std::string::npos;
      },
      absl::Seconds(10)))
      << GetItem(controller_->control(), "bad").log_tail();
}

TEST_F(EndToEnd, AnItemThatOutlivesItsTimeoutIsKilledAndCountsAsTimedOut) {
  v1::ItemSpec hang = MakeItem("hang", "hang");
  hang.set_timeout_s(1);
  hang.set_max_attempts(1);
  Submit(controller_->control(), {hang});
  StartAgents(1);
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "hang").state() == v1::ITEM_STATE_PARKED; },
      absl::Seconds(60)));
  v1::Item item = GetItem(controller_->control(), "hang");
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_TIMEOUT);
}

TEST_F(EndToEnd, AnItemWhoseCommandStallsEndsStalledAndIsRetried) {
  controller_.reset();
  config_.stall_timeout = 0.5;
  StartController();
  v1::ItemSpec hang = MakeItem("hang", "hang");  // silent, changes nothing
  hang.set_max_attempts(2);
  Submit(controller_->control(), {hang});
  StartAgents(1);
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "hang").state() == v1::ITEM_STATE_PARKED; },
      absl::Seconds(30)));
  v1::Item item = GetItem(controller_->control(), "hang");
  ASSERT_EQ(item.attempts_size(), 2);  // retried once, then parked
  for (const v1::Attempt& a : item.attempts()) {
    EXPECT_EQ(a.outcome(), v1::ATTEMPT_OUTCOME_STALLED);
    EXPECT_TRUE(absl::StartsWith(a.error(), "stalled: no output and no file change for 0.5 s "
                                            "(context in " + config_.state_dir +
                                            "/crashes/agent-1/"))
        << a.error();
  }
  // The folder the attempt names holds what happened (written just after the answer).
  const std::string error = item.attempts(1).error();
  const size_t at = error.find("(context in ") + 12;
  const std::string dir = error.substr(at, error.size() - at - 1);
  ASSERT_TRUE(WaitFor([&] { return PathExists(dir); }, absl::Seconds(10))) << dir;
  EXPECT_NE(ReadFile(dir + "/reason")->find("stalled: no output"), std::string::npos);
  EXPECT_NE(ReadFile(dir + "/item")->find("item hang token"), std::string::npos);
  EXPECT_NE(item.error().find("gave up after 2 attempts; last: stalled"), std::string::npos)
      << item.error();
  // agentd's log line may reach its file after the report it made (its log writer lingers).
  EXPECT_TRUE(WaitFor(
      [&] { return CountInLog("agent-1", "stalled: no output and no file change for 0.5 s") >= 2; },
      absl::Seconds(10)))
      << AgentLog("agent-1");
}

TEST_F(EndToEnd, TheControllersResourceLimitsReachTheCommand) {
  controller_.reset();
  config_.resource_limits = {"nice: 6"};
  StartController();
  Submit(controller_->control(), {MakeItem("n", "nice")});
  StartAgents(1);
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30)));
  // The tail is written by the lander's thread just after the state changes: wait for it.
  EXPECT_TRUE(WaitFor(
      [&] {
        return GetItem(controller_->control(), "n").log_tail().find("running at nice 6") !=
               std::string::npos;
      },
      absl::Seconds(10)))
      << GetItem(controller_->control(), "n").log_tail();
}

TEST_F(EndToEnd, CancellingALeasedItemStopsItsCommand) {
  Submit(controller_->control(), {MakeItem("long", "sleep:30"), MakeItem("next", "ok")});
  StartAgents(1);
  ASSERT_TRUE(WaitFor([&] { return Running("long", "agent-1"); }, absl::Seconds(10)));
  v1::CancelRequest req;
  req.set_id("long");
  v1::CancelResponse resp;
  ASSERT_TRUE(controller_->control().Cancel(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.agent(), "agent-1");
  // The agent stops the command and moves on well before the 30 s sleep would end.
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "next").state() == v1::ITEM_STATE_DONE; },
      absl::Seconds(20)));
  EXPECT_EQ(GetItem(controller_->control(), "long").state(), v1::ITEM_STATE_CANCELLED);
  EXPECT_EQ(Effects()["long"], 0);
}

TEST_F(EndToEnd, ADrainedAgentFinishesItsItemTakesNoMoreAndExits) {
  Submit(controller_->control(), {MakeItem("d1", "sleep:1"), MakeItem("d2", "ok")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("d1", "a1"); }, absl::Seconds(10)));
  v1::DrainRequest req;
  req.set_agent_id("a1");
  v1::DrainResponse resp;
  ASSERT_TRUE(controller_->control().Drain(Ctx().get(), req, &resp).ok());
  int status = agents_["a1"]->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(GetItem(controller_->control(), "d1").state(), v1::ITEM_STATE_DONE);
  EXPECT_EQ(GetItem(controller_->control(), "d2").state(), v1::ITEM_STATE_PENDING);
}

TEST_F(EndToEnd, HigherPriorityRunsFirstAndTiesRunOldestFirst) {
  Submit(controller_->control(), {MakeItem("p0-a", "ok", 0), MakeItem("p9", "ok", 9),
                                  MakeItem("p0-b", "ok", 0), MakeItem("p5", "ok", 5)});
  StartAgents(1);
  ASSERT_TRUE(WaitFor([&] { return Done() == 4; }, absl::Seconds(30)));
  std::ifstream f(effects_);
  std::vector<std::string> order;
  std::string line;
  while (std::getline(f, line)) order.push_back(line.substr(0, line.find(' ')));
  EXPECT_EQ(order, (std::vector<std::string>{"p9", "p5", "p0-a", "p0-b"}));
}

TEST_F(EndToEnd, AgentsIdleInLongPollPickUpWorkAfterAControllerRestart) {
  StartAgents(2);
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).agents_size() == 2; },
                      absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));
  controller_->Signal(SIGTERM);
  int status = controller_->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  StartController();
  Submit(controller_->control(), {MakeItem("after-restart", "ok")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30)));
  EXPECT_EQ(Effects()["after-restart"], 1);
}

TEST_F(EndToEnd, AnAgentFinishesItsItemWhileTheControllerIsDownAndReportsWhenItIsBack) {
  Submit(controller_->control(), {MakeItem("through-outage", "sleep:2")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("through-outage", "a1"); }, absl::Seconds(10)));
  controller_->Signal(SIGKILL);
  controller_->Wait();
  // The item finishes while nobody listens; its report waits for the controller.
  ASSERT_TRUE(WaitFor([&] { return Effects()["through-outage"] == 1; }, absl::Seconds(20)));
  absl::SleepFor(absl::Milliseconds(500));
  StartController();
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30))) << AgentLog("a1");
  v1::Item item = GetItem(controller_->control(), "through-outage");
  ASSERT_EQ(item.attempts_size(), 1) << "the lease survived the restart; nothing ran twice";
  EXPECT_EQ(item.attempts(0).agent(), "a1");
  EXPECT_EQ(Effects()["through-outage"], 1);
}

TEST_F(EndToEnd, AnAgentsItemsArriveAndAreReportedOverTheSessionStream) {
  v1::ItemSpec failing = MakeItem("stream-fail", "fail");
  failing.set_max_attempts(1);
  Submit(controller_->control(), {MakeItem("stream-1", "ok"), MakeItem("stream-2", "ok"), failing});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::StatusSnapshot s = GetStatus(controller_->control());
        // The agent logs a report once its answer arrived, a moment after the state changed.
        return s.queue().done() == 2 && s.queue().parked() + s.queue().failed() == 1 &&
               absl::StrContains(AgentLog("a1"), ": reported as failed");
      },
      absl::Seconds(30)))
      << AgentLog("a1");
  std::string log = AgentLog("a1");
  for (const std::string id : {"stream-1", "stream-2", "stream-fail"}) {
    v1::Item item = GetItem(controller_->control(), id);
    ASSERT_EQ(item.attempts_size(), 1) << id;
    std::string lease = absl::StrCat("item ", id, " (lease ", item.attempts(0).lease_token(), ")");
    EXPECT_TRUE(absl::StrContains(log, absl::StrCat("acquired ", lease,
                                                    " over the session stream, attempt 1")))
        << log;
    EXPECT_TRUE(absl::StrContains(log, absl::StrCat(lease, id == "stream-fail"
                                                               ? ": reported as failed"
                                                               : ": completed")))
        << log;
  }
}

TEST_F(EndToEnd, AReportWhoseAnswerWasLostIsSentAgainOnTheNextStreamAndAnsweredTheSameWay) {
  std::unique_ptr<TcpProxy> proxy = TcpProxy::Start(ControllerPort());
  ASSERT_NE(proxy, nullptr);
  Submit(controller_->control(), {MakeItem("lost-answer", "sleep:2")});
  agents_["a1"] = StartAgent("a1", proxy->address(), tmp_.Sub("work-a1"), "/bin/sh " + script_,
                             tmp_.Sub("a1.log"));
  ASSERT_TRUE(WaitFor([&] { return Running("lost-answer", "a1"); }, absl::Seconds(10)));
  // From now on nothing the controller says reaches the agent: its completion arrives and is
  // committed, the answer is held back, then lost with the connection.
  proxy->HoldReplies(true);
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(20))) << AgentLog("a1");
  EXPECT_EQ(CountInLog("a1", ": completed"), 0) << "the answer was held back";
  proxy->CutAll();
  proxy->HoldReplies(false);
  // The agent sends the completion again on its next stream; the controller answers it as it
  // answered the first, and nothing changes.
  ASSERT_TRUE(WaitFor([&] { return CountInLog("a1", "item lost-answer (lease ") > 0 &&
                                   CountInLog("a1", ": completed") == 1; },
                      absl::Seconds(20)))
      << AgentLog("a1");
  EXPECT_GE(CountInLog("a1", "broke before the controller answered the complete"), 1)
      << AgentLog("a1");
  v1::Item item = GetItem(controller_->control(), "lost-answer");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE);
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_DONE);
  EXPECT_EQ(Effects()["lost-answer"], 1);
  EXPECT_EQ(CountInLog("a1", "acquired item lost-answer"), 1);
}

TEST_F(EndToEnd, AnAgentKeepsItsLeaseThroughAnOutageLongerThanTheLongestReconnectBackoff) {
  // The lease TTL is 3 s (the test config): a restarted controller gives a lease one TTL to be
  // claimed back by its agent, so the agent must be back well within it, after an outage five
  // times the channel's longest reconnect backoff (1 s) and longer than the TTL itself.
  Submit(controller_->control(), {MakeItem("through-long-outage", "sleep:8")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("through-long-outage", "a1"); }, absl::Seconds(10)));
  controller_->Signal(SIGKILL);
  controller_->Wait();
  const int opened = CountInLog("a1", " open\n");
  absl::SleepFor(absl::Seconds(5));  // the outage (a fault's length, not a wait for a state)
  StartController();
  // The agent reconnects (a new stream opens) and keeps its lease: the item runs once, and its
  // result lands.
  ASSERT_TRUE(WaitFor([&] { return CountInLog("a1", " open\n") > opened; }, absl::Seconds(20)))
      << AgentLog("a1");
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(30))) << AgentLog("a1");
  v1::Item item = GetItem(controller_->control(), "through-long-outage");
  ASSERT_EQ(item.attempts_size(), 1) << AgentLog("a1");
  EXPECT_EQ(item.attempts(0).agent(), "a1");
  EXPECT_EQ(Effects()["through-long-outage"], 1);
  EXPECT_EQ(CountInLog("a1", "lease lost"), 0) << AgentLog("a1");
}

TEST_F(EndToEnd, SigtermLetsAShortItemFinishAndReleasesALongOne) {
  Submit(controller_->control(), {MakeItem("short", "sleep:0.5")});
  StartNamedAgent("a1");
  ASSERT_TRUE(WaitFor([&] { return Running("short", "a1"); }, absl::Seconds(10)));
  agents_["a1"]->Signal(SIGTERM);
  int status = agents_["a1"]->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(GetItem(controller_->control(), "short").state(), v1::ITEM_STATE_DONE);

  Submit(controller_->control(), {MakeItem("long", "sleep:30")});
  StartNamedAgent("a2", {"--shutdown-grace", "0.5", "--kill-grace", "0.5"});
  ASSERT_TRUE(WaitFor([&] { return Running("long", "a2"); }, absl::Seconds(10)));
  agents_["a2"]->Signal(SIGTERM);
  status = agents_["a2"]->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  v1::Item item = GetItem(controller_->control(), "long");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_PENDING) << "released, back in the queue at once";
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_RELEASED);
  EXPECT_EQ(Effects()["long"], 0);
}

// The names of a process's threads (/proc/PID/task/*/comm).
std::vector<std::string> ThreadNames(pid_t pid) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

TEST_F(EndToEnd, AnAgentRunsNoWatchdogThreadUntilItIsStopped) {
  Submit(controller_->control(), {MakeItem("long", "sleep:30")});
  StartNamedAgent("a1", {"--shutdown-grace", "0.5", "--kill-grace", "0.5"});
  ASSERT_TRUE(WaitFor([&] { return Running("long", "a1"); }, absl::Seconds(10)));
  const pid_t pid = agents_["a1"]->pid();
  std::vector<std::string> names = ThreadNames(pid);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(std::count(names.begin(), names.end(), "watchdog"), 0) << absl::StrJoin(names, ",");
  // Stopped with an item running: the watchdog enforces the grace (the item is released).
  agents_["a1"]->Signal(SIGTERM);
  EXPECT_TRUE(WaitFor(
      [&] {
        std::vector<std::string> now = ThreadNames(pid);
        return std::count(now.begin(), now.end(), "watchdog") == 1;
      },
      absl::Seconds(10)));
  int status = agents_["a1"]->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(GetItem(controller_->control(), "long").attempts(0).outcome(),
            v1::ATTEMPT_OUTCOME_RELEASED);
}

TEST_F(EndToEnd, SigtermOfAnIdleAgentExitsZero) {
  StartAgents(1);
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).agents_size() == 1; },
                      absl::Seconds(10)));
  agents_["agent-1"]->Signal(SIGTERM);
  int status = agents_["agent-1"]->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace harness::testing
