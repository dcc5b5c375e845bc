// Store: the durable side of the queue. It owns the state dir (its lock, the journal, the claims
// and the snapshot) and commits in groups: every record and claim handed to it between two
// fsyncs becomes durable with one journal fdatasync plus one fsync of the lease folders, and
// only then are their callers answered.
//
// Threading: Append/Claim/BeginSnapshot are called under the caller's lock, in the
// order the caller applied the changes to memory (so the journal order is the apply order); they
// only queue, and do no I/O. WaitDurable / WhenDurable are called outside it. A committer thread
// (with a sync thread beside it) does all the I/O, the claims' included, and then runs the
// callbacks of the tickets it made durable, in ticket order.
//
// A failed write or fsync fails its round: the callers of that round and of every later one get
// Unavailable (naming the state dir and the system's error) and Claim refuses, until the owner
// repairs and resumes the store (WorkQueue does, see its RecoveryLoop):
//   Repair()  cuts the journal back to the last point known durable and makes that durable, so
//             what a reader finds on disk is exactly what was committed (a failed fsync leaves
//             pages that look clean but never reached the disk: the PostgreSQL "fsyncgate"
//             lesson; they are cut off, never trusted);
//   Load()    reads the durable state, as Open does at start;
//   Resume()  starts a new journal segment with a probe record; it succeeds only once the disk
//             takes writes again, and then rounds commit again;
//   Serve()   lets Claim through again (the owner calls it once its memory matches the disk).
// A ticket is either durable or lost, never both: a lost ticket stays lost after a resume.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/claim_dir.h"
#include "core/histogram.h"
#include "core/item_table.h"
#include "core/journal.h"
#include "core/paths.h"
#include "core/records.pb.h"
#include "core/state_lock.h"
#include "core/sync_pool.h"

namespace harness {

class Store {
 public:
  struct Options {
    // Off: one fsync round per record, for measuring what group commit buys.
    bool group_commit = true;
  };

  // What Open found besides the items.
  struct Recovery {
    uint64_t snapshot_items = 0;
    uint64_t journal_records = 0;
    uint64_t max_token = 0;               // highest token in the snapshot, any record or claim
    std::vector<ClaimDir::Entry> claims;  // every claim on disk
    std::vector<std::string> repairs;     // one line per repaired or quarantined file
    uint64_t next_segment = 1;            // the journal segment to start next
    uint64_t journal_bytes = 0;           // bytes of the journal replayed
  };

  // The snapshot of `table` (with header's counters and first segment) as written to disk: one
  // frame per ~8 MiB of items, so no frame grows with the queue.
  static std::string EncodeSnapshot(const store::Snapshot& header, const ItemTable& table);

  // Locks the state dir (FailedPrecondition if another controller holds it), loads the snapshot,
  // replays the journal into *table, scans the claims and starts a new journal segment.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& state_dir, Options options,
                                                     ItemTable* table, Recovery* recovery);
  ~Store();  // waits for everything appended to be committed (or failed)

  // The largest record Append takes (a frame must stay under the readers' limit).
  static constexpr size_t kMaxRecordBytes = (256u << 20) - 64;

  const StatePaths& paths() const { return paths_; }
  ClaimDir& claims() { return *claims_; }

  // An attempt's claim: its item and lease token.
  struct ClaimRef {
    absl::string_view item_id;
    uint64_t token = 0;
  };

  // Buffers a record; returns its ticket. The caller checks the size first (RecordSize). With
  // `unclaim` (a record that ends an attempt), that attempt's claim is removed by the round
  // that commits the record or an earlier one, so it is gone once the record is durable; the
  // removal itself is never waited for: a removal lost in a crash leaves a claim that recovery
  // recognises as stale, and one made before its record was durable leaves an attempt that
  // recovery hands back.
  uint64_t Append(const store::JournalRecord& record,
                  std::optional<ClaimRef> unclaim = std::nullopt);
  // Queues the claim: the next round writes its lease record and links claims/<item> (on the
  // sync thread, before that round's fsync of claims/, beside the journal's fdatasync), so it
  // is durable with the ticket of the record appended after it, and no caller does the I/O
  // under its lock. InvalidArgument for a bad item id; Unavailable while the store is failing
  // or not yet serving again. A claim the round cannot make (the disk is full, the item is
  // claimed already) fails that round like a failed write: its tickets are lost, and the
  // owner's recovery rebuilds the memory from the disk.
  absl::Status Claim(store::LeaseRecord lease);

  // The ticket of the last record appended: waiting for it waits for everything appended so far.
  uint64_t last_ticket() const;

  // Blocks until `ticket` is durable (or the store failed).
  absl::Status WaitDurable(uint64_t ticket);
  // Calls done(status) once `ticket` is durable (or lost): on the committer thread, or right
  // away on this one when it is durable already and no callback of a ticket up to it is still
  // to run. So callbacks run in ticket order, and those of one ticket in the order they were
  // registered (a callback registered while an earlier one of its ticket runs waits for it).
  void WhenDurable(uint64_t ticket, std::function<void(absl::Status)> done);

  // Journal bytes appended since the last snapshot began.
  uint64_t bytes_since_snapshot() const;
  // Starts a new journal segment at this point of the order and returns its number; the
  // caller then serializes its state (as of this point) and passes it to FinishSnapshot.
  uint64_t BeginSnapshot();
  // Writes the snapshot atomically after the segment switch is durable and deletes the
  // journal segments it covers. Asynchronous (on the committer thread).
  void FinishSnapshot(std::string snapshot_bytes, uint64_t first_segment);

  // Commit rounds and records so far (for benchmarks and tests).
  uint64_t rounds() const;
  // How long each round's syncs (the journal's fdatasync and the lease folders' fsyncs, run
  // at once) took, for /metrics. Lock-free.
  HistogramSnapshot sync_latency() const { return sync_latency_.Get(); }
  // How long each whole round took, from taking its batch to its callers answered (the journal
  // write, the syncs and the answers run on the committer). Lock-free.
  HistogramSnapshot round_latency() const { return round_latency_.Get(); }

  // OK while rounds commit; otherwise the Unavailable error callers get.
  absl::Status health() const;
  // Called on the committer thread (no lock held) when a round fails while the store was
  // committing. Must not block; nullptr to unset.
  void SetOnFailure(std::function<void()> fn) {
    absl::MutexLock l(&mu_);
    on_failure_ = std::move(fn);
  }
  // After a failure: closes the journal, cuts it back to the last durable point, removes what a
  // failed snapshot left, and fsyncs all of it. Idempotent; OK at once if the store has not
  // failed.
  absl::Status Repair();
  // Reads the snapshot, the journal and the claims into an empty *table (as Open does).
  absl::Status Load(ItemTable* table, Recovery* recovery);
  // After Repair: starts a new journal segment whose first record is `probe` and makes it
  // durable; then rounds commit again (Claim still refuses until Serve). OK at once if the
  // store has not failed.
  absl::Status Resume(const store::JournalRecord& probe);
  // Lets Claim through again.
  void Serve();

  // While any hold is out, the committer does not start a new round: changes made under one
  // hold (an item's completion and the next grant of the same agent) share a round instead of
  // costing two. Holds are short (no I/O under them); Release() ends one.
  void Hold();
  void Release();

 private:
  struct Entry {
    enum Kind { kRecord, kRotate, kSnapshot } kind = kRecord;
    uint64_t ticket = 0;
    std::string bytes;  // framed record, or snapshot contents
    uint64_t segment = 0;
  };

  // A claim to make (its lease record) or, with `remove`, one to drop (item and token).
  struct ClaimOp {
    store::LeaseRecord lease;
    bool remove = false;
  };

  // A place in the journal: everything before it is durable.
  struct Position {
    uint64_t segment = 0;
    uint64_t offset = 0;
  };

  Store(StatePaths paths, Options options) : paths_(std::move(paths)), options_(options) {}
  void CommitLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Commits the batch in order. Sets *durable_ticket to the last ticket known durable (0 if
  // none) and *durable_at to where the journal was durable then, also when it fails midway.
  absl::Status CommitBatch(std::vector<Entry>& batch, std::vector<ClaimOp>& claim_ops,
                           uint64_t* durable_ticket, Position* durable_at);
  // Makes and drops the queued claims in order (a failed drop is left to recovery, as a crash
  // would leave it); the first claim that cannot be made stops it with its error.
  absl::Status ApplyClaimOps(std::vector<ClaimOp>& claim_ops);
  // Runs the callbacks of tickets durable or lost, in order, until none is ready (the
  // committer, which set answering_; this clears it when done).
  void Answer() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a callback of a ticket up to `ticket` is still to run.
  bool EarlierToAnswer(uint64_t ticket) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The error of a lost ticket, or nullopt.
  std::optional<absl::Status> LostError(uint64_t ticket) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Unavailable(const absl::Status& cause) const;

  const StatePaths paths_;
  const Options options_;
  std::unique_ptr<StateLock> lock_;
  std::unique_ptr<ClaimDir> claims_;
  // The committer's while rounds commit; Repair's and Resume's while failed_ is set (the
  // committer never touches it then).
  std::unique_ptr<Journal> journal_;

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  // Claims queued since the committer last took a batch, in the order they were made.
  std::vector<ClaimOp> claim_ops_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar durable_cv_;  // signalled when durable_ or failed_ changes
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // Unavailable from a failed round to Resume
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);  // the same, until Serve
  bool serving_ ABSL_GUARDED_BY(mu_) = true;  // Claim allowed (false from a failure to Serve)
  // Tickets that failed: first -> (last, error). Never durable, also after a resume.
  std::map<uint64_t, std::pair<uint64_t, absl::Status>> lost_ ABSL_GUARDED_BY(mu_);
  Position durable_at_ ABSL_GUARDED_BY(mu_);  // where the journal was durable last
  std::function<void()> on_failure_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_since_snapshot_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t planned_segment_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<uint64_t, std::function<void(absl::Status)>> callbacks_ ABSL_GUARDED_BY(mu_);
  // The committer is running callbacks. Set whenever a callback in callbacks_ is ready (durable
  // or lost): a ready one registered meanwhile joins them instead of running ahead.
  bool answering_ ABSL_GUARDED_BY(mu_) = false;
  Histogram sync_latency_{Histogram::LatencyBounds()};
  Histogram round_latency_{Histogram::LatencyBounds()};
  // The round's fsyncs at once (committer thread only): the journal's on the committer,
  // claims/ on the worker; leases/, only when a slot was made, on whichever is free first.
  SyncPool syncs_{1};
  std::thread committer_;
};

}  // namespace harness
