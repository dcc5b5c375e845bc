// SyncPool: runs a commit round's fsyncs (the journal, leases/, claims/) at the same time
// instead of one after another, so a round costs about one device flush of latency, not three.
// The caller's thread runs the first task; a few worker threads run the rest.
#pragma once

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace harness {

class SyncPool {
 public:
  using Task = std::function<absl::Status()>;
  explicit SyncPool(int workers);
  ~SyncPool();
  SyncPool(const SyncPool&) = delete;
  SyncPool& operator=(const SyncPool&) = delete;

  // Runs every task, at once where workers are free; returns when all are done, with the first
  // error (in task order). Not reentrant: tasks must not call RunAll.
  absl::Status RunAll(std::vector<Task> tasks);

 private:
  void Work();

  absl::Mutex mu_;
  std::vector<Task*> queue_ ABSL_GUARDED_BY(mu_);       // tasks not started
  std::vector<absl::Status>* results_ ABSL_GUARDED_BY(mu_) ABSL_PT_GUARDED_BY(mu_) = nullptr;
  Task* first_ ABSL_GUARDED_BY(mu_) = nullptr;           // results_ index base
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace harness
