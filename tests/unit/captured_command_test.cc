// RunCaptured (launch/captured_command.h), what work sources and the on_done hook run on: argv
// without a shell, stdout and stderr apart, a timeout and an output cap that kill the whole
// process group, the controller's credentials kept out of the child's environment, and a
// leftover child holding the pipe that cannot hang the caller.
#include "launch/captured_command.h"

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness::launch {
namespace {

using ::harness::testing::TempDir;
using ::testing::HasSubstr;

CapturedRun RunOk(const std::vector<std::string>& argv, CaptureOptions opts = {}) {
  absl::StatusOr<CapturedRun> r = RunCaptured(argv, opts);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CapturedRun{};
}

// Whether process `pid` is gone (or a zombie: dead, waiting for its new parent to reap it),
// waiting up to 10 s for it to go.
bool GoneSoon(pid_t pid) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    if (stat.ok()) {
      size_t paren = stat->rfind(')');
      if (paren != std::string::npos && stat->substr(paren + 2, 1) == "Z") return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

pid_t PidIn(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  int pid = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) return 0;
  return pid;
}

TEST(CapturedCommand, ArgumentsReachTheProgramAsTheyAreWithoutAShell) {
  CapturedRun r = RunOk({"/bin/echo", "$(id -u)", "a  b", ";", "|"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "$(id -u) a  b ; |\n");
}

TEST(CapturedCommand, StdoutAndStderrAreKeptApart) {
  CapturedRun r = RunOk({"sh", "-c", "echo out; echo err >&2"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

TEST(CapturedCommand, ANonZeroExitIsARunThatFailed) {
  CaptureOptions opts;
  CapturedRun r = RunOk({"sh", "-c", "exit 3"}, opts);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(opts), "exited with status 3");
}

TEST(CapturedCommand, AProgramThatCannotStartIsAnErrorNamingIt) {
  absl::StatusOr<CapturedRun> r = RunCaptured({"/nonexistent/bd"}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/bd"));
}

TEST(CapturedCommand, ATimeoutKillsTheCommandAndWhatItStarted) {
  TempDir tmp;
  std::string pidfile = tmp.Sub("child.pid");
  CaptureOptions opts;
  opts.timeout = absl::Milliseconds(300);
  CapturedRun r =
      RunOk({"sh", "-c", absl::StrCat("sleep 300 & echo $! > ", pidfile, "; wait")}, opts);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.Describe(opts), HasSubstr("killed after the timeout"));
  pid_t child = PidIn(pidfile);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(GoneSoon(child)) << "pid " << child << " outlived the timeout";
}

TEST(CapturedCommand, OutputOverTheCapKillsTheCommand) {
  CaptureOptions opts;
  opts.max_stdout_bytes = 1000;
  CapturedRun r = RunOk({"yes"}, opts);
  EXPECT_TRUE(r.too_much_output);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out.size(), 1000u);
  EXPECT_THAT(r.Describe(opts), HasSubstr("printed more than 1000 bytes"));
}

TEST(CapturedCommand, StderrPastItsCapIsDroppedNotAFailure) {
  CaptureOptions opts;
  opts.max_stderr_bytes = 10;
  CapturedRun r = RunOk({"sh", "-c", "echo 0123456789abcdef >&2; echo ok"}, opts);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.err, "0123456789");
  EXPECT_EQ(r.out, "ok\n");
}

TEST(CapturedCommand, TheControllersTokensAreNotPassedButAddedVariablesAre) {
  ::setenv("HARNESS_ADMIN_TOKEN", "secret", 1);
  CaptureOptions opts;
  opts.env = {{"HARNESS_SOURCE", "bd"}};
  CapturedRun r =
      RunOk({"sh", "-c", "echo ${HARNESS_ADMIN_TOKEN:-none} $HARNESS_SOURCE"}, opts);
  ::unsetenv("HARNESS_ADMIN_TOKEN");
  EXPECT_EQ(r.out, "none bd\n");
}

TEST(CapturedCommand, ItRunsInTheWorkDir) {
  TempDir tmp;
  CaptureOptions opts;
  opts.work_dir = tmp.path();
  CapturedRun r = RunOk({"pwd"}, opts);
  EXPECT_EQ(r.out, tmp.path() + "\n");
}

TEST(CapturedCommand, CancelStopsARunningCommand) {
  std::atomic<bool> cancel{false};
  CaptureOptions opts;
  opts.timeout = absl::Hours(1);
  opts.cancel = &cancel;
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancel = true;
  });
  CapturedRun r = RunOk({"sleep", "300"}, opts);
  t.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.ok());
}

TEST(CapturedCommand, ALeftoverChildHoldingStdoutDoesNotHangTheRun) {
  TempDir tmp;
  std::string pidfile = tmp.Sub("child.pid");
  CaptureOptions opts;
  opts.timeout = absl::Hours(1);
  CapturedRun r =
      RunOk({"sh", "-c", absl::StrCat("sleep 300 & echo $! > ", pidfile, "; echo [] ")}, opts);
  EXPECT_TRUE(r.ok()) << r.Describe(opts);
  EXPECT_EQ(r.out, "[]\n");
  pid_t child = PidIn(pidfile);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(GoneSoon(child));
}

}  // namespace
}  // namespace harness::launch
