// The docker launcher and its Engine API client against a real dockerd. fake_agentd
// (tests/support) is bind-mounted into the harness-agent image and stands in for agentd, so no
// controller is needed. Tests that need the daemon are skipped unless HARNESS_DOCKER_TESTS is
// set (CI does not start dockerd yet); with it set, a missing image is a failure. Each test uses
// a controller id of its own, and removes the containers labelled with it (by id) at the end.
// Every wait polls an observable state with a generous deadline.
#include "launch/docker_launcher.h"

#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "launch/docker_engine.h"
#include "launch/swarm_launcher.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unix_proxy.h"

namespace harness::launch {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr absl::string_view kFakeInImage = "/usr/local/bin/fake_agentd";

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return cond();
}

std::string Image() {
  const char* env = getenv("HARNESS_DOCKER_IMAGE");
  return env != nullptr && env[0] != '\0' ? env : HARNESS_TEST_AGENT_IMAGE;
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
  int CountFor(const std::string& agent) {
    absl::MutexLock l(&mu_);
    int n = 0;
    for (const LaunchExit& e : exits_) n += e.agent_id == agent;
    return n;
  }

 private:
  absl::Mutex mu_;
  std::vector<LaunchExit> exits_ ABSL_GUARDED_BY(mu_);
};

std::multimap<std::string, std::string> ParseReport(const std::string& text) {
  std::multimap<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    out.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  return out;
}

std::vector<std::string> Values(const std::multimap<std::string, std::string>& m,
                                const std::string& key) {
  std::vector<std::string> out;
  for (auto [it, end] = m.equal_range(key); it != end; ++it) out.push_back(it->second);
  return out;
}

// No daemon needed: refusals that come before any call.
TEST(DockerLauncherNoDaemon, ADaemonThatIsDownMakesCallsUnavailableWithAClearMessage) {
  harness::testing::TempDir tmp;
  DockerLauncherOptions o;
  o.socket = tmp.Sub("no-dockerd.sock");
  o.controller_id = "ctl-down";
  o.image = "harness-agent:0";
  absl::StatusOr<std::unique_ptr<DockerLauncher>> l = DockerLauncher::Create(o);
  ASSERT_TRUE(l.ok()) << l.status();  // created all the same: the controller keeps serving
  LaunchSpec spec{1, "agent-1", "ctl-down", "127.0.0.1:1", "", {}, "", {}};
  absl::StatusOr<Launched> started = (*l)->Start(spec);
  ASSERT_TRUE(absl::IsUnavailable(started.status())) << started.status();
  EXPECT_THAT(started.status().message(), HasSubstr("cannot start agent-1"));
  EXPECT_THAT(started.status().message(), HasSubstr(o.socket));
  EXPECT_THAT(started.status().message(), HasSubstr("is not reachable (is dockerd running"));
  EXPECT_THAT(started.status().message(), HasSubstr("connect: No such file or directory"));
  absl::StatusOr<std::vector<Launched>> listed = (*l)->List();
  EXPECT_TRUE(absl::IsUnavailable(listed.status())) << listed.status();
  EXPECT_TRUE(absl::IsNotFound((*l)->Stop("abc", absl::Seconds(1))));
}

TEST(DockerLauncherNoDaemon, BadOptionsAndSpecsAreRefusedBeforeAnyCall) {
  DockerLauncherOptions o;
  o.socket = "/nonexistent/docker.sock";
  o.controller_id = "../x";
  o.image = "img";
  EXPECT_TRUE(absl::IsInvalidArgument(DockerLauncher::Create(o).status()));
  o.controller_id = "ctl";
  o.image = "";
  EXPECT_TRUE(absl::IsInvalidArgument(DockerLauncher::Create(o).status()));
  o.image = "img";
  auto l = DockerLauncher::Create(o);
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*l)->Start(LaunchSpec{1, "bad/id", "ctl", "127.0.0.1:1", "", {}, "", {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*l)->Start(LaunchSpec{0, "agent-1", "ctl", "127.0.0.1:1", "", {}, "", {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*l)->Start(LaunchSpec{1, "agent-1", "other", "127.0.0.1:1", "", {}, "", {}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*l)->Start(LaunchSpec{1, "agent-1", "ctl", "", "", {}, "", {}}).status()));
  EXPECT_EQ(DockerLauncher::ContainerName("ctl", "agent-3"), "harness-ctl-agent-3");
}

// The swarm launcher's Check: the pool holds its starts (no failed slots) while it fails.
TEST(SwarmLauncherNoDaemon, CheckIsUnavailableWhileTheManagerIsDown) {
  harness::testing::TempDir tmp;
  SwarmLauncherOptions o;
  o.socket = tmp.Sub("no-manager.sock");
  o.controller_id = "ctl-down";
  o.image = "harness-agent:0";
  absl::StatusOr<std::unique_ptr<SwarmLauncher>> l = SwarmLauncher::Create(o);
  ASSERT_TRUE(l.ok()) << l.status();
  absl::Status check = (*l)->Check();
  EXPECT_TRUE(absl::IsUnavailable(check)) << check;
  EXPECT_THAT(check.message(), HasSubstr(o.socket));
}

class DockerLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (getenv("HARNESS_DOCKER_TESTS") == nullptr) {
      GTEST_SKIP() << "HARNESS_DOCKER_TESTS is unset: these tests need a running dockerd "
                      "(docker/dockerd.sh start) and the agent image (docker/build-images.sh)";
    }
    static int counter = 0;
    controller_ = absl::StrCat("dt", getpid(), "-", ++counter);
    absl::StatusOr<DockerEngine::Response> image =
        engine_.Call("test: docker image inspect", "GET",
                     absl::StrCat("/images/", Image(), "/json"), "", absl::Seconds(30));
    ASSERT_TRUE(image.ok()) << image.status();
    ASSERT_EQ(image->http_status, 200)
        << "image " << Image() << " is missing: run docker/build-images.sh";
    reports_ = tmp_.Sub("reports");
    ASSERT_TRUE(MakeDirs(reports_).ok());
  }

  void TearDown() override {
    launchers_.clear();  // stop watching first
    for (const std::string& cid : {controller_, other_controller_}) {
      if (cid.empty()) continue;
      auto left = engine_.List({absl::StrCat(kLabelController, "=", cid)});
      if (!left.ok()) continue;
      for (const ContainerSummary& c : *left) (void)engine_.Remove(c.id, /*force=*/true);
    }
  }

  DockerLauncher* NewLauncher(ExitLog* log, const std::string& socket = "") {
    DockerLauncherOptions o;
    if (!socket.empty()) o.socket = socket;
    o.reconnect_delay = absl::Milliseconds(100);
    o.controller_id = controller_;
    o.image = Image();
    o.on_exit = log->Callback();
    o.binds = {absl::StrCat(harness::testing::TestBinDir(), "/fake_agentd:", kFakeInImage, ":ro"),
               absl::StrCat(reports_, ":/reports")};
    o.memory_bytes = 256 << 20;
    o.log_dir = tmp_.Sub("logs");
    o.nano_cpus = 500'000'000;
    auto l = DockerLauncher::Create(o);
    EXPECT_TRUE(l.ok()) << l.status();
    launchers_.push_back(std::move(*l));
    return launchers_.back().get();
  }

  LaunchSpec Spec(int slot, const std::string& mode) {
    const std::string agent = absl::StrCat("agent-", slot);
    EXPECT_TRUE(MakeDirs(absl::StrCat(reports_, "/", agent)).ok());
    return LaunchSpec{slot,
                      agent,
                      controller_,
                      "127.0.0.1:50999",
                      std::string(kFakeInImage),
                      {"--mode", mode},
                      absl::StrCat("/reports/", agent),
                      {}};
  }

  // The fake agent's report (it writes it once running), waiting for it.
  std::multimap<std::string, std::string> Report(const std::string& agent) {
    const std::string path = absl::StrCat(reports_, "/", agent, "/report");
    absl::StatusOr<std::string> text;
    WaitFor([&] { return (text = ReadFile(path)).ok(); });
    EXPECT_TRUE(text.ok()) << path << ": " << text.status();
    return text.ok() ? ParseReport(*text) : std::multimap<std::string, std::string>{};
  }

  json InspectJson(const std::string& id) {
    auto r = engine_.Call("test: inspect", "GET", absl::StrCat("/containers/", id, "/json"), "",
                          absl::Seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && r->http_status == 200 ? json::parse(r->body) : json();
  }

  bool Gone(const std::string& id) { return absl::IsNotFound(engine_.Inspect(id).status()); }

  harness::testing::TempDir tmp_;
  DockerEngine engine_{DockerEngineOptions{}};
  std::string controller_;
  std::string other_controller_;
  std::string reports_;
  std::vector<std::unique_ptr<DockerLauncher>> launchers_;
};

TEST_F(DockerLauncherTest, TheClientNegotiatesAnApiVersionTheDaemonSpeaks) {
  absl::StatusOr<DockerVersion> v = engine_.Version();
  ASSERT_TRUE(v.ok()) << v.status();
  absl::StatusOr<std::string> api = engine_.ApiVersion();
  ASSERT_TRUE(api.ok()) << api.status();
  // The lower of the daemon's newest and 1.41 (Debian 12's dockerd: exactly 1.41).
  EXPECT_EQ(*api, v->api_version < "1.41" ? v->api_version : "1.41") << v->version;
}

TEST_F(DockerLauncherTest, AnErrorNamesTheCallTheHttpStatusAndDockersMessage) {
  absl::StatusOr<ContainerInfo> info = engine_.Inspect("harness-no-such-container");
  ASSERT_TRUE(absl::IsNotFound(info.status())) << info.status();
  EXPECT_THAT(info.status().message(), HasSubstr("docker inspect harness-no-such-container"));
  EXPECT_THAT(info.status().message(), HasSubstr("HTTP 404"));
  EXPECT_THAT(info.status().message(), HasSubstr("No such container"));
  ExitLog exits;
  DockerLauncherOptions o;
  o.controller_id = controller_;
  o.image = "harness-no-such-image:0";
  auto l = DockerLauncher::Create(o);
  ASSERT_TRUE(l.ok());
  absl::StatusOr<Launched> s = (*l)->Start(Spec(1, "sleep"));
  ASSERT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_THAT(s.status().message(), HasSubstr("cannot start agent-1: docker create harness-"));
  EXPECT_THAT(s.status().message(), HasSubstr("harness-no-such-image"));
}

TEST_F(DockerLauncherTest, StartRunsAgentdInANamedLabelledContainerOnTheHostNetwork) {
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<Launched> a = l->Start(Spec(1, "sleep"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->slot, 1);
  EXPECT_EQ(a->agent_id, "agent-1");
  EXPECT_GT(a->pid, 1);  // the container's first process on the host (checked below)
  EXPECT_FALSE(a->adopted);
  EXPECT_EQ(a->labels, LabelsFor(controller_, 1, "agent-1"));

  auto report = Report("agent-1");
  EXPECT_THAT(Values(report, "arg"),
              ::testing::ElementsAre(std::string(kFakeInImage), "--id", "agent-1", "--controller",
                                     "127.0.0.1:50999", "--workdir", "/reports/agent-1", "--mode",
                                     "sleep"));
  EXPECT_THAT(Values(report, "env:HARNESS_AGENT_ID"), ::testing::ElementsAre("agent-1"));
  EXPECT_THAT(Values(report, "env:HARNESS_SLOT"), ::testing::ElementsAre("1"));
  EXPECT_THAT(Values(report, "env:HARNESS_CONTROLLER_ID"), ::testing::ElementsAre(controller_));
  EXPECT_THAT(Values(report, "cwd"), ::testing::ElementsAre("/reports/agent-1"));
  // tini is PID 1 (the image's entrypoint), so the agent is not.
  EXPECT_THAT(Values(report, "pid"), ::testing::Not(::testing::Contains("1")));

  json j = InspectJson(a->id);
  EXPECT_EQ(j["Name"], absl::StrCat("/harness-", controller_, "-agent-1"));
  EXPECT_EQ(j["State"]["Pid"], a->pid);
  EXPECT_EQ(j["HostConfig"]["NetworkMode"], "host");
  EXPECT_EQ(j["HostConfig"]["Memory"], 256 << 20);
  EXPECT_EQ(j["HostConfig"]["NanoCpus"], 500'000'000);
  EXPECT_EQ(j["Config"]["Labels"]["harness.slot"], "1");

  absl::StatusOr<Launched> again = l->Start(Spec(1, "sleep"));
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  absl::StatusOr<std::vector<Launched>> listed = l->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, a->id);
}

TEST_F(DockerLauncherTest, StopEndsTheAgentWithSigtermThroughTiniAndReportsItOnce) {
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<Launched> a = l->Start(Spec(1, "sleep"));
  ASSERT_TRUE(a.ok()) << a.status();
  Report("agent-1");  // running, its SIGTERM handler installed
  ASSERT_TRUE(l->Stop(a->id, absl::Seconds(60)).ok());
  std::optional<LaunchExit> e = exits.Await("agent-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "exited with status 0");  // the fake's answer to SIGTERM, not a kill
  // Its output is kept before the container goes.
  absl::StatusOr<std::string> log = ReadFile(tmp_.Sub("logs/agent-1/agentd.log"));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr("starting, mode sleep"));
  EXPECT_THAT(*log, HasSubstr("SIGTERM, exiting"));
  EXPECT_EQ(e->exit_status, 0);
  EXPECT_EQ(e->id, a->id);
  EXPECT_EQ(e->slot, 1);
  EXPECT_TRUE(WaitFor([&] { return Gone(a->id); })) << "the ended container is removed";
  EXPECT_TRUE(absl::IsNotFound(l->Stop(a->id, absl::Seconds(1))));
  // Another agent's whole life later, agent-1's end is still reported once.
  absl::StatusOr<Launched> b = l->Start(Spec(2, "exit3"));
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(exits.Await("agent-2").has_value());
  EXPECT_EQ(exits.CountFor("agent-1"), 1);
}

TEST_F(DockerLauncherTest, AnExitStatusIsReportedAndTheSlotCanStartAgain) {
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<Launched> a = l->Start(Spec(3, "exit3"));
  ASSERT_TRUE(a.ok()) << a.status();
  std::optional<LaunchExit> e = exits.Await("agent-3");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "exited with status 3");
  EXPECT_EQ(e->exit_status, 3);
  EXPECT_FALSE(e->signal.has_value());
  // Its name is free again.
  absl::StatusOr<Launched> again = l->Start(Spec(3, "sleep"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->id, a->id);
}

TEST_F(DockerLauncherTest, TheGraceKillsAnAgentThatIgnoresSigterm) {
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<Launched> a = l->Start(Spec(1, "ignore-term"));
  ASSERT_TRUE(a.ok()) << a.status();
  Report("agent-1");
  ASSERT_TRUE(l->Stop(a->id, absl::Seconds(1)).ok());
  std::optional<LaunchExit> e = exits.Await("agent-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "killed by signal 9");
  EXPECT_EQ(e->signal, 9);
}

TEST_F(DockerLauncherTest, ADockerKillFromOutsideIsReportedAsAnExit) {
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<Launched> a = l->Start(Spec(1, "sleep"));
  ASSERT_TRUE(a.ok()) << a.status();
  Report("agent-1");
  ASSERT_TRUE(engine_.Kill(a->id, "SIGKILL").ok());  // what `docker kill` does
  std::optional<LaunchExit> e = exits.Await("agent-1");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->reason, "killed by signal 9");
  EXPECT_TRUE(WaitFor([&] { return Gone(a->id); }));
}

TEST_F(DockerLauncherTest, ASecondLauncherAdoptsRunningContainersAndRemovesEndedOnes) {
  ExitLog first_exits;
  DockerLauncher* first = NewLauncher(&first_exits);
  absl::StatusOr<Launched> a1 = first->Start(Spec(1, "sleep"));
  absl::StatusOr<Launched> a2 = first->Start(Spec(2, "sleep"));
  ASSERT_TRUE(a1.ok() && a2.ok()) << a1.status() << a2.status();
  Report("agent-1");
  Report("agent-2");
  // An ended container of this controller that no launcher saw end (a controller crash).
  ContainerSpec dead;
  dead.name = DockerLauncher::ContainerName(controller_, "agent-3");
  dead.image = Image();
  dead.cmd = {"true"};
  dead.network_mode = "host";
  dead.labels = LabelsFor(controller_, 3, "agent-3");
  absl::StatusOr<std::string> dead_id = engine_.Create(dead);
  ASSERT_TRUE(dead_id.ok()) << dead_id.status();
  ASSERT_TRUE(engine_.Start(*dead_id).ok());
  ASSERT_TRUE(WaitFor([&] {
    auto i = engine_.Inspect(*dead_id);
    return i.ok() && i->status == "exited";
  }));
  launchers_.clear();  // the first controller goes away; its containers run on

  ExitLog exits;
  DockerLauncher* second = NewLauncher(&exits);
  absl::StatusOr<std::vector<Launched>> listed = second->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, a1->id);
  EXPECT_EQ((*listed)[0].slot, 1);
  EXPECT_EQ((*listed)[0].agent_id, "agent-1");
  EXPECT_TRUE((*listed)[0].adopted);
  EXPECT_EQ((*listed)[1].id, a2->id);
  EXPECT_TRUE(Gone(*dead_id)) << "the ended container is removed";
  // Listing again adopts nothing twice.
  absl::StatusOr<std::vector<Launched>> again = second->List();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 2u);
  EXPECT_TRUE(absl::IsFailedPrecondition(second->Start(Spec(1, "sleep")).status()));

  // Adopted containers are watched: a Stop and a docker kill are both reported.
  ASSERT_TRUE(second->Stop(a1->id, absl::Seconds(60)).ok());
  std::optional<LaunchExit> e1 = exits.Await("agent-1");
  ASSERT_TRUE(e1.has_value());
  EXPECT_EQ(e1->reason, "exited with status 0");
  ASSERT_TRUE(engine_.Kill(a2->id, "SIGKILL").ok());
  std::optional<LaunchExit> e2 = exits.Await("agent-2");
  ASSERT_TRUE(e2.has_value());
  EXPECT_EQ(e2->reason, "killed by signal 9");
}

TEST_F(DockerLauncherTest, AnotherControllersContainersAreLeftAlone) {
  other_controller_ = controller_ + "-other";
  std::vector<std::string> theirs;
  for (const char* state : {"running", "exited"}) {
    ContainerSpec c;
    c.name = DockerLauncher::ContainerName(other_controller_,
                                           state == std::string("running") ? "agent-1" : "agent-2");
    c.image = Image();
    c.cmd = state == std::string("running") ? std::vector<std::string>{"sleep", "600"}
                                            : std::vector<std::string>{"true"};
    c.network_mode = "host";
    c.labels = LabelsFor(other_controller_, 1, "agent-1");
    absl::StatusOr<std::string> id = engine_.Create(c);
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_TRUE(engine_.Start(*id).ok());
    theirs.push_back(*id);
  }
  ASSERT_TRUE(WaitFor([&] {
    auto i = engine_.Inspect(theirs[1]);
    return i.ok() && i->status == "exited";
  }));
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits);
  absl::StatusOr<std::vector<Launched>> listed = l->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
  for (const std::string& id : theirs) {
    absl::StatusOr<ContainerInfo> i = engine_.Inspect(id);
    EXPECT_TRUE(i.ok()) << "another controller's container " << id << " was removed";
  }
  EXPECT_TRUE(absl::IsNotFound(l->Stop(theirs[0], absl::Seconds(1))));
  EXPECT_TRUE(engine_.Inspect(theirs[0])->running);
}

TEST_F(DockerLauncherTest, AnEndWhileTheDaemonWasUnreachableIsReportedOnceItIsBack) {
  // The launcher reaches the daemon through a relay that the test takes down, as if dockerd
  // went away, while the test still talks to the daemon directly.
  auto proxy = harness::testing::UnixProxy::Start(tmp_.Sub("docker.sock"),
                                                  std::string(kDefaultDockerSocket));
  ASSERT_NE(proxy, nullptr);
  ExitLog exits;
  DockerLauncher* l = NewLauncher(&exits, proxy->path());
  absl::StatusOr<Launched> a1 = l->Start(Spec(1, "sleep"));
  absl::StatusOr<Launched> a2 = l->Start(Spec(2, "sleep"));
  ASSERT_TRUE(a1.ok() && a2.ok()) << a1.status() << a2.status();
  Report("agent-1");
  Report("agent-2");

  proxy->Down();
  absl::StatusOr<Launched> refused = l->Start(Spec(3, "sleep"));
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::IsUnavailable(l->List().status()));
  ASSERT_TRUE(engine_.Kill(a1->id, "SIGKILL").ok());
  ASSERT_TRUE(WaitFor([&] {
    auto i = engine_.Inspect(a1->id);
    return i.ok() && !i->running;
  }));
  proxy->Up();

  std::optional<LaunchExit> e1 = exits.Await("agent-1");
  ASSERT_TRUE(e1.has_value()) << "an end while the daemon was unreachable was never reported";
  EXPECT_EQ(e1->reason, "killed by signal 9");
  EXPECT_TRUE(WaitFor([&] { return Gone(a1->id); }));
  // The stream follows the daemon again: the next end arrives as an event.
  ASSERT_TRUE(engine_.Kill(a2->id, "SIGKILL").ok());
  ASSERT_TRUE(exits.Await("agent-2").has_value());
  EXPECT_EQ(exits.CountFor("agent-1"), 1);
  EXPECT_EQ(exits.CountFor("agent-2"), 1);
}

TEST_F(DockerLauncherTest, ASwarmLauncherOnADaemonOutsideASwarmSaysSoInItsCheck) {
  absl::StatusOr<SwarmInfo> info = engine_.Swarm();
  ASSERT_TRUE(info.ok()) << info.status();
  if (info->local_node_state == "active") GTEST_SKIP() << "this dockerd is in a swarm";
  SwarmLauncherOptions o;
  o.controller_id = controller_;
  o.image = Image();
  absl::StatusOr<std::unique_ptr<SwarmLauncher>> l = SwarmLauncher::Create(o);
  ASSERT_TRUE(l.ok()) << l.status();
  absl::Status check = (*l)->Check();
  EXPECT_TRUE(absl::IsUnavailable(check)) << check;
  EXPECT_THAT(check.message(),
              HasSubstr("is not an active swarm manager (node state \"inactive\""));
}

}  // namespace
}  // namespace harness::launch
