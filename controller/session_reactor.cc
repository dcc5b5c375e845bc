// Agent session streams (see session_reactor.h).
#include "controller/session_reactor.h"

#include <functional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "controller/agent_work.h"
#include "controller/convert.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness {

// The registry's handle on this stream. It outlives the reactor (the registry may hold it a
// moment longer), so it forwards only while the reactor is alive.
class SessionReactor::Sink : public AgentSink {
 public:
  Sink(SessionReactor* r, AcquireDispatcher* dispatcher) : reactor_(r), dispatcher_(dispatcher) {}
  void Deliver(const AgentCommand& c) override {
    v1::ControllerMessage m;
    switch (c.kind) {
      case AgentCommand::kDrain:
        m.mutable_drain();
        return Drain(std::move(m));
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
    Send(std::move(m));
  }
  void Send(v1::ControllerMessage m) {
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) reactor_->Send(std::move(m));
  }
  // After every lease granted before it, so that the agent runs those rather than hands them
  // back; a want still parked is taken back (no grant follows a drain).
  void Drain(v1::ControllerMessage m);
  // A message that carries a lease granted for a want that ended with `lease_follows`.
  void SendLease(v1::ControllerMessage m) {
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) reactor_->SendLease(std::move(m));
  }
  void WantDone(const WantWaiter* w, std::optional<v1::ControllerMessage> m, bool lease_follows) {
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) reactor_->WantDone(w, std::move(m), lease_follows);
  }
  void Detach() {
    absl::MutexLock l(&mu_);
    reactor_ = nullptr;
  }
  void OnTick(absl::Time now) override {
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) reactor_->ResumeOverdueRead(now);
  }

 private:
  absl::Mutex mu_;
  SessionReactor* reactor_ ABSL_GUARDED_BY(mu_);
  AcquireDispatcher* const dispatcher_;
};

// A report's reply and the lease granted for its `acquire_next`, for an agent that reads
// Reply.next_lease: while a grant made with the report is on its way to the disk, the reply
// waits for it, and whichever comes second sends both in one message. A want that parked (no
// work pending) sends the reply at once; its lease, later, comes as its own message.
class SessionReactor::ReplyJoin {
 public:
  explicit ReplyJoin(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {}

  void Reply(v1::ControllerMessage m) {
    {
      absl::MutexLock l(&mu_);
      if (lease_.has_value()) {
        *m.mutable_reply()->mutable_next_lease() = std::move(*lease_);
        lease_.reset();
      } else if (waiting_) {
        reply_ = std::move(m);
        return;
      }
      replied_ = true;
    }
    Out(std::move(m));
  }

  // The grant for the report is durable.
  void Lease(v1::Lease lease) {
    v1::ControllerMessage m;
    {
      absl::MutexLock l(&mu_);
      if (reply_.has_value()) {
        m = *std::move(reply_);
        reply_.reset();
        *m.mutable_reply()->mutable_next_lease() = std::move(lease);
        replied_ = true;
      } else if (!replied_) {
        lease_ = std::move(lease);  // the reply is still on its way
        return;
      } else {
        *m.mutable_lease() = std::move(lease);
      }
    }
    Out(std::move(m));
  }

  // No grant rides on the reply (the want parked, was refused, or another was outstanding).
  void NoLease() {
    std::optional<v1::ControllerMessage> m;
    {
      absl::MutexLock l(&mu_);
      waiting_ = false;
      if (reply_.has_value()) {
        m = std::move(reply_);
        reply_.reset();
        if (lease_.has_value()) {
          *m->mutable_reply()->mutable_next_lease() = std::move(*lease_);
          lease_.reset();
        }
        replied_ = true;
      } else if (lease_.has_value() && !replied_) {
        // A parked want granted before this was called, the reply still on its way: the lease
        // need not wait for it.
        m.emplace();
        *m->mutable_lease() = std::move(*lease_);
        lease_.reset();
      }
    }
    if (m.has_value()) Out(*std::move(m));
  }

 private:
  void Out(v1::ControllerMessage m) {
    if (m.has_lease() || (m.has_reply() && m.reply().has_next_lease())) {
      sink_->SendLease(std::move(m));
    } else {
      sink_->Send(std::move(m));
    }
  }

  const std::shared_ptr<Sink> sink_;
  absl::Mutex mu_;
  bool waiting_ ABSL_GUARDED_BY(mu_) = true;   // a grant may ride on the reply
  bool replied_ ABSL_GUARDED_BY(mu_) = false;  // the reply went out
  std::optional<v1::ControllerMessage> reply_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::Lease> lease_ ABSL_GUARDED_BY(mu_);
};

// A want_work parked in the dispatcher. A grant becomes a `lease` message, an error a `reply`
// with no item; nothing is sent when there is no work for the agent (drain, shutdown), which
// the agent hears about through its own command.
class SessionReactor::WantWaiter : public AcquireDispatcher::Waiter {
 public:
  WantWaiter(Controller* c, std::shared_ptr<Sink> sink, std::shared_ptr<ReplyJoin> join)
      : controller_(c), sink_(std::move(sink)), join_(std::move(join)) {}
  void Finish(absl::StatusOr<std::optional<Grant>> result) override {
    std::optional<v1::ControllerMessage> m;
    if (!result.ok()) {
      m.emplace();
      m->mutable_reply()->set_code(static_cast<int>(ToGrpcStatus(result.status()).error_code()));
      m->mutable_reply()->set_message(std::string(result.status().message()));
    } else if (result->has_value()) {
      m.emplace();
      FillLease(*controller_, **result, m->mutable_lease());
    }
    if (join_ == nullptr) {
      sink_->WantDone(this, std::move(m), /*lease_follows=*/false);
      return;
    }
    // The want is over before the lease goes out: a report the agent sends as soon as it has
    // the lease may ask for the next one.
    if (m.has_value() && m->has_lease()) {
      sink_->WantDone(this, std::nullopt, /*lease_follows=*/true);
      join_->Lease(std::move(*m->mutable_lease()));
    } else {
      sink_->WantDone(this, std::move(m), /*lease_follows=*/false);
      join_->NoLease();
    }
  }

 private:
  Controller* const controller_;
  const std::shared_ptr<Sink> sink_;
  const std::shared_ptr<ReplyJoin> join_;  // set for a report's acquire_next
};

void SessionReactor::Sink::Drain(v1::ControllerMessage m) {
  std::shared_ptr<WantWaiter> want;
  {
    absl::MutexLock l(&mu_);
    if (reactor_ != nullptr) want = reactor_->SendAfterGrants(std::move(m));
  }
  if (want != nullptr) dispatcher_->Withdraw(want.get());
}

namespace {

template <typename Response>
v1::ControllerMessage ReplyOf(const std::string& item_id, uint64_t token, const absl::Status& s,
                              Response response, Response* (v1::Reply::*field)()) {
  v1::ControllerMessage m;
  v1::Reply* r = m.mutable_reply();
  r->set_item_id(item_id);
  r->set_lease_token(token);
  r->set_code(static_cast<int>(ToGrpcStatus(s).error_code()));
  if (s.ok()) {
    *(r->*field)() = std::move(response);
  } else {
    r->set_message(std::string(s.message()));
  }
  return m;
}

// The lease a complete, fail or release names.
v1::LeaseRef ReportedLease(const v1::AgentMessage& m) {
  v1::LeaseRef ref;
  switch (m.kind_case()) {
    case v1::AgentMessage::kComplete:
      ref.set_item_id(m.complete().item_id());
      ref.set_lease_token(m.complete().lease_token());
      break;
    case v1::AgentMessage::kFail:
      ref.set_item_id(m.fail().item_id());
      ref.set_lease_token(m.fail().lease_token());
      break;
    case v1::AgentMessage::kRelease:
      ref.set_item_id(m.release().item_id());
      ref.set_lease_token(m.release().lease_token());
      break;
    default:
      break;
  }
  return ref;
}

}  // namespace

SessionReactor::SessionReactor(Controller* controller, std::string peer)
    : controller_(controller), peer_(std::move(peer)) {
  sink_ = std::make_shared<Sink>(this, &controller_->dispatcher());
  StartRead(&in_);
}

void SessionReactor::OnReadDone(bool ok) {
  if (!ok) {
    DropWant();  // before the stream's end is answered: no grant goes to a closed stream
    absl::MutexLock l(&mu_);
    Close(grpc::Status::OK);
    return;
  }
  // A report's next read waits for its reply (read_hold.h), so that the stream's flow-control
  // update rides on the reply's write.
  const bool awaits_reply = in_.kind_case() == v1::AgentMessage::kComplete ||
                            in_.kind_case() == v1::AgentMessage::kFail ||
                            in_.kind_case() == v1::AgentMessage::kRelease;
  {
    absl::MutexLock l(&mu_);
    hold_.BeginHandling(awaits_reply, controller_->clock()->Now());
  }
  Handle(in_);
  {
    absl::MutexLock l(&mu_);
    if (!hold_.EndHandling()) return;
  }
  StartRead(&in_);
}

void SessionReactor::ResumeOverdueRead(absl::Time now) {
  absl::MutexLock l(&mu_);
  if (closing_ || finished_) return;  // the stream is ending: no read follows
  if (hold_.ReleaseIfOverdue(now)) StartRead(&in_);
}

void SessionReactor::Handle(v1::AgentMessage& message) {
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
      lease_in_reply_ = h.lease_in_reply();
      return;
    }
    case v1::AgentMessage::kHeartbeat:
      OnHeartbeat(message.heartbeat());
      return;
    case v1::AgentMessage::kProgress: {
      // Kept for `harnessctl logs`, and its last line shown by status, when it is this agent's
      // live lease; dropped otherwise.
      const v1::Progress& p = message.progress();
      if (agent_id_.empty()) return;
      (void)controller_->live_logs().Append(p.item_id(), p.lease_token(), agent_id_, p.offset(),
                                            p.data());
      std::optional<Lease> live = controller_->queue().LeaseOf(p.item_id());
      if (live && live->token == p.lease_token() && live->agent == agent_id_) {
        controller_->agents().NoteOutput(agent_id_, p.lease_token(), p.data());
      }
      return;
    }
    default:
      HandleWork(message);
      return;
  }
}

void SessionReactor::HandleWork(v1::AgentMessage& message) {
  if (agent_id_.empty()) {
    absl::MutexLock l(&mu_);
    Close(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "send hello before work messages"));
    return;
  }
  std::shared_ptr<Sink> sink = sink_;
  std::string* named = nullptr;  // the agent a report acts for
  switch (message.kind_case()) {
    case v1::AgentMessage::kComplete:
      named = message.mutable_complete()->mutable_agent_id();
      break;
    case v1::AgentMessage::kFail:
      named = message.mutable_fail()->mutable_agent_id();
      break;
    case v1::AgentMessage::kRelease:
      named = message.mutable_release()->mutable_agent_id();
      break;
    default:
      break;
  }
  if (named != nullptr) {
    if (named->empty()) *named = agent_id_;
    if (*named != agent_id_) {
      v1::ControllerMessage m;
      v1::Reply* r = m.mutable_reply();
      const v1::LeaseRef ref = ReportedLease(message);
      r->set_item_id(ref.item_id());
      r->set_lease_token(ref.lease_token());
      r->set_code(static_cast<int>(grpc::StatusCode::PERMISSION_DENIED));
      r->set_message(absl::StrCat("this session is agent ", agent_id_,
                                  "; it cannot report for agent ", *named));
      sink->Send(std::move(m));
      return;
    }
  }
  // The report and the next grant share one commit round; but not while a result is checked in
  // the repository (git I/O would hold every other caller's commit back meanwhile).
  std::optional<WorkQueue::CommitGroup> group;
  if (message.kind_case() != v1::AgentMessage::kComplete || message.complete().commit().empty()) {
    group.emplace(&controller_->queue());
  }
  // Where a report's reply goes: straight to the agent, or through a join with the grant for its
  // acquire_next.
  auto reply_path = [&](bool acquire_next) {
    std::shared_ptr<ReplyJoin> join =
        acquire_next && lease_in_reply_ ? std::make_shared<ReplyJoin>(sink) : nullptr;
    std::function<void(v1::ControllerMessage)> send =
        join != nullptr ? std::function<void(v1::ControllerMessage)>(
                              [join](v1::ControllerMessage m) { join->Reply(std::move(m)); })
                        : [sink](v1::ControllerMessage m) { sink->Send(std::move(m)); };
    return std::make_pair(join, send);
  };
  switch (message.kind_case()) {
    case v1::AgentMessage::kWantWork:
      StartWant(nullptr);
      return;
    case v1::AgentMessage::kComplete: {
      const v1::CompleteRequest& req = message.complete();
      auto [join, send] = reply_path(req.acquire_next());
      RunComplete(controller_, req,
                  [send = std::move(send), id = req.item_id(), token = req.lease_token()](
                      absl::Status s, v1::CompleteResponse r) {
                    send(ReplyOf(id, token, s, std::move(r), &v1::Reply::mutable_complete));
                  });
      if (req.acquire_next()) StartWant(std::move(join));
      return;
    }
    case v1::AgentMessage::kFail: {
      const v1::FailRequest& req = message.fail();
      auto [join, send] = reply_path(req.acquire_next());
      RunFail(controller_, req,
              [send = std::move(send), id = req.item_id(), token = req.lease_token()](
                  absl::Status s, v1::FailResponse r) {
                send(ReplyOf(id, token, s, std::move(r), &v1::Reply::mutable_fail));
              });
      if (req.acquire_next()) StartWant(std::move(join));
      return;
    }
    case v1::AgentMessage::kRelease: {
      const v1::ReleaseRequest& req = message.release();
      RunRelease(controller_, req,
                 [sink, id = req.item_id(), token = req.lease_token()](absl::Status s,
                                                                       v1::ReleaseResponse r) {
                   sink->Send(ReplyOf(id, token, s, std::move(r), &v1::Reply::mutable_release));
                 });
      return;
    }
    default: {
      absl::MutexLock l(&mu_);
      Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "unknown or empty message on the session stream"));
      return;
    }
  }
}

void SessionReactor::StartWant(std::shared_ptr<ReplyJoin> join) {
  auto w = std::make_shared<WantWaiter>(controller_, sink_, join);
  w->agent = agent_id_;
  w->deadline = absl::InfiniteFuture();  // until granted, cancelled by the stream's end
  bool started = false;
  {
    absl::MutexLock l(&mu_);
    if (want_ == nullptr && !closing_) {  // one outstanding at a time; more are ignored
      want_ = w;
      started = true;
    }
  }
  if (!started) {
    if (join != nullptr) join->NoLease();
    return;
  }
  const bool parked = controller_->dispatcher().Acquire(std::move(w));
  if (parked && join != nullptr) join->NoLease();
}

void SessionReactor::WantDone(const WantWaiter* waiter,
                              std::optional<v1::ControllerMessage> message, bool lease_follows) {
  absl::MutexLock l(&mu_);
  if (want_.get() == waiter) want_.reset();
  if (lease_follows) ++leases_on_the_way_;
  if (message.has_value()) SendLocked(*std::move(message));
  FlushAfterGrantsLocked();
}

void SessionReactor::SendLease(v1::ControllerMessage message) {
  absl::MutexLock l(&mu_);
  SendLocked(std::move(message));
  if (leases_on_the_way_ > 0) --leases_on_the_way_;
  FlushAfterGrantsLocked();
}

std::shared_ptr<SessionReactor::WantWaiter> SessionReactor::SendAfterGrants(
    v1::ControllerMessage message) {
  absl::MutexLock l(&mu_);
  if (want_ == nullptr && leases_on_the_way_ == 0) {
    SendLocked(std::move(message));
    return nullptr;
  }
  after_grants_.push_back(std::move(message));
  return want_;
}

void SessionReactor::FlushAfterGrantsLocked() {
  if (want_ != nullptr || leases_on_the_way_ > 0) return;
  for (v1::ControllerMessage& m : after_grants_) SendLocked(std::move(m));
  after_grants_.clear();
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
  // The listed leases are renewed or reported lost. An agent that stops lists every lease it
  // still runs: any other we hold for it is one whose grant it never saw (its request was
  // cancelled by the stop), which ends now rather than after the TTL (the queue's rule).
  std::vector<HeldLease> held;
  for (const v1::LeaseRef& ref : hb.leases()) {
    held.push_back(HeldLease{ref.item_id(), ref.lease_token()});
  }
  const Unlisted unlisted =
      hb.state() == v1::AGENT_STATE_STOPPED ? Unlisted::kRelease : Unlisted::kKeep;
  Pending<Reconciled> p = controller_->queue().BeginReconcile(agent_id_, held, unlisted);
  if (p.value.ok()) {
    const absl::Time now = controller_->clock()->Now();
    for (const Lease& l : p.value->renewed) {
      v1::ControllerMessage m;
      v1::LeaseRenewed* r = m.mutable_lease_renewed();
      r->set_item_id(l.item_id);
      r->set_lease_token(l.token);
      r->set_ttl_ms(absl::ToInt64Milliseconds(l.expires - now));
      Send(std::move(m));
    }
    for (const auto& [ref, why] : p.value->lost) {
      v1::ControllerMessage m;
      v1::LeaseLost* lost = m.mutable_lease_lost();
      lost->set_item_id(ref.item_id);
      lost->set_lease_token(ref.token);
      lost->set_reason(why);
      Send(std::move(m));
    }
  }
  v1::ControllerMessage ack;
  ack.mutable_heartbeat_ack()->set_seq(hb.seq());
  Send(std::move(ack));
}

void SessionReactor::Send(v1::ControllerMessage message) {
  absl::MutexLock l(&mu_);
  SendLocked(std::move(message));
}

void SessionReactor::SendLocked(v1::ControllerMessage message) {
  if (closing_ || finished_) return;
  if (writing_) {
    out_queue_.push_back(std::move(message));
    return;
  }
  writing_ = true;
  out_ = std::move(message);
  StartWrite(&out_);
  if (hold_.Release()) StartRead(&in_);  // after the write: its update rides on the reply
}

void SessionReactor::OnWriteDone(bool ok) {
  absl::MutexLock l(&mu_);
  writing_ = false;
  if (!ok) {
    // The stream is broken. Close() alone would not finish it if it was already closing (the
    // read failed while this write was in flight): finish here, whatever came first.
    out_queue_.clear();
    Close(grpc::Status::OK);
    if (!finished_) {
      FinishLocked();
    }
    return;
  }
  if (!out_queue_.empty() && !closing_) {
    writing_ = true;
    out_ = std::move(out_queue_.front());
    out_queue_.pop_front();
    StartWrite(&out_);
    if (hold_.Release()) StartRead(&in_);
    return;
  }
  if (closing_ && !finished_) {
    FinishLocked();
  }
}

void SessionReactor::Close(grpc::Status status) {
  if (closing_) return;
  closing_ = true;
  final_status_ = std::move(status);
  out_queue_.clear();
  if (!writing_ && !finished_) {
    FinishLocked();
  }
}

void SessionReactor::FinishLocked() {
  finished_ = true;
  controller_->rpc_metrics().Record(kSessionMethod, final_status_.error_code(),
                                    absl::Now() - started_);
  Finish(final_status_);
}

void SessionReactor::DropWant() {
  std::shared_ptr<WantWaiter> want;
  {
    absl::MutexLock l(&mu_);
    want = std::move(want_);
  }
  // A want still parked is taken back; one being granted right now ends in a lease this agent
  // never hears of, which its next registration (or the TTL) hands back.
  if (want != nullptr) controller_->dispatcher().Cancel(want.get());
}

void SessionReactor::OnDone() {
  DropWant();
  sink_->Detach();
  if (!agent_id_.empty()) controller_->agents().Detach(agent_id_, sink_.get());
  controller_->sessions().Close(peer_);
  delete this;
}

}  // namespace harness
