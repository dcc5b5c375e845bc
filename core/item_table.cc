// Item state transitions (see item_table.h).
#include "core/item_table.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"

namespace harness {

const char* ItemStateName(store::ItemState s) {
  switch (s) {
    case store::ITEM_PENDING:
      return "pending";
    case store::ITEM_LEASED:
      return "leased";
    case store::ITEM_DONE:
      return "done";
    case store::ITEM_FAILED:
      return "failed";
    case store::ITEM_PARKED:
      return "parked";
    case store::ITEM_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

store::ItemState ItemStateFromName(absl::string_view name) {
  for (store::ItemState s : {store::ITEM_PENDING, store::ITEM_LEASED, store::ITEM_DONE,
                             store::ITEM_FAILED, store::ITEM_PARKED, store::ITEM_CANCELLED}) {
    if (name == ItemStateName(s)) return s;
  }
  return store::ITEM_STATE_UNSPECIFIED;
}

const char* OutcomeName(store::Outcome o) {
  switch (o) {
    case store::OUTCOME_RUNNING:
      return "running";
    case store::OUTCOME_DONE:
      return "done";
    case store::OUTCOME_FAILED:
      return "failed";
    case store::OUTCOME_TIMEOUT:
      return "timeout";
    case store::OUTCOME_EXPIRED:
      return "expired";
    case store::OUTCOME_RELEASED:
      return "released";
    case store::OUTCOME_CANCELLED:
      return "cancelled";
    case store::OUTCOME_STALLED:
      return "stalled";
    default:
      return "unknown";
  }
}

const store::ItemRecord* ItemTable::Find(absl::string_view id) const {
  auto it = items_.find(id);
  return it == items_.end() ? nullptr : &it->second;
}

const store::ItemRecord* ItemTable::NextPending() const {
  if (pending_.empty()) return nullptr;
  return Find(std::get<2>(*pending_.begin()));
}

std::vector<const store::ItemRecord*> ItemTable::PendingInOrder(size_t limit) const {
  std::vector<const store::ItemRecord*> out;
  for (const PendingKey& k : pending_) {
    if (out.size() >= limit) break;
    out.push_back(Find(std::get<2>(k)));
  }
  return out;
}

const store::Attempt* ItemTable::RunningAttempt(const store::ItemRecord& item) {
  if (item.state() != store::ITEM_LEASED || item.attempts().empty()) return nullptr;
  const store::Attempt& last = item.attempts(item.attempts_size() - 1);
  return last.outcome() == store::OUTCOME_RUNNING ? &last : nullptr;
}

int ItemTable::CountedAttempts(const store::ItemRecord& item) {
  int n = 0;
  for (int i = std::max(0, item.budget_start()); i < item.attempts_size(); ++i) {
    store::Outcome o = item.attempts(i).outcome();
    if (o == store::OUTCOME_FAILED || o == store::OUTCOME_TIMEOUT || o == store::OUTCOME_EXPIRED ||
        o == store::OUTCOME_STALLED)
      ++n;
  }
  return n;
}

namespace {
int64_t* CounterFor(QueueCounts* c, store::ItemState s) {
  switch (s) {
    case store::ITEM_PENDING:
      return &c->pending;
    case store::ITEM_LEASED:
      return &c->leased;
    case store::ITEM_DONE:
      return &c->done;
    case store::ITEM_FAILED:
      return &c->failed;
    case store::ITEM_PARKED:
      return &c->parked;
    case store::ITEM_CANCELLED:
      return &c->cancelled;
    default:
      return nullptr;
  }
}
}  // namespace

void ItemTable::SetState(store::ItemRecord* item, store::ItemState state) {
  if (item->state() == store::ITEM_PENDING) pending_.erase(KeyOf(*item));
  if (int64_t* c = CounterFor(&counts_, item->state())) --*c;
  item->set_state(state);
  if (int64_t* c = CounterFor(&counts_, state)) ++*c;
  if (state == store::ITEM_PENDING) pending_.insert(KeyOf(*item));
}

absl::Status ItemTable::Apply(const store::JournalRecord& rec) {
  switch (rec.kind_case()) {
    case store::JournalRecord::kSubmitted:
      if (absl::Status s = CheckNew(rec.submitted()); !s.ok()) return s;
      AddItem(rec.submitted());
      return absl::OkStatus();
    case store::JournalRecord::kBatch: {
      // All or nothing: every item is checked before the first is added.
      absl::flat_hash_set<absl::string_view> ids;
      for (const store::ItemRecord& in : rec.batch().items()) {
        if (absl::Status s = CheckNew(in); !s.ok()) return s;
        if (!ids.insert(in.spec().id()).second) {
          return absl::AlreadyExistsError(absl::StrCat(
              "item ", QuoteForMessage(in.spec().id()), " is twice in one submitted batch"));
        }
      }
      for (const store::ItemRecord& in : rec.batch().items()) AddItem(in);
      return absl::OkStatus();
    }
    case store::JournalRecord::kResumed:
      return absl::OkStatus();
    case store::JournalRecord::kGranted: {
      const store::Granted& g = rec.granted();
      auto it = items_.find(g.item_id());
      if (it == items_.end()) {
        return absl::NotFoundError(
            absl::StrCat("grant of unknown item ", QuoteForMessage(g.item_id())));
      }
      store::ItemRecord& item = it->second;
      if (item.state() != store::ITEM_PENDING) {
        return absl::FailedPreconditionError(
            absl::StrCat("grant of item ", QuoteForMessage(g.item_id()), " in state ",
                         ItemStateName(item.state())));
      }
      store::Attempt* a = item.add_attempts();
      a->set_number(g.attempt());
      a->set_agent(g.agent());
      a->set_lease_token(g.token());
      a->set_started_unix_ms(g.at_unix_ms());
      a->set_base(g.base());
      a->set_outcome(store::OUTCOME_RUNNING);
      item.set_updated_unix_ms(g.at_unix_ms());
      max_token_ = std::max(max_token_, g.token());
      SetState(&item, store::ITEM_LEASED);
      return absl::OkStatus();
    }
    case store::JournalRecord::kEnded:
      return ApplyEnded(rec.ended());
    case store::JournalRecord::kCancelled: {
      const store::Cancelled& c = rec.cancelled();
      auto it = items_.find(c.item_id());
      if (it == items_.end())
        return absl::NotFoundError(absl::StrCat("cancel of unknown item ", c.item_id()));
      store::ItemRecord& item = it->second;
      if (item.state() != store::ITEM_PENDING && item.state() != store::ITEM_LEASED) {
        return absl::FailedPreconditionError(
            absl::StrCat("cancel of item ", QuoteForMessage(c.item_id()), " in state ",
                         ItemStateName(item.state())));
      }
      if (item.state() == store::ITEM_LEASED && !item.attempts().empty()) {
        store::Attempt* a = item.mutable_attempts(item.attempts_size() - 1);
        a->set_outcome(store::OUTCOME_CANCELLED);
        a->set_ended_unix_ms(c.at_unix_ms());
      }
      item.set_updated_unix_ms(c.at_unix_ms());
      SetState(&item, store::ITEM_CANCELLED);
      return absl::OkStatus();
    }
    case store::JournalRecord::kRetried: {
      const store::Retried& r = rec.retried();
      auto it = items_.find(r.item_id());
      if (it == items_.end())
        return absl::NotFoundError(absl::StrCat("retry of unknown item ", r.item_id()));
      store::ItemRecord& item = it->second;
      if (item.state() != store::ITEM_FAILED && item.state() != store::ITEM_PARKED) {
        return absl::FailedPreconditionError(
            absl::StrCat("retry of item ", QuoteForMessage(r.item_id()), " in state ",
                         ItemStateName(item.state())));
      }
      item.set_budget_start(item.attempts_size());
      item.clear_error();
      item.set_updated_unix_ms(r.at_unix_ms());
      SetState(&item, store::ITEM_PENDING);
      return absl::OkStatus();
    }
    default:
      return absl::DataLossError("journal record of unknown kind");
  }
}

absl::Status ItemTable::CheckNew(const store::ItemRecord& in) const {
  const std::string& id = in.spec().id();
  if (id.empty()) return absl::InvalidArgumentError("submitted item without an id");
  if (items_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("item ", QuoteForMessage(id), " already exists"));
  }
  return absl::OkStatus();
}

void ItemTable::AddItem(const store::ItemRecord& in) {
  store::ItemRecord& item = items_[in.spec().id()];
  item = in;
  store::ItemState state =
      item.state() == store::ITEM_STATE_UNSPECIFIED ? store::ITEM_PENDING : item.state();
  item.set_state(store::ITEM_STATE_UNSPECIFIED);
  ++counts_.total;
  SetState(&item, state);
  max_seq_ = std::max(max_seq_, item.seq());
  for (const store::Attempt& a : item.attempts()) max_token_ = std::max(max_token_, a.lease_token());
}

absl::Status ItemTable::ApplyEnded(const store::Ended& e) {
  auto it = items_.find(e.item_id());
  if (it == items_.end())
    return absl::NotFoundError(absl::StrCat("end of unknown item ", e.item_id()));
  store::ItemRecord& item = it->second;
  const store::Attempt* running = RunningAttempt(item);
  if (running == nullptr || running->lease_token() != e.token()) {
    return absl::FailedPreconditionError(absl::StrCat("end of item ", QuoteForMessage(e.item_id()),
                                                      " with lease token ", e.token(),
                                                      " that is not its running attempt"));
  }
  switch (e.outcome()) {
    case store::OUTCOME_DONE:
    case store::OUTCOME_RELEASED:
    case store::OUTCOME_FAILED:
    case store::OUTCOME_TIMEOUT:
    case store::OUTCOME_STALLED:
    case store::OUTCOME_EXPIRED:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("attempt end with outcome ", OutcomeName(e.outcome())));
  }
  store::Attempt* a = item.mutable_attempts(item.attempts_size() - 1);
  a->set_outcome(e.outcome());
  a->set_ended_unix_ms(e.at_unix_ms());
  a->set_exit_code(e.exit_code());
  a->set_error(e.error());
  a->set_commit(e.commit());
  if (!e.base().empty()) a->set_base(e.base());
  item.set_updated_unix_ms(e.at_unix_ms());
  switch (e.outcome()) {
    case store::OUTCOME_DONE:
      item.set_result_branch(e.branch());
      item.set_result_commit(e.commit());
      item.set_result_base(e.base());
      item.clear_error();
      SetState(&item, store::ITEM_DONE);
      return absl::OkStatus();
    case store::OUTCOME_RELEASED:
      SetState(&item, store::ITEM_PENDING);
      return absl::OkStatus();
    case store::OUTCOME_FAILED:
    case store::OUTCOME_TIMEOUT:
    case store::OUTCOME_STALLED:
    case store::OUTCOME_EXPIRED: {
      std::string what = e.error().empty() ? OutcomeName(e.outcome()) : e.error();
      if (e.not_retryable()) {
        item.set_error(what);
        SetState(&item, store::ITEM_FAILED);
      } else if (CountedAttempts(item) >= item.spec().max_attempts()) {
        item.set_error(
            absl::StrCat("gave up after ", CountedAttempts(item), " attempts; last: ", what));
        SetState(&item, store::ITEM_PARKED);
      } else {
        item.set_error(what);
        SetState(&item, store::ITEM_PENDING);
      }
      return absl::OkStatus();
    }
    default:
      return absl::InternalError("unreachable");
  }
}

}  // namespace harness
