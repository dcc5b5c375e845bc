// The `none` launcher and helpers shared by launchers (see launcher.h).
#include "launch/launcher.h"

#include <sys/wait.h>

#include "absl/strings/str_cat.h"

namespace harness::launch {

absl::StatusOr<Launched> NoneLauncher::Start(const LaunchSpec& spec) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot start ", spec.agent_id, " (slot ", spec.slot,
                   "): agent.launcher is \"none\", agents are started elsewhere"));
}

absl::Status NoneLauncher::Stop(absl::string_view id, absl::Duration) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot stop ", id,
                   ": agent.launcher is \"none\", agents are started and stopped elsewhere"));
}

std::map<std::string, std::string> LabelsFor(absl::string_view controller_id, int slot,
                                             absl::string_view agent_id) {
  return {{std::string(kLabelController), std::string(controller_id)},
          {std::string(kLabelSlot), absl::StrCat(slot)},
          {std::string(kLabelAgent), std::string(agent_id)}};
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status),
                        WCOREDUMP(wait_status) ? " (core dumped)" : "");
  }
  return absl::StrCat("ended with wait status ", wait_status);
}

}  // namespace harness::launch
