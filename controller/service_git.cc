// AgentService.FetchBase and AgentService.UploadResult: git objects over the agent's own gRPC
// connection, for agents without a local repository. Packs are built and stored by git/
// (pack_builder.h, pack_receiver.h); FetchBase's reactor is in fetch_base_reactor.cc, its
// building and reading in pack_spooler.cc (off gRPC's threads); this file checks the lease.
#include "absl/strings/str_cat.h"
#include "controller/fetch_base_reactor.h"
#include "controller/refused_call.h"
#include "controller/service_agent.h"
#include "core/ids.h"
#include "core/limits.h"
#include "core/log.h"
#include "git/git_util.h"
#include "git/pack_receiver.h"
#include "rpc/status.h"

namespace harness {
namespace {

// Receives a header, then pack chunks into a PackReceiver; checks the lease before taking any
// data and the result after.
class UploadReactor : public grpc::ServerReadReactor<v1::UploadResultRequest> {
 public:
  UploadReactor(Controller* c, v1::UploadResultResponse* resp) : controller_(c), resp_(resp) {
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(Complete());
      return;
    }
    absl::Status s = in_.part_case() == v1::UploadResultRequest::kHeader ? Header(in_.header())
                                                                         : Data(in_.pack_data());
    if (!s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    StartRead(&in_);
  }
  void OnDone() override { delete this; }

 private:
  absl::Status Header(const v1::UploadHeader& h) {
    if (receiver_) return absl::InvalidArgumentError("upload: a second header");
    if (absl::Status s = ValidateItemId(h.item_id()); !s.ok()) return s;
    // The queue takes an empty agent as "any agent": an upload must name the lease's agent.
    if (h.agent_id().empty()) {
      return absl::InvalidArgumentError("upload: agent_id is required (the lease's agent)");
    }
    RepoResults* repo = controller_->repo();
    if (repo == nullptr) return absl::FailedPreconditionError("this controller has no repository");
    // Fencing first: no data from a lease that is not live (the queue's rule, with expiry and
    // the agent's ownership checked).
    absl::StatusOr<Lease> lease =
        controller_->queue().CheckLive(h.item_id(), h.lease_token(), h.agent_id());
    if (!lease.ok()) return lease.status();
    header_ = h;
    base_ = lease->base.empty() ? h.base_commit() : lease->base;
    if (h.pack_size() > 0) {
      absl::Status s =
          CheckPackSize(controller_->queue().options().limits, static_cast<uint64_t>(h.pack_size()));
      if (!s.ok()) return s;
    }
    absl::StatusOr<git::Repository> handle = git::OpenRepository(repo->path());
    if (!handle.ok()) return handle.status();
    repo_ = std::move(*handle);
    absl::StatusOr<std::unique_ptr<git::PackReceiver>> rx =
        git::PackReceiver::Begin(repo_.get(), repo->max_pack_bytes());
    if (!rx.ok()) return rx.status();
    receiver_ = std::move(*rx);
    return absl::OkStatus();
  }
  absl::Status Data(const std::string& chunk) {
    if (!receiver_) return absl::InvalidArgumentError("upload: pack data before the header");
    received_ += chunk.size();
    absl::Status s = receiver_->Append(chunk);
    if (absl::IsResourceExhausted(s)) {
      // A pack longer than its header said: named as the limit it passed.
      absl::Status named = CheckPackSize(controller_->queue().options().limits, received_);
      if (!named.ok()) return named;
    }
    return s;
  }
  grpc::Status Complete() {
    if (!receiver_) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "upload: no header");
    // And again before storing: the lease may have ended while the pack arrived.
    absl::StatusOr<Lease> lease = controller_->queue().CheckLive(
        header_.item_id(), header_.lease_token(), header_.agent_id());
    if (!lease.ok()) return ToGrpcStatus(lease.status());
    absl::StatusOr<git::PackStats> stats = receiver_->Commit();
    if (!stats.ok()) return ToGrpcStatus(stats.status());
    absl::Status v = git::VerifyDescends(repo_.get(), header_.commit(), base_);
    if (!v.ok()) {
      // The pack did not bring the commit, or the commit is not built on the base.
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(v.message()));
    }
    resp_->set_stored_bytes(static_cast<int64_t>(stats->bytes));
    LogInfo(absl::StrCat("stored the result of ", header_.item_id(), " from ", header_.agent_id(),
                         ": ", stats->objects, " objects, ", stats->bytes, " bytes"));
    return grpc::Status::OK;
  }

  Controller* const controller_;
  v1::UploadResultResponse* const resp_;
  v1::UploadResultRequest in_;
  v1::UploadHeader header_;
  std::string base_;
  git::Repository repo_;
  std::unique_ptr<git::PackReceiver> receiver_;
  uint64_t received_ = 0;  // pack bytes so far
};

}  // namespace

grpc::ServerWriteReactor<v1::FetchBaseResponse>* AgentServiceImpl::FetchBase(
    grpc::CallbackServerContext* ctx, const v1::FetchBaseRequest* req) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/FetchBase"); !a.ok()) {
    return new RefusedWriter<v1::FetchBaseResponse>(a);
  }
  return NewFetchBaseReactor(spooler_.get(), *req);
}

grpc::ServerReadReactor<v1::UploadResultRequest>* AgentServiceImpl::UploadResult(
    grpc::CallbackServerContext* ctx, v1::UploadResultResponse* resp) {
  if (absl::Status a = Authorize(*access_, *ctx, "/harness.v1.AgentService/UploadResult"); !a.ok()) {
    return new RefusedReader<v1::UploadResultRequest>(a);
  }
  return new UploadReactor(controller_, resp);
}

}  // namespace harness
