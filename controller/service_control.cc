// ControlService (see service_control.h).
#include "controller/service_control.h"

#include <grpcpp/alarm.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controller/control_actions.h"
#include "controller/convert.h"
#include "controller/follow_streams.h"
#include "controller/read_api.h"
#include "controller/refused_call.h"
#include "core/ids.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness {
namespace {

// How long an agent told to stop by `harnessctl stop` (not of the pool) has to clean up.
constexpr absl::Duration kOperatorStopGrace = absl::Seconds(10);

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx, const absl::Status& s) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(ToGrpcStatus(s));
  return r;
}

// Streams a status snapshot every interval until the client goes away. Between writes a
// grpc::Alarm waits for the next tick: no thread of its own. Exactly one of {a write, the
// alarm} is outstanding until the stream finishes, and whoever completes it decides the next
// step, so nothing runs after Finish. OnCancel cancels a pending alarm (which then finishes
// the stream); a write in flight fails instead.
class WatchReactor : public grpc::ServerWriteReactor<v1::StatusSnapshot> {
 public:
  WatchReactor(Controller* c, absl::Duration interval) : controller_(c), interval_(interval) {
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (ok) {
      absl::MutexLock l(&mu_);
      if (!cancelled_) {
        alarm_pending_ = true;
        // A new alarm per tick: the previous one's callback (OnTick) may still be returning,
        // and re-setting an alarm replaces its callback. The callback runs on a gRPC executor
        // thread, never inside Set, so holding mu_ here only keeps OnCancel from missing it.
        alarm_ = std::make_unique<grpc::Alarm>();
        alarm_->Set(absl::ToChronoTime(absl::Now() + interval_),
                    [this](bool fired) { OnTick(fired); });
        return;
      }
    }
    Finish(grpc::Status::OK);
  }
  void OnCancel() override {
    grpc::Alarm* pending = nullptr;
    {
      absl::MutexLock l(&mu_);
      cancelled_ = true;
      if (alarm_pending_) pending = alarm_.get();
    }
    // Outside mu_, as OnTick(false) may run at once. `pending` stays valid: no alarm replaces
    // it once cancelled_ is set, and OnDone (which deletes it) waits for this reaction.
    if (pending != nullptr) pending->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  // Not a gRPC reaction: OnDone may run as soon as Finish is called, so nothing after it.
  void OnTick(bool fired) {
    bool go_on;
    {
      absl::MutexLock l(&mu_);
      alarm_pending_ = false;
      go_on = fired && !cancelled_;
    }
    if (go_on) {
      WriteNext();
    } else {
      Finish(grpc::Status::OK);
    }
  }
  void WriteNext() {
    snapshot_ = controller_->Status();
    StartWrite(&snapshot_);
  }
  Controller* const controller_;
  const absl::Duration interval_;
  v1::StatusSnapshot snapshot_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool alarm_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerUnaryReactor* ControlServiceImpl::Submit(grpc::CallbackServerContext* ctx,
                                                     const v1::SubmitRequest* req,
                                                     v1::SubmitResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Submit"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  std::vector<store::ItemSpec> specs;
  specs.reserve(req->items_size());
  for (const v1::ItemSpec& s : req->items()) specs.push_back(FromApi(s));
  Pending<std::vector<std::string>> p = controller_->queue().BeginSubmit(std::move(specs));
  if (!p.value.ok()) return FinishNow(ctx, p.value.status());
  for (const std::string& id : *p.value) resp->add_ids(id);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  controller_->queue().WhenDurable(p.ticket, [r](absl::Status s) { r->Finish(ToGrpcStatus(s)); });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::List(grpc::CallbackServerContext* ctx,
                                                   const v1::ListRequest* req,
                                                   v1::ListResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/List"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  absl::StatusOr<v1::ListResponse> list = ListItems(*controller_, *req);
  if (!list.ok()) return FinishNow(ctx, list.status());
  *resp = *std::move(list);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlServiceImpl::Get(grpc::CallbackServerContext* ctx,
                                                  const v1::GetRequest* req,
                                                  v1::GetResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Get"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  absl::StatusOr<v1::Item> item = GetItem(*controller_, req->id());
  if (!item.ok()) return FinishNow(ctx, item.status());
  *resp->mutable_item() = *std::move(item);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* ControlServiceImpl::Cancel(grpc::CallbackServerContext* ctx,
                                                     const v1::CancelRequest* req,
                                                     v1::CancelResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Cancel"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  CancelItem(*controller_, req->id(), req->reason(),
             [r, resp](absl::StatusOr<CancelResult> done) {
               if (done.ok()) {
                 resp->set_previous_state(done->previous_state);
                 if (!done->agent.empty()) resp->set_agent(done->agent);
               }
               r->Finish(ToGrpcStatus(done.status()));
             });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::Retry(grpc::CallbackServerContext* ctx,
                                                    const v1::RetryRequest* req,
                                                    v1::RetryResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Retry"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  RetryItem(*controller_, req->id(), [r, resp](absl::StatusOr<v1::ItemState> previous) {
    if (previous.ok()) resp->set_previous_state(*previous);
    r->Finish(ToGrpcStatus(previous.status()));
  });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::Status(grpc::CallbackServerContext* ctx,
                                                     const v1::StatusRequest*,
                                                     v1::StatusSnapshot* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Status"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  *resp = controller_->Status();
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::StatusSnapshot>* ControlServiceImpl::WatchStatus(
    grpc::CallbackServerContext* ctx, const v1::WatchStatusRequest* req) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/WatchStatus"); !a.ok()) {
    return new RefusedWriter<v1::StatusSnapshot>(a);
  }
  int ms = req->interval_ms() <= 0 ? 1000 : std::max(req->interval_ms(), 100);
  return new WatchReactor(controller_, absl::Milliseconds(ms));
}

grpc::ServerUnaryReactor* ControlServiceImpl::Scale(grpc::CallbackServerContext* ctx,
                                                    const v1::ScaleRequest* req,
                                                    v1::ScaleResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Scale"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  // Answered from the pool manager's thread once the target is on disk.
  ScalePool(*controller_, req->target(), req->force(),
            [r, resp](absl::StatusOr<ScaleResult> done) {
              if (done.ok()) {
                resp->set_old_target(done->old_target);
                resp->set_new_target(done->new_target);
              }
              r->Finish(ToGrpcStatus(done.status()));
            });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::Drain(grpc::CallbackServerContext* ctx,
                                                    const v1::DrainRequest* req,
                                                    v1::DrainResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/Drain"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  DrainAgent(*controller_, req->agent_id(), [r, resp](absl::StatusOr<v1::AgentInfo> agent) {
    if (agent.ok()) *resp->mutable_agent() = *std::move(agent);
    r->Finish(ToGrpcStatus(agent.status()));
  });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::StopAgent(grpc::CallbackServerContext* ctx,
                                                        const v1::StopAgentRequest* req,
                                                        v1::StopAgentResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/StopAgent"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  if (absl::Status s = ValidateAgentId(req->agent_id()); !s.ok()) return FinishNow(ctx, s);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  const std::string agent = req->agent_id();
  *resp->mutable_agent() = DescribeAgent(*controller_, agent, AgentState::kStarting);
  controller_->pool().Replace(agent, true, [this, r, agent](absl::Status s) {
    if (s.ok() || !absl::IsNotFound(s)) {
      r->Finish(ToGrpcStatus(s));
      return;
    }
    // Not of the pool: its item goes back to the queue, and the agent is told to stop.
    if (!controller_->agents().Get(agent)) {
      r->Finish(ToGrpcStatus(
          absl::NotFoundError(absl::StrCat("agent ", QuoteForMessage(agent), " is not known"))));
      return;
    }
    Pending<Reconciled> released = controller_->queue().BeginReconcile(
        agent, {}, Unlisted::kRelease, "its agent was stopped by the operator");
    if (!released.value.ok()) {
      r->Finish(ToGrpcStatus(released.value.status()));
      return;
    }
    controller_->agents().Send(agent, AgentCommand{AgentCommand::kStop, "", 0,
                                                   "stopped by the operator", kOperatorStopGrace});
    LogInfo(absl::StrCat("agent ", agent, " told to stop by the operator"));
    controller_->queue().WhenDurable(released.ticket, [r](absl::Status durable) {
      r->Finish(ToGrpcStatus(durable));
    });
  });
  return r;
}

grpc::ServerUnaryReactor* ControlServiceImpl::ListAgents(grpc::CallbackServerContext* ctx,
                                                         const v1::ListAgentsRequest*,
                                                         v1::ListAgentsResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/ListAgents"); !a.ok()) {
    return FinishNow(ctx, a);
  }
  for (v1::AgentInfo& a : controller_->AgentInfos()) *resp->add_agents() = std::move(a);
  return FinishNow(ctx, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::LogChunk>* ControlServiceImpl::FollowLog(
    grpc::CallbackServerContext* ctx, const v1::FollowLogRequest* req) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/FollowLog"); !a.ok()) {
    return new RefusedWriter<v1::LogChunk>(a);
  }
  return StartFollowLog(controller_, *req);
}

grpc::ServerWriteReactor<v1::Event>* ControlServiceImpl::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.ControlService/WatchEvents");
      !a.ok()) {
    return new RefusedWriter<v1::Event>(a);
  }
  return StartWatchEvents(controller_, *req);
}

}  // namespace harness
