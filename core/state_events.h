// What becomes an Event of the feed (core/event_feed.h): the queue's changes (LeaseEnded,
// ItemChanged, translated one to one) and the agents' and pool slots' (StateWatch: a diff of
// the registry and the pool between two looks, since health is judged when read). Pure
// functions and a small state machine; no I/O, no locks of the queue. No gRPC here.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/agent_registry.h"
#include "core/event_feed.h"
#include "core/lease_events.h"
#include "core/pool.h"

namespace harness {

// item_done, item_failed (outcome failed, timeout or stalled), item_expired, item_released or
// item_cancelled, with the lease's agent, token and attempt, the outcome and the item's state.
Event EventOfLeaseEnded(const LeaseEnded& ended);
// item_submitted, item_leased (agent, token, attempt), item_retried, item_cancelled.
Event EventOfItemChanged(const ItemChanged& changed);

// Turns the agents' life events (AgentRegistry::TakeLifeEvents, recorded when they happened)
// and successive looks at the agents and the pool's slots into events: agent_registered (a
// new session), agent_drained (told to drain), agent_stopped (it said it stopped, or its
// process ended), each from its life event; agent_healthy / agent_suspect / agent_dead (a change
// of health between two looks, until the agent is seen stopped); pool_slot_failed.
class StateWatch {
 public:
  // The life events in their order, then what changed since the previous look.
  std::vector<Event> Look(const std::vector<AgentLifeEvent>& life,
                          const std::vector<AgentInfo>& agents,
                          const std::vector<PoolSlotStatus>& slots);

 private:
  struct Seen {
    std::string session_id;
    Health health = Health::kHealthy;
    AgentState state = AgentState::kStarting;
  };
  std::map<std::string, Seen> agents_;
  std::map<int, SlotState> slots_;
};

}  // namespace harness
