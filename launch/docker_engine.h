// DockerEngine: a small client of the Docker Engine API over its unix socket (libcurl's
// CURLOPT_UNIX_SOCKET_PATH, JSON with nlohmann-json): just the calls the docker launcher needs
// (create, start, kill, stop, inspect, list by label, remove, version) and the /events stream,
// and for the swarm launcher a service's create, inspect and update, its tasks and the nodes.
// Not a general docker client, and no shelling out to the docker CLI.
//
// The API version is negotiated once with `GET /version`: the lower of the daemon's and the
// newest this client was written against (1.41, Debian 12's dockerd), refusing daemons older
// than 1.25. Every error is an absl::Status naming the call, the HTTP status and docker's own
// message ("docker create harness-c1-agent-1: HTTP 404: No such image: x:1"); a daemon that is
// not there is UNAVAILABLE ("docker daemon at unix:///var/run/docker.sock is not reachable ...").
// Thread-safe: each call uses a connection of its own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace harness::launch {

inline constexpr absl::string_view kDefaultDockerSocket = "/var/run/docker.sock";

struct DockerEngineOptions {
  std::string socket = std::string(kDefaultDockerSocket);
  absl::Duration timeout = absl::Seconds(30);  // per call (not the event stream)
};

// What to create (POST /containers/create). Empty / zero fields are left to docker's defaults.
struct ContainerSpec {
  std::string name;
  std::string image;
  std::vector<std::string> cmd;
  std::optional<std::vector<std::string>> entrypoint;  // unset: the image's
  std::vector<std::string> env;                        // "NAME=value"
  std::map<std::string, std::string> labels;
  std::string working_dir;
  std::string network_mode;         // "host", "bridge", "none"...
  int64_t memory_bytes = 0;         // HostConfig.Memory (0: unlimited)
  int64_t nano_cpus = 0;            // HostConfig.NanoCpus, 1e9 = one CPU (0: unlimited)
  bool init = false;                // HostConfig.Init: docker's init as PID 1
  std::vector<std::string> binds;   // "host-path:container-path[:ro]"
  std::optional<int> stop_timeout;  // seconds docker stop waits by default
};

// What GET /containers/{id}/json says (the fields the launcher uses).
struct ContainerInfo {
  std::string id;
  std::string name;  // without docker's leading '/'
  std::string image;
  std::map<std::string, std::string> labels;
  std::string status;  // "created", "running", "exited", "dead", "paused", "restarting"...
  bool running = false;
  int64_t pid = 0;  // host pid of its first process (0 when not running)
  int exit_code = 0;
  bool oom_killed = false;
  std::string error;  // State.Error
  absl::Time started_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();
};

// One entry of GET /containers/json.
struct ContainerSummary {
  std::string id;
  std::string name;  // without the leading '/'
  std::string image;
  std::string state;  // "running", "exited", "created"...
  std::map<std::string, std::string> labels;
};

// One object of the /events stream.
struct DockerEvent {
  std::string type;                               // "container", ...
  std::string action;                             // "die", "start", "destroy", ...
  std::string id;                                 // Actor.ID
  std::map<std::string, std::string> attributes;  // Actor.Attributes (labels, exitCode, name)
  absl::Time time = absl::InfinitePast();
};

struct DockerVersion {
  std::string version;          // the engine's, e.g. "20.10.24+dfsg1"
  std::string api_version;      // the daemon's newest, e.g. "1.41"
  std::string min_api_version;  // the daemon's oldest
};

// Swarm (the swarm launcher): GET /info's Swarm part.
struct SwarmInfo {
  std::string node_id;           // this daemon's node ("" when not in a swarm)
  std::string local_node_state;  // "active", "inactive", "pending", "error", "locked"
  bool control_available = false;  // a manager: services and tasks can be managed here
};

// GET /services/{id}: what the launcher reads back.
struct SwarmService {
  std::string id;
  uint64_t version = 0;  // Version.Index: an update must carry it
  std::string spec;      // the Spec object as JSON text, to be changed and sent back
  std::map<std::string, std::string> labels;
  int64_t replicas = -1;  // Mode.Replicated.Replicas; -1 when not a replicated service
};

// One task of GET /tasks.
struct SwarmTask {
  std::string id;
  std::string service_id;
  std::string node_id;  // "" until scheduled
  int slot = 0;
  std::string desired_state;  // "ready", "running", "shutdown", "remove"...
  std::string state;          // Status.State: "new" ... "running", "complete", "failed"...
  std::string message;        // Status.Message
  std::string error;          // Status.Err
  std::string container_id;   // Status.ContainerStatus.ContainerID ("" before it exists)
  int exit_code = 0;          // Status.ContainerStatus.ExitCode
  absl::Time created = absl::InfinitePast();
  absl::Time updated = absl::InfinitePast();  // Status.Timestamp
};

// One node of GET /nodes.
struct SwarmNode {
  std::string id;
  std::string hostname;  // Description.Hostname
  std::string addr;      // Status.Addr
  std::string state;     // Status.State: "ready", "down", "unknown", "disconnected"
};

// A task state from which a task never runs again.
bool SwarmTaskEnded(absl::string_view state);

class DockerEventStream;

class DockerEngine {
 public:
  explicit DockerEngine(DockerEngineOptions options);
  ~DockerEngine();

  const std::string& socket() const { return options_.socket; }

  // GET /version (unversioned): the daemon's versions. Also sets the API version used by every
  // other call, which negotiate on first use otherwise.
  absl::StatusOr<DockerVersion> Version();
  // The API version in use ("1.41"); negotiates first if needed.
  absl::StatusOr<std::string> ApiVersion();

  // POST /containers/create?name=; returns the new container's id.
  absl::StatusOr<std::string> Create(const ContainerSpec& spec);
  // POST /containers/{id}/start. Already running: OK.
  absl::Status Start(absl::string_view id);
  // POST /containers/{id}/kill?signal=. NotFound for no such container; FailedPrecondition
  // when it is not running.
  absl::Status Kill(absl::string_view id, absl::string_view signal);
  // POST /containers/{id}/stop?t=: docker sends the stop signal and kills after `grace`; this
  // call waits for that (up to grace + the call timeout). Already stopped: OK.
  absl::Status Stop(absl::string_view id, absl::Duration grace);
  // GET /containers/{id}/json.
  absl::StatusOr<ContainerInfo> Inspect(absl::string_view id);
  // GET /containers/json?all=1&filters={"label":[...]}: containers carrying every label given
  // ("key=value" or "key"), running or not.
  absl::StatusOr<std::vector<ContainerSummary>> List(const std::vector<std::string>& labels);
  // GET /containers/{id}/logs?stdout=1&stderr=1&tail=N: the last `tail` lines of its output
  // (stdout and stderr interleaved as written; docker's stream framing removed).
  absl::StatusOr<std::string> Logs(absl::string_view id, int tail);
  // DELETE /containers/{id}?force=. Already gone: OK.
  absl::Status Remove(absl::string_view id, bool force);

  // GET /info: the daemon's part in a swarm.
  absl::StatusOr<SwarmInfo> Swarm();
  // GET /services/{name or id}. NotFound when there is none.
  absl::StatusOr<SwarmService> InspectService(absl::string_view name);
  // POST /services/create with `spec` (a ServiceSpec as JSON text); returns the service id.
  // The image is used as named: no registry is asked (API >= 1.30 resolves nothing unless
  // asked, the CLI's --no-resolve-image).
  absl::StatusOr<std::string> CreateService(absl::string_view name, const std::string& spec);
  // POST /services/{id}/update?version=: Aborted ("update out of sequence") when the service
  // changed since `version` was read: read it again and retry.
  absl::Status UpdateService(absl::string_view id, uint64_t version, const std::string& spec);
  // GET /tasks?filters={"service":[service]}: its tasks, current and past (swarm keeps a few
  // per slot).
  absl::StatusOr<std::vector<SwarmTask>> Tasks(absl::string_view service);
  // GET /nodes.
  absl::StatusOr<std::vector<SwarmNode>> Nodes();

  // Opens GET /events?filters=... (type container, the given actions and labels), delivered
  // through DockerEventStream::Poll. Fails when the daemon cannot be reached or refuses.
  absl::StatusOr<std::unique_ptr<DockerEventStream>> Events(const std::vector<std::string>& actions,
                                                            const std::vector<std::string>& labels);

  // A JSON request (body may be empty) to a versioned path ("/containers/json?all=1"):
  // returns the response body on 2xx, the error otherwise. `what` names the call in errors.
  struct Response {
    long http_status = 0;
    std::string body;
  };
  absl::StatusOr<Response> Call(absl::string_view what, absl::string_view method,
                                absl::string_view path, absl::string_view body,
                                absl::Duration timeout);

 private:
  absl::StatusOr<Response> Raw(absl::string_view what, absl::string_view method,
                               const std::string& url, absl::string_view body,
                               absl::Duration timeout);

  const DockerEngineOptions options_;
  absl::Mutex mu_;
  std::string api_version_ ABSL_GUARDED_BY(mu_);  // empty until negotiated
};

// A live /events stream. Not thread-safe: one thread polls it.
class DockerEventStream {
 public:
  ~DockerEventStream();
  // Waits up to `timeout` for events (or for `wake_fd`, an extra descriptor to watch, e.g. an
  // eventfd, to become readable; -1: none) and appends the complete ones received to `out`.
  // Returns an error when the stream has ended (the daemon stopped or closed it): open a new one.
  absl::Status Poll(absl::Duration timeout, int wake_fd, std::vector<DockerEvent>* out);

 private:
  friend class DockerEngine;
  struct Impl;
  explicit DockerEventStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses a docker timestamp ("2024-05-01T10:00:00.123456789Z"); InfinitePast for docker's
// "0001-01-01T00:00:00Z" (never) or anything unparsable.
absl::Time ParseDockerTime(absl::string_view text);

}  // namespace harness::launch
