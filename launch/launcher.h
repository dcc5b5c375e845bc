// Launcher: how the controller's pool acts on its agents: start one for a slot, stop one, list
// the ones running (including those a previous controller started: adoption), and hear at once
// when one ends. The pool (core/pool.h) decides what to start and stop; a Launcher only acts.
// Implementations: `process` (local agentd processes, process_launcher.h), `none` (agents are
// started elsewhere; below), `docker` (containers, docker_launcher.h), `swarm` (the tasks of
// one Swarm service across hosts, swarm_launcher.h): a launched thing is named by an opaque
// id, carries labels and may live on another host.
// No gRPC here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace harness::launch {

// Labels every launched thing carries (docker labels, pid file fields), so that a restarted
// controller recognises what it launched.
inline constexpr absl::string_view kLabelController = "harness.controller";
inline constexpr absl::string_view kLabelSlot = "harness.slot";
inline constexpr absl::string_view kLabelAgent = "harness.agent";

// What a launched agent presents to the controller (docs/SECURITY.md), never on its argv: the
// token travels in its environment as HARNESS_TOKEN; the TLS files as paths in HARNESS_CA,
// HARNESS_CERT, HARNESS_KEY (process), or as read-only bind mounts of those files under
// kContainerTlsDir with those variables pointing there (docker, swarm).
struct AgentCredentials {
  std::string token;      // the agent token; "" for none
  std::string ca_file;    // absolute paths on the controller's host (docker, swarm: on each
  std::string cert_file;  // daemon's host); ca_file "": no TLS; cert_file "": no client
  std::string key_file;   // certificate (cert and key go together)
  bool operator==(const AgentCredentials&) const = default;
};

// Where containers find the TLS files (ca.pem, cert.pem, key.pem).
inline constexpr absl::string_view kContainerTlsDir = "/run/harness/tls";

// A container's side of `credentials`: its environment entries ("NAME=value") and the files to
// bind read-only (host path, path in the container). InvalidArgument for a path that is not
// absolute or holds a ':' or ',' (docker's bind syntax has no escape for them).
struct ContainerCredentials {
  std::vector<std::string> env;
  std::vector<std::pair<std::string, std::string>> files;
};
absl::StatusOr<ContainerCredentials> ForContainer(const AgentCredentials& credentials);

// What to start: one agentd for one slot.
struct LaunchSpec {
  int slot = 0;                         // 1-based slot number
  std::string agent_id;                 // must pass ValidateAgentId ("agent-<slot>" by convention)
  std::string controller_id;            // the controller's id, a label on what is launched
  std::string controller_address;       // HOST:PORT agentd dials (--controller)
  std::string binary;                   // the agentd executable (process: a path)
  std::vector<std::string> extra_args;  // appended to agentd's argv
  std::string workdir;                  // agentd's --workdir; empty: the launcher's default
  AgentCredentials credentials;         // token and TLS files (see AgentCredentials)
};

// Something a launcher runs (or found running and adopted).
struct Launched {
  std::string id;    // opaque: a pid (process), a container or task id (docker, swarm)
  // The main process's pid on this host when there is one, else 0: process: agentd's (the
  // pid it registers with); docker: the container's first process (tini), not agentd's own
  // pid, which agentd reports from inside its namespace; swarm: 0.
  int64_t pid = 0;
  std::string host;  // where it runs
  absl::Time started = absl::InfinitePast();
  int slot = 0;
  std::string agent_id;
  std::map<std::string, std::string> labels;  // kLabelController, kLabelSlot, kLabelAgent
  bool adopted = false;  // found by List() rather than started by this instance
};

// A launched thing ended.
struct LaunchExit {
  std::string id;
  int slot = 0;
  std::string agent_id;
  // "exited with status 3", "killed by signal 9", or for something this instance cannot wait
  // for (adopted): "ended (exit status unknown: adopted, not our child)".
  std::string reason;
  std::optional<int> exit_status;  // set when it exited with a known status
  std::optional<int> signal;       // set when it was killed by a known signal
};

// Called once per launched thing that ends, as soon as the launcher sees it, on a thread of
// the launcher's own with no launcher lock held: it may call the launcher, but should return
// quickly (hand the event to the caller's own thread) since further exits wait for it.
using ExitCallback = std::function<void(const LaunchExit&)>;

class Launcher {
 public:
  virtual ~Launcher() = default;

  // "process", "none", ...
  virtual absl::string_view kind() const = 0;

  // Starts one agent. Fails (naming what failed and with which value) on an invalid spec, an
  // agent id already running under this launcher, or a failed start; nothing is left running
  // when it fails.
  virtual absl::StatusOr<Launched> Start(const LaunchSpec& spec) = 0;

  // Asks the launched thing `id` to stop (SIGTERM or its equivalent) and kills it (with
  // everything it started) if it is still running after `grace`. Returns at once: the end is
  // reported through the ExitCallback. NotFound for an id this launcher does not run; OK if it
  // is already stopping or ending.
  virtual absl::Status Stop(absl::string_view id, absl::Duration grace) = 0;

  // What this launcher runs now, found from its own records (pid files, labels), so that a
  // restarted controller adopts what the previous one started instead of starting it again.
  // Adopted things are watched from then on and their ends reported like any other.
  virtual absl::StatusOr<std::vector<Launched>> List() = 0;

  // Whether what this launcher acts through (a daemon) answers now: OK, or the error every
  // Start would fail with, UNAVAILABLE (or DEADLINE_EXCEEDED) when it is down or refuses. The
  // pool holds its starts while it fails (core/launcher_outage.h). Default: OK, nothing to reach.
  virtual absl::Status Check() { return absl::OkStatus(); }
  // True when this launcher can only remove the highest slots (Swarm drops the highest task
  // slots when the replicas drop): the pool then picks those as scale-down victims
  // (PoolOptions::highest_slots_only) and tells the launcher how many slots it still keeps.
  virtual bool removes_highest_slots_only() const { return false; }
  // The pool keeps slots 1..count (Pool::SlotsToKeep): a launcher of numbered replicas removes
  // the ones above. Called by the pool's thread after every change; a no-op by default.
  virtual void SetSlotCount(int count) { (void)count; }
};

// `launcher: none`: agents are started elsewhere and only connect; nothing to start, stop or
// list. Start and Stop fail with FailedPrecondition so that a caller needs no special case.
class NoneLauncher : public Launcher {
 public:
  absl::string_view kind() const override { return "none"; }
  absl::StatusOr<Launched> Start(const LaunchSpec& spec) override;
  absl::Status Stop(absl::string_view id, absl::Duration grace) override;
  absl::StatusOr<std::vector<Launched>> List() override { return std::vector<Launched>{}; }
};

// The three labels for a slot.
std::map<std::string, std::string> LabelsFor(absl::string_view controller_id, int slot,
                                             absl::string_view agent_id);

// "exited with status N" / "killed by signal N" (with "(core dumped)") for a wait status.
std::string DescribeWaitStatus(int wait_status);

}  // namespace harness::launch
