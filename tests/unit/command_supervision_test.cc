// What CommandRunner watches and limits besides the timeout: stalls (no output and no file
// change in the work dir for stall_timeout; ActivityWatch with inotify or a scan) and the
// resource limits (a memory cgroup or RLIMIT_AS, RLIMIT_CPU, nice). Real processes; limits are
// small, and nothing asserts how long anything took.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentd/activity_watch.h"
#include "agentd/command_runner.h"
#include "agentd/resource_limits.h"
#include "agentd/work_dir.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness::agentd {
namespace {

using ::harness::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : std::string("<missing: ") + path + ">";
}

bool ProcessGone(pid_t pid) {
  for (int i = 0; i < 6000; ++i) {
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return true;
    if (line[paren + 2] == 'Z' || line[paren + 2] == 'X') return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Sub-folders of `dir` (the attempts' cgroups under agentd's parent).
std::vector<std::string> SubFolders(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') out.push_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

class CommandSupervisionTest : public ::testing::Test {
 protected:
  CommandSupervisionTest() {
    mkdir(tmp_.Sub("work").c_str(), 0755);
    mkdir(tmp_.Sub("prompts").c_str(), 0755);
  }
  CommandRequest Request(std::vector<std::string> argv) {
    CommandRequest r;
    r.argv = std::move(argv);
    r.item_id = "item-1";
    r.item_title = "t";
    r.prompt = "p";
    r.agent_id = "agent-1";
    r.lease_token = 1;
    r.attempt = 1;
    r.work_dir = tmp_.Sub("work");
    r.log_path = tmp_.Sub("item-1-1.log");
    r.prompt_path = tmp_.Sub("prompts/item-1-1.txt");
    r.timeout = absl::Seconds(60);
    r.kill_grace = absl::Seconds(5);
    return r;
  }
  std::string Work(const std::string& name) const { return tmp_.Sub("work/" + name); }
  static std::string Hog() { return ::harness::testing::TestBinDir() + "/memory_hog"; }

  TempDir tmp_;
};

// ---------------------------------------------------------------------------------------------
// Stalls

TEST_F(CommandSupervisionTest, ASilentCommandThatChangesNothingIsStoppedAsStalled) {
  CommandRequest r =
      Request({"/bin/sh", "-c", "sleep 1000 & echo $! > grandchild.pid; echo started; wait"});
  r.stall_timeout = absl::Milliseconds(500);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kStalled);
  EXPECT_EQ(result.error, "stalled: no output and no file change for 0.5 s");
  EXPECT_THAT(result.log_tail,
              HasSubstr("[harness] stalled: no output and no file change for 0.5 s"));
  pid_t grandchild = static_cast<pid_t>(std::atoi(Slurp(Work("grandchild.pid")).c_str()));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(ProcessGone(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST_F(CommandSupervisionTest, ACommandThatKeepsWritingOutputIsNotStalled) {
  // 15 lines 100 ms apart: 1.5 s in all, never 1 s without output.
  CommandRequest r = Request(
      {"/bin/sh", "-c", "i=0; while [ $i -lt 15 ]; do echo line $i; sleep 0.1; i=$((i+1)); done"});
  r.stall_timeout = absl::Seconds(1);
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.log_tail, HasSubstr("line 14\n"));
}

TEST_F(CommandSupervisionTest, ACommandThatKeepsChangingFilesInNewFoldersIsNotStalled) {
  // Silent, but writes a file every 100 ms in folders it creates as it runs (watched as they
  // appear).
  CommandRequest r = Request({"/bin/sh", "-c",
                              "i=0; while [ $i -lt 15 ]; do mkdir -p d$i/sub; sleep 0.1; "
                              "echo $i > d$i/sub/f; i=$((i+1)); done"});
  r.stall_timeout = absl::Seconds(1);
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(Slurp(Work("d14/sub/f")), "14\n");
}

TEST_F(CommandSupervisionTest, OneWatchServesRunAfterRunWithTheSameVerdicts) {
  ActivityWatch watch;
  // A run that changes files in new folders (watched as they appear) is not stalled ...
  CommandRequest busy = Request({"/bin/sh", "-c",
                                 "i=0; while [ $i -lt 15 ]; do mkdir -p d$i/sub; sleep 0.1; "
                                 "echo $i > d$i/sub/f; i=$((i+1)); done"});
  busy.stall_timeout = absl::Seconds(1);
  busy.stall_watch = &watch;
  CommandResult first = CommandRunner().Run(busy);
  ASSERT_EQ(first.outcome, CommandOutcome::kExited) << first.error;
  const int fd = watch.fd();
  // ... the next, silent, is, though its work dir was emptied and refilled in between (the
  // changes before the run do not count) ...
  ASSERT_TRUE(EmptyDirectory(tmp_.Sub("work")).ok());
  ASSERT_EQ(mkdir(Work("fresh").c_str(), 0755), 0);
  CommandRequest silent = Request({"/bin/sh", "-c", "echo started; sleep 1000"});
  silent.stall_timeout = absl::Milliseconds(500);
  silent.stall_watch = &watch;
  CommandResult second = CommandRunner().Run(silent);
  EXPECT_EQ(second.outcome, CommandOutcome::kStalled) << second.error;
  // ... and a third, busy in a folder made before it started, is not: that folder is watched.
  CommandRequest busy_in_fresh = Request(
      {"/bin/sh", "-c", "i=0; while [ $i -lt 15 ]; do echo $i > fresh/f; sleep 0.1; "
                        "i=$((i+1)); done"});
  busy_in_fresh.stall_timeout = absl::Seconds(1);
  busy_in_fresh.stall_watch = &watch;
  CommandResult third = CommandRunner().Run(busy_in_fresh);
  EXPECT_EQ(third.outcome, CommandOutcome::kExited) << third.error;
  EXPECT_EQ(watch.fd(), fd) << "the inotify instance was not kept";
}

TEST_F(CommandSupervisionTest, ChangesUnderDotGitDoNotCountAsWork) {
  ASSERT_EQ(mkdir(Work(".git").c_str(), 0755), 0);
  CommandRequest r = Request({"/bin/sh", "-c", "while :; do date >> .git/busy; sleep 0.05; done"});
  r.stall_timeout = absl::Milliseconds(500);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kStalled) << result.error;
}

TEST_F(CommandSupervisionTest, AStalledSetupStallsTheAttempt) {
  CommandRequest r = Request({"/bin/sh", "-c", "touch ran"});
  r.setup = {"sleep", "1000"};
  r.stall_timeout = absl::Milliseconds(300);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kStalled);
  EXPECT_EQ(result.error, "stalled: no output and no file change for 0.3 s (setup `sleep 1000`)");
  EXPECT_FALSE(PathExists(Work("ran")));
}

TEST_F(CommandSupervisionTest, StallsAreMeasuredOnTheInjectedClock) {
  FakeClock clock;
  CommandRequest r = Request({"/bin/sh", "-c", "echo up > started; exec sleep 1000"});
  r.stall_timeout = absl::Seconds(900);
  r.timeout = absl::InfiniteDuration();  // on the same clock
  std::thread mover([&] {
    // Once the command is up, move past the stall timeout until the runner notices.
    while (!PathExists(Work("started"))) absl::SleepFor(absl::Milliseconds(10));
    for (int i = 0; i < 100; ++i) {
      clock.Advance(absl::Seconds(901));
      absl::SleepFor(absl::Milliseconds(50));
      if (Slurp(r.log_path).find("stalled") != std::string::npos) break;
    }
  });
  CommandResult result = CommandRunner(&clock).Run(r);
  mover.join();
  EXPECT_EQ(result.outcome, CommandOutcome::kStalled);
  EXPECT_EQ(result.error, "stalled: no output and no file change for 900 s");
}

TEST(ActivityWatch, InotifySeesWritesTouchesAndRemovalsButNotDotGit) {
  TempDir tmp;
  mkdir(tmp.Sub(".git").c_str(), 0755);
  mkdir(tmp.Sub("a").c_str(), 0755);
  ASSERT_TRUE(WriteFileAtomically(tmp.Sub("a/f"), "x").ok());
  auto w = ActivityWatch::Open(tmp.path());
  ASSERT_EQ(w->mode(), ActivityWatch::Mode::kInotify);
  absl::Time now = absl::Now();
  EXPECT_FALSE(w->Changed(now));
  ASSERT_TRUE(WriteFileAtomically(tmp.Sub(".git/index"), "y").ok());
  EXPECT_FALSE(w->Changed(now));
  ASSERT_EQ(utimes(tmp.Sub("a/f").c_str(), nullptr), 0);  // touch
  EXPECT_TRUE(w->Changed(now));
  EXPECT_FALSE(w->Changed(now));
  ASSERT_EQ(unlink(tmp.Sub("a/f").c_str()), 0);
  EXPECT_TRUE(w->Changed(now));
}

TEST(ActivityWatch, WatchingAnotherTreeForgetsTheFirstAndKeepsTheInstance) {
  TempDir first, second;
  ActivityWatch w;
  absl::Time now = absl::Now();
  EXPECT_FALSE(w.Changed(now)) << "watching nothing";
  w.Watch(first.path());
  ASSERT_EQ(w.mode(), ActivityWatch::Mode::kInotify);
  const int fd = w.fd();
  ASSERT_TRUE(WriteFileAtomically(first.Sub("f"), "x").ok());
  w.Watch(second.path());
  EXPECT_EQ(w.fd(), fd);
  EXPECT_FALSE(w.Changed(now)) << "a change in the first tree, before the second was watched";
  ASSERT_TRUE(WriteFileAtomically(first.Sub("g"), "x").ok());
  EXPECT_FALSE(w.Changed(now)) << "a change in the first tree, no longer watched";
  ASSERT_TRUE(WriteFileAtomically(second.Sub("f"), "x").ok());
  EXPECT_TRUE(w.Changed(now));
  w.Unwatch();
  ASSERT_TRUE(WriteFileAtomically(second.Sub("g"), "x").ok());
  EXPECT_FALSE(w.Changed(now));
}

TEST(ActivityWatch, TheScanSeesTouchesAndRemovalsButNotDotGit) {
  TempDir tmp;
  mkdir(tmp.Sub(".git").c_str(), 0755);
  mkdir(tmp.Sub("a").c_str(), 0755);
  ASSERT_TRUE(WriteFileAtomically(tmp.Sub("a/f"), "x").ok());
  absl::Time now = absl::Now();
  auto w = ActivityWatch::Open(tmp.path(), ActivityWatch::Mode::kScan, absl::Seconds(1));
  ASSERT_EQ(w->mode(), ActivityWatch::Mode::kScan);
  EXPECT_FALSE(w->Changed(now));
  ASSERT_TRUE(WriteFileAtomically(tmp.Sub(".git/index"), "y").ok());
  EXPECT_FALSE(w->Changed(now += absl::Seconds(1)));
  // A touch to a time in the past still changes the ctime.
  timeval old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimes(tmp.Sub("a/f").c_str(), old), 0);
  EXPECT_FALSE(w->Changed(now)) << "scanned before the interval passed";
  EXPECT_TRUE(w->Changed(now += absl::Seconds(1)));
  ASSERT_EQ(unlink(tmp.Sub("a/f").c_str()), 0);
  EXPECT_TRUE(w->Changed(now += absl::Seconds(1)));
  EXPECT_FALSE(w->Changed(now += absl::Seconds(1)));
}

// ---------------------------------------------------------------------------------------------
// Resource limits

TEST_F(CommandSupervisionTest, AGreedyCommandIsStoppedAtItsMemoryCgroupLimit) {
  std::unique_ptr<MemoryCgroups> cgroups = MemoryCgroups::Probe();
  if (cgroups->kind() == MemoryCgroups::Kind::kNone) {
    GTEST_SKIP() << "no memory cgroup here: " << cgroups->Describe();
  }
  CommandRequest r = Request({Hog(), "200"});
  r.limits.memory_mb = 64;
  r.cgroups = cgroups.get();
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kLimitExceeded) << result.error;
  EXPECT_EQ(result.error, "exceeded memory limit of 64 MiB (cgroup)");
  EXPECT_THAT(result.log_tail, HasSubstr("[harness] exceeded memory limit of 64 MiB (cgroup)"));
  EXPECT_THAT(result.log_tail, Not(HasSubstr("allocated 200 MiB")));
}

TEST_F(CommandSupervisionTest, ACommandWithinItsMemoryCgroupRunsAndTheCgroupIsEmptiedAfter) {
  std::unique_ptr<MemoryCgroups> cgroups = MemoryCgroups::Probe();
  if (cgroups->kind() == MemoryCgroups::Kind::kNone) {
    GTEST_SKIP() << "no memory cgroup here: " << cgroups->Describe();
  }
  // A process that left the command's process group dies with the attempt.
  CommandRequest r = Request({"/bin/sh", "-c",
                              "setsid sleep 1000 > /dev/null 2>&1 & echo $! > escaped.pid; "
                              "cat /proc/self/cgroup > cgroup.txt; exec " +
                                  Hog() + " 16"});
  r.limits.memory_mb = 64;
  r.cgroups = cgroups.get();
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.log_tail, HasSubstr("allocated 16 MiB"));
  EXPECT_THAT(Slurp(Work("cgroup.txt")), HasSubstr("/attempt-1\n"));
  pid_t escaped = static_cast<pid_t>(std::atoi(Slurp(Work("escaped.pid")).c_str()));
  ASSERT_GT(escaped, 0);
  EXPECT_TRUE(ProcessGone(escaped));
  // Kept, empty, for the next attempt; removed with the rest when agentd exits.
  EXPECT_EQ(SubFolders(cgroups->parent()), std::vector<std::string>{"attempt-1"});
  EXPECT_EQ(Slurp(cgroups->parent() + "/attempt-1/cgroup.procs"), "");
  const std::string parent = cgroups->parent();
  cgroups.reset();
  EXPECT_FALSE(PathExists(parent));
}

TEST_F(CommandSupervisionTest, AttemptsInARowReuseOneCgroupWithTheirOwnLimitAndOomCount) {
  std::unique_ptr<MemoryCgroups> cgroups = MemoryCgroups::Probe();
  if (cgroups->kind() == MemoryCgroups::Kind::kNone) {
    GTEST_SKIP() << "no memory cgroup here: " << cgroups->Describe();
  }
  auto run = [&](int64_t limit_mb, int hog_mb) {
    CommandRequest r = Request({"/bin/sh", "-c",
                                absl::StrCat("cat /proc/self/cgroup > cgroup.txt; exec ", Hog(),
                                             " ", hog_mb)});
    r.limits.memory_mb = limit_mb;
    r.cgroups = cgroups.get();
    return CommandRunner().Run(r);
  };
  // The first is killed for want of memory: the cgroup's OOM kill count is 1 from then on.
  CommandResult first = run(64, 200);
  EXPECT_EQ(first.outcome, CommandOutcome::kLimitExceeded) << first.error;
  EXPECT_THAT(Slurp(Work("cgroup.txt")), HasSubstr("/attempt-1\n"));
  // The second, in the same cgroup with a higher limit, counts its own kills only (none) and
  // gets the memory the new limit allows.
  CommandResult second = run(128, 100);
  EXPECT_EQ(second.outcome, CommandOutcome::kExited) << second.error;
  EXPECT_EQ(second.exit_code, 0);
  EXPECT_THAT(second.log_tail, HasSubstr("allocated 100 MiB"));
  EXPECT_THAT(Slurp(Work("cgroup.txt")), HasSubstr("/attempt-1\n"));
  // A lower limit holds again.
  CommandResult third = run(32, 100);
  EXPECT_EQ(third.outcome, CommandOutcome::kLimitExceeded) << third.error;
  EXPECT_EQ(third.error, "exceeded memory limit of 32 MiB (cgroup)");
  EXPECT_THAT(Slurp(Work("cgroup.txt")), HasSubstr("/attempt-1\n"));
  EXPECT_EQ(cgroups->pooled(), 1);
  EXPECT_EQ(SubFolders(cgroups->parent()), std::vector<std::string>{"attempt-1"});
}

TEST(MemoryCgroups, AttemptsAtTheSameTimeGetCgroupsOfTheirOwn) {
  std::unique_ptr<MemoryCgroups> cgroups = MemoryCgroups::Probe();
  if (cgroups->kind() == MemoryCgroups::Kind::kNone) {
    GTEST_SKIP() << "no memory cgroup here: " << cgroups->Describe();
  }
  absl::StatusOr<std::unique_ptr<AttemptCgroup>> a = cgroups->Acquire(64);
  absl::StatusOr<std::unique_ptr<AttemptCgroup>> b = cgroups->Acquire(64);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->path(), (*b)->path());
  const std::string first = (*a)->path();
  a->reset();
  absl::StatusOr<std::unique_ptr<AttemptCgroup>> c = cgroups->Acquire(64);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->path(), first);
  EXPECT_EQ(cgroups->pooled(), 2);
}

TEST(MemoryCgroups, AParentLeftByADeadAgentdIsRemovedAtTheNextStart) {
  std::unique_ptr<MemoryCgroups> first = MemoryCgroups::Probe();
  if (first->kind() == MemoryCgroups::Kind::kNone) {
    GTEST_SKIP() << "no memory cgroup here: " << first->Describe();
  }
  const std::string base = first->parent().substr(0, first->parent().rfind('/'));
  first.reset();
  // A dead agentd not reaped yet (a zombie) is dead too.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  siginfo_t info;
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(dead), &info, WEXITED | WNOWAIT), 0);
  const std::string stale = absl::StrCat(base, "/harness-agentd-", dead);
  ASSERT_EQ(mkdir(stale.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((stale + "/3-item-1").c_str(), 0755), 0);
  std::unique_ptr<MemoryCgroups> second = MemoryCgroups::Probe();
  EXPECT_FALSE(PathExists(stale));
  waitpid(dead, nullptr, 0);
  rmdir((stale + "/3-item-1").c_str());
  rmdir(stale.c_str());
}

TEST_F(CommandSupervisionTest, WithoutACgroupTheMemoryLimitIsOnTheAddressSpace) {
  std::unique_ptr<MemoryCgroups> none = MemoryCgroups::None("test");
  CommandRequest r = Request({Hog(), "200"});
  r.limits.memory_mb = 64;
  r.cgroups = none.get();
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.log_tail, HasSubstr("allocation failed after"));
  EXPECT_EQ(result.error,
            "command exited with status 3 (memory is limited to 64 MiB of address space by "
            "RLIMIT_AS; a failed allocation may be why)");
}

TEST_F(CommandSupervisionTest, ACpuBoundCommandIsStoppedAtItsCpuLimit) {
  CommandRequest r = Request({"/bin/sh", "-c", "while :; do :; done"});
  r.limits.cpu_seconds = 1;
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kLimitExceeded) << result.error;
  EXPECT_EQ(result.error, "exceeded cpu limit of 1 s");
}

TEST_F(CommandSupervisionTest, TheCpuLimitIsNamedWhenAShellReportsItsChildsDeath) {
  CommandRequest r = Request({"/bin/sh", "-c", "/bin/sh -c 'while :; do :; done'; exit $?"});
  r.limits.cpu_seconds = 1;
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kLimitExceeded) << result.error;
  EXPECT_EQ(result.error, "exceeded cpu limit of 1 s");
}

TEST_F(CommandSupervisionTest, SetupAndCommandRunAtTheRequestedNiceness) {
  CommandRequest r = Request({"/bin/sh", "-c", "echo command nice $(nice)"});
  r.setup = {"/bin/sh", "-c", "echo setup nice $(nice)"};
  r.limits.nice = 7;
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(r.log_path), "setup nice 7\ncommand nice 7\n");
}

}  // namespace
}  // namespace harness::agentd
