// harnessctl against a real controller: every command, human and --json output, and bad input
// (refused locally with exit 2, or by the controller with exit 1 and its message) that changes
// nothing while the controller keeps serving.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace harness::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class HarnessctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.parallel_agents = 3;  // launcher none: a target, nothing launched
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  // Runs harnessctl against the controller; returns the exit code, output in *out.
  int Ctl(std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    int status = RunCommand(argv, out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  YAML::Node Json(std::vector<std::string> args) {
    std::string out;
    EXPECT_EQ(Ctl(args, &out), 0) << out;
    try {
      return YAML::Load(out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what() << "\n" << out;
      return YAML::Node();
    }
  }
  int64_t Total() { return GetStatus(controller_->control()).queue().total(); }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(HarnessctlTest, SubmitShowItemsAndStatusWorkInTextAndJson) {
  std::string out;
  ASSERT_EQ(Ctl({"submit", "--title", "Fix login", "--prompt", "make it work", "--id", "fix-1",
                 "--priority", "4", "--label", "team=web"},
                &out),
            0)
      << out;
  EXPECT_EQ(out, "fix-1\n");
  YAML::Node item = Json({"show", "fix-1", "--json"});
  EXPECT_EQ(item["id"].as<std::string>(), "fix-1");
  EXPECT_EQ(item["title"].as<std::string>(), "Fix login");
  EXPECT_EQ(item["state"].as<std::string>(), "pending");
  EXPECT_EQ(item["priority"].as<int>(), 4);
  EXPECT_TRUE(item["attempts"].IsSequence());
  EXPECT_EQ(item["attempts"].size(), 0u);

  YAML::Node status = Json({"status", "--json"});
  EXPECT_GT(status["controller"]["pid"].as<int>(), 0);
  EXPECT_EQ(status["controller"]["address"].as<std::string>(), controller_->address());
  EXPECT_EQ(status["queue"]["total"].as<int>(), 1);
  EXPECT_EQ(status["queue"]["pending"].as<int>(), 1);
  EXPECT_TRUE(status["pool"]["target"].IsDefined());
  EXPECT_TRUE(status["metrics"]["success_rate"].IsDefined());
  EXPECT_TRUE(status["agents"].IsSequence());

  ASSERT_EQ(Ctl({"status"}, &out), 0) << out;
  EXPECT_EQ(out.rfind("Controller: pid ", 0), 0u) << out;
  EXPECT_NE(out.find("Queue: 1 total | 1 pending | 0 leased | 0 done | 0 failed | 0 parked"),
            std::string::npos)
      << out;

  ASSERT_EQ(Ctl({"items"}, &out), 0) << out;
  EXPECT_NE(out.find("fix-1"), std::string::npos) << out;
  YAML::Node items = Json({"items", "--state", "pending", "--json"});
  ASSERT_EQ(items["items"].size(), 1u);
  EXPECT_EQ(items["items"][0]["id"].as<std::string>(), "fix-1");
  EXPECT_EQ(Json({"items", "--state", "done", "--json"})["items"].size(), 0u);
}

TEST_F(HarnessctlTest, SubmitFromAFileIsAllOrNothing) {
  std::string good = tmp_.Sub("good.yaml");
  std::ofstream(good)
      << "- {id: a, title: A, prompt: do a}\n- {id: b, title: B, prompt: do b, priority: 2}\n";
  std::string out;
  ASSERT_EQ(Ctl({"submit", "--file", good}, &out), 0) << out;
  EXPECT_EQ(out, "a\nb\n");
  std::string bad = tmp_.Sub("bad.json");
  std::ofstream(bad)
      << R"([{"id": "c", "title": "C", "prompt": "p"}, {"id": "d", "title": "D", "prompt": "p", "colour": "red"}])";
  EXPECT_EQ(Ctl({"submit", "--file", bad}, &out), 1);
  EXPECT_NE(out.find("colour"), std::string::npos) << out;
  EXPECT_NE(out.find("\"d\""), std::string::npos) << out;
  std::string dup = tmp_.Sub("dup.yaml");
  std::ofstream(dup) << "- {id: e, title: E, prompt: p}\n- {id: a, title: A2, prompt: p}\n";
  EXPECT_EQ(Ctl({"submit", "--file", dup}, &out), 1);
  EXPECT_NE(out.find("already"), std::string::npos) << out;
  EXPECT_EQ(Total(), 2) << "refused files change nothing";
}

TEST_F(HarnessctlTest, SubmitFileInBatchesKeepsEachBatchWholeAndSaysHowToResume) {
  std::string out;
  ASSERT_EQ(Ctl({"submit", "--title", "T", "--prompt", "p", "--id", "x7"}, &out), 0) << out;
  std::string file = tmp_.Sub("nine.yaml");
  {
    std::ofstream f(file);
    for (int i = 1; i <= 9; ++i) f << "- {id: x" << i << ", title: T, prompt: p}\n";
  }
  // Batches x1-3, x4-6, x7-9: the third holds an id that is taken and is refused whole.
  EXPECT_EQ(Ctl({"submit", "--file", file, "--batch", "3"}, &out), 1);
  EXPECT_TRUE(absl::StartsWith(out, "x1\nx2\nx3\nx4\nx5\nx6\n")) << out;
  EXPECT_THAT(out, HasSubstr("batch 3 of 3 (3 items) was refused, none of it is in the queue"));
  EXPECT_THAT(out, HasSubstr("already taken"));
  EXPECT_THAT(out, HasSubstr("the file's first 6 items are in the queue"));
  EXPECT_THAT(out, HasSubstr("resume with --skip 6"));
  EXPECT_THAT(out, Not(HasSubstr("sending batch")));  // stderr is not a terminal: no progress
  EXPECT_EQ(Total(), 7);
  // Resuming past the taken id sends the rest.
  ASSERT_EQ(Ctl({"submit", "--file", file, "--batch", "3", "--skip", "7"}, &out), 0) << out;
  EXPECT_EQ(out, "x8\nx9\n");
  EXPECT_EQ(Total(), 9);
  EXPECT_EQ(Ctl({"submit", "--file", file, "--skip", "10"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("has only 9 items"));
  EXPECT_EQ(Ctl({"submit", "--title", "T", "--prompt", "p", "--batch", "2"}, &out), 2);
  EXPECT_THAT(out, HasSubstr("--batch needs --file"));
}

TEST_F(HarnessctlTest, BadInputGetsOneClearLineAndTheRightExitCode) {
  std::string out;
  EXPECT_EQ(Ctl({"submit", "--title", "x", "--prompt", "p", "--id", "../x"}, &out), 2);
  EXPECT_NE(out.find("../x"), std::string::npos) << out;
  EXPECT_EQ(Ctl({"submit", "--title", "x"}, &out), 2);
  EXPECT_NE(out.find("prompt"), std::string::npos) << out;
  EXPECT_EQ(Ctl({"bogus"}, &out), 2);
  EXPECT_EQ(Ctl({"items", "--state", "sleeping"}, &out), 2);
  EXPECT_EQ(Ctl({"scale", "-3"}, &out), 2);
  EXPECT_EQ(Ctl({"show", "missing"}, &out), 1);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_EQ(Ctl({"drain", "no-such-agent"}, &out), 1);
  EXPECT_NE(out.find("no-such-agent"), std::string::npos) << out;
  ASSERT_EQ(Ctl({"submit", "--title", "x", "--prompt", "p", "--id", "once"}, &out), 0);
  EXPECT_EQ(Ctl({"submit", "--title", "x", "--prompt", "p", "--id", "once"}, &out), 1);
  EXPECT_NE(out.find("already"), std::string::npos) << out;
  EXPECT_EQ(Ctl({"retry", "once"}, &out), 1);
  EXPECT_NE(out.find("pending"), std::string::npos) << out;
  std::string big(1200000, 'x');
  std::string prompt_file = tmp_.Sub("big.txt");
  std::ofstream(prompt_file) << big;
  EXPECT_NE(Ctl({"submit", "--title", "big", "--prompt-file", prompt_file}, &out), 0);
  EXPECT_NE(out.find("prompt"), std::string::npos) << out;

  std::string unreachable;
  int status = RunCommand({HarnessctlBin(), "--controller", "127.0.0.1:1", "status"}, &unreachable);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(unreachable.find("cannot reach the controller"), std::string::npos) << unreachable;

  EXPECT_EQ(Total(), 1);  // only "once"; the controller still serves
}

TEST_F(HarnessctlTest, ScaleCancelRetryAndAgents) {
  std::string out;
  ASSERT_EQ(Ctl({"scale", "5"}, &out), 0) << out;
  EXPECT_NE(out.find("3 -> 5"), std::string::npos) << out;
  EXPECT_EQ(Json({"status", "--json"})["pool"]["target"].as<int>(), 5);
  ASSERT_EQ(Ctl({"submit", "--title", "x", "--prompt", "p", "--id", "c1"}, &out), 0);
  ASSERT_EQ(Ctl({"cancel", "c1"}, &out), 0) << out;
  EXPECT_EQ(Json({"show", "c1", "--json"})["state"].as<std::string>(), "cancelled");
  EXPECT_EQ(Ctl({"retry", "c1"}, &out), 1) << out;
  YAML::Node agents = Json({"agents", "--json"});
  EXPECT_TRUE(agents["agents"].IsSequence());
  EXPECT_EQ(agents["agents"].size(), 0u);
}

TEST_F(HarnessctlTest, StatusWatchStreamsSnapshotsUntilInterrupted) {
  std::string out_file = tmp_.Sub("watch.out");
  ChildProcess watch = ChildProcess::Spawn({HarnessctlBin(), "--controller", controller_->address(),
                                            "status", "--watch", "--json", "--interval", "0.2"},
                                           out_file, tmp_.Sub("watch.err"));
  auto lines = [&] {
    absl::StatusOr<std::string> s = ReadFile(out_file);
    return s.ok() ? std::count(s->begin(), s->end(), '\n') : 0;
  };
  ASSERT_TRUE(WaitFor([&] { return lines() >= 1; }, absl::Seconds(10)));
  std::string out;
  ASSERT_EQ(Ctl({"submit", "--title", "x", "--prompt", "p", "--id", "seen"}, &out), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<std::string> s = ReadFile(out_file);
        return s.ok() && s->find("\"total\": 1") != std::string::npos;
      },
      absl::Seconds(10)));
  watch.Signal(SIGINT);
  int status = watch.Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  absl::StatusOr<std::string> all = ReadFile(out_file);
  ASSERT_TRUE(all.ok());
  for (absl::string_view line : absl::StrSplit(*all, '\n', absl::SkipEmpty())) {
    YAML::Node n = YAML::Load(std::string(line));  // one JSON document per line
    EXPECT_TRUE(n["queue"]["total"].IsDefined()) << line;
  }
}

}  // namespace
}  // namespace harness::testing
