// The gRPC client of AgentService, part 2 (see grpc_controller_client.h): the Session stream.
// One thread keeps one stream open per agent: Hello, a Heartbeat every heartbeat interval (or
// at once when the state or the held leases change), commands dispatched to the listener;
// reconnection with backoff, and Register first when the controller forgot the session.
#include <algorithm>
#include <atomic>
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
    uint64_t generation;
    std::string session_id;
    bool registered;
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return;
      generation = generation_;
      session_id = session_id_;
      registered = registered_;
    }
    if (!registered) {
      absl::Status s = Register(generation, /*startup=*/false);
      if (!s.ok() && !absl::IsCancelled(s)) {
        // OnFatal was called; the agent is stopping. Wait for Shutdown().
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(&shutdown_));
        return;
      }
      continue;
    }
    bool received = false;
    grpc::Status st = RunStream(session_id, generation, &received);
    bool newer_session;
    {
      absl::MutexLock l(&mu_);
      if (shutdown_) return;
      newer_session = generation_ != generation;
      if (st.error_code() == grpc::StatusCode::NOT_FOUND && !newer_session) registered_ = false;
    }
    if (received) {
      backoff.Reset();
      not_found_in_a_row = 0;
    }
    if (newer_session) continue;  // registered again meanwhile: open a stream for it now
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
                            " s"));
    absl::MutexLock l(&mu_);
    auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || generation_ != generation;  // stop, or a new session to open
    };
    mu_.AwaitWithTimeout(absl::Condition(&wake), delay);
  }
}

grpc::Status GrpcControllerClient::RunStream(const std::string& session_id, uint64_t generation,
                                             bool* received) {
  std::unique_ptr<grpc::ClientContext> ctx = MakeContext(options_.stream_lifetime, options_.token);
  BeforeCall();
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream =
      stub_->Session(ctx.get());
  v1::AgentMessage hello;
  hello.mutable_hello()->set_session_id(session_id);
  hello.mutable_hello()->set_agent_id(options_.agent_id);
  if (!stream->Write(hello)) return AfterCall(stream->Finish());

  std::atomic<bool> got_message{false};
  {
    absl::MutexLock l(&mu_);
    reader_done_ = false;
  }
  std::thread reader([&] {
    v1::ControllerMessage m;
    while (stream->Read(&m)) {
      if (!got_message.exchange(true)) {
        LogInfo(absl::StrCat("session stream to ", options_.address, " open"));
      }
      Dispatch(m);
    }
    absl::MutexLock l(&mu_);
    reader_done_ = true;
  });

  absl::Time next_heartbeat = absl::Now();  // the first one right after Hello
  while (true) {
    v1::AgentMessage heartbeat;
    bool final;
    {
      absl::MutexLock l(&mu_);
      auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return shutdown_ || reader_done_ || kick_ || generation_ != generation;
      };
      mu_.AwaitWithDeadline(absl::Condition(&wake), next_heartbeat);
      if (reader_done_) break;
      if (generation_ != generation) {
        ctx->TryCancel();
        break;
      }
      final = shutdown_;
      kick_ = false;
      heartbeat = MakeHeartbeatLocked(final);
    }
    if (!stream->Write(heartbeat)) {
      ctx->TryCancel();
      break;
    }
    if (final) {
      stream->WritesDone();
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&reader_done_), absl::Seconds(2));
      ctx->TryCancel();
      break;
    }
    absl::MutexLock l(&mu_);
    next_heartbeat = absl::Now() + heartbeat_interval_;
  }
  reader.join();
  *received = got_message.load();
  return AfterCall(stream->Finish());
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
      }
      listener_->OnLeaseLost(ref, m.lease_lost().reason());
      break;
    }
    case v1::ControllerMessage::kLease:
    case v1::ControllerMessage::kReply:
      // The fast path is not used by this agent: nothing was asked for on the stream.
      LogWarning("session stream: ignored an unexpected fast-path message from the controller");
      break;
    case v1::ControllerMessage::KIND_NOT_SET:
      break;  // a kind newer than this agent
  }
}

}  // namespace harness::agentd
