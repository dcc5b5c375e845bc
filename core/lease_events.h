// The one "lease ended" event of the lease protocol. Every way a lease can end (its agent's
// complete, fail or release; expiry; cancel; an agent registering or stopping without it) goes
// through WorkQueue's single end path, which publishes one LeaseEnded once the end is durable.
// Whatever must follow an end (telling the agent, metrics, landing the result's ref, keeping a
// failed attempt's work) is done by the listener from this event, never by the caller that
// happened to end the lease, so no path can skip a side effect.
//
// No gRPC and no I/O here: the controller implements LeaseListener.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "core/lease_table.h"
#include "core/records.pb.h"

namespace harness {

// Who ended a lease.
enum class EndedBy {
  kAgent,      // its own agent reported (complete, fail, release): it knows
  kExpiry,     // its TTL ran out: the agent must be told (LeaseLost)
  kCancel,     // an operator cancelled the item: the agent must be told (CancelItem)
  kReconcile,  // its agent registered again or stopped without listing it (LeaseLost)
};

struct LeaseEnded {
  Lease lease;                  // as it was when it ended
  store::Outcome outcome = store::OUTCOME_UNSPECIFIED;
  EndedBy by = EndedBy::kAgent;
  std::string reason;           // for the agent and the log when not kAgent
  absl::Time at;
  store::ItemState item_state = store::ITEM_STATE_UNSPECIFIED;  // the item's state after it
  // The ref to move, as recorded in the journal (the only commit that may ever land):
  // DONE with a commit: harness/<item> -> commit. FAILED/TIMEOUT/STALLED with a commit: the
  // attempt's work, harness-attempt/<item>/<attempt> -> commit. Empty: nothing to land.
  std::string commit;
};

// The queue's other state changes, for the event feed (harnessctl events): an item submitted,
// a lease granted, a failed or parked item retried, a pending item cancelled. (A lease's end,
// including the cancel of a leased item, is a LeaseEnded.)
struct ItemChanged {
  enum Kind { kSubmitted, kLeased, kRetried, kCancelled } kind = kSubmitted;
  std::string item_id;
  Lease lease;  // kLeased: the new lease
  absl::Time at;
};

// Receives every LeaseEnded and ItemChanged, in journal order, once durable; on the store's
// committer thread, so an implementation must not block or do I/O there (hand the work to a
// thread of its own).
class LeaseListener {
 public:
  virtual ~LeaseListener() = default;
  virtual void OnLeaseEnded(const LeaseEnded& ended) = 0;
  virtual void OnItemChanged(const ItemChanged& /*changed*/) {}
};

}  // namespace harness
