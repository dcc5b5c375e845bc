// AgentService (see service_agent.h).
#include "controller/service_agent.h"

#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "config/flags.h"
#include "controller/agent_work.h"
#include "controller/convert.h"
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

// A report answered once durable; with acquire_next, also a lease if an item is pending then.
template <typename Request, typename Response, typename Run>
grpc::ServerUnaryReactor* Report(Controller* controller, grpc::CallbackServerContext* ctx,
                                 const Request* req, Response* resp, Run run) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  // Only the lease's own agent may have the next lease ride on its report.
  std::optional<Lease> held = controller->queue().LeaseOf(req->item_id());
  const bool next = req->acquire_next() && held && held->token == req->lease_token() &&
                    held->agent == req->agent_id();
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
  return Report(controller_, ctx, req, resp, RunComplete);
}

grpc::ServerUnaryReactor* AgentServiceImpl::Fail(grpc::CallbackServerContext* ctx,
                                                 const v1::FailRequest* req,
                                                 v1::FailResponse* resp) {
  return Report(controller_, ctx, req, resp, RunFail);
}

grpc::ServerUnaryReactor* AgentServiceImpl::Release(grpc::CallbackServerContext* ctx,
                                                    const v1::ReleaseRequest* req,
                                                    v1::ReleaseResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  RunRelease(controller_, *req, [r, resp](absl::Status s, v1::ReleaseResponse out) {
    *resp = std::move(out);
    r->Finish(ToGrpcStatus(s));
  });
  return r;
}

}  // namespace harness
