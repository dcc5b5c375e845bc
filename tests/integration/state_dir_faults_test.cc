// The controller's state dir under faults, with real processes: a kill -9 during a large
// `harnessctl submit --file` keeps all of the file's items or none after the restart; and a full
// disk (a small tmpfs, filled) refuses changes with a clear error, says so in `status`, and the
// controller serves again by itself once space returns, with nothing acknowledged lost and
// nothing refused present.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/core_test_util.h"
#include "tests/support/small_fs.h"
#include "tests/support/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace harness::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;  // gmock's

// A JSON item file of n items with ids <prefix><i> and prompts of prompt_bytes.
std::string WriteItemFile(const std::string& path, const std::string& prefix, int n,
                          size_t prompt_bytes) {
  std::ofstream f(path);
  const std::string prompt(prompt_bytes, 'p');
  f << "[";
  for (int i = 0; i < n; ++i) {
    f << (i ? ",\n" : "") << R"({"id": ")" << prefix << i << R"(", "title": "item )" << i
      << R"(", "prompt": ")" << prompt << R"("})";
  }
  f << "]\n";
  return path;
}

uint64_t JournalBytes(const std::string& state_dir) {
  StatePaths paths(state_dir);
  uint64_t total = 0;
  for (const std::string& name : ListNames(paths.JournalDir())) {
    struct stat st;
    if (::stat((paths.JournalDir() + "/" + name).c_str(), &st) == 0) total += st.st_size;
  }
  return total;
}

int RunCtl(const std::string& address, std::vector<std::string> args, std::string* out) {
  std::vector<std::string> argv = {HarnessctlBin(), "--controller", address};
  argv.insert(argv.end(), args.begin(), args.end());
  int status = RunCommand(argv, out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(StateDirFaults, AKillDuringALargeSubmitKeepsAllOfTheFilesItemsOrNone) {
  TempDir tmp;
  ControllerConfig config;
  config.state_dir = tmp.Sub("state");
  constexpr int kItems = 50'000;
  int64_t expected = 0;
  // Kills at different moments of the write: as soon as the journal grows, and a little later.
  for (absl::Duration delay : {absl::ZeroDuration(), absl::ZeroDuration(), absl::Milliseconds(2),
                               absl::Milliseconds(10)}) {
    static int trial = 0;
    ++trial;
    SCOPED_TRACE(absl::StrCat("trial ", trial, ", kill ", absl::FormatDuration(delay),
                              " after the journal grew"));
    std::unique_ptr<ControllerProcess> controller = ControllerProcess::Start(config, tmp.path());
    ASSERT_NE(controller, nullptr);
    ASSERT_EQ(GetStatus(controller->control()).queue().total(), expected);
    std::string file = WriteItemFile(tmp.Sub(absl::StrCat("items-", trial, ".json")),
                                     absl::StrCat("t", trial, "-"), kItems, 200);
    uint64_t base = JournalBytes(config.state_dir);
    ChildProcess client = ChildProcess::Spawn(
        {HarnessctlBin(), "--controller", controller->address(), "--timeout", "120", "submit",
         "--file", file},
        tmp.Sub(absl::StrCat("submit-", trial, ".out")));
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (JournalBytes(config.state_dir) <= base && absl::Now() < deadline) {
      absl::SleepFor(absl::Microseconds(100));
    }
    ASSERT_GT(JournalBytes(config.state_dir), base) << "the submit never reached the journal";
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    controller->Signal(SIGKILL);
    controller->Wait();
    int client_status = client.Wait();
    bool acknowledged = WIFEXITED(client_status) && WEXITSTATUS(client_status) == 0;

    controller = ControllerProcess::Start(config, tmp.path());
    ASSERT_NE(controller, nullptr);
    int64_t total = GetStatus(controller->control()).queue().total();
    EXPECT_TRUE(total == expected || total == expected + kItems)
        << total - expected << " of the file's " << kItems << " items are left";
    if (acknowledged) {
      EXPECT_EQ(total, expected + kItems) << "the client was told they were in";
    }
    expected = total;
  }
}

// A journal record damaged while the controller was down (a disk error, a person's editor): the
// restarted controller serves, keeps every other item, names the damage in its log and in
// `status` (text and --json), and keeps the damaged bytes in <state>/quarantine/.
TEST(StateDirFaults, ADamagedJournalRecordIsQuarantinedAndStatusAndLogSaySo) {
  TempDir tmp;
  ControllerConfig config;
  config.state_dir = tmp.Sub("state");
  std::unique_ptr<ControllerProcess> controller = ControllerProcess::Start(config, tmp.path());
  ASSERT_NE(controller, nullptr);
  for (int i = 0; i < 5; ++i) {
    Submit(controller->control(), {MakeItem(absl::StrCat("d", i), "do it")});
  }
  controller.reset();  // stopped by pid

  // The third submit record of the segment that holds them gets a flipped byte.
  StatePaths paths(config.state_dir);
  std::string segment;
  for (const std::string& name : ListNames(paths.JournalDir())) {
    struct stat st;
    std::string path = paths.JournalDir() + "/" + name;
    if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) segment = path;
  }
  ASSERT_FALSE(segment.empty());
  absl::StatusOr<std::string> data = ReadFile(segment);
  ASSERT_TRUE(data.ok());
  std::vector<size_t> frames;
  {
    FrameReader reader(*data);
    absl::string_view payload;
    size_t at = 0;
    while (reader.Next(&payload) == FrameStatus::kOk) {
      frames.push_back(at);
      at = reader.offset();
    }
  }
  ASSERT_GE(frames.size(), 5u);
  std::string damaged = *data;
  damaged[frames[2] + 10] ^= 0x40;
  ASSERT_TRUE(WriteFileAtomically(segment, damaged).ok());

  controller = ControllerProcess::Start(config, tmp.path());
  ASSERT_NE(controller, nullptr);
  v1::StatusSnapshot s = GetStatus(controller->control());
  EXPECT_EQ(s.queue().total(), 4);
  ASSERT_EQ(s.controller().recovery_repairs_size(), 1);
  EXPECT_THAT(s.controller().recovery_repairs(0),
              AllOf(HasSubstr("corrupt record"), HasSubstr(segment), HasSubstr("quarantine")));
  EXPECT_THAT(ListNames(paths.QuarantineDir()), ::testing::SizeIs(1));
  std::string out;
  ASSERT_EQ(RunCtl(controller->address(), {"status"}, &out), 0) << out;
  EXPECT_THAT(out, AllOf(HasSubstr("Recovery at start: 1 repairs"), HasSubstr("corrupt record")));
  ASSERT_EQ(RunCtl(controller->address(), {"status", "--json"}, &out), 0) << out;
  EXPECT_EQ(YAML::Load(out)["controller"]["recovery_repairs"].size(), 1u) << out;
  absl::StatusOr<std::string> log = ReadFile(controller->log_file());
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, AllOf(HasSubstr("corrupt record"), HasSubstr("1 repairs")));
  // It takes work as before.
  Submit(controller->control(), {MakeItem("after", "do it")});
  EXPECT_EQ(GetStatus(controller->control()).queue().total(), 5);
}

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mounted = fs_.Mount(tmp_.Sub("fs"), 4);
    if (!mounted.ok()) GTEST_SKIP() << mounted.message();
    config_.state_dir = tmp_.Sub("fs/state");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  void TearDown() override { controller_.reset(); }

  int Ctl(std::vector<std::string> args, std::string* out) {
    return RunCtl(controller_->address(), std::move(args), out);
  }
  v1::ControllerInfo Info() { return GetStatus(controller_->control()).controller(); }
  grpc::Status Acquire(const std::string& agent, v1::AcquireResponse* resp) {
    v1::RegisterRequest reg;
    reg.set_agent_id(agent);
    reg.set_pid(1);
    reg.set_host("test");
    v1::RegisterResponse reg_resp;
    grpc::Status st = controller_->agent().Register(Ctx().get(), reg, &reg_resp);
    if (!st.ok()) return st;
    v1::AcquireRequest req;
    req.set_agent_id(agent);
    req.set_session_id(reg_resp.session_id());
    req.set_wait_ms(0);
    return controller_->agent().Acquire(Ctx().get(), req, resp);
  }

  TempDir tmp_;
  SmallFs fs_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(FullDiskTest, ChangesAreRefusedStatusSaysSoAndServiceResumesWhenSpaceReturns) {
  std::string out;
  ASSERT_EQ(Ctl({"submit", "--file", WriteItemFile(tmp_.Sub("kept.json"), "kept-", 3, 10)}, &out),
            0)
      << out;
  v1::AcquireResponse held;
  ASSERT_TRUE(Acquire("agent-1", &held).ok());
  ASSERT_TRUE(held.has_lease());
  std::string refused_file = WriteItemFile(tmp_.Sub("refused.json"), "refused-", 20, 4096);

  // Fill the disk; a submit is refused, and once more if a write found a page's slack.
  for (int i = 0; i < 5 && Info().store_error().empty(); ++i) {
    fs_.Fill();
    EXPECT_EQ(Ctl({"submit", "--file", refused_file}, &out), 1) << out;
    EXPECT_THAT(out, HasSubstr("No space left on device"));
    EXPECT_THAT(out, HasSubstr(config_.state_dir));
    WaitFor([&] { return !Info().store_error().empty(); }, absl::Seconds(5));
  }
  ASSERT_FALSE(Info().store_error().empty()) << "the disk is full, yet status says nothing";
  EXPECT_THAT(Info().store_error(), HasSubstr("No space left on device"));
  EXPECT_GT(Info().store_failing_since_unix_ms(), 0);
  ASSERT_EQ(Ctl({"status"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Store: FAILING since "));
  ASSERT_EQ(Ctl({"status", "--json"}, &out), 0) << out;
  EXPECT_FALSE(YAML::Load(out)["controller"]["store_ok"].as<bool>()) << out;

  // Nothing refused is present; grants and reports are refused with UNAVAILABLE.
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).queue().total() == 3; },
                      absl::Seconds(10)));
  EXPECT_EQ(GetStatus(controller_->control()).queue().leased(), 1);
  v1::Item item;
  EXPECT_EQ(CallGet(controller_->control(), "refused-0", &item).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::AcquireResponse none;
  grpc::Status st = Acquire("agent-2", &none);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr(config_.state_dir));

  // Space returns: service resumes by itself, and the held lease is still good.
  fs_.Free();
  ASSERT_TRUE(WaitFor([&] { return Info().store_error().empty(); }, absl::Seconds(20)))
      << Info().store_error();
  ASSERT_EQ(Ctl({"submit", "--file", refused_file}, &out), 0) << out;
  v1::CompleteRequest done;
  done.set_agent_id("agent-1");
  done.set_item_id(held.lease().item_id());
  done.set_lease_token(held.lease().lease_token());
  done.set_attempt(held.lease().attempt());
  v1::CompleteResponse done_resp;
  st = controller_->agent().Complete(Ctx().get(), done, &done_resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  v1::StatusSnapshot s = GetStatus(controller_->control());
  EXPECT_EQ(s.queue().total(), 23);
  EXPECT_EQ(s.queue().done(), 1);

  // The disk agrees after a restart.
  controller_.reset();
  controller_ = ControllerProcess::Start(config_, tmp_.path());
  ASSERT_NE(controller_, nullptr);
  s = GetStatus(controller_->control());
  EXPECT_EQ(s.queue().total(), 23);
  EXPECT_EQ(s.queue().done(), 1);
}

}  // namespace
}  // namespace harness::testing
