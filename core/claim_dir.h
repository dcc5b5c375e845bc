// ClaimDir: the claims/ and leases/ folders, the on-disk arbiter of who holds which item.
//
// A claim is committed by link(leases/<item>.<token>, claims/<item>), which fails when the item
// is already claimed, so two claimers can never both win, whether they are threads or processes.
// Removal (release, breaking an expired claim) runs under an exclusive flock of claims/.lock
// plus an in-process mutex, so it can never remove a claim made after it looked (no ABA).
// Nothing is durable until Sync(), which fsyncs both folders: callers group many claims into one
// Sync (group commit).
//
// Not the lease state machine: the controller keeps leases in memory (LeaseTable) and uses this
// class only to commit them. Safe for concurrent use.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/records.pb.h"

namespace harness {

class ClaimDir {
 public:
  // Creates claims/ and leases/ if needed.
  static absl::StatusOr<std::unique_ptr<ClaimDir>> Open(const StatePaths& paths);

  // Writes the lease record and links claims/<item> to it. AlreadyExists, naming the item and
  // the current holder, if the item is claimed; nothing is left behind then.
  absl::Status Claim(const store::LeaseRecord& lease);

  // Makes every claim and removal done before this call durable (fsync of both folders).
  absl::Status Sync();
  // The fsyncs Sync() would do, as separate tasks the caller may run at the same time as
  // others (none if nothing changed since the last sync). If one fails, a later Sync redoes
  // both.
  std::vector<std::function<absl::Status()>> SyncTasks();

  // The current claim of an item. NotFound if none; DataLoss if its record is unreadable.
  absl::StatusOr<store::LeaseRecord> Read(absl::string_view item_id) const;

  // Removes the claim if it is the one with `token`. NotFound if the item is not claimed,
  // FailedPrecondition naming both tokens if another lease holds it.
  absl::Status Release(absl::string_view item_id, uint64_t token);

  // Removes the claim if its lease expired at `now` (or its record is unreadable) and returns
  // it; FailedPrecondition if it is still live, NotFound if there is none.
  absl::StatusOr<store::LeaseRecord> BreakIfExpired(absl::string_view item_id, absl::Time now);

  // Every claim on disk, for recovery. A claim whose record is torn (a crash before its data
  // reached the disk) is identified by the name of the lease file it is linked to.
  struct Entry {
    std::string item_id;
    uint64_t token = 0;                       // 0: unknown (no lease file links to it)
    std::optional<store::LeaseRecord> lease;  // empty if the record was torn
  };
  absl::StatusOr<std::vector<Entry>> Scan() const;

  // Removes the claim and its lease file without the removal lock: for the single owner of a
  // state dir (the controller), which serializes its own claims. Errors are ignored (a claim
  // left behind is repaired by recovery). The lease file is kept as a spare (`.spare-<n>`,
  // linked nowhere) that a later Claim renames and rewrites: creating and deleting an inode
  // per lease is what a busy controller's file system spends most on (ext4 scans its recently
  // deleted inodes on every create). Spares are orphans to recovery, which removes them.
  void Drop(absl::string_view item_id, uint64_t token);

  // Removes a claim without any check (recovery only, while the state dir lock is held).
  absl::Status RemoveUnchecked(absl::string_view item_id);
  // Removes lease files no claim links to and leftover temp files; returns how many.
  absl::StatusOr<int> RemoveOrphanLeaseFiles();

 private:
  ClaimDir(StatePaths paths, UniqueFd claims_fd, UniqueFd leases_fd, UniqueFd lock_fd)
      : paths_(std::move(paths)),
        claims_fd_(std::move(claims_fd)),
        leases_fd_(std::move(leases_fd)),
        lock_fd_(std::move(lock_fd)) {}

  // Runs fn under the in-process mutex and the cross-process flock.
  template <typename Fn>
  auto WithRemovalLock(Fn fn) ABSL_LOCKS_EXCLUDED(removal_mu_);
  // Whether claims/<item> is the same file as leases/<item>.<token>.
  absl::StatusOr<bool> ClaimIs(absl::string_view item_id, uint64_t token) const;

  const StatePaths paths_;
  UniqueFd claims_fd_;
  UniqueFd leases_fd_;
  UniqueFd lock_fd_;
  // A spare lease file renamed to `name` and rewritten with `content`; false if none was
  // available (the caller creates a new file).
  bool ReuseSpare(const std::string& name, absl::string_view content)
      ABSL_LOCKS_EXCLUDED(spare_mu_);

  absl::Mutex removal_mu_;
  absl::Mutex spare_mu_;
  std::vector<std::string> spares_ ABSL_GUARDED_BY(spare_mu_);
  uint64_t next_spare_ ABSL_GUARDED_BY(spare_mu_) = 0;
  std::atomic<bool> dirty_{false};
};

// Serializes a lease record as the content of a lease file (framed, checksummed).
std::string EncodeLeaseRecord(const store::LeaseRecord& lease);

}  // namespace harness
