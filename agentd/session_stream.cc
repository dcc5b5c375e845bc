// The gRPC client of AgentService, part 2 (see grpc_controller_client.h): the Session stream.
// One thread keeps one stream open per agent: Hello, a Heartbeat every heartbeat interval (or
// at once when the agent starts draining or stops), the work messages stream_work.cc queues
// (want_work, complete, fail, release: each written once per stream until answered), commands
// and answers dispatched as they arrive; reconnection with backoff, and Register first when
// the controller forgot the session.
#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agentd/backoff.h"
#include "agentd/command_runner.h"
#include "agentd/grpc_controller_client.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness::agentd {

void GrpcControllerClient::SessionLoop() {
  Backoff backoff;
  int not_found_in_a_row = 0;
  while (true) {
    std::string session_id;
    bool registered;
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return;
      session_id = session_id_;
      registered = registered_;
    }
    if (!registered) {
      absl::Status s = Register(/*startup=*/false);
      if (!s.ok() && !absl::IsCancelled(s)) {
        // OnFatal was called; the agent is stopping. Wait for Shutdown().
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(&shutdown_));
        return;
      }
      continue;
    }
    bool received = false;
    grpc::Status st = RunStream(session_id, &received);
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return;
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) registered_ = false;
    }
    if (received) {
      backoff.Reset();
      not_found_in_a_row = 0;
    }
    if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && received) continue;
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
      LogWarning(absl::StrCat("session stream: the controller does not know session ", session_id,
                              " (", st.error_message(), "); registering again"));
      // The controller restarted: register at once. Only a controller that keeps forgetting
      // new sessions gets the backoff below.
      if (++not_found_in_a_row == 1) continue;
    } else {
      not_found_in_a_row = 0;
    }
    backoff.set_max(RetryCap());
    absl::Duration delay = backoff.Next();
    LogWarning(absl::StrCat("session stream to ", options_.address,
                            " ended: ", FromGrpcStatus(st).ToString(), "; reconnecting in ",
                            FormatSeconds(absl::Milliseconds(absl::ToInt64Milliseconds(delay))),
                            " s (the new stream waits for the controller)"));
    absl::MutexLock l(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&shutdown_), delay);
  }
}

grpc::Status GrpcControllerClient::RunStream(const std::string& session_id, bool* received) {
  std::unique_ptr<grpc::ClientContext> ctx = MakeContext(options_.stream_lifetime, options_.token);
  // While the controller is unreachable the stream waits for the channel to reconnect (at the
  // channel's backoff, rpc/channel.h) instead of failing at once: it opens as soon as the
  // controller serves again, however long it was gone.
  ctx->set_wait_for_ready(true);
  uint64_t seq;
  {
    absl::MutexLock l(&mu_);
    if (shutdown_) return grpc::Status(grpc::StatusCode::CANCELLED, "agentd is shutting down");
    seq = ++stream_seq_;
    stream_running_ = true;
    stream_open_ = false;
    stream_ctx_ = ctx.get();
    reader_done_ = false;
  }
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream =
      stub_->Session(ctx.get());
  std::thread reader([&] {
    v1::ControllerMessage m;
    bool first = true;
    while (stream->Read(&m)) {
      if (first) {
        first = false;
        {
          absl::MutexLock l(&mu_);
          stream_open_ = true;
        }
        LogInfo(absl::StrCat("session stream to ", options_.address, " open"));
      }
      Dispatch(m);
    }
    absl::MutexLock l(&mu_);
    reader_done_ = true;
  });

  v1::AgentMessage hello;
  hello.mutable_hello()->set_session_id(session_id);
  hello.mutable_hello()->set_agent_id(options_.agent_id);
  hello.mutable_hello()->set_lease_in_reply(true);
  absl::Time next_heartbeat = absl::Now();  // the first one right after Hello
  if (stream->Write(hello)) {
    while (true) {
      std::vector<v1::AgentMessage> out;
      bool final;
      {
        absl::MutexLock l(&mu_);
        auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return shutdown_ || reader_done_ || kick_ || HasUnsentLocked(seq);
        };
        mu_.AwaitWithDeadline(absl::Condition(&wake), next_heartbeat);
        if (reader_done_) break;
        final = shutdown_;
        if (final || kick_ || absl::Now() >= next_heartbeat) {
          kick_ = false;
          out.push_back(MakeHeartbeatLocked(final));
          next_heartbeat = absl::Now() + heartbeat_interval_;
        }
        // Written right after the heartbeat, so a stream's first messages are hello, heartbeat,
        // then whatever waited for it.
        if (!final) {
          for (v1::AgentMessage& m : TakeUnsentLocked(seq)) out.push_back(std::move(m));
        }
      }
      // A write fails only once the call is over; the reader then ends too, and Finish()
      // gives the controller's status (cancelling here could hide it, e.g. NOT_FOUND).
      bool broken = false;
      for (const v1::AgentMessage& m : out) {
        if (!stream->Write(m)) {
          broken = true;
          break;
        }
      }
      if (broken) break;
      if (final) {
        stream->WritesDone();
        absl::MutexLock l(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&reader_done_), absl::Seconds(2));
        ctx->TryCancel();
        break;
      }
    }
  }
  reader.join();
  grpc::Status st = stream->Finish();
  absl::MutexLock l(&mu_);
  *received = stream_open_;
  stream_running_ = false;
  stream_open_ = false;
  progress_.clear();  // output is best effort: not resent on the next stream
  progress_bytes_ = 0;
  stream_ctx_ = nullptr;
  stream_error_ = FromGrpcStatus(st).ToString();
  return st;
}

v1::AgentMessage GrpcControllerClient::MakeHeartbeatLocked(bool final) {
  v1::AgentMessage m;
  v1::Heartbeat* hb = m.mutable_heartbeat();
  hb->set_seq(++heartbeat_seq_);
  // The last one lists no leases: whatever is still held is not ours to renew any more.
  hb->set_state(final ? v1::AGENT_STATE_STOPPED : state_);
  if (!final) {
    for (const v1::LeaseRef& h : held_) *hb->add_leases() = h;
  }
  return m;
}

void GrpcControllerClient::Dispatch(const v1::ControllerMessage& m) {
  switch (m.kind_case()) {
    case v1::ControllerMessage::kHeartbeatAck:
    case v1::ControllerMessage::kLeaseRenewed:
      break;
    case v1::ControllerMessage::kDrain:
      listener_->OnDrain();
      break;
    case v1::ControllerMessage::kStop:
      listener_->OnStop(absl::Milliseconds(std::max<int64_t>(m.stop().grace_ms(), 0)),
                        m.stop().reason());
      break;
    case v1::ControllerMessage::kCancel: {
      v1::LeaseRef ref;
      ref.set_item_id(m.cancel().item_id());
      ref.set_lease_token(m.cancel().lease_token());
      {
        absl::MutexLock l(&mu_);
        if (RemoveHeldLocked(ref)) kick_ = true;
      }
      listener_->OnCancelItem(ref, m.cancel().reason());
      break;
    }
    case v1::ControllerMessage::kLeaseLost: {
      v1::LeaseRef ref;
      ref.set_item_id(m.lease_lost().item_id());
      ref.set_lease_token(m.lease_lost().lease_token());
      {
        absl::MutexLock l(&mu_);
        if (RemoveHeldLocked(ref)) kick_ = true;
        // A lease that ended here with its report: the answer to a heartbeat that crossed the
        // report. Nothing was lost.
        if (FinishedLocked(ref)) break;
      }
      listener_->OnLeaseLost(ref, m.lease_lost().reason());
      break;
    }
    case v1::ControllerMessage::kLease:
      OnLease(m.lease());
      break;
    case v1::ControllerMessage::kReply:
      OnReply(m.reply());
      // A lease granted with the report (Hello.lease_in_reply): as if it came next.
      if (m.reply().has_next_lease()) OnLease(m.reply().next_lease());
      break;
    case v1::ControllerMessage::KIND_NOT_SET:
      break;  // a kind newer than this agent
  }
}

}  // namespace harness::agentd
