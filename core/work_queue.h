// WorkQueue: the queue and lease state machine of harness, durable on disk. This is what the
// controller's RPC handlers call; it knows nothing of gRPC.
//
// Every mutation is applied in memory under one mutex, appended to the Store in the same order,
// and answered only once durable (group commit). Each mutation has two forms: `Foo(...)` blocks
// until durable; `BeginFoo(...)` returns at once with a ticket, and the caller answers its client
// from WhenDurable(ticket, ...) (the RPC layer does this, so no thread waits on an fsync).
//
// Complete and Fail are idempotent: repeating a report that was committed gets the same answer.
//
// Leases: a grant takes a fresh fencing token, never reused (also across restarts), and commits
// claims/<item> on disk. Renew, Complete, Fail and Release take effect only with the current
// token of an unexpired lease; anything else is refused with FailedPrecondition saying why.
// Expiry is judged by the injected Clock at every call, so no timer is needed for correctness
// (ExpireDue only turns expired leases into retries eagerly).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/item_spec.h"
#include "core/item_table.h"
#include "core/lease_table.h"
#include "core/records.pb.h"
#include "core/store.h"

namespace harness {

struct WorkQueueOptions {
  std::string state_dir;
  absl::Duration lease_ttl = absl::Seconds(30);
  SpecLimits limits;
  bool group_commit = true;
  // A snapshot is written (and the journal it covers deleted) after this many journal bytes.
  uint64_t snapshot_after_bytes = 64ull << 20;
};

// A granted lease and what the agent needs to run the item.
struct Grant {
  store::ItemSpec spec;
  uint64_t token = 0;
  int attempt = 0;
  absl::Time expires;
  std::string base;  // the base commit the agent works from ("" without a repository)
};

// How an attempt ended, reported by its agent.
struct AttemptResult {
  int exit_code = 0;
  std::string error;
  std::string commit;  // result commit (done) or partial work (failed)
  std::string base;
  std::string branch;  // the branch the controller set (done)
  bool not_retryable = false;
};

// What recovery found and did when the queue was opened.
struct RecoveryStats {
  uint64_t items = 0;
  uint64_t journal_records = 0;
  uint64_t leases_kept = 0;         // leases found on disk that got one TTL to come back
  uint64_t grants_rolled_back = 0;  // grants a crash interrupted before they were answered
  uint64_t claims_removed = 0;      // stale claims of ended attempts
  std::vector<std::string> repairs;
};

template <typename T>
struct Pending {
  absl::StatusOr<T> value;
  uint64_t ticket = 0;  // 0: nothing to wait for
};

class WorkQueue {
 public:
  // Opens (creating if needed) the state dir and recovers it. FailedPrecondition if another
  // process holds the state dir.
  static absl::StatusOr<std::unique_ptr<WorkQueue>> Open(WorkQueueOptions options, Clock* clock);
  ~WorkQueue();

  const RecoveryStats& recovery() const { return recovery_; }
  const WorkQueueOptions& options() const { return options_; }

  // Enqueues items, all or nothing; returns their ids (assigned where empty).
  Pending<std::vector<std::string>> BeginSubmit(std::vector<store::ItemSpec> specs);
  // Leases the next pending item to `agent`; nullopt if nothing is pending. `base` (the commit
  // the agent is to work from) is recorded with the attempt.
  Pending<std::optional<Grant>> BeginAcquire(const std::string& agent,
                                             const std::string& base = "");
  Pending<bool> BeginComplete(const std::string& item_id, uint64_t token, AttemptResult result);
  // outcome: OUTCOME_FAILED or OUTCOME_TIMEOUT.
  Pending<bool> BeginFail(const std::string& item_id, uint64_t token, store::Outcome outcome,
                          AttemptResult result);
  Pending<bool> BeginRelease(const std::string& item_id, uint64_t token, std::string reason);
  // Cancels a pending or leased item; returns the lease it cancelled, if any.
  Pending<std::optional<Lease>> BeginCancel(const std::string& item_id);
  Pending<bool> BeginRetry(const std::string& item_id);
  // Ends every lease whose TTL ran out (outcome expired); returns them.
  Pending<std::vector<Lease>> BeginExpireDue();

  // Calls done once `ticket` is durable (at once if it is 0 or already durable).
  void WhenDurable(uint64_t ticket, std::function<void(absl::Status)> done);
  // Blocks until durable and returns the value (or the store's error).
  template <typename T>
  absl::StatusOr<T> Wait(Pending<T> p);

  // Blocking forms.
  absl::StatusOr<std::vector<std::string>> Submit(std::vector<store::ItemSpec> specs) {
    return Wait(BeginSubmit(std::move(specs)));
  }
  absl::StatusOr<std::optional<Grant>> Acquire(const std::string& agent,
                                               const std::string& base = "") {
    return Wait(BeginAcquire(agent, base));
  }
  absl::Status Complete(const std::string& id, uint64_t token, AttemptResult r = {}) {
    return Wait(BeginComplete(id, token, std::move(r))).status();
  }
  absl::Status Fail(const std::string& id, uint64_t token, store::Outcome outcome,
                    AttemptResult r = {}) {
    return Wait(BeginFail(id, token, outcome, std::move(r))).status();
  }
  absl::Status Release(const std::string& id, uint64_t token, std::string reason = "") {
    return Wait(BeginRelease(id, token, std::move(reason))).status();
  }
  absl::StatusOr<std::optional<Lease>> Cancel(const std::string& id) {
    return Wait(BeginCancel(id));
  }
  absl::Status Retry(const std::string& id) { return Wait(BeginRetry(id)).status(); }
  absl::StatusOr<std::vector<Lease>> ExpireDue() { return Wait(BeginExpireDue()); }

  // Heartbeats: extend leases by one TTL from now. In memory only.
  absl::StatusOr<absl::Time> Renew(const std::string& item_id, uint64_t token);
  // Renews every lease `agent` holds; returns them.
  std::vector<Lease> RenewAgent(const std::string& agent);

  // Reads.
  absl::StatusOr<store::ItemRecord> Get(const std::string& item_id) const;
  // Items in submission order, optionally of one state; prompts are left out.
  std::vector<store::ItemRecord> List(std::optional<store::ItemState> state, size_t limit) const;
  QueueCounts Counts() const;
  std::vector<Lease> Leases() const;
  std::optional<Lease> LeaseOf(const std::string& item_id) const;
  // While one lives, the changes begun share a commit round (Store::Hold): an item's completion
  // and its agent's next grant cost one fsync round, not two. Begin* calls only under it;
  // never wait for durability while holding one.
  class CommitGroup {
   public:
    explicit CommitGroup(WorkQueue* q) : store_(q->store_.get()) { store_->Hold(); }
    ~CommitGroup() { store_->Release(); }
    CommitGroup(const CommitGroup&) = delete;
    CommitGroup& operator=(const CommitGroup&) = delete;

   private:
    Store* const store_;
  };

  // fsync rounds of the store so far (each makes a group of changes durable).
  uint64_t commit_rounds() const { return store_->rounds(); }
  // When the next lease expires (InfiniteFuture if none).
  absl::Time NextExpiry() const;

  // Called (outside the lock, after durability is not awaited) whenever items become pending,
  // so long-polling acquirers can be woken.
  void SetOnPending(std::function<void()> fn);

 private:
  WorkQueue(WorkQueueOptions options, Clock* clock) : options_(std::move(options)), clock_(clock) {}
  absl::Status Recover(const Store::Recovery& rec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a record to the table and appends it to the store; returns the ticket.
  absl::StatusOr<uint64_t> Commit(const store::JournalRecord& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The current, unexpired lease of item_id with `token`, or why not. An expired lease found
  // here is ended on the spot (its ticket goes to *ticket).
  absl::StatusOr<const Lease*> CheckLease(const std::string& item_id, uint64_t token,
                                          uint64_t* ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<uint64_t> EndAttempt(const Lease& lease, store::Outcome outcome,
                                      const AttemptResult& result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeSnapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the attempt holding `token` already ended with one of `outcomes` (a report that is
  // retried after its answer was lost gets the same answer, not an error).
  bool AlreadyEnded(const std::string& item_id, uint64_t token,
                    std::initializer_list<store::Outcome> outcomes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyPending() ABSL_LOCKS_EXCLUDED(mu_, pending_mu_);  // on_pending_ may call back

  const WorkQueueOptions options_;
  Clock* const clock_;
  std::unique_ptr<Store> store_;
  RecoveryStats recovery_;

  mutable absl::Mutex mu_;
  ItemTable table_ ABSL_GUARDED_BY(mu_);
  LeaseTable leases_ ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Mutex pending_mu_;
  std::function<void()> on_pending_ ABSL_GUARDED_BY(pending_mu_);
};

template <typename T>
absl::StatusOr<T> WorkQueue::Wait(Pending<T> p) {
  if (p.ticket != 0) {
    if (absl::Status s = store_->WaitDurable(p.ticket); !s.ok()) return s;
  }
  return std::move(p.value);
}

}  // namespace harness
