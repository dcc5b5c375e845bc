// Pool: the managed pool's state machine (see pool.h for the states and the rules).
#include "core/pool.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace harness {

const char* SlotStateName(SlotState s) {
  switch (s) {
    case SlotState::kStarting:
      return "starting";
    case SlotState::kRunning:
      return "running";
    case SlotState::kRestarting:
      return "restarting";
    case SlotState::kDraining:
      return "draining";
    case SlotState::kStopped:
      return "stopped";
    case SlotState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string PoolAgentId(int slot) { return absl::StrCat("agent-", slot); }

Pool::Pool(PoolOptions options, Clock* clock) : options_(std::move(options)), clock_(clock) {
  ScaleUp(std::max(options_.target, 0), clock_->Now());
  target_ = std::max(options_.target, 0);
}

bool Pool::PendingStart(const Slot& s) {
  return s.desired == Desired::kRun && !s.launching && s.launched_id.empty() &&
         (s.state == SlotState::kStarting || s.state == SlotState::kRestarting);
}

absl::Time Pool::EarliestStart(const Slot& s) const {
  return std::max(s.due, last_start_ + options_.startup_stagger);
}

PoolAction Pool::StopAction(int slot, const std::string& launched_id, absl::Duration grace,
                            const std::string& reason, bool release) const {
  PoolAction a;
  a.kind = PoolAction::kStop;
  a.slot = slot > 0 ? slot : 0;
  if (slot > 0) a.agent = PoolAgentId(slot);
  a.launched_id = launched_id;
  a.grace = grace;
  a.reason = reason;
  a.release = release;
  return a;
}

Pool::Slot* Pool::FindById(const std::string& launched_id) {
  if (launched_id.empty()) return nullptr;
  for (auto& [number, s] : slots_) {
    if (s.launched_id == launched_id) return &s;
  }
  return nullptr;
}

void Pool::RecordDeath(Slot& s, absl::Time now, const std::string& reason,
                       std::vector<PoolAction>& out) {
  while (!s.deaths.empty() && s.deaths.front() <= now - options_.failure_window) {
    s.deaths.pop_front();
  }
  s.deaths.push_back(now);
  s.reason = reason;
  ++deaths_;
  if (static_cast<int>(s.deaths.size()) > options_.max_agent_failures) {
    // The one transition into kFailed: the only place an Alert is made, so it is made once
    // until the slot is re-armed.
    s.state = SlotState::kFailed;
    PoolAction a;
    a.kind = PoolAction::kAlert;
    a.slot = s.number;
    a.agent = PoolAgentId(s.number);
    a.reason = reason;
    a.failures = static_cast<int>(s.deaths.size());
    out.push_back(std::move(a));
    return;
  }
  s.state = SlotState::kRestarting;
  s.due = now + options_.restart_delay;
}

void Pool::EmitDueStarts(absl::Time now, std::vector<PoolAction>& out) {
  std::vector<Slot*> due;
  for (auto& [number, s] : slots_) {
    if (PendingStart(s) && s.due <= now) due.push_back(&s);
  }
  std::sort(due.begin(), due.end(), [](const Slot* a, const Slot* b) {
    return std::tie(a->due, a->number) < std::tie(b->due, b->number);
  });
  for (Slot* s : due) {
    if (now < last_start_ + options_.startup_stagger) break;
    s->launching = true;
    s->state = SlotState::kStarting;
    last_start_ = now;
    PoolAction a;
    a.kind = PoolAction::kStart;
    a.slot = s->number;
    a.agent = PoolAgentId(s->number);
    out.push_back(std::move(a));
  }
}

std::vector<PoolAction> Pool::Adopt(const std::vector<LaunchedThing>& alive) {
  std::vector<PoolAction> out;
  for (const LaunchedThing& t : alive) {
    auto it = slots_.find(t.slot);
    if (it != slots_.end() && PendingStart(it->second)) {
      it->second.launched_id = t.launched_id;
      it->second.state = SlotState::kRunning;
      continue;
    }
    std::string why;
    if (t.slot <= 0) {
      why = "stray: it carries no slot";
    } else if (it == slots_.end()) {
      why = absl::StrCat("stray: slot ", t.slot, " is not in the pool (target ", target_, ")");
    } else {
      why = absl::StrCat("stray: slot ", t.slot, " already has ",
                         it->second.launched_id.empty() ? std::string("a start under way")
                                                        : it->second.launched_id);
    }
    out.push_back(StopAction(t.slot, t.launched_id, options_.stop_grace, why));
  }
  EmitDueStarts(clock_->Now(), out);
  return out;
}

void Pool::Leave(int number, bool force, std::vector<PoolAction>& out) {
  Slot& s = slots_.at(number);
  s.desired = Desired::kLeave;
  if (s.launching) {
    s.state = SlotState::kStopped;  // stopped when the launch is answered
    return;
  }
  if (s.launched_id.empty()) {
    slots_.erase(number);
    return;
  }
  out.push_back(EndAction(s, force, force ? "scaled down (force)" : "scaled down"));
}

PoolAction Pool::EndAction(Slot& s, bool force, const std::string& reason) const {
  if (force) {
    s.state = SlotState::kStopped;
    return StopAction(s.number, s.launched_id, options_.stop_grace, reason, /*release=*/true);
  }
  s.state = SlotState::kDraining;
  PoolAction a;
  a.kind = PoolAction::kDrain;
  a.slot = s.number;
  a.agent = PoolAgentId(s.number);
  a.reason = reason;
  return a;
}

void Pool::ScaleDown(int count, bool force, std::vector<PoolAction>& out) {
  // Victim order: nothing running (rank 0), idle (1), working (2) with the shortest-running
  // item first (the latest start); the highest slot among equals, as Swarm removes.
  struct Candidate {
    int rank;
    absl::Time started;
    int number;
  };
  std::vector<Candidate> candidates;
  for (const auto& [number, s] : slots_) {
    if (s.desired != Desired::kRun) continue;
    Candidate c{0, absl::InfinitePast(), number};
    if (options_.highest_slots_only) {  // the number alone decides
      candidates.push_back(c);
      continue;
    }
    if (!s.launched_id.empty()) {
      c.rank = 1;
      auto a = activity_.find(PoolAgentId(number));
      if (a != activity_.end() && a->second.working) {
        c.rank = 2;
        c.started = a->second.item_started;
      }
    }
    candidates.push_back(c);
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.rank != b.rank) return a.rank < b.rank;
    if (a.started != b.started) return a.started > b.started;
    return a.number > b.number;
  });
  for (int i = 0; i < count && i < static_cast<int>(candidates.size()); ++i) {
    Leave(candidates[i].number, force, out);
  }
}

void Pool::ScaleUp(int count, absl::Time now) {
  if (options_.highest_slots_only) {
    // Take back slots still leaving, lowest first: new numbers above them would leave a gap
    // the launcher cannot make.
    for (auto& [number, s] : slots_) {
      if (count == 0) break;
      if (s.desired != Desired::kLeave) continue;
      s.desired = Desired::kRun;
      --count;
      if (s.launching) {
        s.state = SlotState::kStarting;  // LaunchSucceeded makes it running
      } else if (!s.launched_id.empty()) {
        s.replacing = true;  // its agent still drains or stops: a fresh one starts after it
      }
    }
  }
  for (int n = 1; count > 0; ++n) {
    if (slots_.count(n) != 0) continue;
    Slot s;
    s.number = n;
    s.due = now;
    slots_.emplace(n, std::move(s));
    --count;
  }
}

absl::StatusOr<std::vector<PoolAction>> Pool::SetTarget(int target, bool force) {
  if (target < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("pool target ", target, " is invalid: it must be 0 or more"));
  }
  absl::Time now = clock_->Now();
  std::vector<PoolAction> out;
  target_ = target;
  if (force) {
    for (auto& [number, s] : slots_) {
      if (s.state == SlotState::kDraining) {
        s.state = SlotState::kStopped;
        out.push_back(
            StopAction(number, s.launched_id, options_.stop_grace, "scaled down (force)",
                       /*release=*/true));
      }
    }
  }
  int active = 0;
  for (const auto& [number, s] : slots_) active += s.desired == Desired::kRun ? 1 : 0;
  // Down first, so failed slots go as victims before the rest are re-armed.
  if (active > target) ScaleDown(active - target, force, out);
  for (auto& [number, s] : slots_) {
    if (s.desired == Desired::kRun && s.state == SlotState::kFailed) {
      s.deaths.clear();
      s.state = SlotState::kStarting;
      s.due = now;
    }
  }
  if (active < target) ScaleUp(target - active, now);
  EmitDueStarts(now, out);
  return out;
}

std::vector<PoolAction> Pool::LaunchSucceeded(int slot, const std::string& launched_id) {
  std::vector<PoolAction> out;
  auto it = slots_.find(slot);
  if (it == slots_.end() || !it->second.launching) {
    out.push_back(StopAction(slot, launched_id, options_.stop_grace,
                             absl::StrCat("stray: slot ", slot, " was not being started")));
  } else {
    Slot& s = it->second;
    s.launching = false;
    s.launched_id = launched_id;
    if (s.desired == Desired::kLeave) {
      s.state = SlotState::kStopped;
      out.push_back(StopAction(slot, launched_id, options_.stop_grace, "scaled down"));
    } else {
      s.state = SlotState::kRunning;
    }
  }
  EmitDueStarts(clock_->Now(), out);
  return out;
}

std::vector<PoolAction> Pool::LaunchFailed(int slot, const std::string& reason) {
  std::vector<PoolAction> out;
  absl::Time now = clock_->Now();
  auto it = slots_.find(slot);
  if (it != slots_.end() && it->second.launching) {
    Slot& s = it->second;
    s.launching = false;
    if (s.desired == Desired::kLeave) {
      slots_.erase(it);
    } else {
      RecordDeath(s, now, absl::StrCat("launch failed: ", reason), out);
    }
  }
  EmitDueStarts(now, out);
  return out;
}

std::vector<PoolAction> Pool::Exited(const std::string& launched_id, const std::string& reason) {
  std::vector<PoolAction> out;
  absl::Time now = clock_->Now();
  if (Slot* s = FindById(launched_id)) {
    if (s->desired == Desired::kLeave) {
      int number = s->number;  // not a reference into the node being erased
      slots_.erase(number);
    } else if (s->replacing) {
      s->launched_id.clear();
      s->replacing = false;
      s->state = SlotState::kStarting;
      s->due = now;
    } else {
      s->launched_id.clear();
      RecordDeath(*s, now, reason, out);
    }
  }
  EmitDueStarts(now, out);
  return out;
}

absl::StatusOr<std::vector<PoolAction>> Pool::Replace(const std::string& agent_id, bool force) {
  for (auto& [number, s] : slots_) {
    if (PoolAgentId(number) != agent_id) continue;
    if (s.launched_id.empty() || s.desired != Desired::kRun) break;
    s.replacing = true;
    return std::vector<PoolAction>{
        EndAction(s, force, force ? "stopped by operator" : "drained by operator")};
  }
  return absl::NotFoundError(absl::StrCat("no running agent of the pool is called ", agent_id));
}

std::vector<PoolAction> Pool::AgentDead(const std::string& agent_id, const std::string& reason) {
  std::vector<PoolAction> out;
  absl::Time now = clock_->Now();
  for (auto& [number, s] : slots_) {
    if (PoolAgentId(number) != agent_id || s.launched_id.empty()) continue;
    out.push_back(StopAction(number, s.launched_id, absl::ZeroDuration(), reason));
    if (s.desired == Desired::kLeave) {
      s.state = SlotState::kStopped;  // removed when its exit is reported
    } else {
      s.launched_id.clear();  // its exit, when reported, is ignored
      s.replacing = false;
      RecordDeath(s, now, reason, out);
    }
    break;
  }
  EmitDueStarts(now, out);
  return out;
}

void Pool::ObserveAgents(const std::vector<AgentActivity>& agents) {
  activity_.clear();
  for (const AgentActivity& a : agents) activity_[a.agent] = a;
}

std::vector<PoolAction> Pool::Tick() {
  std::vector<PoolAction> out;
  EmitDueStarts(clock_->Now(), out);
  return out;
}

absl::Time Pool::NextTick() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [number, s] : slots_) {
    if (PendingStart(s)) next = std::min(next, EarliestStart(s));
  }
  return next;
}

int Pool::SlotsToKeep() const {
  int keep = 0;
  for (const auto& [number, s] : slots_) {
    if (s.desired == Desired::kRun || s.state == SlotState::kDraining) keep = number;
  }
  return keep;
}

std::vector<PoolSlotStatus> Pool::Snapshot() const {
  absl::Time now = clock_->Now();
  std::vector<PoolSlotStatus> out;
  out.reserve(slots_.size());
  for (const auto& [number, s] : slots_) {
    PoolSlotStatus st;
    st.slot = number;
    st.agent = PoolAgentId(number);
    st.state = s.state;
    if (s.state == SlotState::kFailed) {
      st.failures = static_cast<int>(s.deaths.size());
    } else {
      st.failures =
          static_cast<int>(std::count_if(s.deaths.begin(), s.deaths.end(), [&](absl::Time t) {
            return t > now - options_.failure_window;
          }));
    }
    st.reason = s.reason;
    st.launched_id = s.launched_id;
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace harness
