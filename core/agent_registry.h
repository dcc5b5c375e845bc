// AgentRegistry: the agents the controller knows, their sessions, reported state and health,
// and the commands waiting for them (drain, cancel, stop, lease lost). No gRPC: a session
// stream is an AgentSink the RPC layer implements. Thread-safe.
//
// Health, judged at each read from the injected Clock:
//   healthy  its session stream is open and it was heard from within 2 heartbeat intervals
//   suspect  its stream is closed, or it missed heartbeats, but it is not yet dead
//   dead     silent for heartbeat_timeout or longer, or its process is known to have ended
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/output_line.h"

namespace harness {

enum class AgentState { kStarting, kIdle, kWorking, kDraining, kStopped };
enum class Health { kHealthy, kSuspect, kDead };
const char* AgentStateName(AgentState s);  // "starting", "idle", ...
const char* HealthName(Health h);          // "healthy", "suspect", "dead"

// Something the controller tells an agent over its session.
struct AgentCommand {
  enum Kind { kDrain, kCancel, kStop, kLeaseLost } kind = kDrain;
  std::string item_id;  // kCancel, kLeaseLost
  uint64_t token = 0;   // kCancel, kLeaseLost
  std::string reason;
  absl::Duration grace;  // kStop
};

// The sending end of an agent's session stream.
class AgentSink {
 public:
  virtual ~AgentSink() = default;
  virtual void Deliver(const AgentCommand& command) = 0;
  // The controller's ticker, about every 100 ms (TickSinks), for the stream's own timeouts.
  virtual void OnTick(absl::Time /*now*/) {}
};

struct AgentInfo {
  std::string id;
  std::string session_id;
  AgentState state = AgentState::kStarting;
  Health health = Health::kHealthy;
  bool connected = false;
  bool draining = false;
  bool exited = false;  // its process is known to have ended (MarkExited): dead at once
  bool stopped_cleanly = false;  // it said it stopped (a drain or stop ended): silence expected
  int pid = 0;
  std::string host;
  std::string version;
  absl::Time registered;
  absl::Time last_seen;
  // The last line its command printed for lease `output_token` (Progress; sanitized, bounded).
  std::string last_output_line;
  uint64_t output_token = 0;
};

// A moment of an agent's life, recorded when it happens (a poll of List() misses those that
// come and go between two looks: a drained agent that exits and whose slot registers a new one
// under the same id within a tick). For the event feed (core/state_events.h).
struct AgentLifeEvent {
  enum Kind { kRegistered, kDraining, kStopped } kind = kRegistered;
  AgentInfo info;  // as it was then, health included
  absl::Time at;
};

// A change of an agent's health or life, for the log (docs/CONTROLLER.md, "Log lines").
struct AgentChange {
  std::string agent;
  const char* what = "";  // "suspect", "dead", "healthy" (again), "stopped", "drained"
  std::string reason;
};

class AgentRegistry {
 public:
  AgentRegistry(Clock* clock, absl::Duration heartbeat_interval, absl::Duration heartbeat_timeout);

  // Starts a new session for the agent (replacing an earlier one) and returns its id.
  std::string Register(const std::string& agent_id, int pid, const std::string& host,
                       const std::string& version);
  // OK if `session_id` is the agent's current session; NotFound ("unknown session: register
  // again") otherwise. Counts as hearing from the agent.
  absl::Status Touch(const std::string& agent_id, const std::string& session_id);
  // The session stream opened / closed. Commands sent while a stream is open go to its sink.
  absl::Status Attach(const std::string& agent_id, const std::string& session_id,
                      std::shared_ptr<AgentSink> sink);
  void Detach(const std::string& agent_id, const AgentSink* sink);
  absl::Status Heartbeat(const std::string& agent_id, const std::string& session_id,
                         AgentState reported);
  // Marks the agent draining and tells it. NotFound for an unknown agent.
  absl::StatusOr<AgentInfo> Drain(const std::string& agent_id);
  bool IsDraining(const std::string& agent_id) const;
  // Sends a command if the agent's stream is open; false if it could not be delivered.
  bool Send(const std::string& agent_id, const AgentCommand& command);
  // Sends a command to every connected agent.
  void Broadcast(const AgentCommand& command);
  // Calls OnTick(now) of every open session stream's sink (outside this registry's lock).
  void TickSinks();

  // Output of the agent's command for its lease `token` (a Progress chunk): keeps its last
  // line. Output of another token starts afresh.
  void NoteOutput(const std::string& agent_id, uint64_t token, absl::string_view data);

  // The launcher saw the agent's process (`pid`, 0: any) end: it is dead from now on, without
  // waiting for heartbeat_timeout, until it registers again. A registration by another pid
  // since is left alone.
  // `reason` ("exited with status 1") is what its "agent dead" log line says.
  void MarkExited(const std::string& agent_id, int pid, const std::string& reason = "");

  std::optional<AgentInfo> Get(const std::string& agent_id) const;
  // Every agent, sorted by id, health computed now.
  std::vector<AgentInfo> List() const;
  // The changes since the last call, judged now, each agent's at most once per change: its
  // health moved (suspect, dead, healthy again) or it reported that it stopped (stopped, or
  // drained if it was draining; its silence after that is not a change). An agent registering
  // starts afresh. The controller's ticker logs them (outside this lock).
  std::vector<AgentChange> TakeChanges();
  // The life events since the last call, in the order they happened: a registration (a new
  // session), the first Drain of a session, its stop (it said so, or its process ended). At
  // most kMaxLifeEvents are kept between calls (the oldest go).
  std::vector<AgentLifeEvent> TakeLifeEvents();
  static constexpr size_t kMaxLifeEvents = 4096;
  // Forgets agents dead for longer than `keep_dead`; returns their ids.
  std::vector<std::string> ForgetDead(absl::Duration keep_dead);

 private:
  struct Entry {
    AgentInfo info;
    std::shared_ptr<AgentSink> sink;
    OutputLine output;  // of lease info.output_token
    // For TakeChanges.
    Health logged_health = Health::kHealthy;
    bool stop_reported = false;  // a heartbeat said kStopped
    std::string exit_reason;     // MarkExited's
  };
  Health HealthOf(const Entry& e, absl::Time now) const;
  void RecordLife(AgentLifeEvent::Kind kind, const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration interval_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> agents_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  // Recorded when they happen, so a registration that follows at once cannot hide them.
  std::vector<AgentLifeEvent> life_ ABSL_GUARDED_BY(mu_);
  std::vector<AgentChange> stops_ ABSL_GUARDED_BY(mu_);  // "stopped" / "drained" for the log
};

}  // namespace harness
