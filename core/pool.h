// Pool: the managed agent pool as a state machine. It decides, it never acts: the caller feeds
// it what happened (a target, a launch's outcome, an exit, a dead agent, what the agents are
// doing) and carries out the actions it returns (Start, Stop, Drain, Alert) through a Launcher
// and the AgentRegistry. Time comes from the injected Clock; it holds no thread and does no I/O,
// so every rule is tested on a FakeClock (tests/unit/pool_test.cc). No gRPC.
//
// Not thread-safe: the caller (the controller's pool manager) serializes every call.
//
// Slots are numbered 1..; slot k runs agent "agent-k". Each slot has a desired state (run, or
// leave the pool) and an observed state:
//   starting    waiting for its (staggered) first start, or a Start is out and not yet answered
//   running     the launcher reported it launched (or it was adopted at start-up)
//   restarting  it died; started again restart_delay after the death
//   draining    leaving the pool: told to finish its item and exit; removed when it exits
//   stopped     leaving the pool: stopped (force, or killed); removed when it exits
//   failed      it died more than max_agent_failures times within failure_window: no more
//               starts until the target is set again (or a new Pool, at controller restart)
// A death is an exit or a dead heartbeat of a slot that should run, or a failed launch. Exits of
// a draining or stopped slot are expected and not deaths, and so is the exit of an agent an
// operator drained or stopped (Replace): its slot starts a fresh one. See docs/ARCHITECTURE.md, "Pool".
#pragma once

#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace harness {

enum class SlotState { kStarting, kRunning, kRestarting, kDraining, kStopped, kFailed };
const char* SlotStateName(SlotState s);  // "starting", "running", ...

// The agent id of a pool slot: "agent-<slot>".
std::string PoolAgentId(int slot);

struct PoolOptions {
  int target = 0;
  absl::Duration startup_stagger = absl::ZeroDuration();  // between two Starts, any slots
  absl::Duration restart_delay = absl::ZeroDuration();    // from a death to the slot's Start
  int max_agent_failures = 3;  // more deaths than this within the window: failed
  absl::Duration failure_window = absl::Minutes(10);
  absl::Duration stop_grace = absl::Seconds(10);  // Stop of a forced victim or a stray
  // The launcher can only remove the highest slots (Swarm drops the highest task slots when
  // the replicas drop): scale-down victims are then always the highest slots, whatever their
  // agents do, and a scale-up takes back slots still leaving (lowest first; a running agent
  // of one is replaced once it exits) before adding new numbers, so that the slots stay
  // 1..n. See SlotsToKeep.
  bool highest_slots_only = false;
};

// Something the caller must do.
struct PoolAction {
  enum Kind {
    kStart,  // launch `agent` for `slot`; answer with LaunchSucceeded / LaunchFailed
    kStop,   // stop `launched_id` (SIGTERM, SIGKILL after `grace`); its exit is reported
    kDrain,  // tell `agent` to finish its item and exit
    kAlert,  // `slot` hit the failure threshold: `failures` deaths, the last for `reason`
  };
  Kind kind = kStart;
  int slot = 0;  // 0 for a stray (a launched thing of no slot of this pool)
  std::string agent;
  std::string launched_id;  // kStop
  absl::Duration grace;     // kStop; zero when killing a dead agent
  std::string reason;       // kStop: why; kAlert: the last death's reason
  bool release = false;     // kStop: hand the agent's item back first (force, operator stop)
  int failures = 0;         // kAlert
};

// What an agent is doing, from the AgentRegistry; scale-down picks victims from it.
struct AgentActivity {
  std::string agent;
  bool working = false;
  absl::Time item_started;  // when its current item started, if working
};

// A launched thing the launcher found alive (its List()), for adoption at start-up.
struct LaunchedThing {
  int slot = 0;  // from the thing's labels; 0 or negative if it carries none
  std::string launched_id;
};

// One slot as `status` shows it (CONTRACT.md, "The pool": pool.slots).
struct PoolSlotStatus {
  int slot = 0;
  std::string agent;
  SlotState state = SlotState::kStarting;
  int failures = 0;    // deaths within failure_window (for a failed slot: when it failed)
  std::string reason;  // the last death's reason; empty if it never died
  std::string launched_id;
};

class Pool {
 public:
  // Slots 1..options.target start out `starting`, due at once (staggered). Call Adopt before
  // the first Tick if things may already run (a controller restart).
  Pool(PoolOptions options, Clock* clock);

  // Adoption at start-up: a thing of a slot within the target that has no thing yet makes the
  // slot `running` (no second start); any other thing (slot above the target, no slot, a second
  // thing for a slot) is a stray and is stopped. Returns those Stops and the due Starts.
  std::vector<PoolAction> Adopt(const std::vector<LaunchedThing>& alive);

  // Scales to `target` (InvalidArgument if negative). Up: new slots take the lowest free
  // numbers (a number still held by a slot being removed is not free). Down: victims are slots
  // with nothing running first, then idle agents, then those whose item has run shortest; the
  // highest slot among equals. Without `force` a victim with a running agent is drained; with
  // `force` it is stopped at once, and slots already draining are stopped too. Every failed slot
  // that stays is re-armed (failures cleared, started again at once).
  absl::StatusOr<std::vector<PoolAction>> SetTarget(int target, bool force);

  // The launcher answered a Start. An answer for a slot that no longer waits for one gets its
  // thing stopped (a stray), so nothing launched is ever untracked.
  std::vector<PoolAction> LaunchSucceeded(int slot, const std::string& launched_id);
  // Counts as a death of the slot.
  std::vector<PoolAction> LaunchFailed(int slot, const std::string& reason);

  // A launched thing exited (reason e.g. "exited with status 3", "killed by signal 9"). Exits
  // of ids no slot holds (strays, dead agents already replaced) are ignored.
  std::vector<PoolAction> Exited(const std::string& launched_id, const std::string& reason);

  // An operator drained (`force`: stopped) the agent of a slot: its exit is expected, not a
  // death, and the slot then starts a fresh agent (staggered, without the restart delay).
  // NotFound if no slot of this pool runs `agent_id`.
  absl::StatusOr<std::vector<PoolAction>> Replace(const std::string& agent_id, bool force);

  // The agent's heartbeat went silent for heartbeat_timeout: a death. Its thing is killed
  // (Stop, zero grace) and the slot restarts after restart_delay without waiting for the exit.
  // Ignored for agents of no slot, or with nothing running.
  std::vector<PoolAction> AgentDead(const std::string& agent_id, const std::string& reason);

  // The agents' current activity, replacing the last report. Agents missing from it count as
  // idle.
  void ObserveAgents(const std::vector<AgentActivity>& agents);

  // Starts that have come due (delayed restarts, staggered starts).
  std::vector<PoolAction> Tick();

  // When the next Start comes due (call Tick then); InfiniteFuture if none is pending.
  absl::Time NextTick() const;

  int target() const { return target_; }
  std::vector<PoolSlotStatus> Snapshot() const;
  // Deaths of launched agents since this Pool began (each led to a restart or a failed slot).
  uint64_t deaths() const { return deaths_; }

  // The highest slot number whose launched thing must keep running: a slot that should run,
  // or one leaving by a drain whose agent has not exited yet; not a slot leaving by a stop
  // (force), which may go at once. 0 when none. With highest_slots_only, a launcher of
  // numbered replicas keeps exactly this many (and removes the rest).
  int SlotsToKeep() const;

 private:
  enum class Desired { kRun, kLeave };
  struct Slot {
    int number = 0;
    Desired desired = Desired::kRun;
    SlotState state = SlotState::kStarting;
    bool launching = false;         // a Start is out, not yet answered
    std::string launched_id;        // empty: nothing of ours runs for this slot
    bool replacing = false;         // launched_id is expected to exit (Replace)
    absl::Time due;                 // kStarting / kRestarting, not launching: start at or after
    std::deque<absl::Time> deaths;  // within failure_window at the last death
    std::string reason;             // of the last death
  };

  // Waits for a Start: should run, nothing running, no Start out.
  static bool PendingStart(const Slot& s);
  absl::Time EarliestStart(const Slot& s) const;
  // Records a death at `now`: the slot restarts after restart_delay, or fails (one Alert).
  void RecordDeath(Slot& s, absl::Time now, const std::string& reason,
                   std::vector<PoolAction>& out);
  // The slot leaves the pool now if nothing of it runs; otherwise it waits for the exit.
  void Leave(int number, bool force, std::vector<PoolAction>& out);
  void ScaleDown(int count, bool force, std::vector<PoolAction>& out);
  void ScaleUp(int count, absl::Time now);
  void EmitDueStarts(absl::Time now, std::vector<PoolAction>& out);
  PoolAction StopAction(int slot, const std::string& launched_id, absl::Duration grace,
                        const std::string& reason, bool release = false) const;
  Slot* FindById(const std::string& launched_id);
  // Ends the running thing of `s`: Drain (it finishes its item), or with `force` Stop (its
  // item released); sets the slot's state to match.
  PoolAction EndAction(Slot& s, bool force, const std::string& reason) const;

  const PoolOptions options_;
  Clock* const clock_;
  int target_ = 0;
  std::map<int, Slot> slots_;                                 // by number, ascending
  absl::flat_hash_map<std::string, AgentActivity> activity_;  // by agent id
  absl::Time last_start_ = absl::InfinitePast();
  uint64_t deaths_ = 0;
};

}  // namespace harness
