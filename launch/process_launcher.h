// ProcessLauncher: `agent.launcher: process`: each agent is a local agentd process in a process
// group of its own, with its folder <state>/agents/<agent>/ (pid file, agentd.log, work/).
// It survives the controller (no PR_SET_PDEATHSIG), so a restarted controller adopts it through
// List(). A watcher thread of its own sees every exit at once (a pidfd per process, polled;
// /proc and waitid polling where pidfd_open is missing), kills what is left of the process
// group, reaps its own children (by their pid: never another child of the controller) and
// reports the exit. See docs/LAUNCHERS.md.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "launch/launcher.h"
#include "launch/pid_file.h"

namespace harness::launch {

struct ProcessLauncherOptions {
  std::string state_dir;      // agents live under <state_dir>/agents/
  std::string controller_id;  // List() adopts only pid files written for this id
  ExitCallback on_exit;       // may be empty
  Clock* clock = nullptr;     // default Clock::Real()
  // false: watch by polling /proc and waitid(WNOWAIT) every poll_interval instead of pidfds
  // (what happens on a kernel without pidfd_open; tests use it to cover that path).
  bool use_pidfd = true;
  absl::Duration poll_interval = absl::Milliseconds(100);
};

class ProcessLauncher : public Launcher {
 public:
  // Starts the watcher thread. InvalidArgument for an empty state dir or a bad controller id.
  static absl::StatusOr<std::unique_ptr<ProcessLauncher>> Create(ProcessLauncherOptions options);
  // Stops watching. Leaves every agent running (a controller that exits without stopping its
  // agents is a crash to them; the next controller adopts them); children not yet reaped stay
  // zombies until this process exits.
  ~ProcessLauncher() override;

  absl::string_view kind() const override { return "process"; }
  // argv: <binary> --id <agent> --controller <address> --workdir <workdir> <extra_args...>,
  // cwd <state>/agents/<agent>/, stdin /dev/null, stdout+stderr appended to agentd.log, every
  // other fd closed, signal mask empty and dispositions default, its own process group.
  // Environment: the controller's, less its credentials (HARNESS_TOKEN and every
  // HARNESS_*_TOKEN, HARNESS_*_TOKEN_FILE) and inherited HARNESS_CA/CERT/KEY, plus
  // HARNESS_AGENT_ID, HARNESS_SLOT, HARNESS_CONTROLLER, HARNESS_CONTROLLER_ID,
  // HARNESS_AGENT_DIR, and from spec.credentials HARNESS_TOKEN (the agent token) and
  // HARNESS_CA, HARNESS_CERT, HARNESS_KEY (paths) when set. Nothing secret goes on argv. The id is the pid, in decimal. (Resource
  // limits are not the launcher's: they travel with each lease, and agentd applies them to
  // the item's command.)
  absl::StatusOr<Launched> Start(const LaunchSpec& spec) override;
  // SIGTERM to the process group now; SIGKILL to the group after `grace` (<= 0: at once).
  absl::Status Stop(absl::string_view id, absl::Duration grace) override;
  // Tracked processes, plus those of pid files this instance did not write whose process is
  // alive, has the recorded start time and runs the recorded binary (adopted). A pid file that
  // fails those checks (dead pid, pid reused, other binary, unreadable) is removed; one written
  // for another controller id is left alone and not listed.
  absl::StatusOr<std::vector<Launched>> List() override;

 private:
  struct Entry {
    Launched launched;
    PidRecord record;
    pid_t pgid = 0;
    UniqueFd pidfd;                     // invalid when watched by polling
    bool child = false;                 // started by this instance: reaped with waitpid
    bool exiting = false;               // the watcher has seen it end and is reporting it
    std::optional<absl::Time> kill_at;  // pending SIGKILL of the group (Stop)
  };

  explicit ProcessLauncher(ProcessLauncherOptions options, std::string host);
  void WatchLoop();
  void Wake();
  // Examines pid file of `agent_id` (reserved by the caller) and adopts or removes it.
  std::optional<Launched> AdoptOrDrop(const std::string& agent_id);
  // Reports an ended entry: kills its group, reaps a child, removes its pid file, calls back.
  void Finish(pid_t pid) ABSL_LOCKS_EXCLUDED(mu_);
  void Insert(Entry entry) ABSL_LOCKS_EXCLUDED(mu_);
  void Unreserve(const std::string& agent_id) ABSL_LOCKS_EXCLUDED(mu_);

  const ProcessLauncherOptions options_;
  const StatePaths paths_;
  const std::string host_;
  Clock* const clock_;
  UniqueFd wake_fd_;  // eventfd: a new entry, a Stop deadline, or shutdown

  absl::Mutex mu_;
  std::map<pid_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Agent ids a Start or a List is working on (files being written or examined).
  absl::flat_hash_set<std::string> reserved_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  std::thread watcher_;
};

}  // namespace harness::launch
