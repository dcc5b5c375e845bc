// ResultLander: moves result refs (harness/<item>, harness-attempt/<item>/<n>) and writes
// reports' log tails on a thread of its own, in the order ends were made durable, so that no
// git or file I/O runs on the store's committer thread, on gRPC's threads or under a lock. Jobs
// run first in, first out: a report's answer queued with After() runs once every landing queued
// before it is done, and sees how the last landing of its item went.
//
// Not a lease rule: what to land comes from the LeaseEnded events of the queue (the journal's
// commit, never a request's). Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controller/repo_results.h"

namespace harness {

class ResultLander {
 public:
  // `repo` may be nullptr (no repository: landings are no-ops). Starts the thread.
  explicit ResultLander(RepoResults* repo);
  // Runs every job queued so far, then joins the thread.
  ~ResultLander();

  // harness/<item_id> -> commit, then remembers how it went for After(item_id, ...).
  void Land(std::string item_id, std::string commit);
  // harness-attempt/<item_id>/<attempt> -> commit (best effort: a failure is logged).
  void KeepAttempt(std::string item_id, int attempt, std::string commit);
  // Calls fn(status of the last Land of item_id; OK if none) after every job queued before.
  void After(std::string item_id, std::function<void(absl::Status)> fn);
  // Runs other file I/O of a report (its log tail) on this thread, in order.
  void Run(std::function<void()> job) { Post(std::move(job)); }

 private:
  void Post(std::function<void()> job);
  void Loop();

  RepoResults* const repo_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Items whose last landing failed (lander thread only).
  absl::flat_hash_map<std::string, absl::Status> failed_;
  std::thread thread_;
};

}  // namespace harness
