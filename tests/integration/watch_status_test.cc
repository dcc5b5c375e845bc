// ControlService.WatchStatus against the real controller: a watcher gets a snapshot per tick
// without the controller starting a thread per tick, and a controller stopped while a watcher
// is connected ends the stream and exits cleanly.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

// The thread ids of `pid` now.
std::set<int> Tids(pid_t pid) {
  std::set<int> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    int tid = 0;
    if (absl::SimpleAtoi(e.path().filename().string(), &tid)) out.insert(tid);
  }
  return out;
}

// "Threads:" of /proc/PID/status.
int ThreadCount(pid_t pid) {
  std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or("");
  size_t at = status.find("\nThreads:");
  int n = -1;
  if (at != std::string::npos) {
    std::string rest = status.substr(at + 9, status.find('\n', at + 1) - at - 9);
    (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &n);
  }
  return n;
}

class WatchStatus : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(WatchStatus, AWatcherGetsASnapshotPerTickAndNoThreadIsStartedPerTick) {
  constexpr int kTicks = 20;
  v1::WatchStatusRequest req;
  req.set_interval_ms(100);  // the shortest the controller allows
  auto ctx = Ctx(absl::Seconds(60));
  auto reader = controller_->control().WatchStatus(ctx.get(), req);
  v1::StatusSnapshot snap;
  ASSERT_TRUE(reader->Read(&snap));
  ASSERT_TRUE(reader->Read(&snap));  // the first tick: whatever a tick needs exists now
  const pid_t pid = controller_->pid();
  const std::set<int> before = Tids(pid);
  const int threads_before = ThreadCount(pid);
  std::set<int> seen = before;
  int max_threads = threads_before;
  for (int i = 0; i < kTicks; ++i) {
    ASSERT_TRUE(reader->Read(&snap)) << "tick " << i;
    EXPECT_EQ(snap.controller().pid(), pid);
    std::set<int> now = Tids(pid);
    seen.insert(now.begin(), now.end());
    max_threads = std::max(max_threads, ThreadCount(pid));
  }
  // A thread per tick shows as about one new thread id per tick; allow gRPC a few of its own.
  EXPECT_LT(seen.size() - before.size(), static_cast<size_t>(kTicks / 4))
      << before.size() << " threads at the start, " << seen.size() << " ids seen";
  EXPECT_LE(max_threads, threads_before + 2);
  ctx->TryCancel();
  while (reader->Read(&snap)) {
  }
  reader->Finish();
}

TEST_F(WatchStatus, AControllerStoppedWithAWatcherConnectedEndsTheStreamAndExitsCleanly) {
  v1::WatchStatusRequest req;
  req.set_interval_ms(600000);  // the next tick is ten minutes away
  auto ctx = Ctx(absl::Seconds(60));
  auto reader = controller_->control().WatchStatus(ctx.get(), req);
  v1::StatusSnapshot snap;
  ASSERT_TRUE(reader->Read(&snap));
  controller_->Signal(SIGTERM);
  EXPECT_FALSE(reader->Read(&snap));  // the stream ends, not in ten minutes
  reader->Finish();
  int status = controller_->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

}  // namespace
}  // namespace harness::testing
