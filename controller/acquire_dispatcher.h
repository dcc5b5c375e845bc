// AcquireDispatcher: the long poll behind AgentService.Acquire, without gRPC. An idle agent's
// Acquire waits here until work arrives, its deadline passes, it goes away, or the controller
// shuts down; a submitted item reaches the longest-waiting agent at once, with no polling.
//
// Every waiter is finished exactly once: whoever takes it out of the list finishes it. A grant
// is handed to the waiter only once it is durable (WorkQueue::WhenDurable).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/agent_registry.h"
#include "core/clock.h"
#include "core/work_queue.h"

namespace harness {

class AcquireDispatcher {
 public:
  class Waiter {
   public:
    virtual ~Waiter() = default;
    // Called once: a durable grant, nullopt (no work before the deadline), or an error.
    virtual void Finish(absl::StatusOr<std::optional<Grant>> result) = 0;
    std::string agent;
    absl::Time deadline;
  };

  // `base`, if set, names the commit each grant starts from (the tip of the base branch).
  using BaseProvider = std::function<absl::StatusOr<std::string>()>;
  AcquireDispatcher(WorkQueue* queue, AgentRegistry* agents, Clock* clock,
                    BaseProvider base = nullptr)
      : queue_(queue), agents_(agents), clock_(clock), base_(std::move(base)) {}

  // Grants at once if work is pending, else parks the waiter. True when it was parked (finished
  // later, when work arrives or its deadline passes); false when it was finished already or a
  // grant is made for it (finished once that is durable).
  bool Acquire(std::shared_ptr<Waiter> waiter);
  // Work became pending: serve parked waiters in arrival order.
  void OnPending();
  // Finishes waiters whose deadline passed (with nullopt). Returns the next deadline.
  absl::Time ExpireWaiters();
  // The waiter's client went away: finish it now if it is still parked.
  void Cancel(const Waiter* waiter);
  // The waiter's agent is to get no more work (drain): finish it now with nullopt if it is still
  // parked. One whose grant is on its way to the disk is left to finish with that lease.
  void Withdraw(const Waiter* waiter);
  // Stop granting: finish every waiter with nullopt; later Acquires get nullopt at once.
  void Shutdown();
  size_t parked() const;

 private:
  // The commit grants start from ("" without a repository); reads the repository, so never
  // called under mu_.
  absl::StatusOr<std::string> ResolveBase() const ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the waiter out of the queue if it is parked there.
  std::shared_ptr<Waiter> Unpark(const Waiter* waiter) ABSL_LOCKS_EXCLUDED(mu_);
  // Tries one grant for `waiter` from `base`; false if nothing was pending.
  bool TryGrant(const std::shared_ptr<Waiter>& waiter, const absl::StatusOr<std::string>& base)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkQueue* const queue_;
  AgentRegistry* const agents_;
  Clock* const clock_;
  const BaseProvider base_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace harness
