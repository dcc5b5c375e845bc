// Real agentd in containers, end to end: a real controller (with a repository, on 127.0.0.1)
// and agents started by the docker launcher in the harness-agent image, on the host network,
// without --repo (the base and the results travel over gRPC). Skipped unless
// HARNESS_DOCKER_TESTS is set; needs docker/build-images.sh --example. The agentd of the build
// tree is bind-mounted over the image's, so the test runs the code under test in the image's
// Debian userland (its libraries, git, CA certificates, tini).
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "gtest/gtest.h"
#include "launch/docker_engine.h"
#include "launch/docker_launcher.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/unix_proxy.h"

namespace harness::testing {
namespace {

using launch::DockerLauncher;
using launch::DockerLauncherOptions;
using launch::LaunchExit;
using launch::LaunchSpec;

class DockerAgents : public ::testing::Test {
 protected:
  // False for a test that needs no docker daemon (one of the daemon-down cases).
  virtual bool NeedsDocker() const { return true; }

  void SetUp() override {
    if (NeedsDocker() && getenv("HARNESS_DOCKER_TESTS") == nullptr) {
      GTEST_SKIP() << "HARNESS_DOCKER_TESTS is unset: these tests need a running dockerd "
                      "(docker/dockerd.sh start) and the images (docker/build-images.sh --example)";
    }
    controller_id_ = absl::StrCat("da", getpid(), "-", ++counter_);
    repo_ = tmp_.Sub("repo");
    Git({"init", "-q", "-b", "main", repo_});
    std::ofstream(repo_ + "/README.md") << "the base\n";
    Git({"-C", repo_, "add", "-A"});
    Git({"-C", repo_, "-c", "user.name=Base", "-c", "user.email=base@test", "commit", "-q", "-m",
         "base"});
    base_ = Git({"-C", repo_, "rev-parse", "HEAD"});
  }

  void TearDown() override {
    // The controller goes first: alive, it would start a container again for each one removed.
    controller_.reset();
    launcher_.reset();
    launch::DockerEngine engine{launch::DockerEngineOptions{}};
    auto left = engine.List({absl::StrCat(launch::kLabelController, "=", controller_id_)});
    if (left.ok()) {
      for (const auto& c : *left) (void)engine.Remove(c.id, /*force=*/true);
    }
  }

  void StartController(std::vector<std::string> command) {
    config_.state_dir = tmp_.Sub("state");
    config_.repo_path = repo_;
    config_.command = std::move(command);
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }

  void StartAgents(const std::string& image, int n) {
    DockerLauncherOptions o;
    o.controller_id = controller_id_;
    o.image = image;
    o.binds = {AgentdBin() + ":/usr/local/bin/agentd:ro"};
    o.on_exit = [this](const LaunchExit& e) {
      absl::MutexLock l(&mu_);
      exits_.push_back(e.agent_id + ": " + e.reason);
    };
    auto l = DockerLauncher::Create(o);
    ASSERT_TRUE(l.ok()) << l.status();
    launcher_ = std::move(*l);
    for (int i = 1; i <= n; ++i) {
      LaunchSpec spec{
          i, absl::StrCat("agent-", i), controller_id_, controller_->address(), "agentd", {}, "",
          {}};
      auto started = launcher_->Start(spec);
      ASSERT_TRUE(started.ok()) << started.status();
    }
  }

  std::string Git(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    std::string out;
    int status = RunCommand(args, &out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << absl::StrJoin(args, " ") << ": " << out;
    return std::string(absl::StripTrailingAsciiWhitespace(out));
  }

  // agent.launcher: docker: the controller starts `n` agent containers itself. Agent commands
  // read their prompt: "sleep:S" sleeps S seconds first; then the item's file is written.
  void StartManagedController(int n, std::vector<std::string> command = {}) {
    config_.launcher = "docker";
    config_.parallel_agents = n;
    config_.listen = absl::StrCat("127.0.0.1:", FreePort());  // containers redial it on restart
    config_.lease_ttl = 30;  // an item moving on sooner is the container-exit path's doing
    config_.heartbeat_interval = 0.2;
    config_.heartbeat_timeout = 2;
    config_.extra_yaml =
        absl::StrCat("  agent_startup_stagger: 0.2\n  agent_restart_delay: 0.2\n", pool_yaml_);
    config_.agent_yaml =
        absl::StrCat("    docker:\n      image: ", Image("harness-agent"), "\n", docker_yaml_);
    if (command.empty()) {
      command = {"/bin/sh", "-c",
                 "p=$(cat \"$HARNESS_PROMPT_FILE\"); case \"$p\" in sleep:*) sleep "
                 "\"${p#sleep:}\" ;; esac; echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\""};
    }
    StartController(std::move(command));
    absl::StatusOr<std::string> id = ReadFile(StatePaths(config_.state_dir).ControllerIdFile());
    ASSERT_TRUE(id.ok()) << id.status();
    controller_id_ = std::string(absl::StripAsciiWhitespace(*id));  // TearDown removes its own
  }

  // Every container of this controller (by the harness.controller label), running or not.
  std::vector<launch::ContainerSummary> Containers() {
    launch::DockerEngine engine{launch::DockerEngineOptions{}};
    auto list = engine.List({absl::StrCat(launch::kLabelController, "=", controller_id_)});
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? *list : std::vector<launch::ContainerSummary>{};
  }
  // agent -> the id of its running container.
  std::map<std::string, std::string> Running() {
    std::map<std::string, std::string> out;
    for (const auto& c : Containers()) {
      if (c.state == "running") out[c.labels.at(std::string(launch::kLabelAgent))] = c.id;
    }
    return out;
  }
  // Registered, healthy agents.
  int Healthy() {
    int n = 0;
    const v1::StatusSnapshot status = GetStatus(controller_->control());
    for (const v1::AgentInfo& a : status.agents()) n += a.health() == v1::HEALTH_HEALTHY;
    return n;
  }
  std::string LeasedBy(const std::string& id) {
    v1::Item item = GetItem(controller_->control(), id);
    return item.state() == v1::ITEM_STATE_LEASED ? item.agent() : "";
  }
  int64_t Done() { return GetStatus(controller_->control()).queue().done(); }
  // A slot that failed must not come while the daemon is away. Watched for 3 s, several times
  // what failing a slot took before the starts were held (two failed starts 0.2 s apart).
  bool ASlotFailsWhileTheDaemonIsAway() {
    return WaitFor(
        [&] {
          for (const std::string& s : Slots()) {
            if (s.find(" failed ") != std::string::npos) return true;
          }
          return false;
        },
        absl::Seconds(3));
  }
  std::string LauncherError() { return GetStatus(controller_->control()).pool().launcher_error(); }
  // "agent-1 starting 0" per slot.
  std::vector<std::string> Slots() {
    std::vector<std::string> out;
    const v1::StatusSnapshot status = GetStatus(controller_->control());
    for (const v1::PoolSlot& s : status.pool().slots()) {
      out.push_back(absl::StrCat(s.agent(), " ", s.state(), " ", s.failures()));
    }
    return out;
  }
  int Ctl(std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out);
  }
  std::string ControllerLog() {
    absl::StatusOr<std::string> s = ReadFile(controller_->log_file());
    return s.ok() ? *s : "";
  }

  std::string Exits() {
    absl::MutexLock l(&mu_);
    return absl::StrJoin(exits_, "; ");
  }

  // HARNESS_TEST_IMAGE_TAG in the environment picks the images' tag (a branch's own build of
  // them); the project version otherwise.
  static std::string Image(const char* name) {
    const char* tag = getenv("HARNESS_TEST_IMAGE_TAG");
    return absl::StrCat(name, ":", tag != nullptr && *tag != '\0' ? tag : HARNESS_TEST_IMAGE_TAG);
  }

  static inline int counter_ = 0;
  TempDir tmp_;
  std::string controller_id_, repo_, base_;
  std::string docker_yaml_;  // more keys under agent.docker, each line indented by 6 spaces
  std::string pool_yaml_;    // more keys under harness, each line indented by 2 spaces
  ControllerConfig config_;
  std::unique_ptr<UnixProxy> proxy_;  // declared first: it outlives the controller
  std::unique_ptr<ControllerProcess> controller_;
  std::unique_ptr<DockerLauncher> launcher_;
  absl::Mutex mu_;
  std::vector<std::string> exits_ ABSL_GUARDED_BY(mu_);
};

TEST_F(DockerAgents, ThreeAgentsInContainersFinishItemsWithResultsOnTheirBranches) {
  StartController({"/bin/sh", "-c", "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\""});
  StartAgents(Image("harness-agent"), 3);
  std::vector<v1::ItemSpec> items;
  for (int i = 1; i <= 30; ++i) items.push_back(MakeItem(absl::StrCat("item-", i), "write it"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().done() == 30; },
                      absl::Seconds(120)))
      << "done: " << GetStatus(controller_->control()).queue().done() << "; exits: " << Exits();
  std::map<std::string, int> by_agent;
  for (int i = 1; i <= 30; ++i) {
    const std::string id = absl::StrCat("item-", i);
    ASSERT_TRUE(WaitFor(
        [&] {
          return !Git({"-C", repo_, "branch", "--list", "harness/" + id}).empty();
        },
        absl::Seconds(10)));
    EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/" + id + "^"}), base_);
    EXPECT_EQ(Git({"-C", repo_, "show", "harness/" + id + ":" + id + ".txt"}), id);
    by_agent[Git({"-C", repo_, "show", "-s", "--format=%an", "harness/" + id})]++;
  }
  for (const auto& [author, n] : by_agent) {
    EXPECT_TRUE(author == "Harness Agent agent-1" || author == "Harness Agent agent-2" ||
                author == "Harness Agent agent-3")
        << author;
  }
  EXPECT_EQ(Exits(), "") << "no agent container ended while working";
}

TEST_F(DockerAgents, AnItemRunsWithAToolFromAnImageThatExtendsTheAgentImage) {
  // jq is not in harness-agent; harness-agent-example adds it (docker/agent-extend.Dockerfile).
  StartController(
      {"/bin/sh", "-c",
       "jq -n --arg id \"$HARNESS_ITEM_ID\" '{item: $id}' > \"$HARNESS_ITEM_ID.json\""});
  StartAgents(Image("harness-agent-example"), 1);
  Submit(controller_->control(), {MakeItem("with-jq", "use jq")});
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().done() == 1; },
                      absl::Seconds(120)))
      << "exits: " << Exits()
      << "; item: " << GetItem(controller_->control(), "with-jq").DebugString();
  ASSERT_TRUE(WaitFor(
      [&] {
        return !Git({"-C", repo_, "branch", "--list", "harness/with-jq"}).empty();
      },
      absl::Seconds(10)));
  EXPECT_EQ(Git({"-C", repo_, "show", "harness/with-jq:with-jq.json"}),
            "{\n  \"item\": \"with-jq\"\n}");
}

// agent.launcher: docker: the controller itself starts its agents as containers, keeps them at
// the target, and replaces one that `docker kill` ends while it works; its item is finished.
TEST_F(DockerAgents, TheControllerKeepsItsAgentContainersAtTheTargetThroughADockerKill) {
  StartManagedController(2);
  ASSERT_TRUE(WaitFor([&] { return Running().size() == 2 && Healthy() == 2; }, absl::Seconds(60)))
      << Running().size() << " containers, " << Healthy() << " healthy agents";
  const std::map<std::string, std::string> before = Running();
  EXPECT_EQ(before.count("agent-1") + before.count("agent-2"), 2u);

  Submit(controller_->control(), {MakeItem("slow", "sleep:8")});
  std::string victim;
  // Killed once it has the lease in hand (its command runs), not merely granted.
  ASSERT_TRUE(WaitFor(
      [&] {
        victim = LeasedBy("slow");
        v1::Item item = GetItem(controller_->control(), "slow");
        return !victim.empty() && item.attempts_size() == 1;
      },
      absl::Seconds(60)));
  ASSERT_TRUE(before.count(victim)) << victim;
  ASSERT_TRUE(launch::DockerEngine{launch::DockerEngineOptions{}}
                  .Kill(before.at(victim), "SIGKILL")
                  .ok());  // `docker kill`

  // The item is finished (elsewhere or by the replacement), the slot has a new container, and
  // the pool is back at two.
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(120))) << ControllerLog();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto now = Running();
        return now.size() == 2 && now.count(victim) && now.at(victim) != before.at(victim);
      },
      absl::Seconds(60)));
  EXPECT_TRUE(launch::DockerEngine{launch::DockerEngineOptions{}}
                  .Inspect(before.at(victim))
                  .status()
                  .code() == absl::StatusCode::kNotFound)
      << "the killed container is removed";
  EXPECT_EQ(Git({"-C", repo_, "show", "harness/slow:slow.txt"}), "slow");
  // The first attempt ended with the death (not the 30 s TTL), and says so.
  v1::Item item = GetItem(controller_->control(), "slow");
  ASSERT_EQ(item.attempts_size(), 2) << item.DebugString();
  EXPECT_EQ(item.attempts(0).agent(), victim);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  EXPECT_NE(item.attempts(0).error().find("its agent died: killed by signal 9"), std::string::npos)
      << item.attempts(0).error();
  EXPECT_EQ(item.attempts(1).outcome(), v1::ATTEMPT_OUTCOME_DONE);
  EXPECT_EQ(GetStatus(controller_->control()).pool().slots(victim == "agent-1" ? 0 : 1).failures(),
            1);
  // The killed container's output was kept where crash contexts read it.
  absl::StatusOr<std::string> log = ReadFile(StatePaths(config_.state_dir).AgentLogFile(victim));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_NE(log->find("--- container " + before.at(victim).substr(0, 12)), std::string::npos)
      << *log;
}

// agent.launcher: docker with an agent token and mTLS on the controller's port: the containers
// get the token in their environment and the TLS files bound read-only, connect and finish
// their items; the item's command (its results land on the item's branch) sees no token, no
// key path, and no token in its agentd's environment either.
TEST_F(DockerAgents, ContainersConnectWithTheAgentTokenOverMtlsAndTheCommandSeesNoCredential) {
  const std::string certs = tmp_.Sub("certs");
  MakeCerts(certs);
  WriteTokenFile(tmp_.Sub("agent.token"), "agent-d0cker-secret");
  WriteTokenFile(tmp_.Sub("admin.token"), "admin-d0cker-secret");
  config_.agent_token_file = tmp_.Sub("agent.token");
  config_.admin_token_file = tmp_.Sub("admin.token");
  config_.tls_cert = certs + "/server.pem";
  config_.tls_key = certs + "/server.key";
  config_.tls_client_ca = certs + "/ca.pem";
  config_.client_tls = ClientTlsFrom(certs, "admin");
  // Keys of agent: (4 spaces) after those of agent.docker.
  docker_yaml_ = absl::StrCat("    tls_ca: ", certs, "/ca.pem\n    tls_cert: ", certs,
                              "/agent.pem\n    tls_key: ", certs, "/agent.key\n");
  StartManagedController(
      2, {"/bin/sh", "-c", "env > env.txt; tr '\\0' '\\n' < /proc/$PPID/environ > agentd-env.txt"});
  auto status = [&] {
    v1::StatusSnapshot s;
    grpc::Status st = controller_->control().Status(TokenCtx("admin-d0cker-secret").get(), {}, &s);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return s;
  };
  v1::SubmitRequest req;
  *req.add_items() = MakeItem("creds-1", "p");
  *req.add_items() = MakeItem("creds-2", "p");
  v1::SubmitResponse resp;
  grpc::Status st =
      controller_->control().Submit(TokenCtx("admin-d0cker-secret").get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitFor([&] { return status().queue().done() == 2; }, absl::Seconds(120)))
      << status().DebugString() << ControllerLog();
  // Both containers connect (the second may have started after the items were done).
  EXPECT_TRUE(WaitFor([&] { return status().agents_size() == 2; }, absl::Seconds(60)));
  for (const char* id : {"creds-1", "creds-2"}) {
    const std::string branch = absl::StrCat("harness/", id);
    const std::string env = Git({"-C", repo_, "show", branch + ":env.txt"});
    const std::string agentd_env = Git({"-C", repo_, "show", branch + ":agentd-env.txt"});
    ASSERT_NE(env.find(absl::StrCat("HARNESS_ITEM_ID=", id)), std::string::npos) << env;
    // agentd had the bound files (so this is its environment).
    EXPECT_NE(agentd_env.find("HARNESS_CA=/run/harness/tls/ca.pem"), std::string::npos)
        << agentd_env;
    for (const std::string& text : {env, agentd_env}) {
      EXPECT_EQ(text.find("d0cker-secret"), std::string::npos) << text;
    }
    EXPECT_EQ(env.find("HARNESS_KEY="), std::string::npos) << env;
  }
}

// `scale 5` starts three more containers; `scale 2` removes three, and those working are
// drained: each finishes its item (done by the agent that had it, nothing released or expired)
// before its container goes.
TEST_F(DockerAgents, ScalingUpAndDownChangesTheContainersAndDrainsTheWorkingOnes) {
  docker_yaml_ = "      cpus: 0.5\n";  // each container's CPU limit
  StartManagedController(2);
  ASSERT_TRUE(WaitFor([&] { return Running().size() == 2 && Healthy() == 2; }, absl::Seconds(60)))
      << ControllerLog();
  std::string out;
  ASSERT_EQ(Ctl({"scale", "5"}, &out), 0) << out;
  ASSERT_TRUE(WaitFor([&] { return Running().size() == 5 && Healthy() == 5; }, absl::Seconds(90)))
      << Running().size() << " containers, " << Healthy() << " healthy\n"
      << ControllerLog();
  EXPECT_EQ(Containers().size(), 5u) << "no container but the running ones";
  launch::DockerEngine engine{launch::DockerEngineOptions{}};
  std::map<std::string, int64_t> main_pid;  // by agent
  for (const auto& c : Containers()) {
    absl::StatusOr<launch::DockerEngine::Response> r = engine.Call(
        "test: inspect", "GET", absl::StrCat("/containers/", c.id, "/json"), "", absl::Seconds(30));
    ASSERT_TRUE(r.ok()) << r.status();
    nlohmann::json j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["HostConfig"]["NanoCpus"], 500'000'000) << "agent.docker.cpus: 0.5";
    main_pid[c.labels.at(std::string(launch::kLabelAgent))] = j["State"]["Pid"].get<int64_t>();
  }
  // status shows each agent's container's main pid (on the host), not agentd's inside it.
  const v1::StatusSnapshot up = GetStatus(controller_->control());
  for (const v1::AgentInfo& a : up.agents()) {
    ASSERT_TRUE(main_pid.count(a.id())) << a.id();
    EXPECT_GT(main_pid[a.id()], 1) << a.id();
    EXPECT_EQ(a.pid(), main_pid[a.id()]) << a.id();
  }

  // Four agents work on an item each; one is idle.
  std::vector<v1::ItemSpec> items;
  for (int i = 1; i <= 4; ++i) items.push_back(MakeItem(absl::StrCat("w-", i), "sleep:6"));
  Submit(controller_->control(), items);
  std::map<std::string, std::string> holder;  // item -> agent
  ASSERT_TRUE(WaitFor(
      [&] {
        holder.clear();
        for (const auto& item : items) {
          std::string a = LeasedBy(item.id());
          if (a.empty()) return false;
          holder[item.id()] = a;
        }
        return true;
      },
      absl::Seconds(60)));
  ASSERT_EQ(Ctl({"scale", "2"}, &out), 0) << out;
  EXPECT_NE(out.find("target: 5 -> 2"), std::string::npos) << out;
  // Three containers go, and at least two of them were working (one agent was idle).
  ASSERT_TRUE(
      WaitFor([&] { return Running().size() == 2 && Containers().size() == 2; }, absl::Seconds(90)))
      << ControllerLog();
  ASSERT_TRUE(WaitFor([&] { return Done() == 4; }, absl::Seconds(60))) << ControllerLog();
  const std::map<std::string, std::string> left = Running();
  int drained_working = 0;
  for (const auto& [id, agent] : holder) {
    v1::Item item = GetItem(controller_->control(), id);
    ASSERT_EQ(item.attempts_size(), 1) << item.DebugString();
    EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_DONE) << item.DebugString();
    EXPECT_EQ(item.attempts(0).agent(), agent) << id;
    drained_working += left.count(agent) == 0;
  }
  EXPECT_GE(drained_working, 2) << "working agents were among those removed";
  const v1::StatusSnapshot status = GetStatus(controller_->control());
  ASSERT_EQ(status.pool().slots_size(), 2);
  for (const v1::PoolSlot& s : status.pool().slots()) {
    EXPECT_EQ(s.state(), "running") << s.agent();
    EXPECT_EQ(s.failures(), 0) << s.agent() << ": a drain is not a death";
    EXPECT_TRUE(left.count(s.agent())) << s.agent();
  }
}

// A controller killed with -9 leaves its containers running; the next one (same state dir and
// address) adopts them: the same containers, one per slot, no stray, and the leases they held
// are kept (no attempt expires or is handed back) while every item finishes once.
TEST_F(DockerAgents, ARestartedControllerAdoptsItsContainersAndTheirLeases) {
  StartManagedController(3);
  ASSERT_TRUE(WaitFor([&] { return Running().size() == 3 && Healthy() == 3; }, absl::Seconds(60)))
      << ControllerLog();
  std::vector<v1::ItemSpec> items;
  for (int i = 0; i < 15; ++i) items.push_back(MakeItem(absl::StrCat("k-", i), "sleep:1"));
  Submit(controller_->control(), items);
  // Killed while all three hold a lease.
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().leased() == 3; },
                      absl::Seconds(60)));
  const std::map<std::string, std::string> before = Running();
  ASSERT_EQ(before.size(), 3u);
  controller_->Signal(SIGKILL);
  controller_->Wait();
  EXPECT_EQ(Running(), before) << "the containers outlive their controller";

  StartController(config_.command);
  ASSERT_TRUE(WaitFor([&] { return Done() == 15; }, absl::Seconds(120))) << ControllerLog();
  ASSERT_TRUE(WaitFor([&] { return Healthy() == 3; }, absl::Seconds(30))) << ControllerLog();
  EXPECT_EQ(Running(), before) << "the same containers, none started again";
  std::map<std::string, int> per_slot;
  for (const auto& c : Containers()) per_slot[c.labels.at(std::string(launch::kLabelSlot))]++;
  EXPECT_EQ(per_slot, (std::map<std::string, int>{{"1", 1}, {"2", 1}, {"3", 1}}))
      << "one container per slot and no stray";
  EXPECT_NE(ControllerLog().find("adopted agent-1"), std::string::npos);
  for (const auto& spec : items) {
    v1::Item item = GetItem(controller_->control(), spec.id());
    ASSERT_EQ(item.attempts_size(), 1) << item.DebugString();
    EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_DONE) << item.DebugString();
  }
  const v1::StatusSnapshot status = GetStatus(controller_->control());
  ASSERT_EQ(status.pool().slots_size(), 3);
  for (const v1::PoolSlot& s : status.pool().slots()) {
    EXPECT_EQ(s.state(), "running") << s.agent();
    EXPECT_EQ(s.failures(), 0) << s.agent();
  }
}

// A daemon that is not there: the controller says so in `status` and its log, keeps serving
// (submit, status, agents started by hand get work) and holds the slots' starts: a daemon that
// is down is no death of an agent, so no slot fails however long it stays down.
class DockerDaemonDown : public DockerAgents {
 protected:
  bool NeedsDocker() const override { return false; }
};

TEST_F(DockerDaemonDown, TheControllerSaysSoInStatusKeepsServingAndFailsNoSlot) {
  const std::string socket = tmp_.path() + "/no-daemon.sock";
  docker_yaml_ = absl::StrCat("      socket: ", socket, "\n");
  pool_yaml_ = "  coordinator:\n    max_agent_failures: 1\n";  // two deaths would fail a slot
  StartManagedController(2);
  ASSERT_TRUE(WaitFor([&] { return !LauncherError().empty(); }, absl::Seconds(30)))
      << ControllerLog();
  EXPECT_NE(LauncherError().find("docker daemon at unix://" + socket + " is not reachable"),
            std::string::npos)
      << LauncherError();
  std::string out;
  ASSERT_EQ(Ctl({"status"}, &out), 0) << out;
  EXPECT_NE(out.find("Pool (docker): docker daemon at unix://" + socket + " is not reachable"),
            std::string::npos)
      << out;
  ASSERT_EQ(Ctl({"status", "--json"}, &out), 0) << out;
  EXPECT_NE(out.find("\"launcher_error\": \"docker daemon at unix://" + socket), std::string::npos)
      << out;
  EXPECT_NE(ControllerLog().find("is not reachable"), std::string::npos) << ControllerLog();

  // An agent started by hand gets the work meanwhile.
  Submit(controller_->control(), {MakeItem("by-hand", "write it")});
  std::unique_ptr<ChildProcess> agent = StartAgent(
      "hand-1", controller_->address(), tmp_.Sub("hand-1"), "", tmp_.path() + "/hand-1.log");
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(60))) << ControllerLog();
  v1::Item item = GetItem(controller_->control(), "by-hand");
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).agent(), "hand-1");
  // Both slots still wait for the daemon: not failed, no death counted.
  EXPECT_FALSE(ASlotFailsWhileTheDaemonIsAway()) << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 starting 0", "agent-2 starting 0"}))
      << ControllerLog();
  EXPECT_EQ(ControllerLog().find("failed:"), std::string::npos) << ControllerLog();
}

// The daemon goes away (a proxy to the real socket is closed) before the controller starts and
// while it runs: the slots start once it answers again, with no death counted.
TEST_F(DockerAgents, SlotsStartOnceTheDaemonAnswersAgain) {
  proxy_ =
      UnixProxy::Start(tmp_.path() + "/docker.sock", std::string(launch::kDefaultDockerSocket));
  ASSERT_NE(proxy_, nullptr);
  proxy_->Down();
  docker_yaml_ = absl::StrCat("      socket: ", proxy_->path(), "\n");
  pool_yaml_ = "  coordinator:\n    max_agent_failures: 1\n";
  StartManagedController(2);
  ASSERT_TRUE(WaitFor([&] { return !LauncherError().empty(); }, absl::Seconds(30)))
      << ControllerLog();
  EXPECT_FALSE(ASlotFailsWhileTheDaemonIsAway()) << ControllerLog();
  EXPECT_TRUE(Running().empty());
  proxy_->Up();
  ASSERT_TRUE(
      WaitFor([&] { return Running().size() == 2 && Healthy() == 2 && LauncherError().empty(); },
              absl::Seconds(60)))
      << Running().size() << " containers, " << Healthy() << " healthy, error " << LauncherError()
      << "\n"
      << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0"}));

  // Down again while it runs: the running agents keep working, a new slot waits.
  proxy_->Down();
  std::string out;
  ASSERT_EQ(Ctl({"scale", "3"}, &out), 0) << out;
  ASSERT_TRUE(WaitFor([&] { return !LauncherError().empty(); }, absl::Seconds(30)))
      << ControllerLog();
  Submit(controller_->control(), {MakeItem("meanwhile", "write it")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(60))) << ControllerLog();
  EXPECT_FALSE(ASlotFailsWhileTheDaemonIsAway()) << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0",
                                               "agent-3 starting 0"}));
  proxy_->Up();
  ASSERT_TRUE(
      WaitFor([&] { return Running().size() == 3 && Healthy() == 3 && LauncherError().empty(); },
              absl::Seconds(60)))
      << ControllerLog();
  EXPECT_EQ(Slots(), (std::vector<std::string>{"agent-1 running 0", "agent-2 running 0",
                                               "agent-3 running 0"}));
}

// A controller killed with -9 and restarted while the daemon is away cannot list its containers:
// its slots wait, and once the daemon answers it adopts the containers still running (the same
// ones, no second container for a slot) instead of starting new ones.
TEST_F(DockerAgents, AControllerRestartedWhileTheDaemonIsAwayAdoptsItsContainersOnceItIsBack) {
  proxy_ = UnixProxy::Start(tmp_.path() + "/docker.sock", std::string(launch::kDefaultDockerSocket));
  ASSERT_NE(proxy_, nullptr);
  docker_yaml_ = absl::StrCat("      socket: ", proxy_->path(), "\n");
  pool_yaml_ = "  coordinator:\n    max_agent_failures: 1\n";
  StartManagedController(2);
  ASSERT_TRUE(WaitFor([&] { return Running().size() == 2 && Healthy() == 2; }, absl::Seconds(60)))
      << ControllerLog();
  const std::map<std::string, std::string> before = Running();
  controller_->Signal(SIGKILL);
  controller_->Wait();
  proxy_->Down();
  StartController(config_.command);
  ASSERT_TRUE(WaitFor([&] { return !LauncherError().empty(); }, absl::Seconds(30)))
      << ControllerLog();
  EXPECT_FALSE(ASlotFailsWhileTheDaemonIsAway()) << ControllerLog();
  proxy_->Up();
  ASSERT_TRUE(WaitFor(
      [&] {
        return LauncherError().empty() &&
               Slots() == std::vector<std::string>{"agent-1 running 0", "agent-2 running 0"};
      },
      absl::Seconds(60)))
      << ControllerLog();
  EXPECT_EQ(Running(), before) << "the same containers, none started again";
  EXPECT_EQ(Containers().size(), 2u) << "no second container for a slot";
  EXPECT_NE(ControllerLog().find("found running once the launcher answered"), std::string::npos)
      << ControllerLog();
  Submit(controller_->control(), {MakeItem("after", "write it")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(60))) << ControllerLog();
}

}  // namespace
}  // namespace harness::testing
