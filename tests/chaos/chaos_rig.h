// The world of the chaos soak: a git repository, a small tmpfs holding the controller's state
// dir (so the soak can fill it), the controller with its pool of launched agents, the item
// command that leaves one side-effect file per run outside the state dir, and the faults the
// soak injects (kill -9 of an agent or of the controller, SIGSTOP/SIGCONT of an agent, the
// state dir's disk filled and freed). Every process is addressed by its pid, checked against
// its start time (the pid files of launched agents) before any signal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "tests/support/cluster.h"
#include "tests/support/small_fs.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {

struct ChaosOptions {
  int agents = 8;
  int fs_mib = 256;          // the tmpfs under the state dir
  double lease_ttl = 3;      // short leases, so a stopped agent loses its lease
  double heartbeat_timeout = 6;  // > lease_ttl: an agent stopped between the two comes back
};

// A launched agent as its pid file names it.
struct LaunchedAgent {
  std::string id;
  pid_t pid = 0;
  uint64_t start_ticks = 0;
};

class ChaosRig {
 public:
  ChaosRig(const TempDir& tmp, ChaosOptions options);

  // Creates the repository and the script, mounts the tmpfs and starts the controller. The
  // error says why (the tmpfs needs root: callers skip on it).
  absl::Status SetUp();
  // Starts the controller again (after KillController); false if it did not come up.
  bool StartController();
  // kill -9 of the controller; waits for it to be gone.
  void KillController();
  // SIGTERM; returns the raw wait status.
  int StopController();
  bool controller_up() const { return controller_ != nullptr; }
  ControllerProcess& controller() { return *controller_; }
  pid_t controller_pid() const { return controller_ ? controller_->pid() : 0; }
  // Seconds since the controller was last started.
  double controller_age_s() const { return absl::ToDoubleSeconds(absl::Now() - started_at_); }
  const std::string& address() const { return config_.listen; }

  // The launched agents whose pid file names a live process (same start time).
  std::vector<LaunchedAgent> LiveAgents() const;
  // Signals the agent if it is still the process its record names; false otherwise.
  static bool Signal(const LaunchedAgent& agent, int sig);
  // Kills (SIGKILL) every process in the session of every launched agent.
  void KillAllAgents() const;

  // Fills the state dir's file system (every free byte) / frees it again.
  void FillDisk();
  void FreeDisk();
  bool disk_full() const { return disk_full_; }

  const std::string& repo() const { return repo_; }
  const std::string& base_commit() const { return base_; }
  const std::string& effects_dir() const { return effects_; }
  const std::string& state_dir() const { return config_.state_dir; }
  const ChaosOptions& options() const { return options_; }

 private:
  const TempDir& tmp_;
  ChaosOptions options_;
  SmallFs fs_;
  bool disk_full_ = false;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  absl::Time started_at_;
  std::string repo_, base_, effects_;
};

// The controller's resident set size (VmRSS) in KiB; 0 if it cannot be read.
int64_t ResidentKib(pid_t pid);

}  // namespace harness::testing
