// The queue and lease state machine (see work_queue.h).
#include "core/work_queue.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/recovery_plan.h"

namespace harness {
namespace {

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

// The word of the log line for an attempt that ended with `outcome` ("item done", ...).
const char* EndWord(store::Outcome outcome) {
  switch (outcome) {
    case store::OUTCOME_DONE:
      return "done";
    case store::OUTCOME_EXPIRED:
      return "expired";
    case store::OUTCOME_RELEASED:
      return "released";
    case store::OUTCOME_CANCELLED:
      return "cancelled";
    default:
      return "failed";  // failed, timeout, stalled: the outcome field says which
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkQueue>> WorkQueue::Open(WorkQueueOptions options, Clock* clock) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("state dir is empty");
  if (options.lease_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease ttl must be positive");
  }
  auto q = std::unique_ptr<WorkQueue>(new WorkQueue(std::move(options), clock));
  absl::MutexLock l(&q->mu_);
  Store::Recovery rec;
  Store::Options so;
  so.group_commit = q->options_.group_commit;
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::Open(q->options_.state_dir, so, &q->table_, &rec);
  if (!store.ok()) return store.status();
  q->store_ = std::move(*store);
  absl::Status recovered = q->Recover(rec);
  // A write of the recovery itself failed (a full disk at start-up): the store refuses changes
  // from now on. Start anyway, as after any failed write: reads are served, changes refused,
  // and the recovery thread redoes the recovery's writes once the state dir takes them.
  const bool store_failing = !recovered.ok() && !q->store_->health().ok();
  if (!recovered.ok() && !store_failing) return recovered;
  WorkQueue* qp = q.get();
  q->store_->SetOnFailure([qp] {
    absl::MutexLock l(&qp->recover_mu_);
    qp->failure_seen_ = true;
  });
  if (store_failing) {
    LogError(absl::StrCat("recovery could not write: ", recovered.message(),
                          "; serving reads and refusing changes until the state dir takes writes"));
    q->unavailable_ = q->StoreUnavailable(recovered);
    q->unavailable_since_ = clock->Now();
    ++q->store_failures_;
    absl::MutexLock l(&q->recover_mu_);
    q->failure_seen_ = true;
  }
  q->recoverer_ = std::thread([qp] { qp->RecoveryLoop(); });
  return q;
}

WorkQueue::~WorkQueue() {
  if (store_ != nullptr) store_->SetOnFailure(nullptr);
  {
    absl::MutexLock l(&recover_mu_);
    stopping_ = true;
  }
  if (recoverer_.joinable()) recoverer_.join();
  // The store's last callbacks (event deliveries) use this object's members: finish them first.
  store_.reset();
}

absl::Status WorkQueue::Recover(const Store::Recovery& rec) {
  recovery_.journal_records = rec.journal_records;
  recovery_.repairs = rec.repairs;
  next_token_ = rec.max_token + 1;
  next_seq_ = table_.max_seq() + 1;
  RecoveryPlan plan = PlanRecovery(rec, table_, clock_->Now(), options_.lease_ttl);
  leases_ = std::move(plan.leases);
  recovery_.leases_kept = leases_.size();
  for (size_t i = 0; i < plan.stale_claims.size(); ++i) {
    if (absl::Status s = store_->claims().RemoveUnchecked(plan.stale_claims[i]); !s.ok()) return s;
    LogInfo(plan.stale_lines[i]);
    recovery_.repairs.push_back(plan.stale_lines[i]);
    ++recovery_.claims_removed;
  }
  for (std::string& line : RewriteKeptClaims(plan)) recovery_.repairs.push_back(std::move(line));
  uint64_t last = 0;
  for (const store::JournalRecord& r : plan.rollbacks) {
    absl::StatusOr<uint64_t> t = Commit(r);
    if (!t.ok()) return t.status();
    last = *t;
    ++recovery_.grants_rolled_back;
  }
  absl::StatusOr<int> orphans = store_->claims().RemoveOrphanLeaseFiles();
  if (!orphans.ok()) return orphans.status();
  recovery_.items = table_.size();
  if (last != 0) {
    if (absl::Status s = store_->WaitDurable(last); !s.ok()) return s;
  } else if (absl::Status s = store_->claims().Sync(); !s.ok()) {
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> WorkQueue::Commit(const store::JournalRecord& rec,
                                           std::optional<Store::ClaimRef> unclaim) {
  if (!unavailable_.ok()) return unavailable_;
  return ApplyAndAppend(rec, unclaim);
}

absl::StatusOr<uint64_t> WorkQueue::ApplyAndAppend(const store::JournalRecord& rec,
                                                   std::optional<Store::ClaimRef> unclaim) {
  if (size_t size = rec.ByteSizeLong(); size > Store::kMaxRecordBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("a journal record of ", size,
                                                     " bytes is too large: at most ",
                                                     Store::kMaxRecordBytes));
  }
  if (absl::Status s = table_.Apply(rec); !s.ok()) return s;
  return store_->Append(rec, unclaim);
}

void WorkQueue::WhenDurable(uint64_t ticket, std::function<void(absl::Status)> done) {
  if (ticket == 0) {
    done(absl::OkStatus());
    return;
  }
  store_->WhenDurable(ticket, std::move(done));
}

void WorkQueue::SetOnPending(std::function<void()> fn) {
  absl::MutexLock l(&pending_mu_);
  on_pending_ = std::move(fn);
}

void WorkQueue::NotifyPending() {
  std::function<void()> fn;
  {
    absl::MutexLock l(&pending_mu_);
    fn = on_pending_;
  }
  if (fn) fn();
}

void WorkQueue::MaybeSnapshot() {
  if (store_->bytes_since_snapshot() < options_.snapshot_after_bytes) return;
  uint64_t segment = store_->BeginSnapshot();
  store::Snapshot header;
  header.set_next_token(next_token_);
  header.set_next_seq(next_seq_);
  header.set_first_segment(segment);
  store_->FinishSnapshot(Store::EncodeSnapshot(header, table_), segment);
}

Pending<std::vector<std::string>> WorkQueue::BeginSubmit(std::vector<store::ItemSpec> specs) {
  if (absl::Status s = CheckItemsPerSubmit(options_.limits, specs.size()); !s.ok()) return {s, 0};
  std::vector<std::string> ids;
  uint64_t ticket = 0;
  {
    Txn txn(this);  // publishes the submitted items once durable
    if (!unavailable_.ok()) return {unavailable_, 0};
    const QueueCounts& counts = table_.counts();
    if (absl::Status s = CheckQueueRoom(options_.limits,
                                        static_cast<uint64_t>(counts.pending + counts.leased),
                                        specs.size());
        !s.ok()) {
      return {s, 0};
    }
    absl::flat_hash_set<std::string> batch_ids;
    for (size_t i = 0; i < specs.size(); ++i) {
      store::ItemSpec& spec = specs[i];
      if (absl::Status s = NormalizeSpec(options_.defaults, options_.limits, &spec); !s.ok()) {
        std::string where = specs.size() > 1 ? absl::StrCat("item #", i + 1, ": ") : "";
        return {absl::InvalidArgumentError(absl::StrCat(where, s.message())), 0};
      }
      if (!spec.id().empty()) {
        if (table_.Contains(spec.id()) || !batch_ids.insert(spec.id()).second) {
          return {absl::AlreadyExistsError(
                      absl::StrCat("item ", QuoteForMessage(spec.id()), ": id is already taken")),
                  0};
        }
      }
    }
    // One record for the whole call: the journal keeps all of it or none (a torn record is cut
    // off whole), whatever stops the controller.
    const absl::Time now = clock_->Now();
    store::JournalRecord rec;
    for (store::ItemSpec& spec : specs) {
      uint64_t seq = next_seq_++;
      if (spec.id().empty()) {
        std::string id = absl::StrCat("item-", seq);
        for (int k = 2; table_.Contains(id) || batch_ids.contains(id); ++k) {
          id = absl::StrCat("item-", seq, "-", k);
        }
        spec.set_id(id);
        batch_ids.insert(id);
      }
      store::ItemRecord* item =
          specs.size() == 1 ? rec.mutable_submitted() : rec.mutable_batch()->add_items();
      *item->mutable_spec() = std::move(spec);
      item->set_state(store::ITEM_PENDING);
      item->set_seq(seq);
      item->set_submitted_unix_ms(Ms(now));
      item->set_updated_unix_ms(Ms(now));
      ids.push_back(item->spec().id());
    }
    absl::StatusOr<uint64_t> t = Commit(rec);
    if (!t.ok()) {
      if (absl::IsResourceExhausted(t.status())) {
        return {absl::ResourceExhaustedError(absl::StrCat(
                    specs.size(), " items are too many for one submit: ", t.status().message())),
                0};
      }
      return {t.status(), 0};
    }
    ticket = *t;
    for (const std::string& id : ids) {
      effects_.changed.push_back(ItemChanged{ItemChanged::kSubmitted, id, Lease{}, now});
    }
    effects_.ticket = std::max(effects_.ticket, ticket);
    MaybeSnapshot();
  }
  Effects effects;
  effects.ticket = ticket;
  effects.pending = true;
  effects.changes.reserve(ids.size());
  for (const std::string& id : ids) {
    effects.changes.push_back(ItemChange{"submitted", id, "", 0, 0, store::OUTCOME_UNSPECIFIED,
                                         store::ITEM_PENDING, ""});
  }
  Publish(std::move(effects));
  return {std::move(ids), ticket};
}

WorkQueue::Txn::Txn(WorkQueue* q) : q_(q) { q_->mu_.Lock(); }

WorkQueue::Txn::~Txn() {
  Effects effects = std::move(q_->effects_);
  q_->effects_ = Effects();
  q_->mu_.Unlock();
  q_->Publish(std::move(effects));
}

void WorkQueue::SetLeaseListener(LeaseListener* listener) {
  absl::MutexLock l(&listener_mu_);  // waits for a delivery in progress
  listener_ = listener;
}

void WorkQueue::LogChange(const ItemChange& c) {
  const std::string message = absl::StrCat("item ", c.what);
  const char* state = ItemStateName(c.state);
  if (c.token == 0) {  // no lease: submitted, retried, or cancelled while pending
    LogInfo(message, {{"item", c.item}, {"item_state", state}});
  } else if (c.outcome == store::OUTCOME_UNSPECIFIED) {  // granted
    LogInfo(message, {{"item", c.item},
                      {"agent", c.agent},
                      {"lease_token", c.token},
                      {"attempt", c.attempt},
                      {"item_state", state}});
  } else {
    const bool bad = c.outcome != store::OUTCOME_DONE && c.outcome != store::OUTCOME_RELEASED &&
                     c.outcome != store::OUTCOME_CANCELLED;
    Log(bad ? LogLevel::kWarning : LogLevel::kInfo, message,
        {{"item", c.item},
         {"agent", c.agent},
         {"lease_token", c.token},
         {"attempt", c.attempt},
         {"outcome", OutcomeName(c.outcome)},
         {"item_state", state},
         {"reason", c.reason}});
  }
}

void WorkQueue::Publish(Effects effects) {
  if (!effects.ended.empty() || !effects.changed.empty() || !effects.changes.empty()) {
    // Registered before the caller's own WhenDurable for the same ticket, so the listener
    // hears of an end before the caller answers about it. Logging queues the lines (no I/O).
    store_->WhenDurable(effects.ticket, [this, changed = std::move(effects.changed),
                                         changes = std::move(effects.changes),
                                         ended = std::move(effects.ended)](absl::Status s) {
      if (!s.ok()) return;  // not durable: as far as anyone will know, it did not happen
      for (const ItemChange& c : changes) LogChange(c);
      if (ended.empty() && changed.empty()) return;
      absl::MutexLock l(&listener_mu_);
      if (listener_ == nullptr) return;
      for (const ItemChanged& c : changed) listener_->OnItemChanged(c);
      for (const LeaseEnded& e : ended) listener_->OnLeaseEnded(e);
    });
  }
  if (effects.pending) NotifyPending();
}

Pending<std::optional<Grant>> WorkQueue::BeginAcquire(const std::string& agent,
                                                      const std::string& base) {
  if (absl::Status s = ValidateAgentId(agent); !s.ok()) return {s, 0};
  Txn txn(this);
  const absl::Time now = clock_->Now();
  // One lease per agent: an agent asking again while it holds a live lease lost the answer
  // that granted it. It gets the same lease again, renewed, rather than a second item.
  for (const std::string& id : leases_.ItemsOf(agent)) {
    const Lease* held = leases_.Find(id);
    // An expired one is left to ExpireDue: ending it here would wake acquirers, and this runs
    // under the dispatcher's lock.
    if (held == nullptr || held->expires <= now) continue;
    leases_.Extend(id, now + options_.lease_ttl);
    held = leases_.Find(id);
    const store::ItemRecord* item = table_.Find(id);
    if (item == nullptr) continue;  // unreachable: a lease always has its item
    Grant again;
    again.spec = item->spec();
    again.token = held->token;
    again.attempt = held->attempt;
    again.expires = held->expires;
    again.base = held->base;
    return {std::optional<Grant>(std::move(again)), held->ticket};
  }
  const store::ItemRecord* item = table_.NextPending();
  if (item == nullptr) return {std::optional<Grant>(), 0};
  Grant grant;
  grant.spec = item->spec();
  grant.token = next_token_++;
  grant.attempt = item->attempts_size() + 1;
  grant.expires = now + options_.lease_ttl;
  grant.base = base;

  store::LeaseRecord lr;
  lr.set_item_id(grant.spec.id());
  lr.set_token(grant.token);
  lr.set_agent(agent);
  lr.set_attempt(grant.attempt);
  lr.set_granted_unix_ms(Ms(now));
  lr.set_expires_unix_ms(Ms(grant.expires));
  // The claim is made by the commit round, before the round's fsync of claims/: if the disk
  // refuses it (full, or the item is claimed there already, say by hand), the round fails and
  // this grant is never answered; recovery then rebuilds the memory from the disk.
  if (absl::Status s = store_->Claim(std::move(lr)); !s.ok()) {
    if (absl::IsUnavailable(s)) return {s, 0};  // the store is failing
    LogError(absl::StrCat("refusing to grant: ", s.message()));
    return {absl::InternalError(absl::StrCat("cannot commit claim: ", s.message())), 0};
  }
  store::JournalRecord rec;
  store::Granted* g = rec.mutable_granted();
  g->set_item_id(grant.spec.id());
  g->set_token(grant.token);
  g->set_agent(agent);
  g->set_attempt(grant.attempt);
  g->set_at_unix_ms(Ms(now));
  g->set_base(base);
  absl::StatusOr<uint64_t> ticket = Commit(rec);
  if (!ticket.ok()) return {ticket.status(), 0};
  leases_.Add(Lease{grant.spec.id(), grant.token, agent, grant.attempt, base, now, grant.expires,
                    *ticket});
  effects_.changed.push_back(
      ItemChanged{ItemChanged::kLeased, grant.spec.id(), *leases_.Find(grant.spec.id()), now});
  effects_.ticket = std::max(effects_.ticket, *ticket);
  leases_granted_.fetch_add(1, std::memory_order_relaxed);
  effects_.changes.push_back(ItemChange{"granted", grant.spec.id(), agent, grant.token,
                                        grant.attempt, store::OUTCOME_UNSPECIFIED,
                                        store::ITEM_LEASED, ""});
  effects_.ticket = std::max(effects_.ticket, *ticket);
  MaybeSnapshot();
  return {std::optional<Grant>(std::move(grant)), *ticket};
}

absl::StatusOr<const Lease*> WorkQueue::CheckLease(const std::string& item_id, uint64_t token,
                                                   const std::string& agent) {
  const store::ItemRecord* item = table_.Find(item_id);
  if (item == nullptr) {
    if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("item ", QuoteForMessage(item_id), " does not exist"));
  }
  const Lease* lease = leases_.Find(item_id);
  if (lease != nullptr && lease->token == token) {
    if (!agent.empty() && lease->agent != agent) {
      leases_fenced_.fetch_add(1, std::memory_order_relaxed);
      return absl::FailedPreconditionError(absl::StrFormat(
          "lease token %d for item %s belongs to agent %s, not to agent %s", token,
          QuoteForMessage(item_id), QuoteForMessage(lease->agent), QuoteForMessage(agent)));
    }
    if (lease->expires > clock_->Now()) return lease;
    Lease expired = *lease;
    if (absl::StatusOr<uint64_t> t = Expire(expired); !t.ok()) return t.status();
    leases_fenced_.fetch_add(1, std::memory_order_relaxed);
    return absl::FailedPreconditionError(
        absl::StrFormat("lease token %d for item %s is no longer valid: the lease expired", token,
                        QuoteForMessage(item_id)));
  }
  leases_fenced_.fetch_add(1, std::memory_order_relaxed);
  std::string why;
  if (lease != nullptr) {
    why = absl::StrCat("the item is now leased with token ", lease->token);
  } else {
    why = absl::StrCat("the item is ", ItemStateName(item->state()));
    for (const store::Attempt& a : item->attempts()) {
      if (a.lease_token() == token) {
        absl::StrAppend(&why, " and that attempt ended as ", OutcomeName(a.outcome()));
      }
    }
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "lease token %d for item %s is no longer valid: %s", token, QuoteForMessage(item_id), why));
}

absl::StatusOr<uint64_t> WorkQueue::EndAttempt(const Lease& lease, store::Outcome outcome,
                                               const AttemptResult& result, EndedBy by,
                                               const std::string& reason) {
  store::JournalRecord rec;
  store::Ended* e = rec.mutable_ended();
  e->set_item_id(lease.item_id);
  e->set_token(lease.token);
  e->set_outcome(outcome);
  e->set_exit_code(result.exit_code);
  e->set_error(result.error);
  e->set_commit(result.commit);
  e->set_base(result.base);
  e->set_branch(result.branch);
  e->set_not_retryable(result.not_retryable);
  e->set_at_unix_ms(Ms(clock_->Now()));
  absl::StatusOr<uint64_t> ticket = Commit(rec, Store::ClaimRef{lease.item_id, lease.token});
  if (!ticket.ok()) return ticket;
  Lease ended = lease;  // `lease` may point into the table
  leases_.Remove(ended.item_id);
  const bool lands = outcome == store::OUTCOME_DONE || outcome == store::OUTCOME_FAILED ||
                     outcome == store::OUTCOME_TIMEOUT || outcome == store::OUTCOME_STALLED;
  NoteEnded(ended, outcome, by, reason, lands ? result.commit : std::string(), *ticket);
  ItemChange c{"", ended.item_id, ended.agent, ended.token, ended.attempt, outcome,
               effects_.ended.back().item_state, by == EndedBy::kAgent && !result.error.empty()
                                                     ? result.error
                                                     : reason};
  c.what = EndWord(outcome);
  effects_.changes.push_back(std::move(c));
  return ticket;
}

void WorkQueue::NoteEnded(const Lease& lease, store::Outcome outcome, EndedBy by,
                          std::string reason, std::string commit, uint64_t ticket) {
  LeaseEnded e;
  e.lease = lease;
  e.outcome = outcome;
  e.by = by;
  e.reason = std::move(reason);
  e.at = clock_->Now();
  e.commit = std::move(commit);
  if (const store::ItemRecord* item = table_.Find(lease.item_id)) e.item_state = item->state();
  if (e.item_state == store::ITEM_PENDING) effects_.pending = true;
  effects_.ended.push_back(std::move(e));
  effects_.ticket = std::max(effects_.ticket, ticket);
}

absl::StatusOr<uint64_t> WorkQueue::Expire(const Lease& lease) {
  AttemptResult r;
  r.error = absl::StrCat("lease expired: agent ", lease.agent, " did not renew it in time");
  return EndAttempt(lease, store::OUTCOME_EXPIRED, r, EndedBy::kExpiry, "the lease expired");
}

const store::Attempt* WorkQueue::EndedAttempt(const std::string& item_id, uint64_t token) const {
  const store::ItemRecord* item = table_.Find(item_id);
  if (item == nullptr) return nullptr;
  for (const store::Attempt& a : item->attempts()) {
    if (a.lease_token() == token && a.outcome() != store::OUTCOME_RUNNING) return &a;
  }
  return nullptr;
}

ReportAnswer WorkQueue::AnswerFor(const std::string& item_id, uint64_t token, bool repeat) const {
  ReportAnswer answer;
  answer.repeat = repeat;
  const store::ItemRecord* item = table_.Find(item_id);
  if (item == nullptr) return answer;
  answer.item_state = item->state();
  for (const store::Attempt& a : item->attempts()) {
    if (a.lease_token() != token) continue;
    answer.attempt = a.number();
    answer.commit = a.commit();
    if (a.outcome() == store::OUTCOME_DONE) {
      answer.branch = item->result_branch();
      answer.base = item->result_base();
    }
  }
  return answer;
}

namespace {

std::string CommitForMessage(const std::string& commit) {
  return commit.empty() ? std::string("(no commit)") : commit;
}

// A report repeating an attempt that already ended as `outcome` with `recorded`: the same
// answer if it names the same commit; refused, naming both, if it names another.
absl::Status JudgeRepeat(const std::string& item_id, uint64_t token, const char* what,
                         const std::string& recorded, const std::string& reported) {
  if (recorded == reported) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "item %s: lease token %d already %s with commit %s; a repeated report with commit %s is "
      "refused (a recorded result never changes)",
      QuoteForMessage(item_id), token, what, CommitForMessage(recorded),
      CommitForMessage(reported)));
}

}  // namespace

Pending<ReportAnswer> WorkQueue::BeginComplete(const std::string& item_id, uint64_t token,
                                               AttemptResult result) {
  Txn txn(this);
  if (const store::Attempt* a = EndedAttempt(item_id, token);
      a != nullptr && a->outcome() == store::OUTCOME_DONE) {
    // A retry of a completion that was committed (its answer was lost): the same answer, once
    // the original is durable; never another commit.
    if (absl::Status s = JudgeRepeat(item_id, token, "completed", a->commit(), result.commit);
        !s.ok()) {
      return {s, 0};
    }
    return {AnswerFor(item_id, token, /*repeat=*/true), store_->last_ticket()};
  }
  absl::StatusOr<const Lease*> lease = CheckLease(item_id, token, result.agent);
  if (!lease.ok()) return {lease.status(), effects_.ticket};  // an expiry it found, if any
  Lease copy = **lease;
  absl::StatusOr<uint64_t> t =
      EndAttempt(copy, store::OUTCOME_DONE, result, EndedBy::kAgent, "completed");
  if (!t.ok()) return {t.status(), 0};
  MaybeSnapshot();
  return {AnswerFor(item_id, token, /*repeat=*/false), *t};
}

Pending<ReportAnswer> WorkQueue::BeginFail(const std::string& item_id, uint64_t token,
                                           store::Outcome outcome, AttemptResult result) {
  if (outcome != store::OUTCOME_FAILED && outcome != store::OUTCOME_TIMEOUT &&
      outcome != store::OUTCOME_STALLED) {
    return {absl::InvalidArgumentError(absl::StrCat("a failed attempt's outcome must be failed, "
                                                    "timeout or stalled, not ",
                                                    OutcomeName(outcome))),
            0};
  }
  Txn txn(this);
  if (const store::Attempt* a = EndedAttempt(item_id, token);
      a != nullptr && a->outcome() == outcome) {
    if (absl::Status s = JudgeRepeat(item_id, token, "failed", a->commit(), result.commit);
        !s.ok()) {
      return {s, 0};
    }
    return {AnswerFor(item_id, token, /*repeat=*/true), store_->last_ticket()};
  }
  absl::StatusOr<const Lease*> lease = CheckLease(item_id, token, result.agent);
  if (!lease.ok()) return {lease.status(), effects_.ticket};  // an expiry it found, if any
  Lease copy = **lease;
  absl::StatusOr<uint64_t> t = EndAttempt(copy, outcome, result, EndedBy::kAgent, "failed");
  if (!t.ok()) return {t.status(), 0};
  MaybeSnapshot();
  return {AnswerFor(item_id, token, /*repeat=*/false), *t};
}

Pending<ReportAnswer> WorkQueue::BeginRelease(const std::string& item_id, uint64_t token,
                                              std::string reason, const std::string& agent) {
  Txn txn(this);
  if (const store::Attempt* a = EndedAttempt(item_id, token);
      a != nullptr && a->outcome() == store::OUTCOME_RELEASED) {
    return {AnswerFor(item_id, token, /*repeat=*/true), store_->last_ticket()};
  }
  absl::StatusOr<const Lease*> lease = CheckLease(item_id, token, agent);
  if (!lease.ok()) return {lease.status(), effects_.ticket};
  Lease copy = **lease;
  AttemptResult r;
  r.error = reason.empty() ? "released by its agent" : std::move(reason);
  absl::StatusOr<uint64_t> t =
      EndAttempt(copy, store::OUTCOME_RELEASED, r, EndedBy::kAgent, "released");
  if (!t.ok()) return {t.status(), 0};
  MaybeSnapshot();
  return {AnswerFor(item_id, token, /*repeat=*/false), *t};
}

Pending<std::optional<Lease>> WorkQueue::BeginCancel(const std::string& item_id,
                                                     std::string reason) {
  Txn txn(this);
  const store::ItemRecord* item = table_.Find(item_id);
  if (item == nullptr) {
    if (absl::Status s = ValidateItemId(item_id); !s.ok()) return {s, 0};
    return {absl::NotFoundError(absl::StrCat("item ", QuoteForMessage(item_id), " does not exist")),
            0};
  }
  if (item->state() != store::ITEM_PENDING && item->state() != store::ITEM_LEASED) {
    return {absl::FailedPreconditionError(absl::StrCat(
                "item ", QuoteForMessage(item_id), " is ", ItemStateName(item->state()),
                "; only pending or leased items can be cancelled")),
            0};
  }
  std::optional<Lease> cancelled;
  if (const Lease* lease = leases_.Find(item_id)) cancelled = *lease;
  store::JournalRecord rec;
  rec.mutable_cancelled()->set_item_id(item_id);
  rec.mutable_cancelled()->set_at_unix_ms(Ms(clock_->Now()));
  absl::StatusOr<uint64_t> t =
      cancelled ? Commit(rec, Store::ClaimRef{cancelled->item_id, cancelled->token}) : Commit(rec);
  if (!t.ok()) return {t.status(), 0};
  if (cancelled) {
    leases_.Remove(item_id);
    effects_.changes.push_back(ItemChange{"cancelled", item_id, cancelled->agent,
                                          cancelled->token, cancelled->attempt,
                                          store::OUTCOME_CANCELLED, store::ITEM_CANCELLED,
                                          reason});
    NoteEnded(*cancelled, store::OUTCOME_CANCELLED, EndedBy::kCancel, std::move(reason), "", *t);
  } else {
    effects_.changed.push_back(
        ItemChanged{ItemChanged::kCancelled, item_id, Lease{}, clock_->Now()});
    effects_.changes.push_back(ItemChange{"cancelled", item_id, "", 0, 0,
                                          store::OUTCOME_CANCELLED, store::ITEM_CANCELLED,
                                          reason});
    effects_.ticket = std::max(effects_.ticket, *t);
  }
  return {std::move(cancelled), *t};
}

Pending<bool> WorkQueue::BeginRetry(const std::string& item_id) {
  absl::StatusOr<uint64_t> t;
  {
    Txn txn(this);  // publishes the retry once durable
    const store::ItemRecord* item = table_.Find(item_id);
    if (item == nullptr) {
      if (absl::Status s = ValidateItemId(item_id); !s.ok()) return {s, 0};
      return {
          absl::NotFoundError(absl::StrCat("item ", QuoteForMessage(item_id), " does not exist")),
          0};
    }
    if (item->state() != store::ITEM_FAILED && item->state() != store::ITEM_PARKED) {
      return {absl::FailedPreconditionError(absl::StrCat(
                  "item ", QuoteForMessage(item_id), " is ", ItemStateName(item->state()),
                  "; only failed or parked items can be retried")),
              0};
    }
    store::JournalRecord rec;
    rec.mutable_retried()->set_item_id(item_id);
    rec.mutable_retried()->set_at_unix_ms(Ms(clock_->Now()));
    t = Commit(rec);
    if (!t.ok()) return {t.status(), 0};
    effects_.changed.push_back(
        ItemChanged{ItemChanged::kRetried, item_id, Lease{}, clock_->Now()});
    effects_.ticket = std::max(effects_.ticket, *t);
  }
  Effects effects;
  effects.ticket = *t;
  effects.pending = true;
  effects.changes.push_back(ItemChange{"retried", item_id, "", 0, 0, store::OUTCOME_UNSPECIFIED,
                                       store::ITEM_PENDING, ""});
  Publish(std::move(effects));
  return {true, *t};
}

Pending<std::vector<Lease>> WorkQueue::BeginExpireDue() {
  Txn txn(this);
  std::vector<Lease> expired = leases_.TakeExpired(clock_->Now());
  uint64_t ticket = 0;
  for (const Lease& lease : expired) {
    leases_.Add(lease);  // EndAttempt removes it again
    absl::StatusOr<uint64_t> t = Expire(lease);
    if (!t.ok()) return {t.status(), ticket};
    ticket = *t;
  }
  if (!expired.empty()) MaybeSnapshot();
  return {std::move(expired), ticket};
}

Pending<Reconciled> WorkQueue::BeginReconcile(const std::string& agent,
                                              const std::vector<HeldLease>& held,
                                              Unlisted unlisted, const std::string& why) {
  if (absl::Status s = ValidateAgentId(agent); !s.ok()) return {s, 0};
  Txn txn(this);
  Reconciled out;
  absl::flat_hash_set<std::string> listed;
  for (const HeldLease& h : held) {
    absl::StatusOr<const Lease*> lease = CheckLease(h.item_id, h.token, agent);
    if (!lease.ok()) {
      out.lost.emplace_back(h, std::string(lease.status().message()));
      continue;
    }
    listed.insert(h.item_id);
    leases_.Extend(h.item_id, clock_->Now() + options_.lease_ttl);
    out.renewed.push_back(*leases_.Find(h.item_id));
  }
  uint64_t ticket = 0;
  if (unlisted != Unlisted::kKeep) {
    for (const std::string& id : leases_.ItemsOf(agent)) {
      if (listed.contains(id)) continue;
      const Lease* lease = leases_.Find(id);
      if (lease == nullptr) continue;
      Lease copy = *lease;
      AttemptResult r;
      std::string reason = !why.empty()                    ? why
                           : unlisted == Unlisted::kExpire ? "its agent registered again without it"
                                                           : "its agent stopped without it";
      r.error = reason;
      absl::StatusOr<uint64_t> t =
          EndAttempt(copy,
                     unlisted == Unlisted::kExpire ? store::OUTCOME_EXPIRED
                                                   : store::OUTCOME_RELEASED,
                     r, EndedBy::kReconcile, reason);
      if (!t.ok()) return {t.status(), ticket};
      ticket = *t;
      out.ended.push_back(std::move(copy));
    }
    if (!out.ended.empty()) MaybeSnapshot();
  }
  return {std::move(out), std::max(ticket, effects_.ticket)};
}

absl::StatusOr<Lease> WorkQueue::CheckLive(const std::string& item_id, uint64_t token,
                                           const std::string& agent) {
  Txn txn(this);
  absl::StatusOr<const Lease*> lease = CheckLease(item_id, token, agent);
  if (!lease.ok()) return lease.status();
  return **lease;
}

absl::StatusOr<store::ItemRecord> WorkQueue::Get(const std::string& item_id) const {
  absl::MutexLock l(&mu_);
  const store::ItemRecord* item = table_.Find(item_id);
  if (item == nullptr) {
    if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
    return absl::NotFoundError(absl::StrCat("item ", QuoteForMessage(item_id), " does not exist"));
  }
  return *item;
}

std::vector<store::ItemRecord> WorkQueue::List(std::optional<store::ItemState> state,
                                               size_t limit) const {
  std::vector<store::ItemRecord> out;
  {
    absl::MutexLock l(&mu_);
    table_.ForEach([&](const store::ItemRecord& item) {
      if (state && item.state() != *state) return;
      store::ItemRecord copy;
      *copy.mutable_spec() = item.spec();
      copy.mutable_spec()->clear_prompt();
      copy.set_state(item.state());
      copy.set_seq(item.seq());
      copy.set_submitted_unix_ms(item.submitted_unix_ms());
      copy.set_updated_unix_ms(item.updated_unix_ms());
      *copy.mutable_attempts() = item.attempts();
      copy.set_error(item.error());
      copy.set_result_commit(item.result_commit());
      copy.set_result_branch(item.result_branch());
      out.push_back(std::move(copy));
    });
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq() < b.seq(); });
  if (out.size() > limit) out.resize(limit);
  return out;
}

QueueCounts WorkQueue::Counts() const {
  absl::MutexLock l(&mu_);
  return table_.counts();
}

std::vector<Lease> WorkQueue::Leases() const {
  absl::MutexLock l(&mu_);
  std::vector<Lease> out;
  leases_.ForEach([&](const Lease& lease) { out.push_back(lease); });
  return out;
}

std::optional<Lease> WorkQueue::LeaseOf(const std::string& item_id) const {
  absl::MutexLock l(&mu_);
  const Lease* lease = leases_.Find(item_id);
  return lease ? std::optional<Lease>(*lease) : std::nullopt;
}

absl::Time WorkQueue::NextExpiry() const {
  absl::MutexLock l(&mu_);
  return leases_.NextExpiry();
}

}  // namespace harness
