// RecoveryPlan: what the queue's memory is, and what is to be repaired, given the durable state
// a Store loaded (items from the snapshot and journal, claims from the disk). Pure: no I/O and no
// lock. Used at open and when the queue rebuilds its memory after a failed write.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/item_table.h"
#include "core/lease_table.h"
#include "core/records.pb.h"
#include "core/store.h"

namespace harness {

struct RecoveryPlan {
  // A lease for every claim that is its item's running attempt, with one TTL from `now` for
  // its agent to come back.
  LeaseTable leases;
  // Claims to remove (item ids), with a line saying why for each.
  std::vector<std::string> stale_claims;
  std::vector<std::string> stale_lines;
  // Items leased in the journal with no claim on disk: the grant was never durable, or the
  // claim was dropped when the attempt ended but that end is not durable (never answered
  // either). Each gets an Ended(RELEASED) record that hands it back without counting an attempt.
  std::vector<store::JournalRecord> rollbacks;
};

RecoveryPlan PlanRecovery(const Store::Recovery& rec, const ItemTable& table, absl::Time now,
                          absl::Duration lease_ttl);

}  // namespace harness
