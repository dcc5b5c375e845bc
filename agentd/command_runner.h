// CommandRunner: runs the setup argv and the agent command for one attempt of one item, as
// child processes of agentd, and says how they ended. No gRPC and no controller here: the
// caller (Agent) decides what to report.
//
// What the child gets:
//   * argv: the template with {prompt}, {id} and {title} substituted inside each element. An
//     element stays exactly one argument whatever the values hold (spaces, quotes, `$(...)`,
//     newlines): the child is exec'd directly, never through a shell. argv[0] is looked up on
//     PATH unless it contains a '/'; a relative one is taken from the work dir.
//   * the environment of agentd, plus HARNESS_ITEM_ID, HARNESS_ITEM_TITLE, HARNESS_PROMPT_FILE
//     (the prompt, written to `prompt_path`), HARNESS_AGENT_ID, HARNESS_LEASE_TOKEN and
//     HARNESS_ATTEMPT (these replace any inherited values), less agentd's credentials:
//     HARNESS_TOKEN, HARNESS_TOKEN_FILE, every other HARNESS_*_TOKEN and HARNESS_*_TOKEN_FILE,
//     and HARNESS_KEY (the model-driven command must not act as the agent);
//   * stdin from /dev/null, stdout and stderr appended to `log_path`, the work dir as its
//     current directory, default signal dispositions and an empty signal mask;
//   * its own process group, so that stopping it reaches everything it started.
// Stopping (timeout or Cancel()): SIGTERM to the whole group, SIGKILL to the group once
// `kill_grace` has passed. When the command's main process exits, by itself or not, whatever
// it left running in its group is killed too, so nothing outlives the attempt.
//
// The setup argv (`repo.setup`, from the lease) runs first, literally (no substitution), with
// the same environment, directory and log. `timeout` covers setup and command together.
//
// Stalls: a process (setup or command) that adds nothing to the log and changes no file in the
// work dir (ActivityWatch: inotify, or a scan) for `stall_timeout` is stopped like a timeout
// and the run ends kStalled. Limits (resource_limits.h): set in the child between clone and
// exec (cgroup join, rlimits, nice); a process over one is stopped and the run ends
// kLimitExceeded with an error naming the limit.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/resource_limits.h"
#include "core/clock.h"

namespace harness::agentd {

class ActivityWatch;

// How much of the end of the log a result carries.
inline constexpr size_t kLogTailBytes = 4096;

struct CommandRequest {
  std::vector<std::string> argv;   // the command, with placeholders; must not be empty
  std::vector<std::string> setup;  // run first, literally; empty: none
  std::string item_id;
  std::string item_title;
  std::string prompt;
  std::string agent_id;
  uint64_t lease_token = 0;
  int attempt = 0;
  std::string work_dir;     // must exist
  std::string log_path;     // appended to, created if missing
  std::string prompt_path;  // written (replaced) with `prompt`
  // Setup + command; zero, negative or infinite: no limit.
  absl::Duration timeout = absl::InfiniteDuration();
  // Between SIGTERM and SIGKILL to the process group.
  absl::Duration kill_grace = absl::Seconds(10);
  // No output and no file change in work_dir for this long stops the setup or command
  // (kStalled). Zero, negative or infinite: no stall detection.
  absl::Duration stall_timeout = absl::InfiniteDuration();
  // Watches work_dir for the stall detection when set (Watch() at the start, Unwatch() at the
  // end), so that a caller running item after item keeps one inotify instance (closing one
  // waits ~10 ms for the kernel); one run at a time. nullptr: the run makes its own.
  ActivityWatch* stall_watch = nullptr;
  // Called on Run()'s thread every `tick_interval` (measured on the runner's clock) while
  // setup or command runs, e.g. to ship the log as it grows; must not block. Unset: none.
  std::function<void()> on_tick;
  absl::Duration tick_interval = absl::Milliseconds(200);
  // Applied to setup and command (resource_limits.h).
  ResourceLimits limits;
  // Where a memory limit goes; nullptr (or kind kNone): RLIMIT_AS on each process.
  MemoryCgroups* cgroups = nullptr;
};

enum class CommandOutcome {
  kExited,         // the command exited by itself: see exit_code (0 is success)
  kSignaled,       // the command was killed by a signal it did not get from us: see signal
  kTimedOut,       // it ran past `timeout` and was stopped
  kCancelled,      // Cancel() stopped it (or it never started)
  kSpawnFailed,    // the command could not be started (e.g. not found); see error
  kSetupFailed,    // the setup argv failed in any way; the command never ran
  kStalled,        // setup or command made no output and changed no file for `stall_timeout`
  kLimitExceeded,  // setup or command went over a resource limit and was stopped; see error
};

struct CommandResult {
  CommandOutcome outcome = CommandOutcome::kSpawnFailed;
  // kExited: the status; kSignaled: 128 + signal (as Attempt.exit_code); otherwise -1.
  int exit_code = -1;
  int signal = 0;  // kSignaled: the signal number
  // One line for everything but a zero exit: "command exited with status 3", "command killed
  // by signal 9", "timed out after 60 s", "cancelled: <reason>", "cannot run \"x\": No such
  // file or directory", "setup failed: `npm ci` exited with status 1", "stalled: no output and
  // no file change for 900 s", "exceeded memory limit of 64 MiB (cgroup)", "exceeded cpu limit
  // of 10 s".
  std::string error;
  std::string log_tail;  // the last kLogTailBytes of the log file after the run
};

// `argv` with {prompt}, {id} and {title} replaced in every element, in one pass (text that a
// value brings in is never substituted again).
std::vector<std::string> SubstitutePlaceholders(const std::vector<std::string>& argv,
                                                absl::string_view id, absl::string_view title,
                                                absl::string_view prompt);

// "3600" or "0.25": seconds for messages.
std::string FormatSeconds(absl::Duration d);

// One run: construct, Run() once, Cancel() from any thread at any time (before Run() too).
class CommandRunner {
 public:
  // `clock` measures the timeout and the kill grace; waiting itself uses real time, polling
  // the clock every few tens of milliseconds, so a FakeClock moved by a test works too.
  explicit CommandRunner(Clock* clock = Clock::Real());
  ~CommandRunner();
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  // Runs setup (if any) and the command to the end; blocks. Call once.
  CommandResult Run(const CommandRequest& request);

  // Stops the run: the running process group gets SIGTERM, then SIGKILL after the grace, and
  // Run() returns kCancelled with `reason`. Idempotent; the first reason wins.
  void Cancel(absl::string_view reason);

 private:
  enum class StopReason { kNone, kTimeout, kCancel, kStall, kMemory };
  struct ProcessEnd {
    bool spawned = false;
    std::string spawn_error;  // when !spawned
    int wait_status = 0;
    StopReason stopped_by = StopReason::kNone;
    double cpu_seconds = 0;  // user + system, of the process and the children it reaped
    int64_t oom_kills = 0;   // in the attempt's memory cgroup, after the process ended
  };
  struct Attempt;  // what RunProcess watches and applies (command_runner.cc)

  ProcessEnd RunProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const CommandRequest& request, Attempt& attempt);
  bool cancelled() const ABSL_LOCKS_EXCLUDED(mu_);
  void DrainWakePipe();

  Clock* clock_;
  int wake_pipe_[2] = {-1, -1};  // Cancel() writes a byte to wake the waiting Run()
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness::agentd
