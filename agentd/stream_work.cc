// The gRPC client of AgentService, part 4 (see grpc_controller_client.h): the agent's work on
// the Session stream (agent.proto, AgentMessage.want_work/complete/fail/release). Acquire asks
// with want_work and takes the `lease` message that answers it; Complete, Fail and Release send
// the request on the stream and wait for the `reply` naming the same item and token. The
// messages are queued here and written by the session thread (session_stream.cc), once per
// stream until answered: a report or a want that a broken stream left unanswered goes out again
// on the next stream, and the controller answers a repeated report as it answered the first.
// agentd never calls the unary Acquire, Complete, Fail or Release.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agentd/command_runner.h"
#include "agentd/grpc_controller_client.h"
#include "core/log.h"
#include "rpc/status.h"

namespace harness::agentd {
namespace {

// The status the unary RPC would have returned.
absl::Status StatusOf(const v1::Reply& reply) {
  return FromGrpcStatus(
      grpc::Status(static_cast<grpc::StatusCode>(reply.code()), reply.message()));
}

const char* NameOf(v1::AgentMessage::KindCase kind) {
  switch (kind) {
    case v1::AgentMessage::kComplete:
      return "complete";
    case v1::AgentMessage::kFail:
      return "fail";
    case v1::AgentMessage::kRelease:
      return "release";
    default:
      return "report";
  }
}

// Which report a reply answers: the reply names the item and token, and its response (set
// only when the code is OK) the kind.
bool Answers(const v1::Reply& reply, v1::AgentMessage::KindCase kind) {
  switch (reply.response_case()) {
    case v1::Reply::kComplete:
      return kind == v1::AgentMessage::kComplete;
    case v1::Reply::kFail:
      return kind == v1::AgentMessage::kFail;
    case v1::Reply::kRelease:
      return kind == v1::AgentMessage::kRelease;
    case v1::Reply::RESPONSE_NOT_SET:
      return true;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::optional<v1::Lease>> GrpcControllerClient::Acquire(absl::Duration wait) {
  absl::MutexLock l(&mu_);
  auto take = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::Lease lease = std::move(granted_.front());
    granted_.pop_front();
    return std::optional<v1::Lease>(std::move(lease));
  };
  // A lease that came before a drain is run (the controller sends the drain after every lease
  // it granted); after shutdown none is.
  if (shutdown_) return std::optional<v1::Lease>();
  if (!granted_.empty()) return take();
  if (acquiring_stopped_) return std::optional<v1::Lease>();
  if (want_refused_.has_value()) {
    absl::Status refused = *std::move(want_refused_);
    want_refused_.reset();
    return refused;
  }
  // Asked once: the session thread writes want_work on the open stream, and again on each new
  // one until a lease arrives. A want still outstanding from an earlier call (or from a
  // report's acquire_next) is not repeated.
  want_ = true;
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !granted_.empty() || want_refused_.has_value() || acquiring_stopped_ || shutdown_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&settled), wait);
  if (shutdown_) return std::optional<v1::Lease>();
  if (!granted_.empty()) return take();
  if (acquiring_stopped_) return std::optional<v1::Lease>();
  if (want_refused_.has_value()) {
    absl::Status refused = *std::move(want_refused_);
    want_refused_.reset();
    return refused;
  }
  return std::optional<v1::Lease>();  // nothing yet; the want stays outstanding
}

absl::StatusOr<v1::CompleteResponse> GrpcControllerClient::Complete(
    const v1::CompleteRequest& request) {
  v1::AgentMessage m;
  *m.mutable_complete() = request;
  absl::StatusOr<v1::Reply> reply = Report(std::move(m), request.item_id(), request.lease_token());
  if (!reply.ok()) return reply.status();
  if (absl::Status s = StatusOf(*reply); !s.ok()) return s;
  return reply->complete();
}

absl::StatusOr<v1::FailResponse> GrpcControllerClient::Fail(const v1::FailRequest& request) {
  v1::AgentMessage m;
  *m.mutable_fail() = request;
  absl::StatusOr<v1::Reply> reply = Report(std::move(m), request.item_id(), request.lease_token());
  if (!reply.ok()) return reply.status();
  if (absl::Status s = StatusOf(*reply); !s.ok()) return s;
  return reply->fail();
}

absl::StatusOr<v1::ReleaseResponse> GrpcControllerClient::Release(
    const v1::ReleaseRequest& request) {
  v1::AgentMessage m;
  *m.mutable_release() = request;
  absl::StatusOr<v1::Reply> reply = Report(std::move(m), request.item_id(), request.lease_token());
  if (!reply.ok()) return reply.status();
  if (absl::Status s = StatusOf(*reply); !s.ok()) return s;
  return reply->release();
}

absl::StatusOr<v1::Reply> GrpcControllerClient::Report(v1::AgentMessage message,
                                                       const std::string& item_id,
                                                       uint64_t lease_token) {
  const v1::AgentMessage::KindCase kind = message.kind_case();
  absl::MutexLock l(&mu_);
  if (shutdown_) return absl::CancelledError("agentd is shutting down");
  auto it = std::find_if(reports_.begin(), reports_.end(), [&](const PendingReport& r) {
    return r.item_id == item_id && r.lease_token == lease_token && r.kind == kind;
  });
  if (it == reports_.end()) {
    PendingReport r;
    r.message = std::move(message);
    r.item_id = item_id;
    r.lease_token = lease_token;
    r.kind = kind;
    it = reports_.insert(reports_.end(), std::move(r));
  }
  // A list keeps `report` valid while others come and go; only this caller (the agent's one
  // reporting thread) or ForgetLease, called by the same thread, removes it.
  PendingReport& report = *it;
  // Wait for the answer, or until the stream it was written on breaks. With no stream open,
  // wait only briefly: the report stays queued and goes out as soon as one opens; the caller
  // retries and collects the answer.
  absl::Time deadline = absl::Now() + (stream_open_ ? options_.call_timeout : RetryCapLocked());
  bool sent_seen = false;
  auto broken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return report.sent_on != 0 && (report.sent_on != stream_seq_ || !stream_running_);
  };
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return report.reply.has_value() || shutdown_ || broken();
  };
  while (true) {
    if (report.reply.has_value()) {
      v1::Reply reply = *std::move(report.reply);
      reports_.erase(it);
      return reply;
    }
    if (shutdown_) return absl::CancelledError("agentd is shutting down");
    if (broken()) {
      return absl::UnavailableError(absl::StrCat(
          "the session stream to ", options_.address, " broke before the controller answered the ",
          NameOf(kind), " (", stream_error_, "); it is sent again when the stream is back"));
    }
    if (report.sent_on != 0 && !sent_seen) {
      sent_seen = true;  // on an open stream now: the full deadline for the answer
      deadline = std::max(deadline, absl::Now() + options_.call_timeout);
    }
    if (absl::Now() >= deadline) break;
    mu_.AwaitWithDeadline(absl::Condition(&settled), deadline);
  }
  if (report.sent_on == 0) {
    return absl::UnavailableError(absl::StrCat(
        "the session stream to ", options_.address, " is not open",
        stream_error_.empty() ? std::string() : absl::StrCat(" (", stream_error_, ")"), "; the ",
        NameOf(kind), " is sent as soon as it is"));
  }
  return absl::DeadlineExceededError(absl::StrCat("no answer to the ", NameOf(kind), " within ",
                                                  FormatSeconds(options_.call_timeout), " s"));
}

void GrpcControllerClient::SendProgress(v1::Progress progress) {
  absl::MutexLock l(&mu_);
  if (!stream_running_ || shutdown_) return;
  const size_t size = progress.data().size();
  if (progress_bytes_ + size > kMaxQueuedProgressBytes) return;
  progress_bytes_ += size;
  v1::AgentMessage m;
  *m.mutable_progress() = std::move(progress);
  progress_.push_back(std::move(m));
}

bool GrpcControllerClient::HasUnsentLocked(uint64_t seq) const {
  if (!progress_.empty()) return true;
  if (want_ && want_sent_on_ != seq) return true;
  return std::any_of(reports_.begin(), reports_.end(), [seq](const PendingReport& r) {
    return !r.reply.has_value() && r.sent_on != seq;
  });
}

std::vector<v1::AgentMessage> GrpcControllerClient::TakeUnsentLocked(uint64_t seq) {
  std::vector<v1::AgentMessage> out;
  // Output first: what the command printed before its report was queued precedes the report.
  for (v1::AgentMessage& m : progress_) out.push_back(std::move(m));
  progress_.clear();
  progress_bytes_ = 0;
  for (PendingReport& r : reports_) {
    if (r.reply.has_value() || r.sent_on == seq) continue;
    r.sent_on = seq;
    out.push_back(r.message);
    // A report with acquire_next asks for the next lease too (the controller parks a want on
    // this stream): no separate want_work, and a new stream must ask again until it arrives.
    const bool next = (r.kind == v1::AgentMessage::kComplete && r.message.complete().acquire_next()) ||
                      (r.kind == v1::AgentMessage::kFail && r.message.fail().acquire_next());
    if (next && !acquiring_stopped_) {
      want_ = true;
      want_sent_on_ = seq;
    }
  }
  if (want_ && want_sent_on_ != seq) {
    want_sent_on_ = seq;
    v1::AgentMessage m;
    m.mutable_want_work();
    out.push_back(std::move(m));
  }
  return out;
}

void GrpcControllerClient::OnLease(const v1::Lease& lease) {
  auto same = [&](const v1::LeaseRef& h) {
    return h.item_id() == lease.item_id() && h.lease_token() == lease.lease_token();
  };
  {
    absl::MutexLock l(&mu_);
    if (std::any_of(finished_.begin(), finished_.end(), same)) {
      // A lease finished here already, sent again: the controller's answer to a want that
      // crossed this lease's report (it gives an agent that asks while holding a lease that
      // lease again). Running it twice would only repeat the work; ask again instead.
      want_sent_on_ = 0;
      kick_ = true;
    } else {
      OnNewLeaseLocked(lease);
      return;
    }
  }
  LogInfo(absl::StrCat("item ", lease.item_id(), " (lease ", lease.lease_token(),
                       ") sent again after it was finished here: ignored"));
}

void GrpcControllerClient::OnNewLeaseLocked(const v1::Lease& lease) {
  want_ = false;
  want_sent_on_ = 0;
  // The same lease twice (granted again to an agent that asked while holding it) is one lease.
  const bool known = std::any_of(held_.begin(), held_.end(), [&](const v1::LeaseRef& h) {
    return h.item_id() == lease.item_id() && h.lease_token() == lease.lease_token();
  });
  if (known) return;
  // Held (listed in heartbeats and a re-Register) from the moment it arrives, taken or not. No
  // heartbeat at once: the controller granted it, and renews it with the next one (well within
  // the TTL).
  v1::LeaseRef ref;
  ref.set_item_id(lease.item_id());
  ref.set_lease_token(lease.lease_token());
  held_.push_back(std::move(ref));
  granted_.push_back(lease);
}

void GrpcControllerClient::OnReply(const v1::Reply& reply) {
  absl::MutexLock l(&mu_);
  if (reply.item_id().empty()) {
    // A want_work refused (e.g. no base commit to start from): the next Acquire says why and
    // asks again.
    want_ = false;
    want_sent_on_ = 0;
    want_refused_ = StatusOf(reply);
    return;
  }
  for (PendingReport& r : reports_) {
    if (r.reply.has_value() || r.sent_on != stream_seq_ || r.item_id != reply.item_id() ||
        r.lease_token != reply.lease_token() || !Answers(reply, r.kind)) {
      continue;
    }
    r.reply = reply;
    // Every report ends its lease once the controller accepted it. Ended here, at once: the
    // controller may already be answering a heartbeat that crossed the report and still listed
    // the lease (a LeaseLost for it, which says nothing new), and the reporting thread forgets
    // the lease only after it has collected this answer.
    if (reply.code() == 0) FinishLeaseLocked(r.item_id, r.lease_token);
    return;
  }
  // The answer to a report already given up (ForgetLease): nothing waits for it.
}

}  // namespace harness::agentd
