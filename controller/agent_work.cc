// Complete, Fail, Release and the next grant, for both transports (see agent_work.h).
#include "controller/agent_work.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controller/convert.h"
#include "core/ids.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/paths.h"

namespace harness {
namespace {

// Stores the end of an attempt's reported log for `harnessctl show` and `logs`, at most
// limits.max_log_bytes_per_attempt (KeptLogTail), on the lander's thread (file I/O stays off
// gRPC's threads and out of a commit group). The log the agent streamed (Progress) is kept
// instead of the report's tail when it holds more.
void KeepLogTail(Controller* c, const std::string& item_id, int attempt, const std::string& tail) {
  std::optional<std::string> streamed = c->live_logs().Kept(item_id, attempt);
  const std::string& log = streamed && streamed->size() > tail.size() ? *streamed : tail;
  absl::string_view kept = KeptLogTail(c->options().queue.limits, log);
  if (kept.empty()) return;
  c->lander().Run([c, item_id, attempt, tail = std::string(kept)] {
    (void)c->logs().Write(item_id, attempt, tail);
  });
}

AttemptResult ResultOf(const std::string& agent, const std::string& commit,
                       const std::string& base, int exit_code, const std::string& error) {
  AttemptResult r;
  r.agent = agent;
  r.commit = commit;
  r.base = base;
  r.exit_code = exit_code;
  r.error = error;
  return r;
}

// A waiter that does not wait: granted now or finished with nullopt by the next expiry pass.
class NowWaiter : public AcquireDispatcher::Waiter {
 public:
  NowWaiter(Controller* c, std::function<void(std::optional<v1::Lease>)> done)
      : controller_(c), done_(std::move(done)) {}
  void Finish(absl::StatusOr<std::optional<Grant>> result) override {
    if (!result.ok() || !result->has_value()) {
      done_(std::nullopt);
      return;
    }
    v1::Lease lease;
    FillLease(*controller_, **result, &lease);
    done_(std::move(lease));
  }

 private:
  Controller* const controller_;
  std::function<void(std::optional<v1::Lease>)> done_;
};

}  // namespace

void FillLease(const Controller& controller, const Grant& grant, v1::Lease* out) {
  out->set_item_id(grant.spec.id());
  out->set_lease_token(grant.token);
  out->set_attempt(grant.attempt);
  out->set_ttl_ms(absl::ToInt64Milliseconds(controller.options().queue.lease_ttl));
  v1::ItemSpec* s = out->mutable_item();
  s->set_id(grant.spec.id());
  s->set_title(grant.spec.title());
  s->set_prompt(grant.spec.prompt());
  s->set_priority(grant.spec.priority());
  s->set_max_attempts(grant.spec.max_attempts());
  s->set_timeout_s(grant.spec.timeout_s());
  for (const auto& [k, v] : grant.spec.labels()) (*s->mutable_labels())[k] = v;
  out->set_base_commit(grant.base);
  if (!grant.base.empty() && controller.repo_const() != nullptr) {
    out->set_base_ref(controller.repo_const()->base_ref());
  }
  for (const std::string& a : controller.options().agent_command) out->add_command(a);
  for (const std::string& a : controller.options().setup) out->add_setup(a);
  const CommandLimits& limits = controller.options().command_limits;
  if (limits.stall_timeout != absl::InfiniteDuration()) {
    out->set_stall_timeout_s(absl::ToDoubleSeconds(limits.stall_timeout));
  }
  v1::ResourceLimits* r = out->mutable_resource_limits();
  r->set_max_memory_mb(limits.max_memory_mb);
  r->set_max_cpu_seconds(limits.max_cpu_seconds);
  r->set_nice(limits.nice);
}

void RunComplete(Controller* controller, const v1::CompleteRequest& req, CompleteDone done) {
  RepoResults* repo = controller->repo();
  const std::string& item_id = req.item_id();
  AttemptResult result =
      ResultOf(req.agent_id(), req.commit(), req.base_commit(), req.exit_code(), "");
  if (!req.commit().empty()) {
    if (repo == nullptr) {
      done(absl::FailedPreconditionError(
               "this controller has no repository: complete without a commit"),
           {});
      return;
    }
    result.branch = absl::StrCat("harness/", item_id);
    // A live lease's result must exist here and descend from the base its attempt was given.
    // A repeated report (the lease already ended) is judged by the queue against the journal.
    absl::StatusOr<Lease> live =
        controller->queue().CheckLive(item_id, req.lease_token(), req.agent_id());
    if (live.ok()) {
      const std::string base = live->base.empty() ? req.base_commit() : live->base;
      absl::Status v = repo->VerifyResult(req.commit(), base);
      if (absl::IsNotFound(v)) {
        // Not uploaded (yet): the lease stays; UploadResult, then Complete again.
        done(absl::NotFoundError(absl::StrCat(
                 v.message(), "; upload it (UploadResult) and complete again")),
             {});
        return;
      }
      if (!v.ok()) {
        AttemptResult failed = result;
        failed.branch.clear();
        failed.error = absl::StrCat("result refused: ", v.message());
        Pending<ReportAnswer> f = controller->queue().BeginFail(item_id, req.lease_token(),
                                                                store::OUTCOME_FAILED, failed);
        controller->queue().WhenDurable(f.ticket, [done = std::move(done), v](absl::Status) {
          done(absl::InvalidArgumentError(v.message()), {});
        });
        return;
      }
      result.base = base;
    }
  }
  Pending<ReportAnswer> p =
      controller->queue().BeginComplete(item_id, req.lease_token(), std::move(result));
  // A log tail is written on the lander's thread; the answer then follows it there, so that
  // `show` after the answer finds it.
  const bool tail = p.value.ok() && !p.value->repeat && !req.log_tail().empty();
  if (tail) KeepLogTail(controller, item_id, p.value->attempt, req.log_tail());
  controller->queue().WhenDurable(
      p.ticket, [controller, done = std::move(done), answer = std::move(p.value), item_id,
                 tail](absl::Status s) mutable {
        if (s.ok()) s = answer.status();
        if (!s.ok()) {
          done(std::move(s), {});
          return;
        }
        v1::CompleteResponse resp;
        resp.mutable_result()->set_branch(answer->branch);
        resp.mutable_result()->set_commit(answer->commit);
        resp.mutable_result()->set_base(answer->base);
        if (answer->commit.empty() && !tail) {
          done(absl::OkStatus(), std::move(resp));
          return;
        }
        // The ref moves on the lander's thread (queued by the queue's LeaseEnded before this
        // ran); a repeat sets it again to the journal's commit, should a crash have come
        // between recording the result and moving the ref. Answer once it has moved.
        if (answer->repeat) controller->lander().Land(item_id, answer->commit);
        controller->lander().After(item_id, [done = std::move(done), resp = std::move(resp)](
                                                absl::Status landed) mutable {
          done(std::move(landed), std::move(resp));
        });
      });
}

void RunFail(Controller* controller, const v1::FailRequest& req, FailDone done) {
  store::Outcome outcome;
  switch (req.outcome()) {
    case v1::ATTEMPT_OUTCOME_FAILED:
    case v1::ATTEMPT_OUTCOME_UNSPECIFIED:
      outcome = store::OUTCOME_FAILED;
      break;
    case v1::ATTEMPT_OUTCOME_TIMEOUT:
      outcome = store::OUTCOME_TIMEOUT;
      break;
    case v1::ATTEMPT_OUTCOME_STALLED:
      outcome = store::OUTCOME_STALLED;
      break;
    default:
      done(absl::InvalidArgumentError(
               "fail: outcome must be ATTEMPT_OUTCOME_FAILED, ATTEMPT_OUTCOME_TIMEOUT or "
               "ATTEMPT_OUTCOME_STALLED"),
           {});
      return;
  }
  AttemptResult res = ResultOf(req.agent_id(), req.commit(), req.base_commit(),
                               req.has_exit_code() ? req.exit_code().value() : -1, req.error());
  res.not_retryable = !req.retryable();
  const std::string& item_id = req.item_id();
  // A timeout or a stall is kept like an agent's death, in crashes/<agent>/<timestamp>/ (written
  // by the pool manager's thread), and the attempt's error names that folder for `show`.
  const bool keep_context =
      outcome != store::OUTCOME_FAILED && ValidateAgentId(req.agent_id()).ok();
  const std::string folder = CrashFolderName(controller->clock()->Now());
  if (keep_context) {
    absl::StrAppend(&res.error, " (context in ",
                    StatePaths(controller->options().queue.state_dir).CrashesDir(), "/",
                    req.agent_id(), "/", folder, ")");
  }
  Pending<ReportAnswer> p =
      controller->queue().BeginFail(item_id, req.lease_token(), outcome, std::move(res));
  const bool tail = p.value.ok() && !p.value->repeat && !req.log_tail().empty();
  if (tail) KeepLogTail(controller, item_id, p.value->attempt, req.log_tail());
  if (p.value.ok() && !p.value->repeat && keep_context) {
    CrashContext c;
    c.agent = req.agent_id();
    c.folder = folder;
    c.reason = absl::StrCat("item ", item_id, " attempt ", p.value->attempt, ": ", req.error());
    std::optional<AgentInfo> info = controller->agents().Get(req.agent_id());
    if (info) {
      c.status = absl::StrCat("state ", AgentStateName(info->state), "\nhealth ",
                              HealthName(info->health), "\npid ", info->pid, "\nhost ",
                              info->host);
    }
    c.item = absl::StrCat("item ", item_id, " token ", req.lease_token(), " attempt ",
                          p.value->attempt);
    c.log_tail = req.log_tail();
    controller->pool().KeepContext(std::move(c));
  }
  controller->queue().WhenDurable(
      p.ticket, [controller, done = std::move(done), answer = std::move(p.value), item_id,
                 tail](absl::Status s) mutable {
        if (s.ok()) s = answer.status();
        if (!s.ok()) {
          done(std::move(s), {});
          return;
        }
        v1::FailResponse resp;
        resp.set_item_state(ToApi(answer->item_state));
        const bool kept =
            controller->repo() != nullptr && !answer->commit.empty() && answer->attempt > 0;
        if (!kept && !tail) {
          done(absl::OkStatus(), std::move(resp));
          return;
        }
        if (kept) {
          resp.set_attempt_branch(
              absl::StrCat("harness-attempt/", item_id, "/", answer->attempt));
        }
        // Kept (best effort) by the lander from the queue's LeaseEnded: answer after it.
        controller->lander().After(
            item_id, [done = std::move(done), resp = std::move(resp)](absl::Status) mutable {
              done(absl::OkStatus(), std::move(resp));
            });
      });
}

void RunRelease(Controller* controller, const v1::ReleaseRequest& req, ReleaseDone done) {
  Pending<ReportAnswer> p = controller->queue().BeginRelease(req.item_id(), req.lease_token(),
                                                             req.reason(), req.agent_id());
  controller->queue().WhenDurable(
      p.ticket,
      [done = std::move(done), answer = std::move(p.value)](absl::Status s) mutable {
        if (s.ok()) s = answer.status();
        v1::ReleaseResponse resp;
        if (s.ok()) resp.set_item_state(ToApi(answer->item_state));
        done(std::move(s), std::move(resp));
      });
}

void GrantIfPending(Controller* controller, const std::string& agent,
                    std::function<void(std::optional<v1::Lease>)> done) {
  auto waiter = std::make_shared<NowWaiter>(controller, std::move(done));
  waiter->agent = agent;
  waiter->deadline = controller->clock()->Now();
  controller->dispatcher().Acquire(waiter);
  controller->Wake();  // should it park behind others, the ticker finishes it at once
}

}  // namespace harness
