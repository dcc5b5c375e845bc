// AgentService (see service_agent.h).
#include "controller/service_agent.h"

#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "config/flags.h"
#include "controller/convert.h"
#include "controller/session_reactor.h"
#include "core/ids.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness {
namespace {

constexpr int64_t kMaxWaitMs = 5 * 60 * 1000;
constexpr size_t kMaxLogTail = 64 << 10;

// Stores the last kMaxLogTail bytes of an attempt's reported log for `harnessctl show`.
void KeepLogTail(const Controller& c, const std::string& item_id, int attempt,
                 const std::string& tail) {
  if (tail.empty()) return;
  size_t from = tail.size() > kMaxLogTail ? tail.size() - kMaxLogTail : 0;
  (void)c.logs().Write(item_id, attempt, absl::string_view(tail).substr(from));
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

// A parked Acquire: a unary reactor that the dispatcher finishes.
class AcquireReactor : public grpc::ServerUnaryReactor {
 public:
  class Waiter : public AcquireDispatcher::Waiter {
   public:
    Waiter(AcquireReactor* r, Controller* c) : reactor_(r), controller_(c) {}
    void Finish(absl::StatusOr<std::optional<Grant>> result) override {
      if (result.ok() && result->has_value()) {
        FillLease(*controller_, **result, reactor_->resp_->mutable_lease());
      }
      reactor_->Finish(ToGrpcStatus(result.status()));
    }

   private:
    AcquireReactor* reactor_;
    Controller* controller_;
  };

  AcquireReactor(Controller* c, v1::AcquireResponse* resp) : controller_(c), resp_(resp) {}
  void Start(std::string agent, absl::Time deadline) {
    waiter_ = std::make_shared<Waiter>(this, controller_);
    waiter_->agent = std::move(agent);
    waiter_->deadline = deadline;
    std::shared_ptr<Waiter> w = waiter_;
    controller_->dispatcher().Acquire(w);
    controller_->Wake();
  }
  void OnCancel() override { controller_->dispatcher().Cancel(waiter_.get()); }
  void OnDone() override { delete this; }

 private:
  Controller* const controller_;
  v1::AcquireResponse* const resp_;
  std::shared_ptr<Waiter> waiter_;
};

AttemptResult ResultOf(const std::string& commit, const std::string& base, int exit_code,
                       const std::string& error) {
  AttemptResult r;
  r.commit = commit;
  r.base = base;
  r.exit_code = exit_code;
  r.error = error;
  return r;
}

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

grpc::ServerUnaryReactor* AgentServiceImpl::Register(grpc::CallbackServerContext* ctx,
                                                     const v1::RegisterRequest* req,
                                                     v1::RegisterResponse* resp) {
  if (absl::Status s = ValidateAgentId(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  const std::string& agent = req->agent_id();
  std::string session =
      controller_->agents().Register(agent, req->pid(), req->host(), req->version());
  resp->set_session_id(session);
  resp->set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(controller_->options().heartbeat_interval));
  resp->set_lease_ttl_ms(absl::ToInt64Milliseconds(controller_->options().queue.lease_ttl));
  resp->set_controller_version(HarnessVersion());
  // Leases the agent still runs and we still hold: renewed and confirmed. Leases we hold for it
  // that it no longer runs (it restarted): handed back at once.
  std::set<std::pair<std::string, uint64_t>> held;
  for (const v1::LeaseRef& ref : req->held_leases()) {
    absl::StatusOr<absl::Time> renewed =
        controller_->queue().Renew(ref.item_id(), ref.lease_token());
    if (!renewed.ok()) continue;
    held.emplace(ref.item_id(), ref.lease_token());
    absl::StatusOr<store::ItemRecord> item = controller_->queue().Get(ref.item_id());
    std::optional<Lease> lease = controller_->queue().LeaseOf(ref.item_id());
    if (!item.ok() || !lease) continue;
    Grant g;
    g.spec = item->spec();
    g.token = lease->token;
    g.attempt = lease->attempt;
    g.expires = lease->expires;
    g.base = lease->base;
    FillLease(*controller_, g, resp->add_leases());
  }
  for (const Lease& l : controller_->queue().Leases()) {
    if (l.agent == agent && !held.count({l.item_id, l.token})) {
      absl::Status s =
          controller_->queue().Release(l.item_id, l.token, "its agent registered again without it");
      if (s.ok()) {
        LogInfo(absl::StrCat("agent ", agent, " registered again without item ", l.item_id,
                             "; the item is requeued"));
      }
    }
  }
  LogInfo(absl::StrCat("agent ", agent, " registered (pid ", req->pid(), ", host ", req->host(),
                       ", ", held.size(), " leases kept)"));
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* AgentServiceImpl::Session(
    grpc::CallbackServerContext*) {
  return new SessionReactor(controller_);
}

grpc::ServerUnaryReactor* AgentServiceImpl::Acquire(grpc::CallbackServerContext* ctx,
                                                    const v1::AcquireRequest* req,
                                                    v1::AcquireResponse* resp) {
  if (absl::Status s = ValidateAgentId(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  if (absl::Status s = controller_->agents().Touch(req->agent_id(), req->session_id()); !s.ok()) {
    return FinishNow(ctx, s);
  }
  int64_t wait_ms = std::clamp<int64_t>(req->wait_ms(), 0, kMaxWaitMs);
  // Answer a little before the client's own deadline so "no work" arrives as an answer.
  absl::Time deadline = controller_->clock()->Now() + absl::Milliseconds(wait_ms);
  absl::Time client_deadline = absl::FromChrono(ctx->deadline());
  if (client_deadline < deadline + absl::Milliseconds(200)) {
    deadline = std::max(controller_->clock()->Now(), client_deadline - absl::Milliseconds(200));
  }
  auto* reactor = new AcquireReactor(controller_, resp);
  reactor->Start(req->agent_id(), deadline);
  return reactor;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Complete(grpc::CallbackServerContext* ctx,
                                                     const v1::CompleteRequest* req,
                                                     v1::CompleteResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  RepoResults* repo = controller_->repo();
  std::optional<Lease> lease = controller_->queue().LeaseOf(req->item_id());
  const bool current = lease && lease->token == req->lease_token();
  AttemptResult result = ResultOf(req->commit(), req->base_commit(), req->exit_code(), "");
  if (!req->commit().empty()) {
    if (repo == nullptr) {
      r->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                             "this controller has no repository: complete without a commit"));
      return r;
    }
    if (current) {
      // A result must exist here and descend from the base this attempt was given; anything
      // else fails the attempt (the agent may try again with a good one).
      const std::string& base = lease->base.empty() ? req->base_commit() : lease->base;
      if (absl::Status v = repo->VerifyResult(req->commit(), base); !v.ok()) {
        AttemptResult failed = result;
        failed.error = absl::StrCat("result refused: ", v.message());
        Pending<bool> f = controller_->queue().BeginFail(req->item_id(), req->lease_token(),
                                                         store::OUTCOME_FAILED, failed);
        controller_->queue().WhenDurable(f.ticket, [r, v](absl::Status) {
          r->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(v.message())));
        });
        return r;
      }
      result.base = base;
    }
    result.branch = absl::StrCat("harness/", req->item_id());
  }
  if (current) controller_->RecordAttemptEnd(req->item_id(), req->lease_token(), true);
  Pending<bool> p = controller_->queue().BeginComplete(req->item_id(), req->lease_token(), result);
  if (!p.value.ok()) {
    r->Finish(ToGrpcStatus(p.value.status()));
    return r;
  }
  KeepLogTail(*controller_, req->item_id(), req->attempt(), req->log_tail());
  resp->mutable_result()->set_branch(result.branch);
  resp->mutable_result()->set_commit(req->commit());
  resp->mutable_result()->set_base(result.base);
  std::string item_id = req->item_id(), commit = req->commit();
  controller_->queue().WhenDurable(p.ticket, [r, repo, item_id, commit](absl::Status s) {
    // Recorded done (fenced, durable): now the branch. A crash in between is repaired at the
    // next start (RepoResults::LandDone); a retried Complete lands it again (idempotent).
    if (s.ok() && repo != nullptr && !commit.empty()) {
      if (absl::Status landed = repo->Land(item_id, commit); !landed.ok()) {
        LogError(absl::StrCat("item ", item_id,
                              " is done but its branch was not set: ", landed.message()));
        s = absl::InternalError(
            absl::StrCat("result recorded, branch not set: ", landed.message()));
      }
    }
    r->Finish(ToGrpcStatus(s));
  });
  return r;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Fail(grpc::CallbackServerContext* ctx,
                                                 const v1::FailRequest* req,
                                                 v1::FailResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  store::Outcome outcome;
  switch (req->outcome()) {
    case v1::ATTEMPT_OUTCOME_FAILED:
    case v1::ATTEMPT_OUTCOME_UNSPECIFIED:
      outcome = store::OUTCOME_FAILED;
      break;
    case v1::ATTEMPT_OUTCOME_TIMEOUT:
      outcome = store::OUTCOME_TIMEOUT;
      break;
    default:
      r->Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "fail: outcome must be ATTEMPT_OUTCOME_FAILED or ATTEMPT_OUTCOME_TIMEOUT"));
      return r;
  }
  controller_->RecordAttemptEnd(req->item_id(), req->lease_token(), false);
  AttemptResult res = ResultOf(req->commit(), req->base_commit(),
                               req->has_exit_code() ? req->exit_code().value() : -1, req->error());
  res.not_retryable = !req->retryable();
  Pending<bool> p =
      controller_->queue().BeginFail(req->item_id(), req->lease_token(), outcome, res);
  if (!p.value.ok()) {
    r->Finish(ToGrpcStatus(p.value.status()));
    return r;
  }
  KeepLogTail(*controller_, req->item_id(), req->attempt(), req->log_tail());
  absl::StatusOr<store::ItemRecord> item = controller_->queue().Get(req->item_id());
  if (item.ok()) resp->set_item_state(ToApi(item->state()));
  RepoResults* repo = controller_->repo();
  std::string item_id = req->item_id(), commit = req->commit();
  int attempt = req->attempt();
  if (repo != nullptr && !commit.empty() && attempt > 0) {
    resp->set_attempt_branch(absl::StrCat("harness-attempt/", item_id, "/", attempt));
  }
  controller_->queue().WhenDurable(p.ticket, [r, repo, item_id, commit, attempt](absl::Status s) {
    if (s.ok() && repo != nullptr && !commit.empty() && attempt > 0) {
      if (absl::Status kept = repo->KeepAttempt(item_id, attempt, commit); !kept.ok()) {
        LogWarning(absl::StrCat("work of failed attempt ", attempt, " of ", item_id,
                                " not kept: ", kept.message()));
      }
    }
    r->Finish(ToGrpcStatus(s));
  });
  return r;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Release(grpc::CallbackServerContext* ctx,
                                                    const v1::ReleaseRequest* req,
                                                    v1::ReleaseResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  Pending<bool> p =
      controller_->queue().BeginRelease(req->item_id(), req->lease_token(), req->reason());
  if (!p.value.ok()) {
    r->Finish(ToGrpcStatus(p.value.status()));
    return r;
  }
  absl::StatusOr<store::ItemRecord> item = controller_->queue().Get(req->item_id());
  if (item.ok()) resp->set_item_state(ToApi(item->state()));
  controller_->queue().WhenDurable(p.ticket, [r](absl::Status s) { r->Finish(ToGrpcStatus(s)); });
  return r;
}

}  // namespace harness
