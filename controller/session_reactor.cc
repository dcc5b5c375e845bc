// Agent session streams (see session_reactor.h).
#include "controller/session_reactor.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "controller/convert.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness {

// The registry's handle on this stream. It outlives the reactor (the registry may hold it a
// moment longer), so it forwards only while the reactor is alive.
class SessionReactor::Sink : public AgentSink {
 public:
  explicit Sink(SessionReactor* r) : reactor_(r) {}
  void Deliver(const AgentCommand& c) override {
    v1::ControllerMessage m;
    switch (c.kind) {
      case AgentCommand::kDrain:
        m.mutable_drain();
        break;
      case AgentCommand::kCancel:
        m.mutable_cancel()->set_item_id(c.item_id);
        m.mutable_cancel()->set_lease_token(c.token);
        m.mutable_cancel()->set_reason(c.reason);
        break;
      case AgentCommand::kStop:
        m.mutable_stop()->set_grace_ms(absl::ToInt64Milliseconds(c.grace));
        m.mutable_stop()->set_reason(c.reason);
        break;
      case AgentCommand::kLeaseLost:
        m.mutable_lease_lost()->set_item_id(c.item_id);
        m.mutable_lease_lost()->set_lease_token(c.token);
        m.mutable_lease_lost()->set_reason(c.reason);
        break;
    }
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) reactor_->Send(std::move(m));
  }
  void Detach() {
    absl::MutexLock l(&mu_);
    reactor_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  SessionReactor* reactor_ ABSL_GUARDED_BY(mu_);
};

SessionReactor::SessionReactor(Controller* controller) : controller_(controller) {
  sink_ = std::make_shared<Sink>(this);
  StartRead(&in_);
}

void SessionReactor::OnReadDone(bool ok) {
  if (!ok) {
    absl::MutexLock l(&mu_);
    Close(grpc::Status::OK);
    return;
  }
  Handle(in_);
  StartRead(&in_);
}

void SessionReactor::Handle(const v1::AgentMessage& message) {
  switch (message.kind_case()) {
    case v1::AgentMessage::kHello: {
      const v1::Hello& h = message.hello();
      absl::Status s = controller_->agents().Attach(h.agent_id(), h.session_id(), sink_);
      if (!s.ok()) {
        absl::MutexLock l(&mu_);
        Close(ToGrpcStatus(s));
        return;
      }
      agent_id_ = h.agent_id();
      session_id_ = h.session_id();
      return;
    }
    case v1::AgentMessage::kHeartbeat:
      OnHeartbeat(message.heartbeat());
      return;
    case v1::AgentMessage::kProgress:
      return;  // live log streaming is not kept yet; the tail comes with Complete/Fail
    default: {
      // Work messages over the stream are an optional fast path agentd does not use yet.
      v1::ControllerMessage m;
      m.mutable_reply()->set_code(static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
      m.mutable_reply()->set_message("this controller takes work messages as unary calls only");
      Send(std::move(m));
      return;
    }
  }
}

void SessionReactor::OnHeartbeat(const v1::Heartbeat& hb) {
  if (agent_id_.empty()) {
    absl::MutexLock l(&mu_);
    Close(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "send hello before heartbeats"));
    return;
  }
  absl::Status s = controller_->agents().Heartbeat(agent_id_, session_id_, FromApi(hb.state()));
  if (!s.ok()) {
    absl::MutexLock l(&mu_);
    Close(ToGrpcStatus(s));
    return;
  }
  for (const v1::LeaseRef& ref : hb.leases()) {
    absl::StatusOr<absl::Time> renewed =
        controller_->queue().Renew(ref.item_id(), ref.lease_token());
    v1::ControllerMessage m;
    if (renewed.ok()) {
      v1::LeaseRenewed* r = m.mutable_lease_renewed();
      r->set_item_id(ref.item_id());
      r->set_lease_token(ref.lease_token());
      r->set_ttl_ms(absl::ToInt64Milliseconds(*renewed - controller_->clock()->Now()));
    } else {
      v1::LeaseLost* lost = m.mutable_lease_lost();
      lost->set_item_id(ref.item_id());
      lost->set_lease_token(ref.lease_token());
      lost->set_reason(std::string(renewed.status().message()));
    }
    Send(std::move(m));
  }
  if (hb.state() == v1::AGENT_STATE_STOPPED) ReleaseUnlisted(hb);
  v1::ControllerMessage ack;
  ack.mutable_heartbeat_ack()->set_seq(hb.seq());
  Send(std::move(ack));
}

void SessionReactor::ReleaseUnlisted(const v1::Heartbeat& hb) {
  // An agent that stops lists every lease it still runs. Any other lease we hold for it is one
  // whose grant it never saw (its Acquire was cancelled by the stop): hand the item back now
  // rather than after the TTL.
  std::set<std::pair<std::string, uint64_t>> listed;
  for (const v1::LeaseRef& ref : hb.leases()) listed.emplace(ref.item_id(), ref.lease_token());
  for (const Lease& l : controller_->queue().Leases()) {
    if (l.agent != agent_id_ || listed.count({l.item_id, l.token})) continue;
    if (controller_->queue().Release(l.item_id, l.token, "its agent stopped without it").ok()) {
      LogInfo(absl::StrCat("agent ", agent_id_, " stopped without item ", l.item_id,
                           "; the item is requeued"));
    }
  }
}

void SessionReactor::Send(v1::ControllerMessage message) {
  absl::MutexLock l(&mu_);
  if (closing_ || finished_) return;
  if (writing_) {
    out_queue_.push_back(std::move(message));
    return;
  }
  writing_ = true;
  out_ = std::move(message);
  StartWrite(&out_);
}

void SessionReactor::OnWriteDone(bool ok) {
  absl::MutexLock l(&mu_);
  writing_ = false;
  if (!ok) {
    out_queue_.clear();
    Close(grpc::Status::OK);
    return;
  }
  if (!out_queue_.empty() && !closing_) {
    writing_ = true;
    out_ = std::move(out_queue_.front());
    out_queue_.pop_front();
    StartWrite(&out_);
    return;
  }
  if (closing_ && !finished_) {
    finished_ = true;
    Finish(final_status_);
  }
}

void SessionReactor::Close(grpc::Status status) {
  if (closing_) return;
  closing_ = true;
  final_status_ = std::move(status);
  out_queue_.clear();
  if (!writing_ && !finished_) {
    finished_ = true;
    Finish(final_status_);
  }
}

void SessionReactor::OnDone() {
  sink_->Detach();
  if (!agent_id_.empty()) controller_->agents().Detach(agent_id_, sink_.get());
  delete this;
}

}  // namespace harness
