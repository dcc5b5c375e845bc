// Recovery decisions (see recovery_plan.h).
#include "core/recovery_plan.h"

#include "absl/strings/str_cat.h"
#include "absl/container/flat_hash_set.h"
#include "core/ids.h"

namespace harness {

RecoveryPlan PlanRecovery(const Store::Recovery& rec, const ItemTable& table, absl::Time now,
                          absl::Duration lease_ttl) {
  RecoveryPlan plan;
  // Claims on disk against the journal: a claim is kept only if its item has a running attempt.
  absl::flat_hash_set<std::string> kept;
  for (const ClaimDir::Entry& c : rec.claims) {
    const store::ItemRecord* item = table.Find(c.item_id);
    const store::Attempt* running = item ? ItemTable::RunningAttempt(*item) : nullptr;
    if (running != nullptr) {
      Lease lease;
      lease.item_id = c.item_id;
      lease.token = running->lease_token();
      lease.agent = running->agent();
      lease.attempt = running->number();
      lease.base = running->base();
      lease.granted = absl::FromUnixMillis(running->started_unix_ms());
      lease.expires = now + lease_ttl;  // one TTL for its agent to come back
      if (c.token != lease.token) {
        store::LeaseRecord r;
        r.set_item_id(lease.item_id);
        r.set_token(lease.token);
        r.set_agent(lease.agent);
        r.set_attempt(lease.attempt);
        r.set_granted_unix_ms(absl::ToUnixMillis(lease.granted));
        r.set_expires_unix_ms(absl::ToUnixMillis(lease.expires));
        plan.rewrites.push_back(std::move(r));
        plan.rewrite_lines.push_back(absl::StrCat(
            "rewrote the lease record of item ", QuoteForMessage(c.item_id),
            " for its running attempt (lease token ", lease.token, "): it ",
            c.token == 0 ? "was torn or named another item"
                         : absl::StrCat("named lease token ", c.token)));
      }
      plan.leases.Add(std::move(lease));
      kept.insert(c.item_id);
      continue;
    }
    std::string why = item == nullptr ? "its item was never committed"
                                      : absl::StrCat("the item is ", ItemStateName(item->state()));
    plan.stale_claims.push_back(c.item_id);
    plan.stale_lines.push_back(absl::StrCat("removed stale claim of item ",
                                            QuoteForMessage(c.item_id), " (lease token ", c.token,
                                            "): ", why));
  }
  table.ForEach([&](const store::ItemRecord& item) {
    if (item.state() != store::ITEM_LEASED || kept.contains(item.spec().id())) return;
    const store::Attempt* running = ItemTable::RunningAttempt(item);
    store::JournalRecord r;
    store::Ended* e = r.mutable_ended();
    e->set_item_id(item.spec().id());
    e->set_token(running ? running->lease_token() : 0);
    e->set_outcome(store::OUTCOME_RELEASED);
    e->set_error(
        "handed back at recovery: a crash or a failed write interrupted this grant or the end of "
        "the attempt");
    e->set_at_unix_ms(absl::ToUnixMillis(now));
    plan.rollbacks.push_back(std::move(r));
  });
  return plan;
}

}  // namespace harness
