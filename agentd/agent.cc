// Agent (see agent.h).
#include "agentd/agent.h"

#include <pthread.h>

#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agentd/backoff.h"
#include "agentd/log_shipper.h"
#include "core/ids.h"
#include "core/log.h"

namespace harness::agentd {
namespace {

std::string Describe(const v1::LeaseRef& l) {
  return absl::StrCat("item ", l.item_id(), " (lease ", l.lease_token(), ")");
}

v1::LeaseRef RefOf(const v1::Lease& lease) {
  v1::LeaseRef ref;
  ref.set_item_id(lease.item_id());
  ref.set_lease_token(lease.lease_token());
  return ref;
}

bool SameLease(const v1::LeaseRef& a, const v1::LeaseRef& b) {
  return a.item_id() == b.item_id() && a.lease_token() == b.lease_token();
}

// Worth retrying: the controller is unreachable, restarting, or failed without a change.
bool IsTransient(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

std::string Seconds(absl::Duration d) {
  return absl::StrCat(FormatSeconds(absl::Milliseconds(absl::ToInt64Milliseconds(d))), " s");
}

}  // namespace

Agent::Agent(AgentOptions options, ControllerApi* controller, Clock* clock)
    : options_(std::move(options)),
      controller_(controller),
      clock_(clock),
      work_dir_(options_.work_root) {}

int Agent::Run() {
  if (absl::Status s = work_dir_.Init(); !s.ok()) {
    LogError(absl::StrCat("cannot set up the work dir: ", s.message()));
    return 1;
  }
  WorkspaceOptions ws;
  ws.agent_id = options_.agent_id;
  ws.repo = options_.repo;
  ws.author_name = options_.author_name;
  ws.author_email = options_.author_email;
  workspace_ = NewWorkspace(
      ws, &work_dir_, controller_,
      [this](absl::string_view what, bool fenced, const std::function<absl::Status()>& attempt) {
        v1::LeaseRef ref;
        {
          absl::MutexLock l(&mu_);
          if (current_.has_value()) ref = current_->ref;
        }
        return RetryReport(what, ref, attempt, fenced);
      });
  if (absl::Status s = workspace_->Open(); !s.ok()) {
    LogError(std::string(s.message()));
    return 1;
  }
  LogInfo(absl::StrCat("items run in the ", workspace_->Describe()));
  {
    absl::MutexLock l(&mu_);
    running_ = true;
    if (stopping_) StartWatchdogLocked();  // a stop came before: its deadline still counts
  }
  int code = 0;
  absl::Status started = controller_->Start(this);
  if (started.ok()) {
    MainLoop();
  } else if (!absl::IsCancelled(started)) {
    LogError(std::string(started.message()));
    code = 1;
  }
  controller_->SetState(v1::AGENT_STATE_STOPPED);
  controller_->Shutdown();
  if (absl::Status s = workspace_->Close(); !s.ok()) {
    LogWarning(absl::StrCat("cannot remove the worktree: ", s.message()));
  }
  std::thread watchdog;
  {
    absl::MutexLock l(&mu_);
    finished_ = true;
    if (fatal_) code = 1;
    changed_.SignalAll();
    watchdog = std::move(watchdog_);  // none is started once finished_ is set
  }
  if (watchdog.joinable()) watchdog.join();
  LogInfo(absl::StrCat("agent ", options_.agent_id, " exiting with status ", code));
  return code;
}

void Agent::MainLoop() {
  Backoff backoff;
  while (true) {
    bool draining = false;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) break;
      draining = draining_;
      controller_->SetState(StateLocked(/*working=*/false));
    }
    // Draining: only a lease that came before the drain is run (Acquire does not wait then).
    absl::StatusOr<std::optional<v1::Lease>> lease =
        controller_->Acquire(draining ? absl::ZeroDuration() : options_.acquire_wait);
    if (draining && !(lease.ok() && lease->has_value())) break;
    if (!lease.ok()) {
      backoff.set_max(controller_->RetryCap());
      absl::Duration delay = backoff.Next();
      LogWarning(absl::StrCat("cannot acquire work: ", lease.status().ToString(), "; retrying in ",
                              Seconds(delay)));
      Nap(delay);
      continue;
    }
    backoff.Reset();
    if (lease->has_value()) RunItem(**lease);
  }
  absl::MutexLock l(&mu_);
  LogInfo(draining_ && !stopping_ ? "drained: no item running, exiting"
                                  : absl::StrCat("stopped (", stop_reason_, ")"));
}

void Agent::RunItem(const v1::Lease& lease) {
  const v1::LeaseRef ref = RefOf(lease);
  auto runner = std::make_shared<CommandRunner>(clock_);
  {
    absl::MutexLock l(&mu_);
    current_.emplace(Current{});  // clang 14 rejects emplace(): nested-class quirk
    current_->ref = ref;
    current_->runner = runner;
    controller_->SetState(StateLocked(/*working=*/true));
    changed_.SignalAll();  // the watchdog: a stop may have come while this lease was granted
  }
  LogInfo(absl::StrCat("acquired ", Describe(ref), " over the session stream, attempt ",
                       lease.attempt(), ": \"", lease.item().title(), "\""));
  // A LeaseLost that arrived between the grant and `current_` being set was missed above.
  if (!controller_->Holds(ref)) DropCurrent(ref, Drop::kDiscard, "lost before it started");

  const absl::Time started = clock_->Now();
  bool prepared = false;
  std::optional<absl::Duration> ran;  // the command's own time, once it was started
  CommandResult result = Execute(lease, runner.get(), &prepared, &ran);
  Drop drop;
  std::string drop_reason;
  {
    absl::MutexLock l(&mu_);
    current_->running = false;
    drop = current_->drop;
    drop_reason = current_->drop_reason;
  }
  if (drop == Drop::kNone) {
    std::string how = result.error.empty() ? "command exited with status 0" : result.error;
    std::string line =
        absl::StrCat(Describe(ref), ": ", how, " (ran ", Seconds(ran ? *ran : clock_->Now() - started), ")");
    // A stall or a limit is the agent's doing, not the command's: a warning.
    if (result.outcome == CommandOutcome::kStalled ||
        result.outcome == CommandOutcome::kLimitExceeded) {
      LogWarning(line);
    } else {
      LogInfo(line);
    }
  }
  FinishResult finish;
  if (drop == Drop::kNone && prepared && result.outcome != CommandOutcome::kCancelled) {
    // Commit the work (and upload it from a clone), for Complete or, partial, for Fail.
    finish = workspace_->Finish(lease,
                                result.outcome == CommandOutcome::kExited && result.exit_code == 0);
    absl::MutexLock l(&mu_);
    drop = current_->drop;  // the lease may have been lost meanwhile
    drop_reason = current_->drop_reason;
    if (drop == Drop::kNone && finish.lease_lost) {
      drop = Drop::kDiscard;  // the refusal is logged already
      drop_reason.clear();
    }
  }
  if (drop == Drop::kDiscard && drop_reason.empty()) {
    // Nothing to say.
  } else if (drop == Drop::kDiscard) {
    LogInfo(absl::StrCat(Describe(ref), ": stopped (", drop_reason, "); result discarded"));
  } else if (drop == Drop::kRelease) {
    ReleaseLease(lease, drop_reason);
  }
  if (drop == Drop::kNone) Report(lease, result, finish);
  controller_->ForgetLease(ref);
  absl::MutexLock l(&mu_);
  current_.reset();
}

CommandResult Agent::Execute(const v1::Lease& lease, CommandRunner* runner, bool* prepared,
                             std::optional<absl::Duration>* ran) {
  CommandResult failed;
  failed.outcome = CommandOutcome::kSpawnFailed;
  const v1::ItemSpec& item = lease.item();
  absl::StatusOr<ItemPaths> paths = work_dir_.PrepareFiles(lease.item_id(), lease.attempt());
  if (!paths.ok()) {
    failed.error = absl::StrCat("cannot prepare the work dir: ", paths.status().message());
    return failed;
  }
  absl::StatusOr<std::string> dir = workspace_->Prepare(lease);
  if (!dir.ok()) {
    failed.error = absl::StrCat("cannot prepare the worktree: ", dir.status().message());
    LogWarning(absl::StrCat(Describe(RefOf(lease)), ": ", failed.error));
    return failed;
  }
  paths->work_dir = *std::move(dir);
  *prepared = true;
  std::vector<std::string> argv(lease.command().begin(), lease.command().end());
  if (!options_.command.empty()) argv = options_.command;
  if (argv.empty()) {
    failed.error =
        "no command to run: agentd has no --command and the controller's lease names none "
        "(config agent.command)";
    return failed;
  }
  CommandRequest request;
  request.argv = std::move(argv);
  request.setup.assign(lease.setup().begin(), lease.setup().end());
  request.item_id = lease.item_id();
  request.item_title = item.title();
  request.prompt = item.prompt();
  request.agent_id = options_.agent_id;
  request.lease_token = lease.lease_token();
  request.attempt = lease.attempt();
  request.work_dir = paths->work_dir;
  request.log_path = paths->log_file;
  request.prompt_path = paths->prompt_file;
  request.timeout =
      item.timeout_s() > 0 ? absl::Seconds(item.timeout_s()) : absl::InfiniteDuration();
  request.kill_grace = options_.kill_grace;
  // Enforced here whatever the controller is: 0 / unset means none (an older controller).
  if (lease.stall_timeout_s() > 0) request.stall_timeout = absl::Seconds(lease.stall_timeout_s());
  request.stall_watch = &stall_watch_;
  if (lease.has_resource_limits()) {
    request.limits.memory_mb = lease.resource_limits().max_memory_mb();
    request.limits.cpu_seconds = lease.resource_limits().max_cpu_seconds();
    request.limits.nice = lease.resource_limits().nice();
  }
  request.cgroups = options_.cgroups;
  // The output goes to the controller as it is written (harnessctl logs -f), and all of it
  // before the report.
  LogShipper shipper(request.log_path, lease.item_id(), lease.lease_token(),
                     [this](v1::Progress p) { controller_->SendProgress(std::move(p)); });
  request.on_tick = [&shipper] { shipper.ShipNew(); };
  request.tick_interval = kShipInterval;
  const absl::Time start = clock_->Now();
  CommandResult result = runner->Run(request);
  *ran = clock_->Now() - start;
  shipper.ShipNew();
  return result;
}

void Agent::Report(const v1::Lease& lease, const CommandResult& result,
                   const FinishResult& finish) {
  const v1::LeaseRef ref = RefOf(lease);
  bool next;
  {
    absl::MutexLock l(&mu_);
    next = !draining_ && !stopping_;
  }
  // The commit the worktree started from (the lease's, unless the workspace could not be
  // prepared or had to start elsewhere).
  const std::string base =
      workspace_->base_commit().empty() ? lease.base_commit() : workspace_->base_commit();
  const bool exited_zero = result.outcome == CommandOutcome::kExited && result.exit_code == 0;
  if (exited_zero && finish.status.ok()) {
    v1::CompleteRequest request;
    request.set_agent_id(options_.agent_id);
    request.set_item_id(lease.item_id());
    request.set_lease_token(lease.lease_token());
    request.set_attempt(lease.attempt());
    request.set_commit(finish.commit);
    request.set_base_commit(base);
    request.set_exit_code(0);
    request.set_log_tail(result.log_tail);
    request.set_acquire_next(next);
    v1::CompleteResponse response;
    absl::Status s = RetryReport("complete", ref, [&]() -> absl::Status {
      absl::StatusOr<v1::CompleteResponse> r = controller_->Complete(request);
      if (r.ok()) response = *std::move(r);
      return r.status();
    });
    if (s.ok()) {
      LogInfo(absl::StrCat(Describe(ref), ": completed",
                           finish.commit.empty() ? std::string(" with no change")
                                                 : absl::StrCat(" with commit ", finish.commit)));
    }
    return;
  }
  if (result.outcome == CommandOutcome::kCancelled) {
    // Only a drop cancels a runner, and drops are handled by the caller; be safe anyway.
    ReleaseLease(lease, result.error);
    return;
  }
  v1::FailRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_item_id(lease.item_id());
  request.set_lease_token(lease.lease_token());
  request.set_attempt(lease.attempt());
  request.set_outcome(result.outcome == CommandOutcome::kTimedOut  ? v1::ATTEMPT_OUTCOME_TIMEOUT
                      : result.outcome == CommandOutcome::kStalled ? v1::ATTEMPT_OUTCOME_STALLED
                                                                   : v1::ATTEMPT_OUTCOME_FAILED);
  if (result.outcome == CommandOutcome::kExited || result.outcome == CommandOutcome::kSignaled ||
      result.outcome == CommandOutcome::kLimitExceeded) {
    request.mutable_exit_code()->set_value(result.exit_code);
  }
  if (exited_zero) {
    // The command succeeded but its result could not be handed in.
    request.set_error(std::string(finish.status.message()));
    LogWarning(absl::StrCat(Describe(ref), ": ", finish.status.message(), "; reporting a failure"));
  } else {
    request.set_error(result.error);
    if (!finish.status.ok()) {
      LogWarning(
          absl::StrCat(Describe(ref), ": the partial work is not kept: ", finish.status.message()));
    }
  }
  // An id that cannot name a file will fail the same way on any agent.
  request.set_retryable(ValidateItemId(lease.item_id()).ok());
  request.set_commit(finish.commit);
  request.set_base_commit(base);
  request.set_log_tail(result.log_tail);
  request.set_acquire_next(next);
  v1::FailResponse response;
  absl::Status s = RetryReport("fail", ref, [&]() -> absl::Status {
    absl::StatusOr<v1::FailResponse> r = controller_->Fail(request);
    if (r.ok()) response = *std::move(r);
    return r.status();
  });
  if (s.ok()) {
    LogInfo(absl::StrCat(
        Describe(ref), ": reported as failed",
        finish.commit.empty() ? std::string() : absl::StrCat(" with commit ", finish.commit),
        "; the item is now ",
        absl::AsciiStrToLower(
            absl::StripPrefix(v1::ItemState_Name(response.item_state()), "ITEM_STATE_"))));
  }
}

void Agent::ReleaseLease(const v1::Lease& lease, const std::string& reason) {
  const v1::LeaseRef ref = RefOf(lease);
  LogInfo(absl::StrCat(Describe(ref), ": releasing (", reason, ")"));
  v1::ReleaseRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_item_id(lease.item_id());
  request.set_lease_token(lease.lease_token());
  request.set_reason(reason);
  absl::Status s = RetryReport(
      "release", ref, [&]() -> absl::Status { return controller_->Release(request).status(); });
  if (s.ok()) LogInfo(absl::StrCat(Describe(ref), ": released"));
}

absl::Status Agent::RetryReport(absl::string_view what, const v1::LeaseRef& ref,
                                const std::function<absl::Status()>& attempt, bool fenced) {
  Backoff backoff;
  while (true) {
    absl::Status s = attempt();
    if (s.ok()) return s;
    if (fenced && absl::IsFailedPrecondition(s)) {
      LogWarning(absl::StrCat(Describe(ref), ": the controller refused the ", what,
                              " because the lease is not live (", s.message(),
                              "); result discarded"));
      return s;
    }
    if (!IsTransient(s)) {
      LogError(absl::StrCat(Describe(ref), ": the controller refused the ", what, ": ",
                            s.ToString(), "; giving up on it"));
      return s;
    }
    backoff.set_max(controller_->RetryCap());
    absl::Duration delay = backoff.Next();
    {
      absl::MutexLock l(&mu_);
      if (current_.has_value() && current_->drop == Drop::kDiscard) {
        LogInfo(absl::StrCat(Describe(ref), ": lease ended while reporting (",
                             current_->drop_reason, "); result discarded"));
        return absl::CancelledError("lease ended");
      }
      absl::Duration patience = hurry_ ? absl::ZeroDuration() : options_.report_patience_after_stop;
      if (stopping_ && absl::Now() + delay > stop_deadline_ + patience) {
        LogError(absl::StrCat(Describe(ref), ": cannot ", what, " (", s.ToString(),
                              ") and the agent is stopping: giving up; the lease will expire"));
        return s;
      }
    }
    LogWarning(absl::StrCat(Describe(ref), ": cannot ", what, ": ", s.ToString(), "; retrying in ",
                            Seconds(delay)));
    Nap(delay);
  }
}

void Agent::DropCurrent(const v1::LeaseRef& lease, Drop drop, absl::string_view reason) {
  absl::MutexLock l(&mu_);
  if (!current_.has_value() || !SameLease(current_->ref, lease)) return;
  // A lease that is gone needs no Release: kDiscard wins over kRelease.
  if (current_->drop == Drop::kNone || drop == Drop::kDiscard) {
    current_->drop = drop;
    current_->drop_reason = std::string(reason);
  }
  if (current_->running) current_->runner->Cancel(reason);
  changed_.SignalAll();
}

void Agent::OnLeaseLost(const v1::LeaseRef& lease, absl::string_view reason) {
  {
    absl::MutexLock l(&mu_);
    if (!current_.has_value() || !SameLease(current_->ref, lease)) {
      LogInfo(absl::StrCat("lease lost for ", Describe(lease), " (", reason,
                           "): not the current item, ignored"));
      return;
    }
    if (!current_->running) {
      // The command is done and its report is on the way (or just answered: a heartbeat sent
      // before the report listed the lease). The report's own answer says whether it counted.
      LogInfo(absl::StrCat("lease of ", Describe(lease), " ended while its result is reported (",
                           reason, "); the report's answer decides"));
      return;
    }
  }
  LogWarning(absl::StrCat("lease lost for ", Describe(lease), " (", reason,
                          "): stopping the item and discarding its result"));
  DropCurrent(lease, Drop::kDiscard, absl::StrCat("lease lost: ", reason));
}

void Agent::OnCancelItem(const v1::LeaseRef& lease, absl::string_view reason) {
  {
    absl::MutexLock l(&mu_);
    if (!current_.has_value() || !SameLease(current_->ref, lease)) {
      LogInfo(absl::StrCat("cancel for ", Describe(lease), " (", reason,
                           "): not the current item, ignored"));
      return;
    }
  }
  LogInfo(absl::StrCat(Describe(lease), " cancelled (", reason, "): stopping it"));
  DropCurrent(lease, Drop::kDiscard, absl::StrCat("cancelled: ", reason));
}

void Agent::OnDrain() {
  {
    absl::MutexLock l(&mu_);
    if (draining_) return;
    draining_ = true;
    LogInfo(current_.has_value()
                ? absl::StrCat("draining: finishing ", Describe(current_->ref), ", then exiting")
                : std::string("draining: no item running, exiting"));
    controller_->SetState(StateLocked(current_.has_value()));
    changed_.SignalAll();
  }
  controller_->StopAcquiring();
}

void Agent::OnStop(absl::Duration grace, absl::string_view reason) {
  Stop(grace, absl::StrCat("told to stop by the controller: ", reason));
}

void Agent::OnFatal(const absl::Status& status) {
  LogError(std::string(status.message()));
  {
    absl::MutexLock l(&mu_);
    fatal_ = true;
  }
  Stop(absl::ZeroDuration(), "fatal error");
}

void Agent::RequestStop(absl::string_view reason) {
  bool again;
  absl::Duration grace;
  {
    absl::MutexLock l(&mu_);
    again = stopping_;
    grace = options_.shutdown_grace;
    if (again) hurry_ = true;  // a second signal: no more patience for reports either
  }
  Stop(again ? absl::ZeroDuration() : grace, reason);
}

void Agent::Stop(absl::Duration grace, absl::string_view reason) {
  {
    absl::MutexLock l(&mu_);
    absl::Time deadline = absl::Now() + grace;
    if (!stopping_) {
      stopping_ = true;
      stop_reason_ = std::string(reason);
      stop_grace_ = grace;
      stop_deadline_ = deadline;
      if (running_) StartWatchdogLocked();
      LogInfo(current_.has_value()
                  ? absl::StrCat("stopping (", reason, "): ", Describe(current_->ref),
                                 " may finish within ", Seconds(grace),
                                 ", else it is stopped and released")
                  : absl::StrCat("stopping (", reason, "): no item running"));
    } else if (deadline < stop_deadline_) {
      stop_deadline_ = deadline;
      stop_grace_ = grace;
      LogInfo(absl::StrCat("stopping (", reason, "): not waiting for the current item any more"));
    }
    controller_->SetState(v1::AGENT_STATE_STOPPED);
    changed_.SignalAll();
  }
  controller_->StopAcquiring();
}

void Agent::StartWatchdogLocked() {
  // Only a stop has a deadline to enforce: an agent that is never stopped has no watchdog
  // thread. Started once, while Run() can still join it.
  if (finished_ || watchdog_.joinable()) return;
  watchdog_ = std::thread([this] { Watchdog(); });
  pthread_setname_np(watchdog_.native_handle(), "watchdog");  // in /proc/PID/task/*/comm
}

void Agent::Watchdog() {
  absl::MutexLock l(&mu_);
  while (!finished_) {
    if (stopping_ && current_.has_value() && current_->running && current_->drop == Drop::kNone &&
        absl::Now() >= stop_deadline_) {
      current_->drop = Drop::kRelease;
      current_->drop_reason =
          stop_grace_ > absl::ZeroDuration()
              ? absl::StrCat("agent stopping (", stop_reason_,
                             ") and the item did not finish within ", Seconds(stop_grace_))
              : absl::StrCat("agent stopping (", stop_reason_, ")");
      current_->runner->Cancel(current_->drop_reason);
    }
    bool armed =
        stopping_ && current_.has_value() && current_->running && current_->drop == Drop::kNone;
    changed_.WaitWithDeadline(&mu_, armed ? stop_deadline_ : absl::InfiniteFuture());
  }
}

void Agent::Nap(absl::Duration d) {
  absl::MutexLock l(&mu_);
  changed_.WaitWithTimeout(&mu_, d);
}

v1::AgentState Agent::StateLocked(bool working) const {
  if (stopping_) return v1::AGENT_STATE_STOPPED;
  if (draining_) return v1::AGENT_STATE_DRAINING;
  return working ? v1::AGENT_STATE_WORKING : v1::AGENT_STATE_IDLE;
}

}  // namespace harness::agentd
