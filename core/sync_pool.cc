// Parallel fsyncs for a commit round (see sync_pool.h).
#include "core/sync_pool.h"
#include "core/thread_name.h"

namespace harness {

SyncPool::SyncPool(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
}

SyncPool::~SyncPool() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

absl::Status SyncPool::RunAll(std::vector<Task> tasks) {
  if (tasks.empty()) return absl::OkStatus();
  std::vector<absl::Status> results(tasks.size());
  if (tasks.size() == 1 || workers_.empty()) {
    for (size_t i = 0; i < tasks.size(); ++i) results[i] = tasks[i]();
  } else {
    {
      absl::MutexLock l(&mu_);
      results_ = &results;
      first_ = tasks.data();
      for (size_t i = tasks.size() - 1; i >= 1; --i) queue_.push_back(&tasks[i]);
    }
    results[0] = tasks[0]();
    // Whatever no worker picked up yet, this thread runs too.
    for (;;) {
      Task* t;
      {
        absl::MutexLock l(&mu_);
        if (queue_.empty()) break;
        t = queue_.back();
        queue_.pop_back();
        ++running_;
      }
      absl::Status s = (*t)();
      absl::MutexLock l(&mu_);
      results[t - first_] = std::move(s);
      --running_;
    }
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](int* running) { return *running == 0; }, &running_));
    results_ = nullptr;
    first_ = nullptr;
  }
  for (absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void SyncPool::Work() {
  NameThisThread("fsync");
  absl::MutexLock l(&mu_);
  for (;;) {
    mu_.Await(absl::Condition(
        +[](SyncPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
          return p->stopping_ || !p->queue_.empty();
        },
        this));
    if (queue_.empty()) return;  // stopping
    Task* t = queue_.back();
    queue_.pop_back();
    ++running_;
    mu_.Unlock();
    absl::Status s = (*t)();
    mu_.Lock();
    (*results_)[t - first_] = std::move(s);
    --running_;
  }
}

}  // namespace harness
