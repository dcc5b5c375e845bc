// ItemTable: every item and its state, plus the pending order (higher priority first, then
// older first). The one place where journal records change items: live operation and recovery
// both go through Apply(), so what replay rebuilds is exactly what was running.
//
// Knows nothing of leases' timing, disks or RPCs; not thread-safe (WorkQueue locks around it).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/records.pb.h"

namespace harness {

struct QueueCounts {
  int64_t total = 0, pending = 0, leased = 0, done = 0, failed = 0, parked = 0, cancelled = 0;
};

const char* ItemStateName(store::ItemState s);  // "pending", "leased", ...
const char* OutcomeName(store::Outcome o);      // "running", "done", ...
// "pending" -> ITEM_PENDING; ITEM_STATE_UNSPECIFIED for an unknown name.
store::ItemState ItemStateFromName(absl::string_view name);

class ItemTable {
 public:
  // Applies one record. FailedPrecondition if it does not fit the item's state (a record that
  // would break an invariant is refused, never half-applied: a batch of submitted items is
  // added whole or, if any of its items is refused, not at all).
  absl::Status Apply(const store::JournalRecord& rec);

  const store::ItemRecord* Find(absl::string_view id) const;
  bool Contains(absl::string_view id) const { return Find(id) != nullptr; }
  // The pending item that runs next, or nullptr.
  const store::ItemRecord* NextPending() const;
  // Pending items in run order (at most `limit`).
  std::vector<const store::ItemRecord*> PendingInOrder(size_t limit) const;
  // All items, in submission order when sorted by the caller (unordered here).
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [id, item] : items_) fn(item);
  }
  const QueueCounts& counts() const { return counts_; }
  size_t size() const { return items_.size(); }
  uint64_t max_seq() const { return max_seq_; }
  uint64_t max_token() const { return max_token_; }

  // The attempt that holds `token` while the item is leased, or nullptr.
  static const store::Attempt* RunningAttempt(const store::ItemRecord& item);
  // Attempts since the last retry that count against max_attempts.
  static int CountedAttempts(const store::ItemRecord& item);

 private:
  using PendingKey = std::tuple<int64_t, uint64_t, std::string>;  // (-priority, seq, id)
  static PendingKey KeyOf(const store::ItemRecord& item) {
    return {-item.spec().priority(), item.seq(), item.spec().id()};
  }
  void SetState(store::ItemRecord* item, store::ItemState state);
  // Whether a submitted item can be added (it has an id no item has).
  absl::Status CheckNew(const store::ItemRecord& in) const;
  void AddItem(const store::ItemRecord& in);
  absl::Status ApplyEnded(const store::Ended& e);

  absl::flat_hash_map<std::string, store::ItemRecord> items_;
  std::set<PendingKey> pending_;
  QueueCounts counts_;
  uint64_t max_seq_ = 0;
  uint64_t max_token_ = 0;
};

}  // namespace harness
