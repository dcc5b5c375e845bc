// WorkQueue after a failed write: refuse changes, rebuild the memory from what is durable, and
// serve again once the state dir takes writes (see work_queue.h and docs/STATE_DIR.md).
//
// The recovery thread does the I/O (reading the state dir, the probe writes) without holding the
// queue's lock; it takes the lock only to swap the rebuilt tables in. Changes are refused with
// `unavailable_` from the first failure until the end, so nothing but this thread writes then.
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/recovery_plan.h"
#include "core/work_queue.h"
#include "core/thread_name.h"

namespace harness {

std::vector<std::string> WorkQueue::RewriteKeptClaims(const RecoveryPlan& plan) {
  std::vector<std::string> lines;
  for (size_t i = 0; i < plan.rewrites.size(); ++i) {
    if (absl::Status s = store_->claims().Rewrite(plan.rewrites[i]); !s.ok()) {
      LogWarning(absl::StrCat("cannot rewrite the lease record of item ",
                              plan.rewrites[i].item_id(), ": ", s.message()));
      continue;
    }
    LogInfo(plan.rewrite_lines[i]);
    lines.push_back(plan.rewrite_lines[i]);
  }
  return lines;
}

StoreHealth WorkQueue::store_health() const {
  absl::MutexLock l(&mu_);
  StoreHealth h;
  h.status = unavailable_;
  h.failing_since = unavailable_.ok() ? absl::InfinitePast() : unavailable_since_;
  h.failures = store_failures_;
  return h;
}

absl::Status WorkQueue::StoreUnavailable(const absl::Status& cause) const {
  if (absl::IsUnavailable(cause)) return cause;
  return absl::UnavailableError(absl::StrCat(
      "state dir ", options_.state_dir, " cannot take writes (", cause.message(),
      "); changes are refused until a write succeeds again"));
}

absl::Status WorkQueue::Reload(bool finish) {
  ItemTable table;
  Store::Recovery rec;
  if (absl::Status s = store_->Load(&table, &rec); !s.ok()) return s;
  RecoveryPlan plan = PlanRecovery(rec, table, clock_->Now(), options_.lease_ttl);
  if (finish) {
    // Nobody claims meanwhile: the store refuses claims until Serve().
    for (size_t i = 0; i < plan.stale_claims.size(); ++i) {
      if (absl::Status s = store_->claims().RemoveUnchecked(plan.stale_claims[i]); !s.ok()) {
        return s;
      }
      LogInfo(plan.stale_lines[i]);
    }
    RewriteKeptClaims(plan);
    if (absl::StatusOr<int> n = store_->claims().RemoveOrphanLeaseFiles(); !n.ok()) {
      return n.status();
    }
  }
  uint64_t last = 0;
  std::vector<Lease> dropped;
  {
    absl::MutexLock l(&mu_);
    leases_.ForEach([&](const Lease& old) {
      const Lease* kept = plan.leases.Find(old.item_id);
      if (kept == nullptr || kept->token != old.token) dropped.push_back(old);
    });
    table_ = std::move(table);
    leases_ = std::move(plan.leases);
    next_token_ = std::max(next_token_, rec.max_token + 1);  // never reuse a token
    next_seq_ = std::max(next_seq_, table_.max_seq() + 1);
    if (finish) {
      for (const store::JournalRecord& r : plan.rollbacks) {
        absl::StatusOr<uint64_t> t = ApplyAndAppend(r);
        if (!t.ok()) return t.status();
        last = *t;
      }
    }
  }
  for (const Lease& l : dropped) {
    LogWarning(absl::StrCat("lease of item ", l.item_id, " (token ", l.token, ", agent ", l.agent,
                            ") is not durable and was dropped"));
  }
  if (last != 0) return store_->WaitDurable(last);
  return finish ? store_->claims().Sync() : absl::OkStatus();
}

void WorkQueue::RecoveryLoop() {
  NameThisThread("store-recovery");
  for (;;) {
    {
      absl::MutexLock l(&recover_mu_);
      recover_mu_.Await(absl::Condition(
          +[](WorkQueue* q) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return q->failure_seen_ || q->stopping_;
          },
          this));
      if (stopping_) return;
      failure_seen_ = false;
    }
    absl::Status failure = store_->health();
    if (failure.ok()) continue;  // a failure this thread already recovered from
    {
      absl::MutexLock l(&mu_);
      if (unavailable_.ok()) {
        unavailable_since_ = clock_->Now();
        ++store_failures_;
      }
      unavailable_ = failure;
    }
    LogError(absl::StrCat("refusing changes: ", failure.message()));
    bool memory_is_durable = false;
    for (int attempt = 1;; ++attempt) {
      absl::Status s = store_->Repair();
      if (s.ok() && !memory_is_durable) {
        s = Reload(/*finish=*/false);
        memory_is_durable = s.ok();
      }
      if (s.ok()) {
        store::JournalRecord probe;
        probe.mutable_resumed()->set_at_unix_ms(absl::ToUnixMillis(clock_->Now()));
        probe.mutable_resumed()->set_after_error(std::string(failure.message()));
        s = store_->Resume(probe);
      }
      if (s.ok()) {
        // Once more, now that the store takes writes: whatever a refused call left in memory
        // meanwhile is gone, and the hand-backs recovery decides are committed.
        s = Reload(/*finish=*/true);
        if (!s.ok()) memory_is_durable = false;
      }
      if (s.ok()) {
        {
          absl::MutexLock l(&mu_);
          store_->Serve();
          unavailable_ = absl::OkStatus();
        }
        LogInfo(absl::StrCat("state dir ", options_.state_dir, " takes writes again after ",
                             attempt, " attempts; serving"));
        NotifyPending();
        break;
      }
      {
        absl::MutexLock l(&mu_);
        unavailable_ = StoreUnavailable(s);
      }
      if (attempt == 1 || attempt % 60 == 0) {
        LogWarning(absl::StrCat("still refusing changes (attempt ", attempt, "): ", s.message()));
      }
      absl::MutexLock l(&recover_mu_);
      if (recover_mu_.AwaitWithTimeout(
              absl::Condition(+[](bool* stop) { return *stop; }, &stopping_),
              options_.store_retry_interval)) {
        return;
      }
    }
  }
}

}  // namespace harness
