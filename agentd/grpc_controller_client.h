// GrpcControllerClient: the ControllerApi over gRPC (see controller_client.h for the rules it
// follows). Internal to agentd: only controller_client.cc (registration, Acquire, the reports),
// session_stream.cc (the Session stream thread) and git_transfer.cc (FetchBase, UploadResult)
// include it, as it pulls in gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agentd/controller_client.h"
#include "harness/v1/agent.grpc.pb.h"
#include "rpc/channel.h"

namespace harness::agentd {

class GrpcControllerClient : public ControllerApi {
 public:
  explicit GrpcControllerClient(const ControllerClientOptions& options);
  ~GrpcControllerClient() override { Shutdown(); }

  // ControllerApi.
  absl::Status Start(SessionListener* listener) override;
  absl::StatusOr<std::optional<v1::Lease>> Acquire(absl::Duration wait) override;
  absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request) override;
  absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request) override;
  absl::StatusOr<v1::ReleaseResponse> Release(const v1::ReleaseRequest& request) override;
  // git_transfer.cc.
  absl::Status FetchBase(
      const v1::FetchBaseRequest& request,
      const std::function<absl::Status(const v1::FetchBaseHeader& header)>& on_header,
      const ChunkSink& on_chunk) override;
  absl::StatusOr<v1::UploadResultResponse> UploadResult(
      const v1::UploadHeader& header,
      const std::function<absl::Status(const ChunkSink& write)>& source) override;
  bool Holds(const v1::LeaseRef& lease) override;
  void ForgetLease(const v1::LeaseRef& lease) override;
  void SetState(v1::AgentState state) override;
  // Adds a lease granted with a report's answer to the held leases.
  void HoldGranted(const v1::Lease& lease) ABSL_LOCKS_EXCLUDED(mu_);
  // A quarter of the lease TTL (between 100 ms and 5 s).
  absl::Duration RetryCap() const override;
  void StopAcquiring() override;
  void Shutdown() override;

 private:
  // Registers `calls_` entries so that Shutdown() can cancel them.
  class CallScope {
   public:
    CallScope(GrpcControllerClient* client, grpc::ClientContext* ctx) : client_(client), ctx_(ctx) {
      absl::MutexLock l(&client_->mu_);
      client_->calls_.insert(ctx_);
      if (client_->shutdown_) ctx_->TryCancel();
    }
    ~CallScope() {
      absl::MutexLock l(&client_->mu_);
      client_->calls_.erase(ctx_);
    }

   private:
    GrpcControllerClient* client_;
    grpc::ClientContext* ctx_;
  };

  template <typename Method, typename Request, typename Response>
  grpc::Status Unary(Method method, const Request& request, Response* response) {
    std::unique_ptr<grpc::ClientContext> ctx = MakeContext(options_.call_timeout, options_.token);
    CallScope scope(this, ctx.get());
    BeforeCall();
    return AfterCall((stub_.get()->*method)(ctx.get(), request, response));
  }

  void BeforeCall() {
    if (unreachable_.exchange(false))
      grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
  }
  grpc::Status AfterCall(grpc::Status st) {
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) unreachable_ = true;
    return st;
  }

  bool RemoveHeldLocked(const v1::LeaseRef& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Waits `d` unless shutdown (or, at startup, StopAcquiring()) comes first. False if it did.
  bool Nap(absl::Duration d, bool startup) ABSL_LOCKS_EXCLUDED(mu_);

  // Registers unless another thread already replaced the registration of `stale_generation`.
  // Retries with backoff until it succeeds, the controller refuses for good, or shutdown (at
  // startup also StopAcquiring()) makes it give up with Cancelled. While it runs, no Acquire
  // is in flight, so the held leases it sends are complete. A refusal for good after startup
  // is reported to the listener (OnFatal).
  absl::Status Register(uint64_t stale_generation, bool startup)
      ABSL_LOCKS_EXCLUDED(register_mu_, mu_);
  // Applies a RegisterResponse: the new session, and the held leases it did not renew.
  void Registered(const v1::RegisterRequest& request, const v1::RegisterResponse& response)
      ABSL_LOCKS_EXCLUDED(mu_);

  // session_stream.cc: the Session thread. (Re)registers when needed, opens a stream,
  // heartbeats, reconnects with backoff.
  void SessionLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // One Session stream: Hello, then heartbeats until it breaks, a newer registration replaces
  // it, or shutdown (which sends a last heartbeat and half-closes). Returns its final status.
  grpc::Status RunStream(const std::string& session_id, uint64_t generation, bool* received);
  v1::AgentMessage MakeHeartbeatLocked(bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles one message from the controller (on the stream's reader thread).
  void Dispatch(const v1::ControllerMessage& m) ABSL_LOCKS_EXCLUDED(mu_);

  const ControllerClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::AgentService::Stub> stub_;
  // Set when a call found the controller unreachable. gRPC's channel then keeps failing new
  // calls with the cached error for its own backoff (seconds after the controller is back);
  // the next call resets that backoff first, so our jittered backoff alone sets the pace.
  std::atomic<bool> unreachable_{false};
  const std::string host_;
  SessionListener* listener_ = nullptr;  // set by Start()
  std::thread session_thread_;

  absl::Mutex register_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // one Register at a time
  mutable absl::Mutex mu_;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  bool registering_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // +1 per successful Register
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  absl::Duration lease_ttl_ ABSL_GUARDED_BY(mu_) = absl::Seconds(30);
  uint64_t heartbeat_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::LeaseRef> held_ ABSL_GUARDED_BY(mu_);
  v1::AgentState state_ ABSL_GUARDED_BY(mu_) = v1::AGENT_STATE_STARTING;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;  // heartbeat now
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  int acquire_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* acquire_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool acquiring_stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness::agentd
