// Real agentd in containers, end to end: a real controller (with a repository, on 127.0.0.1)
// and agents started by the docker launcher in the harness-agent image, on the host network,
// without --repo (the base and the results travel over gRPC). Skipped unless
// HARNESS_DOCKER_TESTS is set; needs docker/build-images.sh --example. The agentd of the build
// tree is bind-mounted over the image's, so the test runs the code under test in the image's
// Debian userland (its libraries, git, CA certificates, tini).
#include <sys/wait.h>

#include <fstream>
#include <map>

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

namespace harness::testing {
namespace {

using launch::DockerLauncher;
using launch::DockerLauncherOptions;
using launch::LaunchExit;
using launch::LaunchSpec;

class DockerAgents : public ::testing::Test {
 protected:
  void SetUp() override {
    if (getenv("HARNESS_DOCKER_TESTS") == nullptr) {
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
          i, absl::StrCat("agent-", i), controller_id_, controller_->address(), "agentd", {}, ""};
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

  std::string Exits() {
    absl::MutexLock l(&mu_);
    return absl::StrJoin(exits_, "; ");
  }

  static std::string Image(const char* name) {
    return absl::StrCat(name, ":", HARNESS_TEST_IMAGE_TAG);
  }

  static inline int counter_ = 0;
  TempDir tmp_;
  std::string controller_id_, repo_, base_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::unique_ptr<DockerLauncher> launcher_;
  absl::Mutex mu_;
  std::vector<std::string> exits_ ABSL_GUARDED_BY(mu_);
};

TEST_F(DockerAgents, ThreeAgentsInContainersFinishItemsWithResultsOnTheirBranches) {
  StartController({"/bin/sh", "-c", "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\""});
  StartAgents(Image("harness-agent"), 3);
  std::vector<v1::ItemSpec> items;
  for (int i = 1; i <= 9; ++i) items.push_back(MakeItem(absl::StrCat("item-", i), "write it"));
  Submit(controller_->control(), items);
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().done() == 9; },
                      absl::Seconds(120)))
      << "done: " << GetStatus(controller_->control()).queue().done() << "; exits: " << Exits();
  std::map<std::string, int> by_agent;
  for (int i = 1; i <= 9; ++i) {
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
  config_.launcher = "docker";
  config_.parallel_agents = 2;
  config_.lease_ttl = 30;  // an item moving on sooner is the container-exit path's doing
  config_.heartbeat_interval = 0.2;
  config_.heartbeat_timeout = 2;
  config_.extra_yaml = "  agent_startup_stagger: 0.2\n  agent_restart_delay: 0.2\n";
  config_.agent_yaml = absl::StrCat("    docker:\n      image: ", Image("harness-agent"), "\n");
  StartController({"/bin/sh", "-c",
                   "case \"$(cat \"$HARNESS_PROMPT_FILE\")\" in slow) sleep 8 ;; esac; "
                   "echo \"$HARNESS_ITEM_ID\" > \"$HARNESS_ITEM_ID.txt\""});
  absl::StatusOr<std::string> id = ReadFile(StatePaths(config_.state_dir).ControllerIdFile());
  ASSERT_TRUE(id.ok()) << id.status();
  controller_id_ = std::string(absl::StripAsciiWhitespace(*id));  // TearDown removes its own
  launch::DockerEngine engine{launch::DockerEngineOptions{}};
  // agent -> the id of its running container.
  auto running = [&] {
    std::map<std::string, std::string> out;
    auto list = engine.List({absl::StrCat(launch::kLabelController, "=", controller_id_)});
    if (!list.ok()) return out;
    for (const auto& c : *list) {
      if (c.state == "running") out[c.labels.at(std::string(launch::kLabelAgent))] = c.id;
    }
    return out;
  };
  auto healthy = [&] {
    int n = 0;
    const v1::StatusSnapshot status = GetStatus(controller_->control());
    for (const v1::AgentInfo& a : status.agents()) {
      n += a.health() == v1::HEALTH_HEALTHY;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return running().size() == 2 && healthy() == 2; }, absl::Seconds(60)))
      << running().size() << " containers, " << healthy() << " healthy agents";
  const std::map<std::string, std::string> before = running();
  EXPECT_EQ(before.count("agent-1") + before.count("agent-2"), 2u);

  Submit(controller_->control(), {MakeItem("slow", "slow")});
  std::string victim;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Item item = GetItem(controller_->control(), "slow");
        victim = item.state() == v1::ITEM_STATE_LEASED ? item.agent() : "";
        return !victim.empty();
      },
      absl::Seconds(60)));
  ASSERT_TRUE(before.count(victim)) << victim;
  ASSERT_TRUE(engine.Kill(before.at(victim), "SIGKILL").ok());  // `docker kill`

  // The item is finished (elsewhere or by the replacement), the slot has a new container, and
  // the pool is back at two.
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().done() == 1; },
                      absl::Seconds(120)));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto now = running();
        return now.size() == 2 && now.count(victim) && now.at(victim) != before.at(victim);
      },
      absl::Seconds(60)));
  EXPECT_TRUE(launch::DockerEngine{launch::DockerEngineOptions{}}
                  .Inspect(before.at(victim))
                  .status()
                  .code() == absl::StatusCode::kNotFound)
      << "the killed container is removed";
  EXPECT_EQ(Git({"-C", repo_, "show", "harness/slow:slow.txt"}), "slow");
  // The killed container's output was kept where crash contexts read it.
  absl::StatusOr<std::string> log = ReadFile(StatePaths(config_.state_dir).AgentLogFile(victim));
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_NE(log->find("--- container " + before.at(victim).substr(0, 12)), std::string::npos)
      << *log;
}

}  // namespace
}  // namespace harness::testing
