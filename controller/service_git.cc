// AgentService.FetchBase and AgentService.UploadResult: git objects over the agent's own gRPC
// connection, for agents without a local repository. Packs are built and stored by git/
// (pack_builder.h, pack_receiver.h); this file only moves them and checks the lease.
#include <deque>

#include "absl/strings/str_cat.h"
#include "controller/service_agent.h"
#include "core/ids.h"
#include "core/log.h"
#include "git/git_util.h"
#include "git/pack_builder.h"
#include "git/pack_receiver.h"
#include "rpc/status.h"

namespace harness {
namespace {

// Sends a header then the pack's chunks, one write in flight at a time.
class FetchBaseReactor : public grpc::ServerWriteReactor<v1::FetchBaseResponse> {
 public:
  FetchBaseReactor(std::deque<v1::FetchBaseResponse> messages) : messages_(std::move(messages)) {
    Next();
  }
  explicit FetchBaseReactor(const grpc::Status& error) { Finish(error); }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the agent went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (messages_.empty()) {
      Finish(grpc::Status::OK);
      return;
    }
    current_ = std::move(messages_.front());
    messages_.pop_front();
    StartWrite(&current_);
  }
  std::deque<v1::FetchBaseResponse> messages_;
  v1::FetchBaseResponse current_;
};

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
    RepoResults* repo = controller_->repo();
    if (repo == nullptr) return absl::FailedPreconditionError("this controller has no repository");
    // Fencing first: no data from a lease that is not live (the queue's rule, with expiry and
    // the agent's ownership checked).
    absl::StatusOr<Lease> lease =
        controller_->queue().CheckLive(h.item_id(), h.lease_token(), h.agent_id());
    if (!lease.ok()) return lease.status();
    header_ = h;
    base_ = lease->base.empty() ? h.base_commit() : lease->base;
    if (h.pack_size() > 0 && static_cast<uint64_t>(h.pack_size()) > repo->max_pack_bytes()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("pack is larger than the limit of ", repo->max_pack_bytes(), " bytes"));
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
    return receiver_->Append(chunk);
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
};

}  // namespace

grpc::ServerWriteReactor<v1::FetchBaseResponse>* AgentServiceImpl::FetchBase(
    grpc::CallbackServerContext*, const v1::FetchBaseRequest* req) {
  RepoResults* repo = controller_->repo();
  if (repo == nullptr) {
    return new FetchBaseReactor(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this controller has no repository"));
  }
  std::string want = req->want();
  if (want.empty()) {
    absl::StatusOr<std::string> base = repo->BaseCommit();
    if (!base.ok()) return new FetchBaseReactor(ToGrpcStatus(base.status()));
    want = *base;
  }
  absl::StatusOr<git::Repository> handle = git::OpenRepository(repo->path());
  if (!handle.ok()) return new FetchBaseReactor(ToGrpcStatus(handle.status()));
  // The pack is built before the header is sent (the header carries its size).
  std::deque<v1::FetchBaseResponse> messages(1);
  git::PackStats stats;
  absl::Status built = git::BuildPack(
      handle->get(), {want}, {req->haves().begin(), req->haves().end()},
      git::kDefaultPackChunkBytes,
      [&](absl::string_view chunk) {
        messages.emplace_back().set_pack_data(std::string(chunk));
        return absl::OkStatus();
      },
      &stats);
  if (!built.ok()) return new FetchBaseReactor(ToGrpcStatus(built));
  v1::FetchBaseHeader* h = messages.front().mutable_header();
  h->set_base_commit(want);
  h->set_base_ref(repo->base_ref());
  h->set_pack_size(static_cast<int64_t>(stats.bytes));
  h->set_object_count(static_cast<int64_t>(stats.objects));
  return new FetchBaseReactor(std::move(messages));
}

grpc::ServerReadReactor<v1::UploadResultRequest>* AgentServiceImpl::UploadResult(
    grpc::CallbackServerContext*, v1::UploadResultResponse* resp) {
  return new UploadReactor(controller_, resp);
}

}  // namespace harness
