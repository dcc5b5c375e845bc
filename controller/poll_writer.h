// PollWriter: a server-streaming reactor (gRPC callback API) that writes what a source has and,
// while it has nothing new, asks again every `interval` (a grpc::Alarm: no thread of its own,
// nothing blocks). The source is called on gRPC's threads, one call at a time: it must be quick
// (copy from a snapshot or a ring; no waiting). Exactly one of {a write, the alarm} is
// outstanding until the stream finishes, as in WatchStatus's reactor.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "rpc/status.h"

namespace harness {

enum class PollStep {
  kWrite,  // the source filled the message: write it, then ask again at once
  kWait,   // nothing new: ask again after the interval
  kDone,   // finish the stream with the status the source set
};

template <typename T>
class PollWriter : public grpc::ServerWriteReactor<T> {
 public:
  using Source = std::function<PollStep(T* out, absl::Status* status)>;
  PollWriter(Source source, absl::Duration interval)
      : source_(std::move(source)), interval_(interval) {
    Advance();
  }
  void OnWriteDone(bool ok) override {
    bool go_on;
    {
      absl::MutexLock l(&mu_);
      go_on = ok && !cancelled_;
    }
    if (go_on) {
      Advance();
    } else {
      this->Finish(grpc::Status::OK);
    }
  }
  void OnCancel() override {
    grpc::Alarm* pending = nullptr;
    {
      absl::MutexLock l(&mu_);
      cancelled_ = true;
      if (alarm_pending_) pending = alarm_.get();
    }
    // Outside mu_: OnTick(false) may run at once. `pending` stays valid (no alarm replaces
    // it once cancelled_ is set; OnDone, which deletes it, waits for this reaction).
    if (pending != nullptr) pending->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  // Not a gRPC reaction: OnDone may run as soon as Finish or StartWrite's completion does, so
  // nothing touches `this` after them.
  void Advance() {
    absl::Status status;
    switch (source_(&message_, &status)) {
      case PollStep::kWrite:
        this->StartWrite(&message_);
        return;
      case PollStep::kDone:
        this->Finish(ToGrpcStatus(status));
        return;
      case PollStep::kWait:
        break;
    }
    {
      absl::MutexLock l(&mu_);
      if (!cancelled_) {
        alarm_pending_ = true;
        // A new alarm per wait: the previous one's callback may still be returning. The
        // callback runs on a gRPC executor thread, never inside Set.
        alarm_ = std::make_unique<grpc::Alarm>();
        alarm_->Set(absl::ToChronoTime(absl::Now() + interval_),
                    [this](bool fired) { OnTick(fired); });
        return;
      }
    }
    this->Finish(grpc::Status::OK);
  }
  void OnTick(bool fired) {
    bool go_on;
    {
      absl::MutexLock l(&mu_);
      alarm_pending_ = false;
      go_on = fired && !cancelled_;
    }
    if (go_on) {
      Advance();
    } else {
      this->Finish(grpc::Status::OK);
    }
  }

  Source source_;
  const absl::Duration interval_;
  T message_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool alarm_pending_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness
