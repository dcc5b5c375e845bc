// AlertCommand: runs `coordinator.on_alert` when a pool slot hits the failure threshold. The
// argv is run directly (no shell), stdin /dev/null, stdout and stderr the controller's, its own
// process group, with the controller's environment plus the alert's variables (HARNESS_ALERT,
// the one-line message, and HARNESS_ALERT_SLOT, _AGENT, _REASON, _FAILURES, _WINDOW_S). Each run
// is a child of the controller: Reap() collects the ended ones without blocking, so the caller
// (the pool manager's loop) calls it now and then; nothing waits for an alert command.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace harness::launch {

class AlertCommand {
 public:
  explicit AlertCommand(std::vector<std::string> argv) : argv_(std::move(argv)) {}

  bool configured() const { return !argv_.empty(); }
  // Starts the command with `vars` (NAME, value) added to the environment. OK and nothing run
  // if no command is configured.
  absl::Status Run(const std::vector<std::pair<std::string, std::string>>& vars);
  // Reaps ended runs; logs each one's exit. Returns how many still run.
  int Reap();

 private:
  std::vector<std::string> argv_;
  std::vector<pid_t> running_;
};

}  // namespace harness::launch
