// DockerLauncher: `agent.launcher: docker`: each agent is a container of the agent image on the
// local Docker daemon (Engine API over its unix socket, docker_engine.h), named
// `harness-<controller-id>-<agent-id>` and labelled harness.controller / harness.slot /
// harness.agent, with host networking. A restarted controller finds its containers by label
// (List): running ones are adopted, ended ones removed; another controller's are left alone.
// One watcher thread follows the daemon's /events stream (filtered on this controller's label)
// and reports every container's end once, with docker's exit code, then removes the container.
// Same promises as the process launcher (launcher.h, docs/LAUNCHERS.md), so the pool needs no
// special case. Not Swarm (services across hosts): that is another launcher.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "launch/docker_engine.h"
#include "launch/launcher.h"

namespace harness::launch {

struct DockerLauncherOptions {
  std::string socket = std::string(kDefaultDockerSocket);  // the daemon's unix socket
  std::string controller_id;  // the harness.controller label; List() adopts only these
  std::string image;          // the agent image, e.g. "harness-agent:0.1.0"
  ExitCallback on_exit;       // may be empty
  Clock* clock = nullptr;     // default Clock::Real()
  // Container limits (HostConfig.Memory / NanoCpus); 0: none. The item's own limits still
  // travel with each lease and agentd applies them inside the container.
  int64_t memory_bytes = 0;
  int64_t nano_cpus = 0;  // 1e9 = one CPU
  // Docker's own init as PID 1 (HostConfig.Init), for an image whose entrypoint is not an
  // init. The harness-agent image's entrypoint is tini already: leave this false for it.
  bool init = false;
  std::vector<std::string> binds;  // "host-path:container-path[:ro]" mounts
  // Where an ended container's output goes before the container is removed: appended to
  // <log_dir>/<agent-id>/agentd.log (the process launcher's layout under <state>/agents, so
  // crash contexts find it). Empty: not kept.
  std::string log_dir;
  std::string network_mode = "host";                // agents dial the controller's address as given
  absl::Duration call_timeout = absl::Seconds(30);  // each Engine API call
  absl::Duration reconnect_delay = absl::Seconds(1);  // after the event stream fails
};

class DockerLauncher : public Launcher {
 public:
  // Starts the watcher thread. InvalidArgument for a bad controller id or no image. Does not
  // need the daemon: while it is down, calls fail with UNAVAILABLE and the watcher retries.
  static absl::StatusOr<std::unique_ptr<DockerLauncher>> Create(DockerLauncherOptions options);
  // Stops watching; leaves every container running (the next controller adopts them).
  ~DockerLauncher() override;

  absl::string_view kind() const override { return "docker"; }
  // Creates and starts `harness-<controller-id>-<agent-id>` from the image: command
  // <binary> --id <agent> --controller <address> [--workdir <workdir>] <extra_args...> (binary
  // defaults to "agentd", found on the image's PATH; the image's entrypoint, tini, runs it),
  // environment HARNESS_AGENT_ID, HARNESS_SLOT, HARNESS_CONTROLLER, HARNESS_CONTROLLER_ID, the
  // workdir (if given) also its working directory. spec.credentials: HARNESS_TOKEN in the
  // environment, the TLS files bound read-only under kContainerTlsDir (ForContainer). No --repo: the base and the results travel
  // over gRPC. An ended container of the same name left by this controller is removed first.
  // The id is the container id; pid the container's first process on the host (tini), which
  // is not the pid agentd registers with (that one is from inside the container's namespace).
  absl::StatusOr<Launched> Start(const LaunchSpec& spec) override;
  // SIGTERM to the container now (docker kill --signal TERM), SIGKILL after `grace` (<= 0: at
  // once), as `docker stop -t grace` would, without waiting for it.
  absl::Status Stop(absl::string_view id, absl::Duration grace) override;
  // Containers labelled harness.controller=<this id> and named as this launcher names them:
  // running (or paused, restarting) ones are adopted; ended or never-started ones removed.
  absl::StatusOr<std::vector<Launched>> List() override;
  // GET /version: OK when the daemon answers with an API version this client speaks; else the
  // engine's error without its call name ("docker daemon at unix://... is not reachable ...").
  absl::Status Check() override;

  // The container name for an agent: harness-<controller-id>-<agent-id>.
  static std::string ContainerName(absl::string_view controller_id, absl::string_view agent_id);

 private:
  struct Entry {
    Launched launched;
    bool starting = false;       // Start has not finished: an end seen now is re-checked after
    bool died_starting = false;  // an end was seen while starting
    bool exiting = false;        // the watcher is reporting its end
    std::optional<absl::Time> kill_at;  // pending SIGKILL (Stop)
  };

  explicit DockerLauncher(DockerLauncherOptions options, std::string host);
  void WatchLoop();
  void Wake();
  // Inspects `id` and, if it has ended (or is gone), reports it: removes the container, calls
  // back. `event_exit_code`: the die event's, used when the container is gone already.
  void Finish(const std::string& id, std::optional<int> event_exit_code) ABSL_LOCKS_EXCLUDED(mu_);
  // Adopts a running container found by List (the caller reserved its agent id).
  void Adopt(const ContainerSummary& c, int slot, const std::string& agent_id);
  void Unreserve(const std::string& agent_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Appends the ended container's output to <log_dir>/<agent>/agentd.log.
  void KeepLog(const std::string& id, const std::string& agent_id);
  // Create, removing an ended container of ours of the same name if docker says it exists
  // (waiting for a removal already under way, 10 s at most).
  absl::StatusOr<std::string> CreateContainer(const ContainerSpec& spec);

  const DockerLauncherOptions options_;
  const std::string host_;
  Clock* const clock_;
  DockerEngine engine_;
  UniqueFd wake_fd_;  // eventfd: a Stop deadline, an id to check, or shutdown

  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);       // by container id
  absl::flat_hash_set<std::string> reserved_ ABSL_GUARDED_BY(mu_);  // agent ids being worked on
  std::set<std::string> check_ ABSL_GUARDED_BY(mu_);                // ids the watcher must inspect
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::thread watcher_;
};

}  // namespace harness::launch
