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
  // A lease for every claimed item that has a running attempt, with one TTL from `now` for its
  // agent to come back. The claim is the attempt's whatever lease its record names: a grant is
  // answered only once its Granted record and its claim are both durable, so a claim whose
  // record is torn or names another token (a slot's record is rewritten in place and never
  // fsynced) either is that attempt's or belongs to a grant that was never answered, and
  // then the running attempt's end was not durable either: it is still that agent's to report.
  LeaseTable leases;
  // Kept claims whose record is not their lease's: the record to write over it, with a line
  // saying why for each.
  std::vector<store::LeaseRecord> rewrites;
  std::vector<std::string> rewrite_lines;
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
