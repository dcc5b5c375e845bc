// Complete, Fail, Release and the next grant, for both transports (see agent_work.h).
#include "controller/agent_work.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controller/convert.h"
#include "core/log.h"

namespace harness {
namespace {

constexpr size_t kMaxLogTail = 64 << 10;

// Stores the last kMaxLogTail bytes of an attempt's reported log for `harnessctl show`.
void KeepLogTail(const Controller& c, const std::string& item_id, int attempt,
                 const std::string& tail) {
  if (tail.empty()) return;
  size_t from = tail.size() > kMaxLogTail ? tail.size() - kMaxLogTail : 0;
  (void)c.logs().Write(item_id, attempt, absl::string_view(tail).substr(from));
}

AttemptResult ResultOf(const std::string& commit, const std::string& base, int exit_code,
                       const std::string& error) {
  AttemptResult r;
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
}

void RunComplete(Controller* controller, const v1::CompleteRequest& req, CompleteDone done) {
  RepoResults* repo = controller->repo();
  std::optional<Lease> lease = controller->queue().LeaseOf(req.item_id());
  const bool current = lease && lease->token == req.lease_token();
  AttemptResult result = ResultOf(req.commit(), req.base_commit(), req.exit_code(), "");
  if (!req.commit().empty()) {
    if (repo == nullptr) {
      done(absl::FailedPreconditionError(
               "this controller has no repository: complete without a commit"),
           {});
      return;
    }
    if (current) {
      // A result must exist here and descend from the base this attempt was given; anything
      // else fails the attempt (the agent may try again with a good one).
      const std::string& base = lease->base.empty() ? req.base_commit() : lease->base;
      if (absl::Status v = repo->VerifyResult(req.commit(), base); !v.ok()) {
        AttemptResult failed = result;
        failed.error = absl::StrCat("result refused: ", v.message());
        Pending<bool> f = controller->queue().BeginFail(req.item_id(), req.lease_token(),
                                                        store::OUTCOME_FAILED, failed);
        controller->queue().WhenDurable(f.ticket, [done = std::move(done), v](absl::Status) {
          done(absl::InvalidArgumentError(v.message()), {});
        });
        return;
      }
      result.base = base;
    }
    result.branch = absl::StrCat("harness/", req.item_id());
  }
  if (current) controller->RecordAttemptEnd(req.item_id(), req.lease_token(), true);
  Pending<bool> p = controller->queue().BeginComplete(req.item_id(), req.lease_token(), result);
  if (!p.value.ok()) {
    done(p.value.status(), {});
    return;
  }
  KeepLogTail(*controller, req.item_id(), req.attempt(), req.log_tail());
  v1::CompleteResponse resp;
  resp.mutable_result()->set_branch(result.branch);
  resp.mutable_result()->set_commit(req.commit());
  resp.mutable_result()->set_base(result.base);
  controller->queue().WhenDurable(
      p.ticket, [done = std::move(done), resp = std::move(resp), repo, item_id = req.item_id(),
                 commit = req.commit()](absl::Status s) mutable {
        // Recorded done (fenced, durable): now the branch. A crash in between is repaired at
        // the next start (RepoResults::LandDone); a retried Complete lands it again.
        if (s.ok() && repo != nullptr && !commit.empty()) {
          if (absl::Status landed = repo->Land(item_id, commit); !landed.ok()) {
            LogError(absl::StrCat("item ", item_id,
                                  " is done but its branch was not set: ", landed.message()));
            s = absl::InternalError(
                absl::StrCat("result recorded, branch not set: ", landed.message()));
          }
        }
        done(std::move(s), std::move(resp));
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
    default:
      done(absl::InvalidArgumentError(
               "fail: outcome must be ATTEMPT_OUTCOME_FAILED or ATTEMPT_OUTCOME_TIMEOUT"),
           {});
      return;
  }
  controller->RecordAttemptEnd(req.item_id(), req.lease_token(), false);
  AttemptResult res = ResultOf(req.commit(), req.base_commit(),
                               req.has_exit_code() ? req.exit_code().value() : -1, req.error());
  res.not_retryable = !req.retryable();
  Pending<bool> p = controller->queue().BeginFail(req.item_id(), req.lease_token(), outcome, res);
  if (!p.value.ok()) {
    done(p.value.status(), {});
    return;
  }
  KeepLogTail(*controller, req.item_id(), req.attempt(), req.log_tail());
  v1::FailResponse resp;
  absl::StatusOr<store::ItemRecord> item = controller->queue().Get(req.item_id());
  if (item.ok()) resp.set_item_state(ToApi(item->state()));
  RepoResults* repo = controller->repo();
  const int attempt = req.attempt();
  const bool keep = repo != nullptr && !req.commit().empty() && attempt > 0;
  if (keep) resp.set_attempt_branch(absl::StrCat("harness-attempt/", req.item_id(), "/", attempt));
  controller->queue().WhenDurable(
      p.ticket, [done = std::move(done), resp = std::move(resp), repo, keep, attempt,
                 item_id = req.item_id(), commit = req.commit()](absl::Status s) mutable {
        if (s.ok() && keep) {
          if (absl::Status kept = repo->KeepAttempt(item_id, attempt, commit); !kept.ok()) {
            LogWarning(absl::StrCat("work of failed attempt ", attempt, " of ", item_id,
                                    " not kept: ", kept.message()));
          }
        }
        done(std::move(s), std::move(resp));
      });
}

void RunRelease(Controller* controller, const v1::ReleaseRequest& req, ReleaseDone done) {
  Pending<bool> p =
      controller->queue().BeginRelease(req.item_id(), req.lease_token(), req.reason());
  if (!p.value.ok()) {
    done(p.value.status(), {});
    return;
  }
  v1::ReleaseResponse resp;
  absl::StatusOr<store::ItemRecord> item = controller->queue().Get(req.item_id());
  if (item.ok()) resp.set_item_state(ToApi(item->state()));
  controller->queue().WhenDurable(
      p.ticket, [done = std::move(done), resp = std::move(resp)](absl::Status s) mutable {
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
