// The chaos soak's submitter: on a thread of its own, keeps the queue fed with batches of items
// through ControlService.Submit while the soak kills and restarts the controller, so a kill can
// land in the middle of a submit. A batch whose answer was lost or refused is sent again, same
// ids, until it is acknowledged (OK, or ALREADY_EXISTS for a resend: its items landed before).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "harness/v1/control.grpc.pb.h"

namespace harness::testing {

class ChaosSubmitter {
 public:
  // `backlog`: new batches are made while fewer than this many items are pending.
  ChaosSubmitter(const std::string& address, int backlog, int batch_size, uint64_t seed);
  ~ChaosSubmitter();

  void Start();
  // No new batches from now on; what is not acknowledged yet is still sent.
  void StopNewBatches() { no_new_ = true; }
  // True once nothing is left to send (after StopNewBatches).
  bool Settled();
  void Join();

  std::vector<std::string> Acknowledged();
  int64_t batches() const { return batches_; }
  int64_t resends() const { return resends_; }
  int64_t refused_disk_full() const { return refused_disk_full_; }
  int64_t failed_unreachable() const { return failed_unreachable_; }
  // Answers no rule allows (ALREADY_EXISTS on a first send, INVALID_ARGUMENT, ...).
  std::vector<std::string> Violations();

 private:
  struct Batch {
    std::vector<std::string> ids;
    v1::SubmitRequest request;
    int sends = 0;
  };
  void Run();
  Batch MakeBatch();
  bool Send(Batch& b);  // true once acknowledged
  int64_t Pending();    // -1 if the controller did not answer

  std::unique_ptr<v1::ControlService::Stub> stub_;
  const int backlog_, batch_size_;
  uint64_t rng_;
  int64_t next_id_ = 0;
  std::atomic<bool> no_new_{false}, stop_{false}, settled_{false};
  std::atomic<int64_t> batches_{0}, resends_{0}, refused_disk_full_{0}, failed_unreachable_{0};
  absl::Mutex mu_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace harness::testing
