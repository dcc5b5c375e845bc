// ClaimDir: the claims/ and leases/ folders, the on-disk arbiter of who holds which item.
//
// A claim is committed by link(leases/.slot-<n>, claims/<item>), which fails when the item is
// already claimed, so two claimers can never both win, whether they are threads or processes.
// A slot is a lease record file this ClaimDir owns and reuses: the record of the next lease it
// holds is written over it in place (pwrite through a descriptor kept open) once no claim links
// to it, so a grant costs a write and a link and an end one unlink, and the folder leases/ does
// not change in the steady state. Removal by a non-owner (release, breaking an expired claim)
// runs under an exclusive flock of leases/.lock plus an in-process mutex, so it can never remove
// a claim made after it looked (no ABA). Nothing is durable until Sync(), which fsyncs claims/
// (and leases/ when a slot was made): callers group many claims into one Sync (group commit).
//
// A record's bytes are never fsynced: after a crash a claim may link to a record that is torn or
// still names the lease its slot held before. The claim itself (the link) is what is durable;
// recovery gives it to its item's running attempt in the journal (core/recovery_plan.h).
//
// Not the lease state machine: the controller keeps leases in memory (LeaseTable) and uses this
// class only to commit them. Safe for concurrent use.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
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
  // Removes this ClaimDir's slots that no claim links to.
  ~ClaimDir();

  // Writes the lease record and links claims/<item> to it. AlreadyExists, naming the item and
  // the current holder, if the item is claimed; nothing is left behind then.
  absl::Status Claim(const store::LeaseRecord& lease);

  // Makes every claim and removal done before this call durable (fsync of claims/, and of
  // leases/ when a slot was made or removed).
  absl::Status Sync();
  // The fsyncs Sync() would do, as separate tasks the caller may run at the same time as
  // others (none if nothing changed since the last sync). If one fails, a later Sync redoes it.
  std::vector<std::function<absl::Status()>> SyncTasks();

  // The current claim of an item. NotFound if none; DataLoss if its record is unreadable.
  absl::StatusOr<store::LeaseRecord> Read(absl::string_view item_id) const;

  // Removes the claim if it is the one with `token`. NotFound if the item is not claimed,
  // FailedPrecondition naming both tokens if another lease holds it (or its record is torn).
  absl::Status Release(absl::string_view item_id, uint64_t token);

  // Removes the claim if its lease expired at `now` (or its record is unreadable) and returns
  // it; FailedPrecondition if it is still live, NotFound if there is none.
  absl::StatusOr<store::LeaseRecord> BreakIfExpired(absl::string_view item_id, absl::Time now);

  // Every claim on disk, for recovery.
  struct Entry {
    std::string item_id;
    uint64_t token = 0;                       // 0: the record is torn or names another item
    std::optional<store::LeaseRecord> lease;  // the record, if it is this item's
  };
  absl::StatusOr<std::vector<Entry>> Scan() const;

  // Removes the claim without the removal lock and frees its slot: for the single owner of a
  // state dir (the controller), which serializes its own claims. Errors are ignored (a claim
  // left behind is repaired by recovery).
  void Drop(absl::string_view item_id, uint64_t token);

  // Writes `lease` over the record of its item's claim (recovery: a kept claim whose record is
  // torn or names another lease). NotFound if the item is not claimed.
  absl::Status Rewrite(const store::LeaseRecord& lease);

  // Removes a claim without any check (recovery only, while the state dir lock is held).
  absl::Status RemoveUnchecked(absl::string_view item_id);
  // Removes files in leases/ that no claim links to and that are not this ClaimDir's slots
  // (slots of an earlier run, lease files of older versions, leftover temp files); returns how
  // many.
  absl::StatusOr<int> RemoveOrphanLeaseFiles();

 private:
  // A lease record file this ClaimDir made. Slots never go away while it lives.
  struct Slot {
    std::string name;  // in leases/
    int fd = -1;       // open for writing, or -1 past kMaxOpenSlots (opened per write)
    size_t size = 0;   // bytes of the record it holds
  };

  ClaimDir(StatePaths paths, UniqueFd claims_fd, UniqueFd leases_fd, UniqueFd lock_fd)
      : paths_(std::move(paths)),
        claims_fd_(std::move(claims_fd)),
        leases_fd_(std::move(leases_fd)),
        lock_fd_(std::move(lock_fd)) {}

  // Runs fn under the in-process mutex and the cross-process flock.
  template <typename Fn>
  auto WithRemovalLock(Fn fn) ABSL_LOCKS_EXCLUDED(removal_mu_);

  // A free slot (made if none is free), or an error if one cannot be made. Its index and a
  // copy of it; the slot stays reserved until Link succeeds or FreeSlot gives it back.
  absl::StatusOr<std::pair<size_t, Slot>> TakeSlot() ABSL_LOCKS_EXCLUDED(slot_mu_);
  // Writes `content` over the slot's record; false on error (errno set).
  bool WriteSlot(size_t index, const Slot& slot, absl::string_view content)
      ABSL_LOCKS_EXCLUDED(slot_mu_);
  void FreeSlot(size_t index) ABSL_LOCKS_EXCLUDED(slot_mu_);
  // The slot of lease `token` of the item is free again (its claim was removed here). Keyed by
  // the token, not the item alone: another thread may claim the item again between this
  // claim's unlink and this call. nullopt (recovery): every slot of the item.
  void Unheld(absl::string_view item_id, std::optional<uint64_t> token)
      ABSL_LOCKS_EXCLUDED(slot_mu_);
  absl::Status Unlink(absl::string_view item_id, std::optional<uint64_t> token);

  const StatePaths paths_;
  UniqueFd claims_fd_;
  UniqueFd leases_fd_;
  UniqueFd lock_fd_;

  absl::Mutex removal_mu_;
  mutable absl::Mutex slot_mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(slot_mu_);
  std::vector<size_t> free_ ABSL_GUARDED_BY(slot_mu_);
  // (item, lease token) -> the slot linked as its claim. A claim removed by another process
  // leaves its entry (and slot) behind until this ClaimDir closes.
  absl::flat_hash_map<std::pair<std::string, uint64_t>, size_t> held_ ABSL_GUARDED_BY(slot_mu_);
  uint64_t next_slot_name_ ABSL_GUARDED_BY(slot_mu_) = 0;
  std::atomic<bool> claims_dirty_{false};
  std::atomic<bool> leases_dirty_{false};
};

// Serializes a lease record as the content of a lease file (framed, checksummed).
std::string EncodeLeaseRecord(const store::LeaseRecord& lease);

}  // namespace harness
