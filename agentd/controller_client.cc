// The gRPC client of AgentService, part 1 (see grpc_controller_client.h): the channel,
// registration, Acquire, the reports and the held-lease list. The Session stream is in
// session_stream.cc.
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agentd/backoff.h"
#include "agentd/command_runner.h"
#include "agentd/grpc_controller_client.h"
#include "config/flags.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness::agentd {
namespace {

bool SameLease(const v1::LeaseRef& a, const v1::LeaseRef& b) {
  return a.item_id() == b.item_id() && a.lease_token() == b.lease_token();
}

std::string Describe(const v1::LeaseRef& l) {
  return absl::StrCat(l.item_id(), " (lease ", l.lease_token(), ")");
}

// Errors after which registering again cannot help.
bool IsPermanentRegisterError(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::UNAUTHENTICATED ||
         code == grpc::StatusCode::PERMISSION_DENIED || code == grpc::StatusCode::UNIMPLEMENTED;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

GrpcControllerClient::GrpcControllerClient(const ControllerClientOptions& options)
    : options_(options),
      channel_(MakeControllerChannel(options.address)),
      stub_(v1::AgentService::NewStub(channel_)),
      host_(HostName()) {}

absl::Status GrpcControllerClient::Start(SessionListener* listener) {
  listener_ = listener;
  uint64_t generation;
  {
    absl::MutexLock l(&mu_);
    generation = generation_;
  }
  absl::Status s = Register(generation, /*startup=*/true);
  if (!s.ok()) return s;
  session_thread_ = std::thread([this] { SessionLoop(); });
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Lease>> GrpcControllerClient::Acquire(absl::Duration wait) {
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::AcquireRequest request;
  uint64_t generation;
  {
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !registering_ || acquiring_stopped_ || shutdown_;
    };
    mu_.Await(absl::Condition(&ready));
    if (acquiring_stopped_ || shutdown_) return std::optional<v1::Lease>();
    generation = generation_;
    if (registered_) {
      request.set_agent_id(options_.agent_id);
      request.set_session_id(session_id_);
      request.set_wait_ms(absl::ToInt64Milliseconds(wait));
      ctx = MakeContext(wait + absl::Seconds(5), options_.token);
      acquire_ctx_ = ctx.get();
      ++acquire_in_flight_;
    }
  }
  if (ctx == nullptr) {  // the session was found unknown and nobody registered again yet
    absl::Status s = Register(generation, /*startup=*/false);
    if (!s.ok() && !absl::IsCancelled(s)) return s;
    return std::optional<v1::Lease>();
  }
  v1::AcquireResponse response;
  BeforeCall();
  grpc::Status st = AfterCall(stub_->Acquire(ctx.get(), request, &response));
  bool hold_nothing;
  {
    absl::MutexLock l(&mu_);
    acquire_ctx_ = nullptr;
    --acquire_in_flight_;
    // Held before Register can run again (it waits for acquire_in_flight_ == 0), so a
    // registration never leaves out a lease that was just granted.
    if (st.ok() && response.has_lease()) {
      v1::LeaseRef ref;
      ref.set_item_id(response.lease().item_id());
      ref.set_lease_token(response.lease().lease_token());
      held_.push_back(std::move(ref));
      kick_ = true;
    }
    hold_nothing = held_.empty();
  }
  if (st.ok()) {
    if (!response.has_lease()) return std::optional<v1::Lease>();
    return std::optional<v1::Lease>(response.lease());
  }
  switch (st.error_code()) {
    case grpc::StatusCode::CANCELLED:  // by StopAcquiring(), Register or Shutdown()
      return std::optional<v1::Lease>();
    case grpc::StatusCode::NOT_FOUND: {
      LogWarning(absl::StrCat("acquire: the controller does not know this session (",
                              st.error_message(), "); registering again"));
      absl::Status s = Register(generation, /*startup=*/false);
      if (!s.ok() && !absl::IsCancelled(s)) return s;
      // An error, so that the caller backs off a little should the controller keep
      // forgetting sessions.
      return absl::AbortedError("the controller did not know the session; registered again");
    }
    case grpc::StatusCode::FAILED_PRECONDITION:
      // "Already holds a lease" while we hold none: a grant whose answer never reached us.
      // Registering again with no held leases makes the controller end it at once.
      if (hold_nothing) {
        LogWarning(absl::StrCat("acquire refused: ", st.error_message(),
                                "; registering again to end any lease this agent lost track of"));
        Register(generation, /*startup=*/false).IgnoreError();
      }
      return FromGrpcStatus(st);
    default:
      return FromGrpcStatus(st);
  }
}

absl::StatusOr<v1::CompleteResponse> GrpcControllerClient::Complete(
    const v1::CompleteRequest& request) {
  v1::CompleteResponse response;
  grpc::Status st = Unary(&v1::AgentService::Stub::Complete, request, &response);
  if (!st.ok()) return FromGrpcStatus(st);
  if (response.has_next_lease()) HoldGranted(response.next_lease());
  return response;
}

void GrpcControllerClient::HoldGranted(const v1::Lease& lease) {
  absl::MutexLock l(&mu_);
  v1::LeaseRef ref;
  ref.set_item_id(lease.item_id());
  ref.set_lease_token(lease.lease_token());
  held_.push_back(std::move(ref));
  kick_ = true;
}

absl::StatusOr<v1::FailResponse> GrpcControllerClient::Fail(const v1::FailRequest& request) {
  v1::FailResponse response;
  grpc::Status st = Unary(&v1::AgentService::Stub::Fail, request, &response);
  if (!st.ok()) return FromGrpcStatus(st);
  if (response.has_next_lease()) HoldGranted(response.next_lease());
  return response;
}

absl::StatusOr<v1::ReleaseResponse> GrpcControllerClient::Release(
    const v1::ReleaseRequest& request) {
  v1::ReleaseResponse response;
  grpc::Status st = Unary(&v1::AgentService::Stub::Release, request, &response);
  if (!st.ok()) return FromGrpcStatus(st);
  return response;
}

absl::Duration GrpcControllerClient::RetryCap() const {
  absl::MutexLock l(&mu_);
  return std::clamp(lease_ttl_ / 4, absl::Milliseconds(100), absl::Seconds(5));
}

bool GrpcControllerClient::Holds(const v1::LeaseRef& lease) {
  absl::MutexLock l(&mu_);
  return std::any_of(held_.begin(), held_.end(),
                     [&](const v1::LeaseRef& h) { return SameLease(h, lease); });
}

void GrpcControllerClient::ForgetLease(const v1::LeaseRef& lease) {
  absl::MutexLock l(&mu_);
  if (RemoveHeldLocked(lease)) kick_ = true;
}

void GrpcControllerClient::SetState(v1::AgentState state) {
  absl::MutexLock l(&mu_);
  if (state_ != state) {
    state_ = state;
    kick_ = true;
  }
}

void GrpcControllerClient::StopAcquiring() {
  absl::MutexLock l(&mu_);
  acquiring_stopped_ = true;
  if (acquire_ctx_ != nullptr) acquire_ctx_->TryCancel();
}

void GrpcControllerClient::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    acquiring_stopped_ = true;
    if (acquire_ctx_ != nullptr) acquire_ctx_->TryCancel();
    for (grpc::ClientContext* c : calls_) c->TryCancel();
  }
  if (session_thread_.joinable()) session_thread_.join();
}

bool GrpcControllerClient::RemoveHeldLocked(const v1::LeaseRef& lease) {
  auto it = std::remove_if(held_.begin(), held_.end(),
                           [&](const v1::LeaseRef& h) { return SameLease(h, lease); });
  bool removed = it != held_.end();
  held_.erase(it, held_.end());
  return removed;
}

bool GrpcControllerClient::Nap(absl::Duration d, bool startup) {
  absl::MutexLock l(&mu_);
  auto stop = [this, startup]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || (startup && acquiring_stopped_);
  };
  mu_.AwaitWithTimeout(absl::Condition(&stop), d);
  return !stop();
}

absl::Status GrpcControllerClient::Register(uint64_t stale_generation, bool startup) {
  absl::MutexLock serial(&register_mu_);
  {
    absl::MutexLock l(&mu_);
    if (registered_ && generation_ != stale_generation) return absl::OkStatus();
    registered_ = false;
    registering_ = true;
    if (acquire_ctx_ != nullptr) acquire_ctx_->TryCancel();
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return acquire_in_flight_ == 0; };
    mu_.Await(absl::Condition(&idle));
  }
  Backoff backoff;
  absl::Status result;
  while (true) {
    v1::RegisterRequest request;
    {
      absl::MutexLock l(&mu_);
      if (shutdown_ || (startup && acquiring_stopped_)) {
        result = absl::CancelledError("stopped before registering with the controller");
        break;
      }
      request.set_agent_id(options_.agent_id);
      request.set_pid(static_cast<int32_t>(getpid()));
      request.set_host(host_);
      request.set_version(HarnessVersion());
      request.mutable_capabilities()->set_repo_access(options_.repo_access);
      for (const v1::LeaseRef& h : held_) *request.add_held_leases() = h;
    }
    v1::RegisterResponse response;
    grpc::Status st = Unary(&v1::AgentService::Stub::Register, request, &response);
    if (st.ok()) {
      Registered(request, response);
      result = absl::OkStatus();
      break;
    }
    if (IsPermanentRegisterError(st.error_code())) {
      result = absl::Status(
          FromGrpcStatus(st).code(),
          absl::StrCat("the controller at ", options_.address, " refused to register agent ",
                       options_.agent_id, ": ", FromGrpcStatus(st).ToString()));
      break;
    }
    absl::Duration delay = backoff.Next();
    LogWarning(absl::StrCat("cannot register with the controller at ", options_.address, ": ",
                            FromGrpcStatus(st).ToString(), "; retrying in ",
                            FormatSeconds(absl::Milliseconds(absl::ToInt64Milliseconds(delay))),
                            " s"));
    if (!Nap(delay, startup)) continue;  // the loop head sees why
  }
  {
    absl::MutexLock l(&mu_);
    registering_ = false;
  }
  if (!result.ok() && !absl::IsCancelled(result) && !startup && listener_ != nullptr) {
    listener_->OnFatal(result);
  }
  return result;
}

void GrpcControllerClient::Registered(const v1::RegisterRequest& request,
                                      const v1::RegisterResponse& response) {
  std::vector<v1::LeaseRef> lost;
  absl::Duration interval = absl::Milliseconds(response.heartbeat_interval_ms());
  if (interval <= absl::ZeroDuration()) interval = absl::Seconds(5);
  interval = std::max(interval, absl::Milliseconds(50));
  {
    absl::MutexLock l(&mu_);
    session_id_ = response.session_id();
    ++generation_;
    registered_ = true;
    heartbeat_interval_ = interval;
    lease_ttl_ = absl::Milliseconds(response.lease_ttl_ms());
    heartbeat_seq_ = 0;
    kick_ = true;
    for (const v1::LeaseRef& sent : request.held_leases()) {
      bool renewed =
          std::any_of(response.leases().begin(), response.leases().end(), [&](const v1::Lease& l) {
            return l.item_id() == sent.item_id() && l.lease_token() == sent.lease_token();
          });
      if (!renewed && RemoveHeldLocked(sent)) lost.push_back(sent);
    }
  }
  LogInfo(absl::StrCat("registered with the controller at ", options_.address, " (version ",
                       response.controller_version(), ") as agent ", options_.agent_id,
                       ": heartbeat every ", FormatSeconds(interval), " s, lease ttl ",
                       FormatSeconds(absl::Milliseconds(response.lease_ttl_ms())), " s, ",
                       response.leases_size(), " held lease(s) renewed"));
  for (const v1::LeaseRef& l : lost) {
    LogWarning(absl::StrCat("lease on item ", Describe(l),
                            " was not renewed by the controller on registration: lost"));
    if (listener_ != nullptr) listener_->OnLeaseLost(l, "not renewed on registration");
  }
}

std::unique_ptr<ControllerApi> NewControllerClient(const ControllerClientOptions& options) {
  return std::make_unique<GrpcControllerClient>(options);
}

}  // namespace harness::agentd
