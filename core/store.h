// Store: the durable side of the queue. It owns the state dir (its lock, the journal, the claims
// and the snapshot) and commits in groups: every record and claim handed to it between two
// fsyncs becomes durable with one journal fdatasync plus one fsync of the lease folders, and
// only then are their callers answered.
//
// Threading: Append/Claim/BeginSnapshot are called under the caller's lock, in the order the
// caller applied the changes to memory (so the journal order is the apply order). WaitDurable /
// WhenDurable are called outside it. A committer thread does the I/O.
//
// A failed write or fsync poisons the store: whether data reached the disk is unknown, so every
// later commit fails with that error and the controller must exit; restart recovers what is
// durable (the PostgreSQL "fsyncgate" lesson).
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
  };

  // Locks the state dir (FailedPrecondition if another controller holds it), loads the snapshot,
  // replays the journal into *table, scans the claims and starts a new journal segment.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& state_dir, Options options,
                                                     ItemTable* table, Recovery* recovery);
  ~Store();  // waits for everything appended to be committed

  const StatePaths& paths() const { return paths_; }
  ClaimDir& claims() { return *claims_; }

  // Buffers a record; returns its ticket.
  uint64_t Append(const store::JournalRecord& record);
  // Links the claim now; it is durable with the next ticket's commit.
  absl::Status Claim(const store::LeaseRecord& lease) { return claims_->Claim(lease); }
  // Removes the claim of an attempt that ended, at once and without waiting for the disk: a
  // removal lost in a crash leaves a claim that recovery recognises as stale, and a claim
  // removed before its end record was durable leaves an attempt that recovery hands back.
  void Unclaim(absl::string_view item_id, uint64_t token) { claims_->Drop(item_id, token); }

  // Blocks until `ticket` is durable (or the store failed).
  absl::Status WaitDurable(uint64_t ticket);
  // Calls done(status) once `ticket` is durable, on the committer thread (or right away).
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

  Store(StatePaths paths, Options options) : paths_(std::move(paths)), options_(options) {}
  void CommitLoop() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CommitBatch(std::vector<Entry>& batch);
  void RunCallbacks(uint64_t durable, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  const StatePaths paths_;
  const Options options_;
  std::unique_ptr<StateLock> lock_;
  std::unique_ptr<ClaimDir> claims_;
  std::unique_ptr<Journal> journal_;  // committer thread only (after Open)

  mutable absl::Mutex mu_;
  std::deque<Entry> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::CondVar durable_cv_;  // signalled when durable_ or failed_ changes
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_since_snapshot_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t planned_segment_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rounds_ ABSL_GUARDED_BY(mu_) = 0;
  std::multimap<uint64_t, std::function<void(absl::Status)>> callbacks_ ABSL_GUARDED_BY(mu_);
  SyncPool syncs_{2};  // the round's fsyncs at once (committer thread only)
  std::thread committer_;
};

}  // namespace harness
