// SwarmLauncher: `agent.launcher: swarm`: the pool's agents are the tasks of one Docker Swarm
// service (default `harness-agents`, labelled harness.controller=<controller id>) spread over
// the swarm's nodes, talked to through a manager's Engine API (docker_engine.h). Slot k is the
// service's task slot k: its agent id (`agent-{{.Task.Slot}}`, in HARNESS_AGENT_ID and the
// container's hostname) follows from it, so replicas = the pool's slots.
//
// How the Launcher contract maps onto Swarm (docs/LAUNCHERS.md, "Swarm"):
//   Start(k)  replicas >= k (an update carrying the service's version index, re-read and
//             retried when it moved), then the newest task of slot k that swarm wants running
//             and that was not reported ended or asked to stop: Launched.id is that TASK id, so
//             the late end of an old task of slot k is never taken for its new one's.
//   restarts  swarm's own (RestartPolicy any, Delay = agent_restart_delay, MaxAttempts /
//             Window = max_agent_failures / failure_window): the pool's Start after a death
//             finds the task swarm made for the slot. A slot swarm gave up on cannot be
//             restarted alone (only a forced update of every task revives it): Start fails
//             saying so.
//   Stop      a task of a slot above SetSlotCount: the replicas were lowered, swarm stops it
//             (SIGTERM, SIGKILL after the service's stop grace). A task on the manager's own
//             node: its container is killed (SIGTERM, SIGKILL after `grace`). A task on
//             another node: the Engine API cannot stop one task there; FailedPrecondition.
//   scale-down  removes_highest_slots_only(): the pool drains the highest slots and lowers
//             the count once they exit (SetSlotCount lowers the replicas).
//   exits     a watcher thread reads the service's tasks every poll_interval and reports each
//             tracked task's end once (complete, failed, shutdown, rejected, orphaned, or
//             gone) with the container's exit code.
//   List      a controller restart keeps the service and adopts its live tasks; a service of
//             the same name labelled for another controller is left alone (an error).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "launch/docker_engine.h"
#include "launch/launcher.h"

namespace harness::launch {

inline constexpr absl::string_view kDefaultSwarmService = "harness-agents";

struct SwarmLauncherOptions {
  std::string socket = std::string(kDefaultDockerSocket);  // a swarm manager's unix socket
  std::string service = std::string(kDefaultSwarmService);
  std::string controller_id;  // the harness.controller label of the service
  std::string image;          // loaded on every node; used as named (no registry)
  ExitCallback on_exit;       // may be empty
  Clock* clock = nullptr;     // default Clock::Real()
  int64_t memory_bytes = 0;   // each task's memory limit (Resources.Limits); 0: none
  int64_t nano_cpus = 0;      // each task's CPU limit (Resources.Limits), 1e9 = one CPU; 0: none
  // The service's RestartPolicy (Condition any): mirrors the pool's restart delay and failure
  // threshold, so that swarm gives up on a slot where the pool marks it failed.
  absl::Duration restart_delay = absl::Seconds(10);
  int max_attempts = 3;
  absl::Duration failure_window = absl::Minutes(10);
  // The service's StopGracePeriod: a task removed by lowering the replicas gets SIGTERM, and
  // SIGKILL this much later.
  absl::Duration stop_grace = absl::Seconds(10);
  absl::Duration start_timeout = absl::Seconds(60);  // Start's wait for the slot's task
  absl::Duration poll_interval = absl::Seconds(1);   // the watcher's reading of the tasks
  absl::Duration call_timeout = absl::Seconds(30);   // each Engine API call
};

class SwarmLauncher : public Launcher {
 public:
  // Starts the watcher thread. InvalidArgument for a bad controller id, service name or no
  // image. Does not need the daemon yet.
  static absl::StatusOr<std::unique_ptr<SwarmLauncher>> Create(SwarmLauncherOptions options);
  // Stops watching; leaves the service and its tasks running (the next controller adopts them).
  ~SwarmLauncher() override;

  absl::string_view kind() const override { return "swarm"; }
  // spec.agent_id must be agent-<slot>. The first Start creates the service when there is none:
  // args `/bin/sh -c 'exec "$0" --id "$HARNESS_AGENT_ID" "$@"' <binary> --controller <address>
  // [--workdir W] <extra_args...>` under the image's entrypoint (tini), env HARNESS_AGENT_ID,
  // HARNESS_SLOT, HARNESS_CONTROLLER, HARNESS_CONTROLLER_ID, host networking; from
  // spec.credentials HARNESS_TOKEN in the env and the TLS files as read-only bind mounts under
  // kContainerTlsDir (ForContainer): the same host path must hold them on every node. An
  // existing service is kept as it is (its credentials too).
  absl::StatusOr<Launched> Start(const LaunchSpec& spec) override;
  absl::Status Stop(absl::string_view id, absl::Duration grace) override;
  absl::StatusOr<std::vector<Launched>> List() override;
  // The manager answers (GET /info) and is an active swarm manager: UNAVAILABLE otherwise, so
  // the pool holds its starts while the daemon is down or has left the swarm.
  absl::Status Check() override;
  bool removes_highest_slots_only() const override { return true; }
  void SetSlotCount(int count) override;

 private:
  struct Entry {
    Launched launched;
    std::string node_id;
    std::string container_id;
    bool stopping = false;
    std::optional<absl::Time> kill_at;  // SIGKILL of a local container (Stop)
  };

  explicit SwarmLauncher(SwarmLauncherOptions options);
  void WatchLoop();
  // The service, created (with `replicas`) if there is none and `spec` is given. Fails for a
  // service of another controller.
  absl::StatusOr<SwarmService> EnsureService(const LaunchSpec* spec, int replicas);
  // Sets the replicas to at least (`raise`) or at most (`!raise`) `count`; retries when the
  // service's version moved.
  absl::Status SetReplicas(int count, bool raise);
  std::string ServiceSpec(const LaunchSpec& spec, const ContainerCredentials& creds,
                          int replicas) const;
  // "hostname (addr)" of a node, read from the manager (cached).
  std::string HostOf(const std::string& node_id);
  Launched MakeLaunched(const SwarmTask& t, bool adopted);
  void Report(const std::string& id, const std::optional<SwarmTask>& task);

  const SwarmLauncherOptions options_;
  Clock* const clock_;
  DockerEngine engine_;

  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);  // by task id
  std::set<std::string> ended_ ABSL_GUARDED_BY(mu_);           // task ids reported ended
  std::map<std::string, std::string> hosts_ ABSL_GUARDED_BY(mu_);  // node id -> host
  std::string local_node_ ABSL_GUARDED_BY(mu_);                    // the manager's node id
  int slot_count_ ABSL_GUARDED_BY(mu_) = -1;                       // -1: not told yet
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::thread watcher_;
};

}  // namespace harness::launch
