// FetchBase's write reactor (see fetch_base_reactor.h).
//
// Lifetime: gRPC holds one reference until OnDone, and each spooler callback in flight holds
// one, so the reactor outlives every callback. Exactly one of {a write, a spooler callback} is
// outstanding at a time until the stream finishes; whoever completes it decides the next step.
// OnCancel finishes at once unless a write is in flight (its OnWriteDone then finishes).
#include "controller/fetch_base_reactor.h"

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "git/pack_builder.h"
#include "rpc/status.h"

namespace harness {
namespace {

class FailedFetch : public grpc::ServerWriteReactor<v1::FetchBaseResponse> {
 public:
  explicit FailedFetch(const grpc::Status& s) { Finish(s); }
  void OnDone() override { delete this; }
};

class FetchBaseReactor : public grpc::ServerWriteReactor<v1::FetchBaseResponse> {
 public:
  FetchBaseReactor(PackSpooler* spooler, const v1::FetchBaseRequest& req) : spooler_(spooler) {
    refs_.fetch_add(1);
    spooler_->Build(req.want(), {req.haves().begin(), req.haves().end()}, &cancelled_,
                    [this](absl::StatusOr<PackSpooler::Pack> pack) {
                      OnBuilt(std::move(pack));
                      Unref();
                    });
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
    }
    if (!ok || cancelled_.load()) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the agent went away"));
    } else if (sent_ == pack_.bytes) {
      pack_.file.reset();
      FinishOnce(grpc::Status::OK);
    } else {
      refs_.fetch_add(1);
      spooler_->Read(pack_.file, sent_, git::kDefaultPackChunkBytes,
                     [this](absl::StatusOr<std::string> chunk) {
                       OnRead(std::move(chunk));
                       Unref();
                     });
    }
  }

  void OnCancel() override {
    cancelled_.store(true);
    {
      absl::MutexLock l(&mu_);
      if (writing_ || finished_) return;
      finished_ = true;
    }
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the agent went away"));
  }

  void OnDone() override { Unref(); }

 private:
  void OnBuilt(absl::StatusOr<PackSpooler::Pack> pack) {
    if (!pack.ok()) {
      FinishOnce(ToGrpcStatus(pack.status()));
      return;
    }
    pack_ = *std::move(pack);
    v1::FetchBaseHeader* h = out_.mutable_header();
    h->set_base_commit(pack_.base_commit);
    h->set_base_ref(pack_.base_ref);
    h->set_pack_size(static_cast<int64_t>(pack_.bytes));
    h->set_object_count(static_cast<int64_t>(pack_.objects));
    Write();
  }

  void OnRead(absl::StatusOr<std::string> chunk) {
    if (!chunk.ok()) {
      FinishOnce(ToGrpcStatus(chunk.status()));
      return;
    }
    if (chunk->empty()) {
      FinishOnce(ToGrpcStatus(absl::DataLossError(absl::StrCat(
          "the pack for ", pack_.base_commit, " ends at ", sent_, " of ", pack_.bytes, " bytes"))));
      return;
    }
    sent_ += chunk->size();
    out_.set_pack_data(*std::move(chunk));
    Write();
  }

  // Starts a write of out_ unless the stream has finished.
  void Write() {
    {
      absl::MutexLock l(&mu_);
      if (finished_) return;
      writing_ = true;
    }
    StartWrite(&out_);
  }

  void FinishOnce(const grpc::Status& s) {
    {
      absl::MutexLock l(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(s);
  }

  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  PackSpooler* const spooler_;
  std::atomic<int> refs_{1};  // gRPC's, until OnDone
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Touched only by the one step outstanding (see the top of the file).
  PackSpooler::Pack pack_;
  uint64_t sent_ = 0;
  v1::FetchBaseResponse out_;
};

}  // namespace

grpc::ServerWriteReactor<v1::FetchBaseResponse>* NewFetchBaseReactor(
    PackSpooler* spooler, const v1::FetchBaseRequest& request) {
  if (spooler == nullptr) {
    return new FailedFetch(
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this controller has no repository"));
  }
  return new FetchBaseReactor(spooler, request);
}

}  // namespace harness
