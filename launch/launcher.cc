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

absl::StatusOr<ContainerCredentials> ForContainer(const AgentCredentials& credentials) {
  ContainerCredentials out;
  if (!credentials.token.empty())
    out.env.push_back(absl::StrCat("HARNESS_TOKEN=", credentials.token));
  const struct {
    const std::string& host_path;
    absl::string_view name;
    absl::string_view variable;
  } files[] = {{credentials.ca_file, "ca.pem", "HARNESS_CA"},
               {credentials.cert_file, "cert.pem", "HARNESS_CERT"},
               {credentials.key_file, "key.pem", "HARNESS_KEY"}};
  for (const auto& f : files) {
    if (f.host_path.empty()) continue;
    if (f.host_path[0] != '/' || f.host_path.find_first_of(":,\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "agent TLS file \"", f.host_path, "\" (", f.variable,
          ") cannot be bound into a container: it must be an absolute path without ':' or ','"));
    }
    const std::string target = absl::StrCat(kContainerTlsDir, "/", f.name);
    out.files.emplace_back(f.host_path, target);
    out.env.push_back(absl::StrCat(f.variable, "=", target));
  }
  return out;
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
