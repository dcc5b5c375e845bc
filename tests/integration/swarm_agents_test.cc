// Agents of the swarm launcher (`agent.launcher: swarm`) on a real 2-node Docker Swarm formed
// on this machine by docker/swarm.sh: two dockerd in network namespaces joined by a bridge,
// node 1 (10.231.0.1, the manager) and node 2 (10.231.0.2). The controller runs in node 1's
// namespace and listens on 10.231.0.1, so the agents of both nodes dial it over the bridge as
// from other hosts; the test reaches it through the host's leg of the bridge. Skipped unless
// HARNESS_SWARM_TESTS is set (scripts/test.sh sets it after `docker/swarm.sh up`); the agent
// image is harness-agent:<HARNESS_IMAGE_TAG or the version> as docker/swarm.sh loads it on both
// nodes (HARNESS_SWARM_IMAGE overrides).
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "launch/docker_engine.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using launch::DockerEngine;
using launch::DockerEngineOptions;
using launch::SwarmTask;

constexpr char kNode1Socket[] = "/run/harness-swarm/node1.sock";
constexpr char kNode2Socket[] = "/run/harness-swarm/node2.sock";
constexpr char kNode2Pidfile[] = "/run/harness-swarm/node2.pid";
constexpr char kNode1Netns[] = "/var/run/netns/harness-swarm-node1";

class SwarmAgents : public ::testing::Test {
 protected:
  void SetUp() override {
    if (getenv("HARNESS_SWARM_TESTS") == nullptr) {
      GTEST_SKIP() << "HARNESS_SWARM_TESTS is unset: these tests need the 2-node swarm of "
                      "docker/swarm.sh up (and the agent image loaded on it)";
    }
    absl::StatusOr<launch::SwarmInfo> info = node1_.Swarm();
    ASSERT_TRUE(info.ok() && info->control_available)
        << "no swarm manager at " << kNode1Socket << " (docker/swarm.sh up): "
        << (info.ok() ? info->local_node_state : std::string(info.status().message()));
    absl::StatusOr<launch::SwarmInfo> info2 = node2_.Swarm();
    ASSERT_TRUE(info2.ok() && !info2->node_id.empty()) << "node 2 is not in the swarm";
    node2_id_ = info2->node_id;
    ASSERT_TRUE(WaitFor([&] { return ReadyNodes() == 2; }, absl::Seconds(60)))
        << "the swarm does not have 2 ready nodes";
    service_ = absl::StrCat("hs", getpid(), "-", ++counter_);
    repo_ = tmp_.Sub("repo");
    Git({"init", "-q", "-b", "main", repo_});
    std::ofstream(repo_ + "/README.md") << "the base\n";
    Git({"-C", repo_, "add", "-A"});
    Git({"-C", repo_, "-c", "user.name=Base", "-c", "user.email=base@test", "commit", "-q", "-m",
         "base"});
    base_ = Git({"-C", repo_, "rev-parse", "HEAD"});
  }

  void TearDown() override {
    Thaw();
    controller_.reset();  // SIGKILL: the service is removed below
    if (!service_.empty()) {
      (void)node1_.Call("docker service rm", "DELETE", absl::StrCat("/services/", service_), "",
                        absl::Seconds(30));
    }
  }

  int ReadyNodes() {
    absl::StatusOr<std::vector<launch::SwarmNode>> nodes = node1_.Nodes();
    if (!nodes.ok()) return 0;
    int ready = 0;
    for (const auto& n : *nodes) ready += n.state == "ready" ? 1 : 0;
    return ready;
  }

  static std::string Image() {
    // As docker/swarm.sh loads it: HARNESS_IMAGE_TAG, else the version.
    const char* image = getenv("HARNESS_SWARM_IMAGE");
    const char* tag = getenv("HARNESS_IMAGE_TAG");
    if (image != nullptr) return image;
    return absl::StrCat("harness-agent:", tag != nullptr ? tag : HARNESS_TEST_IMAGE_TAG);
  }

  void StartController(int agents, const std::string& script) {
    config_.state_dir = tmp_.Sub("state");
    config_.repo_path = repo_;
    config_.command = {"/bin/sh", "-c", script};
    config_.launcher = "swarm";
    config_.parallel_agents = agents;
    if (config_.listen == "127.0.0.1:0") config_.listen = "10.231.0.1:0";  // else: a fixed port
    config_.wrapper = {"/usr/bin/nsenter", absl::StrCat("--net=", kNode1Netns)};
    // 10.231.0.1 is not loopback: without TLS and tokens the controller needs --insecure (the
    // bridge is the test's own, inside namespaces it created).
    config_.extra_args = {"--insecure"};
    config_.heartbeat_interval = 0.5;
    config_.heartbeat_timeout = 4;
    config_.lease_ttl = 6;
    config_.extra_yaml = "  agent_startup_stagger: 0\n  agent_restart_delay: 2\n";
    config_.agent_yaml = absl::StrCat("    docker:\n      socket: ", kNode1Socket,
                                      "\n      image: ", Image(), "\n      cpus: 0.5\n    swarm:\n      service: ",
                                      service_, "\n");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }

  std::vector<SwarmTask> Tasks() {
    absl::StatusOr<std::vector<SwarmTask>> t = node1_.Tasks(service_);
    return t.ok() ? *t : std::vector<SwarmTask>{};
  }

  // Running tasks (swarm wants them running and they are): slot -> task.
  std::map<int, SwarmTask> Running() {
    std::map<int, SwarmTask> out;
    for (const SwarmTask& t : Tasks()) {
      if (t.state == "running" && t.desired_state == "running") out[t.slot] = t;
    }
    return out;
  }

  int64_t Replicas() {
    absl::StatusOr<launch::SwarmService> s = node1_.InspectService(service_);
    return s.ok() ? s->replicas : -1;
  }

  // `n` agents run, registered, and on both nodes.
  bool AgentsUpOnBothNodes(int n) {
    std::map<int, SwarmTask> running = Running();
    std::set<std::string> nodes;
    for (const auto& [slot, t] : running) nodes.insert(t.node_id);
    return static_cast<int>(running.size()) == n && nodes.size() == 2 &&
           GetStatus(controller_->control()).agents_size() >= n;
  }

  std::string Git(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    std::string out;
    int status = RunCommand(args, &out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << absl::StrJoin(args, " ") << ": " << out;
    return std::string(absl::StripTrailingAsciiWhitespace(out));
  }

  int Done() { return static_cast<int>(GetStatus(controller_->control()).queue().done()); }

  std::string ControllerLog() {
    absl::StatusOr<std::string> log = ReadFile(controller_->log_file());
    return log.ok() ? *log : "(no log)";
  }

  void Scale(int target, bool force) {
    v1::ScaleRequest req;
    req.set_target(target);
    req.set_force(force);
    v1::ScaleResponse resp;
    grpc::Status s = controller_->control().Scale(Ctx().get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // The host pids of the processes of a container of node 2 (docker top).
  std::vector<pid_t> ContainerPids(const std::string& container) {
    std::vector<pid_t> out;
    absl::StatusOr<DockerEngine::Response> r = node2_.Call(
        "docker top", "GET", absl::StrCat("/containers/", container, "/top"), "", absl::Seconds(10));
    if (!r.ok() || r->http_status != 200) return out;
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j["Titles"].is_array() || !j["Processes"].is_array()) return out;
    size_t col = 0;
    for (; col < j["Titles"].size(); ++col) {
      if (j["Titles"][col] == "PID") break;
    }
    for (const auto& p : j["Processes"]) {
      int pid = 0;
      if (col < p.size() && p[col].is_string() && absl::SimpleAtoi(p[col].get<std::string>(), &pid)) {
        out.push_back(pid);
      }
    }
    return out;
  }

  void Freeze(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) {
      if (::kill(p, SIGSTOP) == 0) frozen_.push_back(p);
    }
  }

  void Thaw() {
    for (pid_t p : frozen_) ::kill(p, SIGCONT);
    frozen_.clear();
  }

  static inline int counter_ = 0;
  DockerEngine node1_{DockerEngineOptions{kNode1Socket, absl::Seconds(30)}};
  DockerEngine node2_{DockerEngineOptions{kNode2Socket, absl::Seconds(30)}};
  std::string node2_id_;
  TempDir tmp_;
  std::string service_, repo_, base_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::vector<pid_t> frozen_;
};

TEST_F(SwarmAgents, AgentsOnBothNodesFinishItemsWithResultsOnTheirBranches) {
  StartController(2, "sleep 1; echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"");
  ASSERT_TRUE(WaitFor([&] { return AgentsUpOnBothNodes(2); }, absl::Seconds(90)))
      << ControllerLog();
  std::vector<v1::ItemSpec> items;
  for (int i = 1; i <= 6; ++i) items.push_back(MakeItem(absl::StrCat("item-", i), "write it"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return Done() == 6; }, absl::Seconds(120))) << ControllerLog();
  std::set<std::string> authors;
  for (int i = 1; i <= 6; ++i) {
    const std::string id = absl::StrCat("item-", i);
    EXPECT_EQ(Git({"-C", repo_, "rev-parse", "harness/" + id + "^"}), base_);
    EXPECT_EQ(Git({"-C", repo_, "show", "harness/" + id + ":" + id + ".txt"}), id);
    authors.insert(Git({"-C", repo_, "show", "-s", "--format=%an", "harness/" + id}));
  }
  // Slot 1 and slot 2 run on different nodes (checked above): both nodes' agents delivered.
  EXPECT_EQ(authors, (std::set<std::string>{"Harness Agent agent-1", "Harness Agent agent-2"}));
  std::map<int, SwarmTask> running = Running();
  EXPECT_NE(running[1].node_id, running[2].node_id);
  // agent.docker.cpus: 0.5 is each task's CPU limit.
  absl::StatusOr<DockerEngine::Response> svc =
      node1_.Call("test: service inspect", "GET", absl::StrCat("/services/", service_), "",
                  absl::Seconds(30));
  ASSERT_TRUE(svc.ok()) << svc.status();
  nlohmann::json spec = nlohmann::json::parse(svc->body);
  EXPECT_EQ(spec["Spec"]["TaskTemplate"]["Resources"]["Limits"]["NanoCPUs"], 500'000'000)
      << svc->body;
}

TEST_F(SwarmAgents, ScaleUpThenDownDrainsTheHighestSlotsAndLowersTheReplicas) {
  StartController(2, "sleep 3; echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"");
  ASSERT_TRUE(WaitFor([&] { return AgentsUpOnBothNodes(2); }, absl::Seconds(90)))
      << ControllerLog();
  Scale(4, false);
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 4 && AgentsUpOnBothNodes(4); },
                      absl::Seconds(90)))
      << ControllerLog();
  std::vector<v1::ItemSpec> items;
  for (int i = 1; i <= 8; ++i) items.push_back(MakeItem(absl::StrCat("item-", i), "write it"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().leased() == 4; },
                      absl::Seconds(60)));
  // Every agent works; the two victims are the highest slots (swarm removes only those), and
  // they finish their items before the replicas drop.
  Scale(2, false);
  ASSERT_TRUE(WaitFor([&] { return Replicas() == 2 && Done() == 8; }, absl::Seconds(120)))
      << "replicas " << Replicas() << ", done " << Done() << "\n"
      << ControllerLog();
  std::map<int, SwarmTask> running = Running();
  EXPECT_EQ(running.size(), 2u);
  EXPECT_EQ(running.count(1), 1u);
  EXPECT_EQ(running.count(2), 1u);
  for (int i = 1; i <= 8; ++i) {
    v1::Item item = GetItem(controller_->control(), absl::StrCat("item-", i));
    EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE);
    EXPECT_EQ(item.attempts_size(), 1) << "item-" << i << " was interrupted: "
                                       << item.DebugString() << ControllerLog();
  }
  // The victims drained (exit 0), they were not killed.
  for (const SwarmTask& t : Tasks()) {
    if (t.slot < 3) continue;
    EXPECT_NE(t.state, "running") << "task " << t.id << " of slot " << t.slot;
    if (!t.container_id.empty() && t.state == "complete") {
      EXPECT_EQ(t.exit_code, 0);
    }
  }
  EXPECT_NE(ControllerLog().find("agent-3 is draining: scaled down"), std::string::npos);
  EXPECT_NE(ControllerLog().find("agent-4 is draining: scaled down"), std::string::npos);
}

TEST_F(SwarmAgents, AFrozenNodesLateResultIsRefusedByTheFencingToken) {
  StartController(2, "sleep 8; echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"");
  ASSERT_TRUE(WaitFor([&] { return AgentsUpOnBothNodes(2); }, absl::Seconds(90)))
      << ControllerLog();
  Submit(controller_->control(), {MakeItem("a", "x"), MakeItem("b", "y")});
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().leased() == 2; },
                      absl::Seconds(60)));
  // The agent of node 2, its container's processes, and the item it works on.
  SwarmTask on2;
  for (const auto& [slot, t] : Running()) {
    if (t.node_id == node2_id_) on2 = t;
  }
  ASSERT_FALSE(on2.container_id.empty()) << "no task of the service runs on node 2";
  const std::string agent = absl::StrCat("agent-", on2.slot);
  std::string item_id;
  uint64_t frozen_token = 0;
  for (const char* id : {"a", "b"}) {
    v1::Item item = GetItem(controller_->control(), id);
    if (item.attempts_size() > 0 && item.attempts(0).agent() == agent) {
      item_id = id;
      frozen_token = item.attempts(0).lease_token();
    }
  }
  ASSERT_FALSE(item_id.empty()) << agent << " holds neither item";
  std::vector<pid_t> pids = ContainerPids(on2.container_id);
  ASSERT_FALSE(pids.empty());
  absl::StatusOr<std::string> dockerd = ReadFile(kNode2Pidfile);
  int dockerd_pid = 0;
  ASSERT_TRUE(dockerd.ok() &&
              absl::SimpleAtoi(absl::StripAsciiWhitespace(*dockerd), &dockerd_pid));
  pids.push_back(dockerd_pid);
  Freeze(pids);

  // Past the lease TTL the item runs elsewhere (on node 1) and is done there.
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), item_id).state() == v1::ITEM_STATE_DONE; },
      absl::Seconds(120)))
      << ControllerLog();
  Thaw();
  // The old agent resumes with its result; the fencing token refuses it (or agentd, seeing its
  // lease lost, drops it first).
  std::string logs;
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> l = node2_.Logs(on2.container_id, 200);
        logs = l.ok() ? *l : std::string(l.status().message());
        return absl::StrContains(logs, "lease lost") || absl::StrContains(logs, "refused");
      },
      absl::Seconds(60)))
      << logs;
  v1::Item item = GetItem(controller_->control(), item_id);
  ASSERT_GE(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).agent(), agent);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  const v1::Attempt& last = item.attempts(item.attempts_size() - 1);
  EXPECT_EQ(last.outcome(), v1::ATTEMPT_OUTCOME_DONE);
  EXPECT_GT(last.lease_token(), frozen_token);
  // Exactly one accepted commit on the item's branch, the one of the live lease.
  EXPECT_EQ(Git({"-C", repo_, "rev-list", "--count", base_ + "..harness/" + item_id}), "1");
  EXPECT_EQ(Git({"-C", repo_, "log", "-1", "--format=%(trailers:key=Harness-Lease,valueonly)",
                 "harness/" + item_id}),
            absl::StrCat(last.lease_token()));
}

TEST_F(SwarmAgents, AControllerKilledAndRestartedAdoptsTheServicesTasks) {
  // A fixed port, so that the running agents find the restarted controller.
  const int port = 30000 + getpid() % 20000;
  config_.listen = absl::StrCat("10.231.0.1:", port);
  StartController(2, "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"");
  ASSERT_TRUE(WaitFor([&] { return AgentsUpOnBothNodes(2); }, absl::Seconds(90)))
      << ControllerLog();
  std::map<int, SwarmTask> before = Running();
  const std::string first_log = ControllerLog();
  controller_->Signal(SIGKILL);
  controller_->Wait();
  controller_.reset();

  StartController(2, "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\"");
  ASSERT_EQ(controller_->address(), absl::StrCat("10.231.0.1:", port));
  for (int slot : {1, 2}) {
    EXPECT_NE(ControllerLog().find(absl::StrCat("adopted agent-", slot, " (slot ", slot,
                                                "), swarm task ", before[slot].id.substr(0, 12))),
              std::string::npos)
        << ControllerLog();
  }
  Submit(controller_->control(), {MakeItem("after", "x")});
  ASSERT_TRUE(WaitFor([&] { return Done() == 1; }, absl::Seconds(60))) << ControllerLog();
  // The same two tasks run: nothing was started again, nothing stopped.
  std::map<int, SwarmTask> after = Running();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[1].id, before[1].id);
  EXPECT_EQ(after[2].id, before[2].id);
  EXPECT_EQ(Tasks().size(), 2u) << "a task was replaced";
  EXPECT_EQ(Replicas(), 2);
  v1::StatusSnapshot st = GetStatus(controller_->control());
  ASSERT_EQ(st.pool().slots_size(), 2);
  for (const auto& slot : st.pool().slots()) EXPECT_EQ(slot.state(), "running") << slot.agent();
}

}  // namespace
}  // namespace harness::testing
