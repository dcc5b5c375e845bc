// The gRPC client of AgentService, part 1 (see grpc_controller_client.h): the channel,
// registration and the held-lease list. The Session stream is in session_stream.cc, the work
// that travels on it (Acquire and the reports) in stream_work.cc.
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
      channel_(MakeControllerChannel(options.address, ChannelOptions{.token = options.token,
                                                                      .tls = options.tls})),
      stub_(v1::AgentService::NewStub(channel_)),
      host_(HostName()) {}

absl::Status GrpcControllerClient::Start(SessionListener* listener) {
  listener_ = listener;
  absl::Status s = Register(/*startup=*/true);
  if (!s.ok()) return s;
  session_thread_ = std::thread([this] { SessionLoop(); });
  return absl::OkStatus();
}

absl::Duration GrpcControllerClient::RetryCap() const {
  absl::MutexLock l(&mu_);
  return RetryCapLocked();
}

absl::Duration GrpcControllerClient::RetryCapLocked() const {
  // Never longer than the channel's own reconnect backoff: after an outage the agent tries
  // again about as soon as the channel has reconnected.
  return std::clamp(lease_ttl_ / 4, absl::Milliseconds(100), kMaxReconnectBackoff);
}

bool GrpcControllerClient::Holds(const v1::LeaseRef& lease) {
  absl::MutexLock l(&mu_);
  return std::any_of(held_.begin(), held_.end(),
                     [&](const v1::LeaseRef& h) { return SameLease(h, lease); });
}

void GrpcControllerClient::ForgetLease(const v1::LeaseRef& lease) {
  absl::MutexLock l(&mu_);
  // No heartbeat for it: the lease ended with its report (or was lost), which the controller
  // knows; the next heartbeat lists it no more.
  FinishLeaseLocked(lease.item_id(), lease.lease_token());
  // A report still waiting for its answer is given up with the lease.
  reports_.remove_if([&](const PendingReport& r) {
    return r.item_id == lease.item_id() && r.lease_token == lease.lease_token();
  });
}

void GrpcControllerClient::SetState(v1::AgentState state) {
  absl::MutexLock l(&mu_);
  if (state_ == state) return;
  // Between idle and working the controller needs no heartbeat: it shows an agent working while
  // it holds a lease, which it knows from its own grants and the reports. Any other change
  // (draining, stopped) goes out at once.
  auto busy_or_idle = [](v1::AgentState s) {
    return s == v1::AGENT_STATE_IDLE || s == v1::AGENT_STATE_WORKING;
  };
  if (!busy_or_idle(state_) || !busy_or_idle(state)) kick_ = true;
  state_ = state;
}

void GrpcControllerClient::StopAcquiring() {
  absl::MutexLock l(&mu_);
  acquiring_stopped_ = true;
  // Not asked again on a new stream. A want already on the controller may still bring a lease:
  // it is held (and renewed) until the last heartbeat, which lists none, hands it back.
  want_ = false;
}

void GrpcControllerClient::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    acquiring_stopped_ = true;
    want_ = false;
    for (grpc::ClientContext* c : calls_) c->TryCancel();
    // A stream still waiting for the controller cannot carry a last heartbeat: end it. An open
    // one sends it and half-closes (session_stream.cc).
    if (stream_ctx_ != nullptr && !stream_open_) stream_ctx_->TryCancel();
  }
  if (session_thread_.joinable()) session_thread_.join();
}

void GrpcControllerClient::FinishLeaseLocked(const std::string& item_id, uint64_t lease_token) {
  v1::LeaseRef lease;
  lease.set_item_id(item_id);
  lease.set_lease_token(lease_token);
  RemoveHeldLocked(lease);
  if (FinishedLocked(lease)) return;
  finished_.push_back(std::move(lease));
  if (finished_.size() > kFinishedKept) finished_.pop_front();
}

bool GrpcControllerClient::FinishedLocked(const v1::LeaseRef& lease) const {
  return std::any_of(finished_.begin(), finished_.end(),
                     [&](const v1::LeaseRef& f) { return SameLease(f, lease); });
}

bool GrpcControllerClient::RemoveHeldLocked(const v1::LeaseRef& lease) {
  auto it = std::remove_if(held_.begin(), held_.end(),
                           [&](const v1::LeaseRef& h) { return SameLease(h, lease); });
  bool removed = it != held_.end();
  held_.erase(it, held_.end());
  // A lease that arrived but was not taken yet goes too.
  granted_.erase(std::remove_if(granted_.begin(), granted_.end(),
                                [&](const v1::Lease& g) {
                                  return g.item_id() == lease.item_id() &&
                                         g.lease_token() == lease.lease_token();
                                }),
                 granted_.end());
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

absl::Status GrpcControllerClient::Register(bool startup) {
  {
    absl::MutexLock l(&mu_);
    registered_ = false;
  }
  Backoff backoff;
  absl::Status result;
  while (true) {
    v1::RegisterRequest request;
    {
      absl::MutexLock l(&mu_);
      backoff.set_max(RetryCapLocked());
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
