// WorkQueue: the queue and the whole lease protocol of harness, durable on disk. This is what
// the controller's RPC handlers call; it knows nothing of gRPC, and the controller holds no lease
// rule of its own (it only translates).
//
// Every mutation is applied in memory under one mutex, appended to the Store in the same order,
// and answered only once durable (group commit). Each mutation has two forms: `Foo(...)` blocks
// until durable; `BeginFoo(...)` returns at once with a ticket, and the caller answers its client
// from WhenDurable(ticket, ...) (the RPC layer does this, so no thread waits on an fsync).
//
// The lease protocol (each rule is unit-tested on a FakeClock in tests/unit/lease_*_test.cc):
//   * Grant: a fresh fencing token, never reused (also across restarts), committed as
//     claims/<item> on disk. An agent holds at most one lease: an agent that asks again while
//     it holds a live lease gets that same lease back (renewed), so a lost answer costs nothing.
//   * Renew, Complete, Fail, Release, upload checks (CheckLive) take effect only with the
//     current token of an unexpired lease, from the agent that holds it (when the caller names
//     an agent); anything else is FailedPrecondition saying why.
//   * Reports are idempotent, and the result is fenced by commit: repeating a Complete (or Fail)
//     whose attempt already ended that way, with the same commit, gets the same answer; with
//     another commit it is refused naming both, and nothing changes. After DONE the only commit
//     that can ever land is the one in the journal.
//   * Expiry is judged by the injected Clock at every call; an expired lease found by any call
//     ends through the same path as the ticker's ExpireDue.
//   * Register/stop reconciliation (Reconcile): the leases an agent lists are renewed, the ones
//     it does not list are ended.
//   * Every end of a lease, whatever caused it, goes through one path and is published once
//     durable as one LeaseEnded event (lease_events.h) to the LeaseListener; an end that makes
//     an item pending wakes parked acquirers (SetOnPending) on every path.
//
// A failed write: every change of the failed commit round and after it is refused with
// Unavailable (naming the state dir and the system's error) and none of it is kept. A recovery
// thread rebuilds the memory from what is durable (as at open, keeping the state dir lock), so
// reads show exactly that, and retries every store_retry_interval until a write succeeds; then
// the queue serves again (work_queue_recovery.cc). store_health() says which.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/item_spec.h"
#include "core/item_table.h"
#include "core/lease_events.h"
#include "core/lease_table.h"
#include "core/records.pb.h"
#include "core/store.h"

namespace harness {

struct RecoveryPlan;

struct WorkQueueOptions {
  std::string state_dir;
  absl::Duration lease_ttl = absl::Seconds(30);
  SpecDefaults defaults;
  Limits limits;  // prompt, labels, items per submit, queued items (core/limits.h)
  bool group_commit = true;
  // A snapshot is written (and the journal it covers deleted) after this many journal bytes.
  uint64_t snapshot_after_bytes = 64ull << 20;
  // After a failed write, how often the store tries to write again.
  absl::Duration store_retry_interval = absl::Seconds(1);
};

// Whether the state dir takes writes.
struct StoreHealth {
  absl::Status status;           // OK, or the Unavailable error changes are refused with
  absl::Time failing_since;      // InfinitePast while OK
  uint64_t failures = 0;         // failures since the queue was opened (each one resumed from)
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
  std::string agent;  // the reporting agent; "" = not checked (in-process callers)
  int exit_code = 0;
  std::string error;
  std::string commit;  // result commit (done) or partial work (failed)
  std::string base;
  std::string branch;  // the branch the controller set (done)
  bool not_retryable = false;
};

// The answer to a report (Complete, Fail, Release), also when it repeats one already recorded:
// what the journal holds for that attempt.
struct ReportAnswer {
  bool repeat = false;  // the attempt had already ended this way; nothing changed
  store::ItemState item_state = store::ITEM_STATE_UNSPECIFIED;
  int attempt = 0;
  std::string commit;  // the recorded commit (result, or partial work of a failure)
  std::string branch;  // the result branch (done)
  std::string base;    // the result's base (done)
};

// A lease an agent says it runs.
struct HeldLease {
  std::string item_id;
  uint64_t token = 0;
};

// What Reconcile did with an agent's list of held leases.
struct Reconciled {
  std::vector<Lease> renewed;  // listed and live: renewed for a full TTL
  // Listed but not live (expired, ended, another agent's, unknown): the agent must stop them.
  std::vector<std::pair<HeldLease, std::string>> lost;
  std::vector<Lease> ended;  // live for this agent but not listed: ended
};

// What Reconcile does with an agent's live leases that its list leaves out.
enum class Unlisted {
  kKeep,     // a heartbeat: a lease granted a moment ago may not be listed yet
  kExpire,   // the agent registered again (it restarted): outcome EXPIRED, counted
  kRelease,  // the agent is stopping and never saw that grant: outcome RELEASED, not counted
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

  // Enqueues items, all or nothing, also across a crash or a failed write (one journal record);
  // returns their ids (assigned where empty).
  Pending<std::vector<std::string>> BeginSubmit(std::vector<store::ItemSpec> specs);
  // Leases the next pending item to `agent`; nullopt if nothing is pending. `base` (the commit
  // the agent is to work from) is recorded with the attempt.
  Pending<std::optional<Grant>> BeginAcquire(const std::string& agent,
                                             const std::string& base = "");
  Pending<ReportAnswer> BeginComplete(const std::string& item_id, uint64_t token,
                                      AttemptResult result);
  // outcome: OUTCOME_FAILED, OUTCOME_TIMEOUT or OUTCOME_STALLED.
  Pending<ReportAnswer> BeginFail(const std::string& item_id, uint64_t token,
                                  store::Outcome outcome, AttemptResult result);
  // Gives the item back (outcome RELEASED, not counted). A repeat gets the same answer.
  Pending<ReportAnswer> BeginRelease(const std::string& item_id, uint64_t token,
                                     std::string reason, const std::string& agent = "");
  // Cancels a pending or leased item; returns the lease it cancelled, if any. `reason` goes to
  // that lease's agent (through LeaseEnded).
  Pending<std::optional<Lease>> BeginCancel(const std::string& item_id,
                                            std::string reason = "cancelled by the operator");
  Pending<bool> BeginRetry(const std::string& item_id);
  // Ends every lease whose TTL ran out (outcome expired); returns them.
  Pending<std::vector<Lease>> BeginExpireDue();
  // Renews the live leases `agent` lists and says which listed ones are lost; ends its live
  // leases that the list leaves out as `unlisted` says. Never blocks on the disk.
  // `why` replaces the default reason recorded for the leases it ends (e.g. "its agent died:
  // killed by signal 9").
  Pending<Reconciled> BeginReconcile(const std::string& agent, const std::vector<HeldLease>& held,
                                     Unlisted unlisted, const std::string& why = "");
  // The live lease of item_id with `token`, held by `agent` ("": any), or FailedPrecondition
  // saying why not (an expired lease found here is ended, as by ExpireDue). For checks that
  // change nothing themselves (an upload's header, a result's verification).
  absl::StatusOr<Lease> CheckLive(const std::string& item_id, uint64_t token,
                                  const std::string& agent);

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
  absl::StatusOr<Reconciled> Reconcile(const std::string& agent,
                                       const std::vector<HeldLease>& held, Unlisted unlisted,
                                       const std::string& why = "") {
    return Wait(BeginReconcile(agent, held, unlisted, why));
  }
  absl::StatusOr<std::optional<Lease>> Cancel(const std::string& id) {
    return Wait(BeginCancel(id));
  }
  absl::Status Retry(const std::string& id) { return Wait(BeginRetry(id)).status(); }
  absl::StatusOr<std::vector<Lease>> ExpireDue() { return Wait(BeginExpireDue()); }

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
  // How long the store's syncs take per round (for /metrics).
  HistogramSnapshot sync_latency() const { return store_->sync_latency(); }
  HistogramSnapshot round_latency() const { return store_->round_latency(); }
  // Leases granted since the queue was opened.
  uint64_t leases_granted() const { return leases_granted_.load(std::memory_order_relaxed); }
  // Calls naming a lease (complete, fail, release, a heartbeat's renewal, an upload) refused
  // since the queue was opened because the token was no longer the item's live lease, or was
  // another agent's: fenced (an expired or superseded lease).
  uint64_t leases_fenced() const { return leases_fenced_.load(std::memory_order_relaxed); }
  // When the next lease expires (InfiniteFuture if none).
  absl::Time NextExpiry() const;
  // Whether changes are taken now (see the top of this file).
  StoreHealth store_health() const;

  // Called (outside the lock, after durability is not awaited) whenever items become pending,
  // so long-polling acquirers can be woken.
  void SetOnPending(std::function<void()> fn);
  // Receives every LeaseEnded once durable (see lease_events.h); nullptr: nobody.
  void SetLeaseListener(LeaseListener* listener);

 private:
  WorkQueue(WorkQueueOptions options, Clock* clock) : options_(std::move(options)), clock_(clock) {}
  absl::Status Recover(const Store::Recovery& rec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies a record to the table and appends it to the store; returns the ticket. Unavailable
  // (and nothing applied) while the store is failing. With `unclaim` (a record that ends that
  // attempt), the attempt's claim is removed with the record (Store::Append).
  absl::StatusOr<uint64_t> Commit(const store::JournalRecord& rec,
                                  std::optional<Store::ClaimRef> unclaim = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Commit without the check (recovery's own records).
  absl::StatusOr<uint64_t> ApplyAndAppend(const store::JournalRecord& rec,
                                          std::optional<Store::ClaimRef> unclaim = std::nullopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // After a failed write (work_queue_recovery.cc). The recovery thread waits for a failure of
  // the store, then repairs, reloads and resumes it.
  void RecoveryLoop();
  // Rebuilds the memory from the durable state. With `finish`, also removes stale claims and
  // commits the hand-backs recovery decides (the store must take writes).
  absl::Status Reload(bool finish);
  // Writes the running attempt's record over each kept claim whose record is torn or names
  // another lease (RecoveryPlan::rewrites); returns a line for each, logged. A failure is logged
  // and left: the claim itself is what holds the item.
  std::vector<std::string> RewriteKeptClaims(const RecoveryPlan& plan);
  absl::Status StoreUnavailable(const absl::Status& cause) const;
  // What the changes made under one hold of mu_ imply once it is released: the ends to
  // publish (once `ticket` is durable) and whether to wake acquirers.
  // A state change of an item, logged (one line) once durable; docs/CONTROLLER.md, "Log lines".
  struct ItemChange {
    const char* what = "";  // "submitted", "granted", "cancelled", "retried", or an end
    std::string item;
    std::string agent;  // the lease's, if any
    uint64_t token = 0;
    int attempt = 0;
    store::Outcome outcome = store::OUTCOME_UNSPECIFIED;  // ends only
    store::ItemState state = store::ITEM_STATE_UNSPECIFIED;  // the item's state after it
    std::string reason;  // ends: the error or why it ended
  };
  static void LogChange(const ItemChange& change);
  struct Effects {
    std::vector<ItemChanged> changed;  // published before `ended`
    std::vector<ItemChange> changes;
    std::vector<LeaseEnded> ended;
    uint64_t ticket = 0;
    bool pending = false;
  };
  // Holds mu_; on release publishes the Effects collected meanwhile (outside the lock).
  class ABSL_SCOPED_LOCKABLE Txn {
   public:
    explicit Txn(WorkQueue* q) ABSL_EXCLUSIVE_LOCK_FUNCTION(q->mu_);
    ~Txn() ABSL_UNLOCK_FUNCTION();
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

   private:
    WorkQueue* const q_;
  };

  // The current, unexpired lease of item_id with `token` held by `agent` ("": any), or why
  // not. An expired lease found here is ended by Expire (the one expiry path).
  absl::StatusOr<const Lease*> CheckLease(const std::string& item_id, uint64_t token,
                                          const std::string& agent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The one end path of a lease: commits the end, drops the claim and the lease, and records
  // the LeaseEnded to publish.
  absl::StatusOr<uint64_t> EndAttempt(const Lease& lease, store::Outcome outcome,
                                      const AttemptResult& result, EndedBy by,
                                      const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends an expired lease (outcome EXPIRED): the ticker's path and every lazy check's.
  absl::StatusOr<uint64_t> Expire(const Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a LeaseEnded for the lease that just ended (the item's record is updated).
  void NoteEnded(const Lease& lease, store::Outcome outcome, EndedBy by, std::string reason,
                 std::string commit, uint64_t ticket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeSnapshot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The attempt that held `token`, if it has ended (a report that is retried after its answer
  // was lost is judged against it).
  const store::Attempt* EndedAttempt(const std::string& item_id, uint64_t token) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The answer a report of this attempt gets (fresh or repeated).
  ReportAnswer AnswerFor(const std::string& item_id, uint64_t token, bool repeat) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(Effects effects) ABSL_LOCKS_EXCLUDED(mu_);
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
  Effects effects_ ABSL_GUARDED_BY(mu_);
  absl::Status unavailable_ ABSL_GUARDED_BY(mu_);  // changes refused with this while not OK
  absl::Time unavailable_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t store_failures_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> leases_granted_{0};  // for /metrics: counted, never read under mu_
  std::atomic<uint64_t> leases_fenced_{0};

  absl::Mutex recover_mu_;
  bool failure_seen_ ABSL_GUARDED_BY(recover_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(recover_mu_) = false;
  std::thread recoverer_;

  absl::Mutex pending_mu_;
  std::function<void()> on_pending_ ABSL_GUARDED_BY(pending_mu_);
  absl::Mutex listener_mu_;  // held while events are delivered
  LeaseListener* listener_ ABSL_GUARDED_BY(listener_mu_) = nullptr;
};

template <typename T>
absl::StatusOr<T> WorkQueue::Wait(Pending<T> p) {
  if (p.ticket != 0) {
    if (absl::Status s = store_->WaitDurable(p.ticket); !s.ok()) return s;
  }
  return std::move(p.value);
}

}  // namespace harness
