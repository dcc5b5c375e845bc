// GrpcControllerClient: the ControllerApi over gRPC (see controller_client.h for the rules it
// follows). Internal to agentd: only controller_client.cc (channel, registration, held leases),
// session_stream.cc (the Session stream thread), stream_work.cc (Acquire and the reports over
// that stream) and git_transfer.cc (FetchBase, UploadResult) include it, as it pulls in gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <list>
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
  friend class GrpcControllerClientPeer;  // tests
  explicit GrpcControllerClient(const ControllerClientOptions& options);
  ~GrpcControllerClient() override { Shutdown(); }

  // ControllerApi.
  absl::Status Start(SessionListener* listener) override;
  // stream_work.cc.
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
  void SendProgress(v1::Progress progress) override;
  // A quarter of the lease TTL, between 100 ms and the channel's longest reconnect backoff.
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

  // A report (complete, fail or release) sent on the Session stream and not yet collected by
  // its caller. It is (re)sent on every stream until answered: a stream that breaks before the
  // answer leaves it to the next one (the controller answers a repeat idempotently).
  struct PendingReport {
    v1::AgentMessage message;
    std::string item_id;
    uint64_t lease_token = 0;
    v1::AgentMessage::KindCase kind = v1::AgentMessage::KIND_NOT_SET;
    uint64_t sent_on = 0;  // the stream_seq_ it was last written on; 0: not yet
    std::optional<v1::Reply> reply;
  };

  template <typename Method, typename Request, typename Response>
  grpc::Status Unary(Method method, const Request& request, Response* response) {
    std::unique_ptr<grpc::ClientContext> ctx = MakeContext(options_.call_timeout, options_.token);
    CallScope scope(this, ctx.get());
    return (stub_.get()->*method)(ctx.get(), request, response);
  }

  bool RemoveHeldLocked(const v1::LeaseRef& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The lease ended here (its report was accepted, or the agent forgot it): no longer held,
  // and remembered among the finished ones.
  void FinishLeaseLocked(const std::string& item_id, uint64_t lease_token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool FinishedLocked(const v1::LeaseRef& lease) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration RetryCapLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Waits `d` unless shutdown (or, at startup, StopAcquiring()) comes first. False if it did.
  bool Nap(absl::Duration d, bool startup) ABSL_LOCKS_EXCLUDED(mu_);

  // Registers, listing the held leases. Retries with backoff until it succeeds, the controller
  // refuses for good, or shutdown (at startup also StopAcquiring()) makes it give up with
  // Cancelled. Runs only while no Session stream is open (at Start(), then on the session
  // thread), so no lease can arrive meanwhile and the list it sends is complete. A refusal for
  // good after startup is reported to the listener (OnFatal).
  absl::Status Register(bool startup);
  // Applies a RegisterResponse: the new session, and the held leases it did not renew.
  void Registered(const v1::RegisterRequest& request, const v1::RegisterResponse& response)
      ABSL_LOCKS_EXCLUDED(mu_);

  // session_stream.cc: the Session thread. (Re)registers when needed, opens a stream,
  // heartbeats, writes the work messages, reconnects with backoff.
  void SessionLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // One Session stream: Hello, then heartbeats and work messages until it breaks or shutdown
  // (which sends a last heartbeat and half-closes). Returns its final status.
  grpc::Status RunStream(const std::string& session_id, bool* received);
  v1::AgentMessage MakeHeartbeatLocked(bool final) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a work message waits to be written on stream `seq`.
  bool HasUnsentLocked(uint64_t seq) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the work messages to write on stream `seq` and marks them sent on it.
  std::vector<v1::AgentMessage> TakeUnsentLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles one message from the controller (on the stream's reader thread).
  void Dispatch(const v1::ControllerMessage& m) ABSL_LOCKS_EXCLUDED(mu_);

  // stream_work.cc: the fast path's answers, and one report attempt.
  void OnLease(const v1::Lease& lease) ABSL_LOCKS_EXCLUDED(mu_);
  void OnNewLeaseLocked(const v1::Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnReply(const v1::Reply& reply);
  absl::StatusOr<v1::Reply> Report(v1::AgentMessage message, const std::string& item_id,
                                   uint64_t lease_token);

  const ControllerClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::AgentService::Stub> stub_;
  const std::string host_;
  SessionListener* listener_ = nullptr;  // set by Start()
  std::thread session_thread_;

  mutable absl::Mutex mu_;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  absl::Duration lease_ttl_ ABSL_GUARDED_BY(mu_) = absl::Seconds(30);
  uint64_t heartbeat_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::LeaseRef> held_ ABSL_GUARDED_BY(mu_);
  // The last leases this agent finished (ForgetLease), newest last, at most kFinishedKept: the
  // controller may send one of them again (its answer to a want that crossed the report), and
  // a lease's command runs once.
  static constexpr size_t kFinishedKept = 64;
  std::deque<v1::LeaseRef> finished_ ABSL_GUARDED_BY(mu_);
  v1::AgentState state_ ABSL_GUARDED_BY(mu_) = v1::AGENT_STATE_STARTING;
  bool kick_ ABSL_GUARDED_BY(mu_) = false;  // heartbeat now

  // The current (or last) Session stream.
  uint64_t stream_seq_ ABSL_GUARDED_BY(mu_) = 0;  // +1 per stream
  bool stream_running_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_open_ ABSL_GUARDED_BY(mu_) = false;  // a message came back on it
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string stream_error_ ABSL_GUARDED_BY(mu_);  // why the last stream ended
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;

  // The fast path. `want_` is set while the agent waits for a lease it asked for (want_work,
  // or a report with acquire_next); it is sent again on a new stream until a lease arrives.
  bool want_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t want_sent_on_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Status> want_refused_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Lease> granted_ ABSL_GUARDED_BY(mu_);  // arrived, not yet taken by Acquire
  std::list<PendingReport> reports_ ABSL_GUARDED_BY(mu_);
  // Progress messages to write on the open stream (written once; dropped when it breaks).
  static constexpr size_t kMaxQueuedProgressBytes = 1 << 20;
  std::deque<v1::AgentMessage> progress_ ABSL_GUARDED_BY(mu_);
  size_t progress_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  bool acquiring_stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness::agentd
