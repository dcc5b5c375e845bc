// Events of the feed from the queue's and the agents' changes (see state_events.h).
#include "core/state_events.h"

#include "absl/strings/str_cat.h"
#include "core/item_table.h"

namespace harness {

Event EventOfLeaseEnded(const LeaseEnded& e) {
  Event out;
  out.at = e.at;
  switch (e.outcome) {
    case store::OUTCOME_DONE:
      out.kind = "item_done";
      break;
    case store::OUTCOME_EXPIRED:
      out.kind = "item_expired";
      break;
    case store::OUTCOME_RELEASED:
      out.kind = "item_released";
      break;
    case store::OUTCOME_CANCELLED:
      out.kind = "item_cancelled";
      break;
    default:
      out.kind = "item_failed";
      break;
  }
  out.item = e.lease.item_id;
  out.agent = e.lease.agent;
  out.lease_token = e.lease.token;
  out.attempt = e.lease.attempt;
  out.outcome = OutcomeName(e.outcome);
  out.state = ItemStateName(e.item_state);
  out.message = e.reason;
  return out;
}

Event EventOfItemChanged(const ItemChanged& c) {
  Event out;
  out.at = c.at;
  out.item = c.item_id;
  switch (c.kind) {
    case ItemChanged::kSubmitted:
      out.kind = "item_submitted";
      out.state = "pending";
      break;
    case ItemChanged::kLeased:
      out.kind = "item_leased";
      out.state = "leased";
      out.agent = c.lease.agent;
      out.lease_token = c.lease.token;
      out.attempt = c.lease.attempt;
      break;
    case ItemChanged::kRetried:
      out.kind = "item_retried";
      out.state = "pending";
      break;
    case ItemChanged::kCancelled:
      out.kind = "item_cancelled";
      out.state = "cancelled";
      break;
  }
  return out;
}

std::vector<Event> StateWatch::Look(const std::vector<AgentLifeEvent>& life,
                                    const std::vector<AgentInfo>& agents,
                                    const std::vector<PoolSlotStatus>& slots) {
  std::vector<Event> out;
  auto agent_event = [&](const AgentInfo& a, std::string kind, std::string message) {
    Event e;
    e.kind = std::move(kind);
    e.agent = a.id;
    e.state = a.health == Health::kDead ? "stopped" : AgentStateName(a.state);
    e.message = std::move(message);
    out.push_back(std::move(e));
  };
  for (const AgentLifeEvent& l : life) {
    const AgentInfo& a = l.info;
    switch (l.kind) {
      case AgentLifeEvent::kRegistered:
        agent_event(a, "agent_registered",
                    absl::StrCat("pid ", a.pid, a.host.empty() ? "" : " on ", a.host));
        break;
      case AgentLifeEvent::kDraining:
        agent_event(a, "agent_drained", "finishes its item, takes no more, then exits");
        break;
      case AgentLifeEvent::kStopped:
        agent_event(a, "agent_stopped", "");
        break;
    }
    out.back().at = l.at;  // one event per life event, at the time it happened
  }
  for (const AgentInfo& a : agents) {
    auto it = agents_.find(a.id);
    // A new session (its agent_registered came from its life event) is judged afresh.
    const bool known = it != agents_.end() && it->second.session_id == a.session_id;
    Seen& seen = agents_[a.id];
    // An agent that said it stopped (a drain or stop ended), or was already seen stopped, only
    // falls silent: its health going suspect and dead is not news (agent_stopped is). A crash
    // says nothing first: its agent_dead stays.
    const bool quiet = a.stopped_cleanly || (known && seen.state == AgentState::kStopped);
    // A registration says healthy; a session whose stream is not open yet is not suspect until
    // it leaves starting (or dies).
    const Health before = known ? seen.health : Health::kHealthy;
    const bool opening = a.state == AgentState::kStarting && a.health == Health::kSuspect;
    if (before != a.health && !quiet && !opening) {
      agent_event(a, absl::StrCat("agent_", HealthName(a.health)), "");
    }
    seen.session_id = a.session_id;
    seen.health = opening ? before : a.health;
    seen.state = a.state;
  }
  // Forgotten agents: forgotten here too (a later one with that id is new).
  for (auto it = agents_.begin(); it != agents_.end();) {
    bool present = false;
    for (const AgentInfo& a : agents) present = present || a.id == it->first;
    it = present ? std::next(it) : agents_.erase(it);
  }
  std::map<int, SlotState> now;
  for (const PoolSlotStatus& s : slots) {
    now[s.slot] = s.state;
    auto it = slots_.find(s.slot);
    if (s.state == SlotState::kFailed && (it == slots_.end() || it->second != SlotState::kFailed)) {
      Event e;
      e.kind = "pool_slot_failed";
      e.agent = s.agent;
      e.state = SlotStateName(s.state);
      e.message = absl::StrCat("slot ", s.slot, " failed after ", s.failures,
                               " deaths: ", s.reason);
      out.push_back(std::move(e));
    }
  }
  slots_ = std::move(now);
  return out;
}

}  // namespace harness
