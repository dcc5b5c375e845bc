// Agent: agentd's main loop and its response to the controller's commands. It decides; the
// ControllerApi talks (controller_api.h), CommandRunner runs processes, WorkDir names files,
// the Workspace (workspace.h) readies the worktree and hands in the commit.
//
//   open workspace -> register -> [acquire -> prepare worktree -> setup + command
//                                  -> commit (+ upload) -> report]* -> close workspace -> exit
//
// Reports: exit 0 -> Complete with the commit ("" when nothing changed) and the base commit;
// non-zero exit or signal -> Fail(FAILED, retryable); timeout -> Fail(TIMEOUT); stall (no
// output and no file change for the lease's stall_timeout_s) -> Fail(STALLED); over a resource
// limit (the lease's resource_limits) -> Fail(FAILED) naming the limit; setup or start
// failure -> Fail(FAILED). A Fail carries the commit of the partial work, if any. An
// upload the controller refuses (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) or a commit that cannot
// be made turns a Complete into a Fail(FAILED, retryable) with that error. Each call (reports,
// FetchBase, UploadResult) is retried with backoff across controller outages until the
// controller answers for good; FAILED_PRECONDITION on a report or an upload (the lease is not
// live) drops the result with one log line.
// Commands: LeaseLost or CancelItem for the running item kill its process group and drop the
// result (no report). Drain: finish the current item, take no more, exit 0. Stop, SIGTERM or
// SIGINT: take no more; the current item may finish within the grace, after which it is killed
// and its lease Released (a report still unanswered is retried for report_patience_after_stop
// more); exit 0. A second SIGTERM/SIGINT cuts the grace and the patience short.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/activity_watch.h"
#include "agentd/command_runner.h"
#include "agentd/controller_api.h"
#include "agentd/work_dir.h"
#include "agentd/workspace.h"
#include "core/clock.h"
#include "harness/v1/agent.pb.h"

namespace harness::agentd {

struct AgentOptions {
  std::string agent_id;
  std::string work_root;             // --workdir
  std::vector<std::string> command;  // --command; empty: the lease's command
  std::string repo;                  // --repo: "", a local path or a URL (workspace.h)
  std::string author_name;           // --author-name; "": "Harness Agent <id>"
  std::string author_email;          // --author-email; "": "<id>@harness.local"
  absl::Duration shutdown_grace = absl::Seconds(30);
  absl::Duration kill_grace = absl::Seconds(10);
  absl::Duration acquire_wait = absl::Seconds(30);
  // After a stop's grace has passed, how much longer an unanswered report is retried before
  // agentd gives up on it and exits (the controller then lets the lease expire).
  absl::Duration report_patience_after_stop = absl::Seconds(10);
  // Memory cgroups for the leases' memory limits (probed once at start); nullptr: RLIMIT_AS.
  MemoryCgroups* cgroups = nullptr;
};

class Agent : public SessionListener {
 public:
  // `controller` must outlive the agent. `clock` times the items' commands.
  Agent(AgentOptions options, ControllerApi* controller, Clock* clock = Clock::Real());

  // Runs to the end; returns the process exit code: 0 after a drain or stop, 1 after a fatal
  // error (work dir or worktree unusable, the controller refusing the agent).
  int Run();

  // SIGTERM / SIGINT. Thread-safe; a second call stops the current item at once.
  void RequestStop(absl::string_view reason);

  // SessionListener.
  void OnLeaseLost(const v1::LeaseRef& lease, absl::string_view reason) override;
  void OnCancelItem(const v1::LeaseRef& lease, absl::string_view reason) override;
  void OnDrain() override;
  void OnStop(absl::Duration grace, absl::string_view reason) override;
  void OnFatal(const absl::Status& status) override;

 private:
  // What happens to the current item's result.
  enum class Drop {
    kNone,     // report it
    kDiscard,  // the lease is gone (lost, cancelled): say nothing
    kRelease,  // stopping: give the lease back
  };
  struct Current {
    v1::LeaseRef ref;
    std::shared_ptr<CommandRunner> runner;
    bool running = true;  // the command has not ended yet
    Drop drop = Drop::kNone;
    std::string drop_reason;
  };

  void MainLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Runs one item and reports it.
  void RunItem(const v1::Lease& lease) ABSL_LOCKS_EXCLUDED(mu_);
  // Prepares the work dir and the workspace (`*prepared` tells whether it succeeded), then
  // runs the command; *ran is set to the command's own time (setup commands included) once it
  // was started.
  CommandResult Execute(const v1::Lease& lease, CommandRunner* runner, bool* prepared,
                        std::optional<absl::Duration>* ran);
  // Reports the item; asks for the next lease in the same message unless stopping or draining
  // (the lease then comes through the next Acquire).
  void Report(const v1::Lease& lease, const CommandResult& result, const FinishResult& finish);
  void ReleaseLease(const v1::Lease& lease, const std::string& reason);
  // Calls `attempt` until the controller answers for good; see agent.h's top comment.
  // `fenced`: FAILED_PRECONDITION means the lease is not live (every call but FetchBase).
  absl::Status RetryReport(absl::string_view what, const v1::LeaseRef& ref,
                           const std::function<absl::Status()>& attempt, bool fenced = true);
  void DropCurrent(const v1::LeaseRef& lease, Drop drop, absl::string_view reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Stop(absl::Duration grace, absl::string_view reason) ABSL_LOCKS_EXCLUDED(mu_);
  void StartWatchdogLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Watchdog() ABSL_LOCKS_EXCLUDED(mu_);
  // Sleeps up to `d`, waking early on any change (stop, drain, a dropped item).
  void Nap(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);
  v1::AgentState StateLocked(bool working) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AgentOptions options_;
  ControllerApi* const controller_;
  Clock* const clock_;
  WorkDir work_dir_;
  std::unique_ptr<Workspace> workspace_;  // made by Run(), used by its thread only
  // The items' stall detection, kept from one item to the next (command_runner.h); Run()'s
  // thread only.
  ActivityWatch stall_watch_;

  absl::Mutex mu_;
  absl::CondVar changed_;  // signalled on every change below
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool fatal_ ABSL_GUARDED_BY(mu_) = false;
  bool hurry_ ABSL_GUARDED_BY(mu_) = false;     // a second SIGTERM/SIGINT: give up reports at once
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Run() is ending: the watchdog exits
  bool running_ ABSL_GUARDED_BY(mu_) = false;   // Run() got past its set-up: a watchdog may start
  // Cancels the current item at the stop deadline; started by the first Stop() once Run() is
  // past its set-up, joined by Run().
  std::thread watchdog_ ABSL_GUARDED_BY(mu_);
  std::string stop_reason_ ABSL_GUARDED_BY(mu_);
  absl::Time stop_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();  // real time
  absl::Duration stop_grace_ ABSL_GUARDED_BY(mu_);
  std::optional<Current> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness::agentd
