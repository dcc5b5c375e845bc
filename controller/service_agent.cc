// AgentService (see service_agent.h).
#include "controller/service_agent.h"

#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "config/flags.h"
#include "controller/agent_work.h"
#include "controller/convert.h"
#include "controller/refused_call.h"
#include "controller/session_reactor.h"
#include "core/ids.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness {
namespace {

constexpr int64_t kMaxWaitMs = 5 * 60 * 1000;
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

}  // namespace

grpc::ServerUnaryReactor* AgentServiceImpl::Register(grpc::CallbackServerContext* ctx,
                                                     const v1::RegisterRequest* req,
                                                     v1::RegisterResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/Register"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  if (absl::Status s = ValidateAgentId(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  const std::string& agent = req->agent_id();
  std::string session =
      controller_->agents().Register(agent, req->pid(), req->host(), req->version());
  resp->set_session_id(session);
  resp->set_heartbeat_interval_ms(
      absl::ToInt64Milliseconds(controller_->options().heartbeat_interval));
  resp->set_lease_ttl_ms(absl::ToInt64Milliseconds(controller_->options().queue.lease_ttl));
  resp->set_controller_version(HarnessVersion());
  // The leases it still runs and we still hold for it are renewed and confirmed; the ones we
  // hold for it that it does not run any more (it restarted) end now (the queue's rule).
  std::vector<HeldLease> held;
  for (const v1::LeaseRef& ref : req->held_leases()) {
    held.push_back(HeldLease{ref.item_id(), ref.lease_token()});
  }
  Pending<Reconciled> p = controller_->queue().BeginReconcile(agent, held, Unlisted::kExpire);
  if (!p.value.ok()) return FinishNow(ctx, p.value.status());
  for (const Lease& l : p.value->renewed) {
    absl::StatusOr<store::ItemRecord> item = controller_->queue().Get(l.item_id);
    if (!item.ok()) continue;
    Grant g;
    g.spec = item->spec();
    g.token = l.token;
    g.attempt = l.attempt;
    g.expires = l.expires;
    g.base = l.base;
    FillLease(*controller_, g, resp->add_leases());
  }
  // The leases it no longer lists are logged by the queue ("item expired", with the reason).
  LogInfo("agent registered", {{"agent", agent},
                               {"pid", req->pid()},
                               {"host", req->host()},
                               {"version", req->version()},
                               {"leases_kept", p.value->renewed.size()}});
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  controller_->queue().WhenDurable(p.ticket, [r](absl::Status s) { r->Finish(ToGrpcStatus(s)); });
  return r;
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* AgentServiceImpl::Session(
    grpc::CallbackServerContext* ctx) {
  // No interceptor counts this method's calls (rpc_metrics_interceptor.h): a refused one is
  // counted here, an accepted one by its reactor.
  auto refuse = [&](const absl::Status& s) {
    controller_->rpc_metrics().Record(kSessionMethod, ToGrpcStatus(s).error_code(),
                                      absl::ZeroDuration());
    return new RefusedBidi<v1::AgentMessage, v1::ControllerMessage>(s);
  };
  if (absl::Status a = Authorize(*access_, *ctx, kSessionMethod); !a.ok()) {
    return refuse(a);
  }
  // Counted per peer host until the reactor is done (limits.max_sessions_per_peer).
  bool first_refusal = false;
  if (absl::Status s = controller_->sessions().Open(ctx->peer(), &first_refusal); !s.ok()) {
    if (first_refusal) {
      LogWarning(absl::StrCat("agent session refused: ", s.message(),
                              " (its further refusals are not logged until one is accepted)"));
    }
    return refuse(s);
  }
  return new SessionReactor(controller_, ctx->peer());
}

grpc::ServerUnaryReactor* AgentServiceImpl::Acquire(grpc::CallbackServerContext* ctx,
                                                    const v1::AcquireRequest* req,
                                                    v1::AcquireResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/Acquire"); !a.ok()) {
    return FinishNow(ctx, a);
  }
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

// A report must name its agent: the queue takes an empty agent as "any agent" (for in-process
// callers), which over the wire would let anyone end any lease.
static absl::Status NamesAnAgent(const std::string& agent_id) {
  if (agent_id.empty()) {
    return absl::InvalidArgumentError("agent_id is required: a report names the lease's agent");
  }
  return ValidateAgentId(agent_id);
}

// A report answered once durable; with acquire_next, also a lease if an item is pending then.
template <typename Request, typename Response, typename Run>
grpc::ServerUnaryReactor* Report(Controller* controller, grpc::CallbackServerContext* ctx,
                                 const Request* req, Response* resp, Run run) {
  if (absl::Status s = NamesAnAgent(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  // The queue accepts a report only from the lease's own agent, so a next lease riding on a
  // successful report goes to that agent.
  const bool next = req->acquire_next() && !req->agent_id().empty();
  std::string agent = req->agent_id();
  run(controller, *req, [r, resp, next, agent, controller](absl::Status s, Response out) {
    *resp = std::move(out);
    if (!s.ok() || !next) {
      r->Finish(ToGrpcStatus(s));
      return;
    }
    GrantIfPending(controller, agent, [r, resp](std::optional<v1::Lease> lease) {
      if (lease.has_value()) *resp->mutable_next_lease() = std::move(*lease);
      r->Finish(grpc::Status::OK);
    });
  });
  return r;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Complete(grpc::CallbackServerContext* ctx,
                                                     const v1::CompleteRequest* req,
                                                     v1::CompleteResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/Complete"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  return Report(controller_, ctx, req, resp, RunComplete);
}

grpc::ServerUnaryReactor* AgentServiceImpl::Fail(grpc::CallbackServerContext* ctx,
                                                 const v1::FailRequest* req,
                                                 v1::FailResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/Fail"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  return Report(controller_, ctx, req, resp, RunFail);
}

grpc::ServerUnaryReactor* AgentServiceImpl::Release(grpc::CallbackServerContext* ctx,
                                                    const v1::ReleaseRequest* req,
                                                    v1::ReleaseResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/Release"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  if (absl::Status s = NamesAnAgent(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  RunRelease(controller_, *req, [r, resp](absl::Status s, v1::ReleaseResponse out) {
    *resp = std::move(out);
    r->Finish(ToGrpcStatus(s));
  });
  return r;
}

}  // namespace harness
