// WorkerPool: a fixed number of threads running posted tasks in order, for work that must not
// run on a thread others wait on (gRPC callback threads, the store's committer): file and
// libgit2 I/O. Not a general executor: no futures, no priorities, no growth.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace harness {

class WorkerPool {
 public:
  using Task = std::function<void()>;
  // Starts `threads` (at least 1) threads.
  explicit WorkerPool(int threads);
  // Runs every task already posted, then joins the threads. Tasks posted meanwhile (by other
  // tasks) still run; tasks must not wait for work that only a later Post could bring.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` to run on one of the threads, after every task posted before it has started.
  void Post(Task task);

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace harness
