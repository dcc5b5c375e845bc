// CommandRunner: placeholders substituted as whole arguments (never through a shell), the
// HARNESS_* environment, exit codes and signals, the log and its tail, timeouts and Cancel()
// stopping the whole process group, start failures and setup failures. Commands are small
// /bin/sh scripts; timeouts are short parameters or a FakeClock, never sleeps in the test.
#include "agentd/command_runner.h"

#include <signal.h>
#include <stdlib.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness::agentd {
namespace {

using ::harness::testing::TempDir;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : std::string("<missing: ") + path + ">";
}

// Polls (without any timing assertion) until `path` exists; fails the test after a minute.
bool AwaitFile(const std::string& path) {
  for (int i = 0; i < 6000; ++i) {
    if (PathExists(path)) {
      // The writer may not have finished the line yet: wait for a newline.
      absl::StatusOr<std::string> s = ReadFile(path);
      if (s.ok() && !s->empty() && s->back() == '\n') return true;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// True once `pid` no longer runs: gone, or a zombie waiting for its (new) parent to reap it.
bool AwaitProcessGone(pid_t pid) {
  for (int i = 0; i < 6000; ++i) {
    std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return true;
    char state = line[paren + 2];
    if (state == 'Z' || state == 'X') return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

pid_t ReadPid(const std::string& path) {
  return static_cast<pid_t>(std::atoi(Slurp(path).c_str()));
}

class CommandRunnerTest : public ::testing::Test {
 protected:
  CommandRunnerTest() {
    mkdir(tmp_.Sub("work").c_str(), 0755);
    mkdir(tmp_.Sub("prompts").c_str(), 0755);
  }

  CommandRequest Request(std::vector<std::string> argv) {
    CommandRequest r;
    r.argv = std::move(argv);
    r.item_id = "item-1";
    r.item_title = "Fix the parser";
    r.prompt = "Please fix it.";
    r.agent_id = "agent-7";
    r.lease_token = 42;
    r.attempt = 2;
    r.work_dir = tmp_.Sub("work");
    r.log_path = tmp_.Sub("item-1-2.log");
    r.prompt_path = tmp_.Sub("prompts/item-1-2.txt");
    r.timeout = absl::Seconds(60);
    r.kill_grace = absl::Seconds(5);
    return r;
  }
  std::string Work(const std::string& name) const { return tmp_.Sub("work/" + name); }

  TempDir tmp_;
};

TEST_F(CommandRunnerTest, PromptArrivesAsOneUnexpandedArgument) {
  const std::string prompt =
      "two words, 'single' \"double\" $(rm -rf /) `id` $HOME ; | & > x\n"
      "second line\twith a tab and {id} and {title}\n";
  CommandRequest r = Request({"/bin/sh", "-c", "printf \"%s\" \"$1\" > out", "sh", "{prompt}"});
  r.prompt = prompt;
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(Slurp(Work("out")), prompt);  // placeholders inside the prompt stay as they are
  EXPECT_FALSE(PathExists(Work("x")));
}

TEST_F(CommandRunnerTest, ThePromptFileInPlaceIsRewrittenPrivateButNeverWrittenThrough) {
  const std::string prompt_path = tmp_.Sub("prompts/item-1-2.txt");
  auto run = [&](const std::string& prompt) {
    CommandRequest r = Request({"/bin/sh", "-c", "cat \"$HARNESS_PROMPT_FILE\" > out"});
    r.prompt = prompt;
    return CommandRunner().Run(r);
  };
  // The previous prompt, longer and made readable by all: rewritten, not appended to, 0600.
  ASSERT_TRUE(WriteFileAtomically(prompt_path, "a much longer earlier prompt").ok());
  ASSERT_EQ(chmod(prompt_path.c_str(), 0644), 0);
  CommandResult result = run("short");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "short");
  struct stat st;
  ASSERT_EQ(stat(prompt_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // The same prompt again, then a longer one.
  result = run("short");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "short");
  result = run("a longer prompt this time");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "a longer prompt this time");

  // A hard link to another file, a symbolic link, a FIFO: replaced, what they name untouched.
  const std::string outside = tmp_.Sub("outside");
  ASSERT_TRUE(WriteFileAtomically(outside, "precious").ok());
  ASSERT_EQ(unlink(prompt_path.c_str()), 0);
  ASSERT_EQ(link(outside.c_str(), prompt_path.c_str()), 0);
  result = run("via a hard link");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "via a hard link");
  ASSERT_EQ(unlink(prompt_path.c_str()), 0);
  ASSERT_EQ(symlink(outside.c_str(), prompt_path.c_str()), 0);
  result = run("via a symbolic link");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "via a symbolic link");
  ASSERT_EQ(unlink(prompt_path.c_str()), 0);
  ASSERT_EQ(mkfifo(prompt_path.c_str(), 0600), 0);
  result = run("via a fifo");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "via a fifo");
  EXPECT_EQ(Slurp(outside), "precious");
  ASSERT_EQ(lstat(prompt_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_F(CommandRunnerTest, PlaceholdersAreReplacedInsideEachArgument) {
  CommandRequest r = Request({"/bin/sh", "-c", "printf '%s|%s|%s' \"$1\" \"$2\" \"$3\" > out", "sh",
                              "id={id}", "[{title}]", "{id}-{id}"});
  r.item_title = "A title with  spaces";
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("out")), "id=item-1|[A title with  spaces]|item-1-item-1");
}

TEST(SubstitutePlaceholders, ReplacesInOnePassWithoutRescanningValues) {
  std::vector<std::string> out =
      SubstitutePlaceholders({"claude", "-p", "{prompt}", "--id={id}", "{unknown}", "{title}{id}"},
                             "i1", "T {prompt}", "P {id}");
  EXPECT_EQ(out, (std::vector<std::string>{"claude", "-p", "P {id}", "--id=i1", "{unknown}",
                                           "T {prompt}i1"}));
}

TEST_F(CommandRunnerTest, SetsTheHarnessEnvironmentOverTheInheritedOne) {
  setenv("HARNESS_TEST_INHERITED", "inherited-value", 1);
  setenv("HARNESS_ITEM_ID", "stale-value-from-agentd", 1);
  CommandRequest r = Request(
      {"/bin/sh", "-c",
       "printf '%s\\n' \"$HARNESS_ITEM_ID\" \"$HARNESS_ITEM_TITLE\" \"$HARNESS_PROMPT_FILE\" "
       "\"$HARNESS_AGENT_ID\" \"$HARNESS_LEASE_TOKEN\" \"$HARNESS_ATTEMPT\" "
       "\"$HARNESS_TEST_INHERITED\" > env.txt; env | grep -c '^HARNESS_ITEM_ID=' >> env.txt; "
       "cat \"$HARNESS_PROMPT_FILE\" > prompt.txt"});
  CommandResult result = CommandRunner().Run(r);
  unsetenv("HARNESS_TEST_INHERITED");
  unsetenv("HARNESS_ITEM_ID");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("env.txt")), absl::StrCat("item-1\nFix the parser\n", r.prompt_path,
                                                 "\nagent-7\n42\n2\ninherited-value\n1\n"));
  EXPECT_EQ(Slurp(Work("prompt.txt")), "Please fix it.");
}

TEST_F(CommandRunnerTest, AgentCredentialsAreNotInTheCommandsEnvironment) {
  const std::vector<std::pair<const char*, const char*>> secrets = {
      {"HARNESS_TOKEN", "agent-secret-1"},
      {"HARNESS_TOKEN_FILE", "/secret/agent-token-2"},
      {"HARNESS_AGENT_TOKEN", "agent-secret-3"},
      {"HARNESS_ADMIN_TOKEN", "admin-secret-4"},
      {"HARNESS_READ_TOKEN", "read-secret-5"},
      {"HARNESS_KEY", "/secret/agent-key-6"},
      {"HARNESS_LEASE_TOKEN", "stale-lease-7"}};
  for (const auto& [name, value] : secrets) setenv(name, value, 1);
  setenv("HARNESS_CA", "/tls/ca.pem", 1);
  CommandRequest r = Request({"/bin/sh", "-c", "env > env.txt"});
  CommandResult result = CommandRunner().Run(r);
  for (const auto& [name, value] : secrets) unsetenv(name);
  unsetenv("HARNESS_CA");
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  const std::string env = Slurp(Work("env.txt"));
  EXPECT_THAT(env, HasSubstr("HARNESS_LEASE_TOKEN=42\n"));  // ours, not the inherited one
  EXPECT_THAT(env, HasSubstr("HARNESS_CA=/tls/ca.pem\n"));  // not a secret: kept
  for (const auto& [name, value] : secrets) {
    EXPECT_THAT(env, Not(HasSubstr(value))) << name;
  }
  for (const char* name : {"HARNESS_TOKEN=", "HARNESS_TOKEN_FILE=", "HARNESS_AGENT_TOKEN=",
                           "HARNESS_ADMIN_TOKEN=", "HARNESS_READ_TOKEN=", "HARNESS_KEY="}) {
    EXPECT_THAT(env, Not(HasSubstr(absl::StrCat("\n", name)))) << name;
  }
}

TEST_F(CommandRunnerTest, RunsInTheWorkDirWithStdinFromDevNull) {
  CommandResult result =
      CommandRunner().Run(Request({"/bin/sh", "-c", "pwd -P > pwd.txt; cat > stdin.txt"}));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  char real[4096];
  ASSERT_NE(realpath(tmp_.Sub("work").c_str(), real), nullptr);
  EXPECT_EQ(Slurp(Work("pwd.txt")), absl::StrCat(real, "\n"));
  EXPECT_EQ(Slurp(Work("stdin.txt")), "");
}

TEST_F(CommandRunnerTest, ReportsNonZeroExitStatus) {
  CommandResult result = CommandRunner().Run(Request({"/bin/sh", "-c", "exit 3"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kExited);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.error, "command exited with status 3");
}

TEST_F(CommandRunnerTest, ReportsDeathBySignalAs128PlusTheSignal) {
  CommandResult result = CommandRunner().Run(Request({"/bin/sh", "-c", "kill -KILL $$"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kSignaled);
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_EQ(result.exit_code, 128 + SIGKILL);
  EXPECT_EQ(result.error, "command killed by signal 9");
}

TEST_F(CommandRunnerTest, AppendsStdoutAndStderrToTheLog) {
  CommandRequest r = Request({"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"});
  ASSERT_TRUE(WriteFileAtomically(r.log_path, "earlier line\n").ok());
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(r.log_path), "earlier line\nto-stdout\nto-stderr\n");
  EXPECT_EQ(result.log_tail, "earlier line\nto-stdout\nto-stderr\n");
}

TEST_F(CommandRunnerTest, LogTailIsTheLastFourKibibytes) {
  CommandResult result = CommandRunner().Run(
      Request({"/bin/sh", "-c", "head -c 10000 /dev/zero | tr '\\000' a; printf END"}));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.log_tail.size(), kLogTailBytes);
  EXPECT_THAT(result.log_tail, EndsWith("aaaEND"));
}

TEST_F(CommandRunnerTest, TimeoutKillsTheWholeProcessGroup) {
  CommandRequest r =
      Request({"/bin/sh", "-c", "sleep 1000 & echo $! > grandchild.pid; echo started; wait"});
  r.timeout = absl::Milliseconds(300);
  r.kill_grace = absl::Milliseconds(300);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kTimedOut);
  EXPECT_EQ(result.error, "timed out after 0.3 s");
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_THAT(result.log_tail, HasSubstr("started\n"));
  EXPECT_THAT(result.log_tail, HasSubstr("[harness] timed out after 0.3 s"));
  pid_t grandchild = ReadPid(Work("grandchild.pid"));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(AwaitProcessGone(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST_F(CommandRunnerTest, TimeoutIsMeasuredOnTheInjectedClock) {
  FakeClock clock;
  CommandRequest r = Request({"/bin/sh", "-c", "echo started > started; exec sleep 1000"});
  r.timeout = absl::Seconds(3600);
  r.kill_grace = absl::Seconds(10);
  std::thread mover([&] {
    if (AwaitFile(Work("started"))) clock.Advance(absl::Seconds(3601));
  });
  CommandResult result = CommandRunner(&clock).Run(r);
  mover.join();
  EXPECT_EQ(result.outcome, CommandOutcome::kTimedOut);
  EXPECT_EQ(result.error, "timed out after 3600 s");
}

TEST_F(CommandRunnerTest, TermIgnoredIsFollowedByKillAfterTheGrace) {
  CommandRequest r =
      Request({"/bin/sh", "-c", "trap '' TERM; sleep 1000 & echo $! > grandchild.pid; wait; wait"});
  r.timeout = absl::Milliseconds(200);
  r.kill_grace = absl::Milliseconds(200);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kTimedOut);
  pid_t grandchild = ReadPid(Work("grandchild.pid"));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(AwaitProcessGone(grandchild));
}

TEST_F(CommandRunnerTest, CancelFromAnotherThreadStopsTheWholeGroup) {
  CommandRequest r =
      Request({"/bin/sh", "-c", "sleep 1000 & echo $! > grandchild.pid; echo up > started; wait"});
  CommandRunner runner;
  std::thread canceller([&] {
    if (AwaitFile(Work("started"))) runner.Cancel("lease lost");
  });
  CommandResult result = runner.Run(r);
  canceller.join();
  EXPECT_EQ(result.outcome, CommandOutcome::kCancelled);
  EXPECT_EQ(result.error, "cancelled: lease lost");
  pid_t grandchild = ReadPid(Work("grandchild.pid"));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(AwaitProcessGone(grandchild));
}

TEST_F(CommandRunnerTest, CancelBeforeRunStartsNothing) {
  CommandRunner runner;
  runner.Cancel("shutting down");
  runner.Cancel("second reason is ignored");
  CommandResult result = runner.Run(Request({"/bin/sh", "-c", "touch ran"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kCancelled);
  EXPECT_EQ(result.error, "cancelled: shutting down");
  EXPECT_FALSE(PathExists(Work("ran")));
}

TEST_F(CommandRunnerTest, ProcessesLeftBehindAreKilledWhenTheCommandExits) {
  CommandResult result = CommandRunner().Run(
      Request({"/bin/sh", "-c", "sleep 1000 > /dev/null 2>&1 & echo $! > grandchild.pid"}));
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
  pid_t grandchild = ReadPid(Work("grandchild.pid"));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(AwaitProcessGone(grandchild));
}

TEST_F(CommandRunnerTest, TheCommandStartsWithDefaultSignalDispositionsAndAnEmptyMask) {
  // agentd blocks SIGTERM/SIGINT in every thread and may ignore or handle others.
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  struct sigaction ignore = {};
  struct sigaction handle = {};
  struct sigaction old_winch = {};
  struct sigaction old_usr2 = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGWINCH, &ignore, &old_winch), 0);
  handle.sa_handler = [](int) {};
  ASSERT_EQ(sigaction(SIGUSR2, &handle, &old_usr2), 0);
  CommandResult result =
      CommandRunner().Run(Request({"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}));
  sigaction(SIGUSR2, &old_usr2, nullptr);
  sigaction(SIGWINCH, &old_winch, nullptr);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.log_tail,
            "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_F(CommandRunnerTest, TheCommandDiesWithAgentd) {
  // A stand-in for agentd that is killed with SIGKILL while its command runs.
  pid_t agentd = fork();
  ASSERT_GE(agentd, 0);
  if (agentd == 0) {
    CommandRunner().Run(Request({"/bin/sh", "-c", "echo $$ > command.pid; exec sleep 1000"}));
    _exit(0);
  }
  ASSERT_TRUE(AwaitFile(Work("command.pid")));
  pid_t command = ReadPid(Work("command.pid"));
  ASSERT_GT(command, 0);
  kill(agentd, SIGKILL);
  waitpid(agentd, nullptr, 0);
  EXPECT_TRUE(AwaitProcessGone(command));
}

TEST_F(CommandRunnerTest, OnTickIsCalledWhileSetupAndCommandRun) {
  // Each waits for a file that only the tick makes, once it sees their first line in the log.
  CommandRequest r = Request({"/bin/sh", "-c",
                              "echo command; while [ ! -e gate2 ]; do sleep 0.05; done"});
  r.setup = {"/bin/sh", "-c", "echo setup; while [ ! -e gate1 ]; do sleep 0.05; done"};
  r.timeout = absl::Seconds(60);
  r.tick_interval = absl::Milliseconds(20);
  const std::string log = r.log_path;
  r.on_tick = [&] {
    const std::string text = Slurp(log);
    if (text == "setup\n") {
      ASSERT_TRUE(WriteFileAtomically(Work("gate1"), "").ok());
    }
    if (text == "setup\ncommand\n") {
      ASSERT_TRUE(WriteFileAtomically(Work("gate2"), "").ok());
    }
  };
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(result.exit_code, 0);
}

TEST_F(CommandRunnerTest, CommandNotFoundIsAClearError) {
  CommandResult result = CommandRunner().Run(Request({"no-such-agent-command", "{prompt}"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kSpawnFailed);
  EXPECT_EQ(result.error, "cannot run \"no-such-agent-command\": No such file or directory");
  EXPECT_THAT(result.log_tail, HasSubstr("cannot run \"no-such-agent-command\""));

  result = CommandRunner().Run(Request({"/nonexistent/bin/agent"}));
  EXPECT_EQ(result.outcome, CommandOutcome::kSpawnFailed);
  EXPECT_EQ(result.error, "cannot run \"/nonexistent/bin/agent\": No such file or directory");
}

TEST_F(CommandRunnerTest, SetupRunsFirstWithTheSameEnvironmentDirAndLog) {
  CommandRequest r = Request({"/bin/sh", "-c", "echo command; cat setup.txt > seen.txt"});
  r.setup = {"/bin/sh", "-c", "echo setup; printf '%s' \"$HARNESS_ITEM_ID\" > setup.txt"};
  CommandResult result = CommandRunner().Run(r);
  ASSERT_EQ(result.outcome, CommandOutcome::kExited) << result.error;
  EXPECT_EQ(Slurp(Work("seen.txt")), "item-1");
  EXPECT_EQ(Slurp(r.log_path), "setup\ncommand\n");
}

TEST_F(CommandRunnerTest, SetupFailureSkipsTheCommand) {
  CommandRequest r = Request({"/bin/sh", "-c", "touch ran"});
  r.setup = {"/bin/sh", "-c", "echo installing; exit 4"};
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kSetupFailed);
  EXPECT_EQ(result.error,
            "setup failed: `/bin/sh -c echo installing; exit 4` exited with status 4");
  EXPECT_EQ(result.exit_code, -1);
  EXPECT_THAT(result.log_tail, HasSubstr("installing\n"));
  EXPECT_FALSE(PathExists(Work("ran")));
}

TEST_F(CommandRunnerTest, SetupThatCannotStartIsASetupFailure) {
  CommandRequest r = Request({"/bin/sh", "-c", "touch ran"});
  r.setup = {"no-such-setup-tool", "ci"};
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kSetupFailed);
  EXPECT_EQ(result.error,
            "setup failed: cannot run \"no-such-setup-tool\": No such file or directory");
  EXPECT_FALSE(PathExists(Work("ran")));
}

TEST_F(CommandRunnerTest, SetupTimeoutIsASetupFailure) {
  CommandRequest r = Request({"/bin/sh", "-c", "touch ran"});
  r.setup = {"sleep", "1000"};
  r.timeout = absl::Milliseconds(200);
  CommandResult result = CommandRunner().Run(r);
  EXPECT_EQ(result.outcome, CommandOutcome::kSetupFailed);
  EXPECT_EQ(result.error, "setup failed: `sleep 1000` timed out after 0.2 s");
  EXPECT_FALSE(PathExists(Work("ran")));
}

TEST(FormatSeconds, PrintsWholeAndFractionalSeconds) {
  EXPECT_EQ(FormatSeconds(absl::Seconds(3600)), "3600");
  EXPECT_EQ(FormatSeconds(absl::Milliseconds(250)), "0.25");
  EXPECT_EQ(FormatSeconds(absl::Milliseconds(1500)), "1.5");
}

}  // namespace
}  // namespace harness::agentd
