// Agents and their sessions (see agent_registry.h).
#include "core/agent_registry.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"

namespace harness {

const char* AgentStateName(AgentState s) {
  switch (s) {
    case AgentState::kStarting:
      return "starting";
    case AgentState::kIdle:
      return "idle";
    case AgentState::kWorking:
      return "working";
    case AgentState::kDraining:
      return "draining";
    case AgentState::kStopped:
      return "stopped";
  }
  return "unknown";
}

const char* HealthName(Health h) {
  switch (h) {
    case Health::kHealthy:
      return "healthy";
    case Health::kSuspect:
      return "suspect";
    case Health::kDead:
      return "dead";
  }
  return "unknown";
}

AgentRegistry::AgentRegistry(Clock* clock, absl::Duration heartbeat_interval,
                             absl::Duration heartbeat_timeout)
    : clock_(clock), interval_(heartbeat_interval), timeout_(heartbeat_timeout) {}

std::string AgentRegistry::Register(const std::string& agent_id, int pid, const std::string& host,
                                    const std::string& version) {
  absl::MutexLock l(&mu_);
  Entry& e = agents_[agent_id];
  const absl::Time now = clock_->Now();
  // Session ids are unguessable enough to catch a stale agent, not a security boundary.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  e.info.id = agent_id;
  e.info.session_id = absl::StrFormat("s%d-%016x", next_session_++, rng());
  e.info.state = AgentState::kStarting;
  e.info.connected = false;
  // Another process under the same id (a restarted agent) starts afresh; the same process
  // registering again (after a controller restart) stays draining if it was.
  if (e.info.pid != pid || e.info.exited) e.info.draining = false;
  e.info.exited = false;
  e.info.pid = pid;
  e.info.host = host;
  e.info.version = version;
  e.info.registered = now;
  e.info.last_seen = now;
  e.sink.reset();
  e.logged_health = Health::kHealthy;  // its "agent registered" line says so
  e.stop_reported = false;
  e.exit_reason.clear();
  RecordLife(AgentLifeEvent::kRegistered, e);
  return e.info.session_id;
}

namespace {
// Appends to a list kept between two takes, dropping its oldest entry at kMaxLifeEvents.
template <typename T>
void PushBounded(std::vector<T>& list, T entry) {
  if (list.size() >= AgentRegistry::kMaxLifeEvents) list.erase(list.begin());
  list.push_back(std::move(entry));
}

absl::Status UnknownSession(const std::string& agent_id) {
  return absl::NotFoundError(
      absl::StrCat("unknown session for agent ", QuoteForMessage(agent_id), ": register again"));
}
}  // namespace

absl::Status AgentRegistry::Touch(const std::string& agent_id, const std::string& session_id) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.info.session_id != session_id)
    return UnknownSession(agent_id);
  it->second.info.last_seen = clock_->Now();
  return absl::OkStatus();
}

absl::Status AgentRegistry::Attach(const std::string& agent_id, const std::string& session_id,
                                   std::shared_ptr<AgentSink> sink) {
  bool drain = false;
  {
    absl::MutexLock l(&mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end() || it->second.info.session_id != session_id) {
      return UnknownSession(agent_id);
    }
    it->second.sink = sink;
    it->second.info.connected = true;
    it->second.info.last_seen = clock_->Now();
    drain = it->second.info.draining;
  }
  if (drain) sink->Deliver(AgentCommand{AgentCommand::kDrain, "", 0, "drain requested", {}});
  return absl::OkStatus();
}

void AgentRegistry::Detach(const std::string& agent_id, const AgentSink* sink) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.sink.get() != sink) return;
  it->second.sink.reset();
  it->second.info.connected = false;
}

absl::Status AgentRegistry::Heartbeat(const std::string& agent_id, const std::string& session_id,
                                      AgentState reported) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || it->second.info.session_id != session_id)
    return UnknownSession(agent_id);
  Entry& e = it->second;
  e.info.last_seen = clock_->Now();
  const bool was_stopped = e.info.state == AgentState::kStopped;
  e.info.state = reported;
  if (reported == AgentState::kStopped && !e.stop_reported) {
    e.stop_reported = true;
    PushBounded(stops_, AgentChange{agent_id, e.info.draining ? "drained" : "stopped", ""});
    if (!was_stopped) RecordLife(AgentLifeEvent::kStopped, e);
  }
  return absl::OkStatus();
}

absl::StatusOr<AgentInfo> AgentRegistry::Drain(const std::string& agent_id) {
  std::shared_ptr<AgentSink> sink;
  AgentInfo info;
  {
    absl::MutexLock l(&mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) {
      if (absl::Status s = ValidateAgentId(agent_id); !s.ok()) return s;
      return absl::NotFoundError(
          absl::StrCat("agent ", QuoteForMessage(agent_id), " is not known"));
    }
    const bool was_draining = it->second.info.draining;
    it->second.info.draining = true;
    if (it->second.info.state == AgentState::kIdle) it->second.info.state = AgentState::kDraining;
    if (!was_draining) RecordLife(AgentLifeEvent::kDraining, it->second);
    sink = it->second.sink;
    info = it->second.info;
    info.health = HealthOf(it->second, clock_->Now());
  }
  if (sink) sink->Deliver(AgentCommand{AgentCommand::kDrain, "", 0, "drain requested", {}});
  return info;
}

bool AgentRegistry::IsDraining(const std::string& agent_id) const {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  return it != agents_.end() && it->second.info.draining;
}

bool AgentRegistry::Send(const std::string& agent_id, const AgentCommand& command) {
  std::shared_ptr<AgentSink> sink;
  {
    absl::MutexLock l(&mu_);
    auto it = agents_.find(agent_id);
    if (it == agents_.end()) return false;
    sink = it->second.sink;
  }
  if (!sink) return false;
  sink->Deliver(command);
  return true;
}

void AgentRegistry::Broadcast(const AgentCommand& command) {
  std::vector<std::shared_ptr<AgentSink>> sinks;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, e] : agents_) {
      if (e.sink) sinks.push_back(e.sink);
    }
  }
  for (auto& s : sinks) s->Deliver(command);
}

void AgentRegistry::TickSinks() {
  std::vector<std::shared_ptr<AgentSink>> sinks;
  {
    absl::MutexLock l(&mu_);
    for (auto& [id, e] : agents_) {
      if (e.sink) sinks.push_back(e.sink);
    }
  }
  const absl::Time now = clock_->Now();
  for (auto& s : sinks) s->OnTick(now);
}

void AgentRegistry::NoteOutput(const std::string& agent_id, uint64_t token,
                               absl::string_view data) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return;
  Entry& e = it->second;
  if (e.info.output_token != token) {
    e.output.Clear();
    e.info.output_token = token;
  }
  e.output.Append(data);
  e.info.last_output_line = e.output.Last();
}

void AgentRegistry::MarkExited(const std::string& agent_id, int pid, const std::string& reason) {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || (pid != 0 && it->second.info.pid != pid)) return;
  const bool was_stopped = it->second.info.state == AgentState::kStopped;
  it->second.info.exited = true;
  it->second.exit_reason = reason;
  it->second.info.connected = false;
  it->second.info.state = AgentState::kStopped;
  if (!was_stopped) RecordLife(AgentLifeEvent::kStopped, it->second);
}

void AgentRegistry::RecordLife(AgentLifeEvent::Kind kind, const Entry& e) {
  const absl::Time now = clock_->Now();
  AgentLifeEvent ev{kind, e.info, now};
  ev.info.health = HealthOf(e, now);
  ev.info.stopped_cleanly = e.stop_reported;
  PushBounded(life_, std::move(ev));
}

std::vector<AgentLifeEvent> AgentRegistry::TakeLifeEvents() {
  absl::MutexLock l(&mu_);
  std::vector<AgentLifeEvent> out;
  out.swap(life_);
  return out;
}

Health AgentRegistry::HealthOf(const Entry& e, absl::Time now) const {
  if (e.info.exited) return Health::kDead;
  absl::Duration silent = now - e.info.last_seen;
  if (silent >= timeout_) return Health::kDead;
  if (!e.info.connected || silent > 2 * interval_) return Health::kSuspect;
  return Health::kHealthy;
}

std::optional<AgentInfo> AgentRegistry::Get(const std::string& agent_id) const {
  absl::MutexLock l(&mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return std::nullopt;
  AgentInfo info = it->second.info;
  info.health = HealthOf(it->second, clock_->Now());
  info.stopped_cleanly = it->second.stop_reported;
  return info;
}

std::vector<AgentInfo> AgentRegistry::List() const {
  std::vector<AgentInfo> out;
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    for (const auto& [id, e] : agents_) {
      out.push_back(e.info);
      out.back().health = HealthOf(e, now);
      out.back().stopped_cleanly = e.stop_reported;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const AgentInfo& a, const AgentInfo& b) { return a.id < b.id; });
  return out;
}

std::vector<AgentChange> AgentRegistry::TakeChanges() {
  std::vector<AgentChange> out;
  absl::MutexLock l(&mu_);
  out.swap(stops_);
  const absl::Time now = clock_->Now();
  for (auto& [id, e] : agents_) {
    if (e.stop_reported) continue;
    const Health h = HealthOf(e, now);
    if (h == e.logged_health) continue;
    const absl::Duration silent = now - e.info.last_seen;
    // Registered, its session stream not open yet: not a change unless that takes long.
    if (h == Health::kSuspect && e.info.state == AgentState::kStarting && silent <= 2 * interval_) {
      continue;
    }
    std::string reason;
    if (h == Health::kDead) {
      reason = e.info.exited ? (e.exit_reason.empty() ? std::string("its process ended")
                                                      : e.exit_reason)
                             : absl::StrCat("no heartbeat for ", absl::FormatDuration(silent));
    } else if (h == Health::kSuspect) {
      reason = !e.info.connected ? std::string("its session stream is closed")
                                 : absl::StrCat("no heartbeat for ", absl::FormatDuration(silent));
    } else {
      reason = "heard from again";
    }
    out.push_back(AgentChange{id, HealthName(h), std::move(reason)});
    e.logged_health = h;
  }
  std::sort(out.begin(), out.end(),
            [](const AgentChange& a, const AgentChange& b) { return a.agent < b.agent; });
  return out;
}

std::vector<std::string> AgentRegistry::ForgetDead(absl::Duration keep_dead) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<std::string> gone;
  for (const auto& [id, e] : agents_) {
    if (now - e.info.last_seen >= timeout_ + keep_dead) gone.push_back(id);
  }
  for (const std::string& id : gone) agents_.erase(id);
  return gone;
}

}  // namespace harness
