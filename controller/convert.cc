// store <-> harness.v1 conversions (see convert.h).
#include "controller/convert.h"

namespace harness {

v1::ItemState ToApi(store::ItemState s) {
  switch (s) {
    case store::ITEM_PENDING:
      return v1::ITEM_STATE_PENDING;
    case store::ITEM_LEASED:
      return v1::ITEM_STATE_LEASED;
    case store::ITEM_DONE:
      return v1::ITEM_STATE_DONE;
    case store::ITEM_FAILED:
      return v1::ITEM_STATE_FAILED;
    case store::ITEM_PARKED:
      return v1::ITEM_STATE_PARKED;
    case store::ITEM_CANCELLED:
      return v1::ITEM_STATE_CANCELLED;
    default:
      return v1::ITEM_STATE_UNSPECIFIED;
  }
}

store::ItemState FromApi(v1::ItemState s) {
  switch (s) {
    case v1::ITEM_STATE_PENDING:
      return store::ITEM_PENDING;
    case v1::ITEM_STATE_LEASED:
      return store::ITEM_LEASED;
    case v1::ITEM_STATE_DONE:
      return store::ITEM_DONE;
    case v1::ITEM_STATE_FAILED:
      return store::ITEM_FAILED;
    case v1::ITEM_STATE_PARKED:
      return store::ITEM_PARKED;
    case v1::ITEM_STATE_CANCELLED:
      return store::ITEM_CANCELLED;
    default:
      return store::ITEM_STATE_UNSPECIFIED;
  }
}

v1::AttemptOutcome ToApi(store::Outcome o) {
  switch (o) {
    case store::OUTCOME_RUNNING:
      return v1::ATTEMPT_OUTCOME_RUNNING;
    case store::OUTCOME_DONE:
      return v1::ATTEMPT_OUTCOME_DONE;
    case store::OUTCOME_FAILED:
      return v1::ATTEMPT_OUTCOME_FAILED;
    case store::OUTCOME_TIMEOUT:
      return v1::ATTEMPT_OUTCOME_TIMEOUT;
    case store::OUTCOME_EXPIRED:
      return v1::ATTEMPT_OUTCOME_EXPIRED;
    case store::OUTCOME_RELEASED:
      return v1::ATTEMPT_OUTCOME_RELEASED;
    case store::OUTCOME_CANCELLED:
      return v1::ATTEMPT_OUTCOME_CANCELLED;
    case store::OUTCOME_STALLED:
      return v1::ATTEMPT_OUTCOME_STALLED;
    default:
      return v1::ATTEMPT_OUTCOME_UNSPECIFIED;
  }
}

v1::AgentState ToApi(AgentState s) {
  switch (s) {
    case AgentState::kStarting:
      return v1::AGENT_STATE_STARTING;
    case AgentState::kIdle:
      return v1::AGENT_STATE_IDLE;
    case AgentState::kWorking:
      return v1::AGENT_STATE_WORKING;
    case AgentState::kDraining:
      return v1::AGENT_STATE_DRAINING;
    case AgentState::kStopped:
      return v1::AGENT_STATE_STOPPED;
  }
  return v1::AGENT_STATE_UNSPECIFIED;
}

AgentState FromApi(v1::AgentState s) {
  switch (s) {
    case v1::AGENT_STATE_IDLE:
      return AgentState::kIdle;
    case v1::AGENT_STATE_WORKING:
      return AgentState::kWorking;
    case v1::AGENT_STATE_DRAINING:
      return AgentState::kDraining;
    case v1::AGENT_STATE_STOPPED:
      return AgentState::kStopped;
    default:
      return AgentState::kStarting;
  }
}

v1::Health ToApi(Health h) {
  switch (h) {
    case Health::kHealthy:
      return v1::HEALTH_HEALTHY;
    case Health::kSuspect:
      return v1::HEALTH_SUSPECT;
    case Health::kDead:
      return v1::HEALTH_DEAD;
  }
  return v1::HEALTH_UNSPECIFIED;
}

store::ItemSpec FromApi(const v1::ItemSpec& in) {
  store::ItemSpec s;
  s.set_id(in.id());
  s.set_title(in.title());
  s.set_prompt(in.prompt());
  s.set_priority(in.priority());
  s.set_max_attempts(in.max_attempts());
  s.set_timeout_s(in.timeout_s());
  for (const auto& [k, v] : in.labels()) (*s.mutable_labels())[k] = v;
  return s;
}

namespace {
v1::Attempt ToApiAttempt(const store::Attempt& a) {
  v1::Attempt out;
  out.set_number(a.number());
  out.set_agent(a.agent());
  out.set_lease_token(a.lease_token());
  out.set_started_at_unix_ms(a.started_unix_ms());
  out.set_ended_at_unix_ms(a.ended_unix_ms());
  if (a.outcome() != store::OUTCOME_RUNNING && a.outcome() != store::OUTCOME_RELEASED &&
      a.outcome() != store::OUTCOME_CANCELLED && a.outcome() != store::OUTCOME_EXPIRED) {
    out.mutable_exit_code()->set_value(a.exit_code());
  }
  out.set_outcome(ToApi(a.outcome()));
  out.set_error(a.error());
  out.set_base_commit(a.base());
  out.set_commit(a.commit());
  return out;
}

std::string CurrentAgent(const store::ItemRecord& item) {
  if (item.state() != store::ITEM_LEASED || item.attempts().empty()) return "";
  return item.attempts(item.attempts_size() - 1).agent();
}
}  // namespace

v1::Item ToApiItem(const store::ItemRecord& item, const std::string& log_tail) {
  v1::Item out;
  const store::ItemSpec& s = item.spec();
  out.set_id(s.id());
  out.set_title(s.title());
  out.set_prompt(s.prompt());
  out.set_priority(s.priority());
  out.set_max_attempts(s.max_attempts());
  out.set_timeout_s(s.timeout_s());
  for (const auto& [k, v] : s.labels()) (*out.mutable_labels())[k] = v;
  out.set_state(ToApi(item.state()));
  out.set_submitted_at_unix_ms(item.submitted_unix_ms());
  out.set_updated_at_unix_ms(item.updated_unix_ms());
  out.set_agent(CurrentAgent(item));
  for (const store::Attempt& a : item.attempts()) *out.add_attempts() = ToApiAttempt(a);
  if (item.state() == store::ITEM_DONE) {
    out.mutable_result()->set_branch(item.result_branch());
    out.mutable_result()->set_commit(item.result_commit());
    out.mutable_result()->set_base(item.result_base());
  }
  if (item.state() != store::ITEM_DONE) out.set_error(item.error());
  out.set_log_tail(log_tail);
  return out;
}

v1::ItemSummary ToApiSummary(const store::ItemRecord& item) {
  v1::ItemSummary out;
  out.set_id(item.spec().id());
  out.set_title(item.spec().title());
  out.set_state(ToApi(item.state()));
  out.set_priority(item.spec().priority());
  out.set_attempt_count(item.attempts_size());
  out.set_max_attempts(item.spec().max_attempts());
  out.set_agent(CurrentAgent(item));
  out.set_submitted_at_unix_ms(item.submitted_unix_ms());
  out.set_updated_at_unix_ms(item.updated_unix_ms());
  for (const auto& [k, v] : item.spec().labels()) (*out.mutable_labels())[k] = v;
  if (item.state() != store::ITEM_DONE) out.set_error(item.error());
  out.set_result_commit(item.result_commit());
  return out;
}

v1::QueueCounts ToApi(const QueueCounts& c) {
  v1::QueueCounts out;
  out.set_total(c.total);
  out.set_pending(c.pending);
  out.set_leased(c.leased);
  out.set_done(c.done);
  out.set_failed(c.failed);
  out.set_parked(c.parked);
  out.set_cancelled(c.cancelled);
  return out;
}

}  // namespace harness
