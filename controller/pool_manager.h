// PoolManager: keeps the managed agent pool at its target. The Pool (core/pool.h) decides, the
// Launcher (launch/) acts, and both are used on one thread of the manager's own and nowhere
// else: a scale, an operator's drain or stop, a launched agent's exit and a context to keep are
// queued as events under a short lock and handled there, so launches, file writes and alert
// commands never run under a lock or on an RPC or committer thread.
//
// Each round it also reads the registry and the leases: the agents' activity (scale-down picks
// victims from it) and their health. An agent of the pool that goes silent for
// heartbeat_timeout (or never registers: RegisterDeadline) is killed and its slot restarted.
//
// A death (an exit the pool did not ask for, or a dead heartbeat) of a slot's agent:
//   1. its context goes to <state>/crashes/<agent>/<timestamp>/ (core/crash_context.h);
//   2. its lease ends at once (EXPIRED, counted, the reason naming that folder), so the item
//      runs elsewhere without waiting for the TTL;
//   3. the registry marks it exited; the slot restarts after agent_restart_delay, or fails at
//      the threshold (one log line and coordinator.on_alert).
// A launcher that cannot act (its daemon is down or refuses) is no agent's death: the starts
// are held (core/launcher_outage.h), the error is published for `status` and logged, the
// launcher is probed with backoff, and once it answers what runs is adopted and the held slots
// are started. The target is durable (core/pool_target.h). With `launcher: none` nothing is
// launched: the target is only recorded. See docs/CONTROLLER.md, "The pool".
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/agent_registry.h"
#include "core/clock.h"
#include "core/crash_context.h"
#include "core/launcher_outage.h"
#include "core/pool.h"
#include "core/work_queue.h"
#include "launch/alert_command.h"
#include "launch/launcher.h"

namespace harness {

struct PoolManagerOptions {
  std::string launcher = "none";  // "process" | "docker" | "swarm" | "none"
  PoolOptions pool;               // pool.target is the config's; the durable one may replace it
  std::string state_dir;
  std::string binary;  // the agentd to launch (process: a path; docker: in the image)
  std::vector<std::string> agent_args;  // appended to every launched agentd's argv
  // What every launched agent presents (controller/agent_credentials.h); never on its argv.
  launch::AgentCredentials agent_credentials;
  std::vector<std::string> on_alert;
  std::string docker_socket;   // docker, swarm launcher: the daemon's (a manager's) unix socket
  std::string docker_image;    // docker, swarm launcher: the agent image
  int64_t docker_memory_bytes = 0;  // docker, swarm: each container's memory limit (0: none)
  int64_t docker_nano_cpus = 0;  // docker, swarm: each container's CPU limit, 1e9 = 1 CPU (0: none)
  std::string swarm_service = "harness-agents";  // swarm launcher: the service of the agents
  absl::Duration heartbeat_timeout = absl::Seconds(30);
  // How often the registry and the leases are read between events.
  absl::Duration observe_interval = absl::Milliseconds(200);
  int keep_crashes = kKeepCrashesPerAgent;
  // While the launcher cannot act: the first probe this long after the failure, then doubling.
  absl::Duration launcher_retry_min = absl::Milliseconds(500);
  absl::Duration launcher_retry_max = absl::Seconds(10);
};

struct ScaleResult {
  int old_target = 0;
  int new_target = 0;
};

class PoolManager {
 public:
  // Reads the durable target and the controller id (made on first use), creates the launcher.
  static absl::StatusOr<std::unique_ptr<PoolManager>> Create(PoolManagerOptions options,
                                                             WorkQueue* queue,
                                                             AgentRegistry* agents, Clock* clock);
  // Stops the thread. Launched agents keep running: to them it is a controller crash, and the
  // next controller adopts them.
  ~PoolManager();

  // Adopts what a previous controller launched and starts the thread. `address` is what
  // launched agents dial.
  void Start(const std::string& address);

  // True when agents are launched (launcher other than none).
  bool managed() const { return options_.launcher != "none"; }
  const std::string& controller_id() const { return controller_id_; }
  std::string launcher_kind() const { return options_.launcher; }

  // Sets the target (durably) and acts on it; `done` runs on the manager's thread once the new
  // target is on disk (InvalidArgument for a negative one).
  void Scale(int target, bool force, std::function<void(absl::StatusOr<ScaleResult>)> done);
  // An operator's drain (force: stop) of one launched agent: it finishes its item (force: its
  // item is released) and exits, and its slot starts a fresh agent. `done` gets NotFound when
  // no slot of the pool runs `agent`.
  void Replace(const std::string& agent, bool force, std::function<void(absl::Status)> done);
  // Keeps the context of an attempt that stalled or timed out (written on the manager's thread).
  void KeepContext(CrashContext context);

  int target() const;
  std::vector<PoolSlotStatus> Slots() const;
  // Deaths of launched agents since the controller started (restarts and failed slots).
  uint64_t deaths() const;
  // Why the launcher cannot act now (its daemon is down or refuses); "" when it can.
  std::string launcher_error() const;
  // The pid on this host of each launched agent's main process, by agent id, for `status`
  // (process: agentd; docker: the container's first process; swarm: 0, it may run elsewhere).
  std::map<std::string, int64_t> LaunchedPids() const;

  // SIGTERM: no more starts; every launched agent is asked to stop (it finishes or releases its
  // item within agentd's shutdown grace) and killed after the pool's stop_grace. Returns when
  // all have exited (or stop_grace and a little more have passed).
  void Shutdown();

 private:
  struct Event {
    enum Kind { kScale, kReplace, kExit, kContext, kShutdown } kind = kScale;
    int target = 0;
    bool force = false;
    std::string agent;
    launch::LaunchExit exit;
    CrashContext context;
    std::function<void(absl::StatusOr<ScaleResult>)> scale_done;
    std::function<void(absl::Status)> replace_done;
  };
  // What is running for the pool, by launched id (the manager's thread only).
  struct Thing {
    std::string agent;
    int slot = 0;
    int64_t pid = 0;
    absl::Time watch_from;  // its start, or its adoption: registration is expected after it
    bool declared_dead = false;
  };

  PoolManager(PoolManagerOptions options, WorkQueue* queue, AgentRegistry* agents, Clock* clock,
              std::string controller_id, int target);
  void Post(Event e) ABSL_LOCKS_EXCLUDED(mu_);
  void Loop();
  void Handle(Event& e);
  void HandleExit(const launch::LaunchExit& exit);
  void Observe();
  void Execute(std::vector<PoolAction> actions);
  void Launch(const PoolAction& a, std::vector<PoolAction>& more);
  // The launcher failed with an outage (`error`): the error is probed, kept and logged.
  void EnterOutage(const absl::Status& error);
  // Due while the launcher cannot act: probe it; once it answers, adopt what runs and start the
  // held slots.
  void RetryLauncher();
  // Adopts launched things this manager does not track (List after an outage): a held slot's
  // is its start, others go to Pool::Adopt (a slot waiting to start, or a stray).
  void AdoptFound(const std::vector<launch::Launched>& found);
  // Held starts of slots that left the pool meanwhile are answered (no death: they leave).
  void DropUnwantedHeld();
  // Context, the lease ended at once, a log line. Returns the reason recorded with the lease.
  void OnDeath(const std::string& agent, const std::string& launched_id,
               const std::string& reason);
  std::string LaunchedIdOf(const std::string& agent) const;
  // How long a launched agent may take to register: heartbeat_timeout, at least 30 s (agentd
  // prepares its worktree first).
  absl::Duration RegisterDeadline() const {
    return std::max(options_.heartbeat_timeout, absl::Seconds(30));
  }
  void Publish() ABSL_LOCKS_EXCLUDED(mu_);

  const PoolManagerOptions options_;
  WorkQueue* const queue_;
  AgentRegistry* const agents_;
  Clock* const clock_;
  const std::string controller_id_;
  std::string address_;  // set by Start, before the thread

  // The manager's thread only (and Start, before it runs).
  std::unique_ptr<Pool> pool_;  // null with launcher none
  std::unique_ptr<launch::Launcher> launcher_;
  std::map<std::string, Thing> things_;
  launch::AlertCommand alert_;
  int unmanaged_target_ = 0;  // launcher none: the recorded target
  bool shutting_down_ = false;
  LauncherOutage outage_;

  mutable absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_done_ ABSL_GUARDED_BY(mu_) = false;
  // Published at the end of every round, for Status.
  int published_target_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PoolSlotStatus> published_slots_ ABSL_GUARDED_BY(mu_);
  std::string published_launcher_error_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> published_pids_ ABSL_GUARDED_BY(mu_);
  uint64_t published_deaths_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;
};

}  // namespace harness
