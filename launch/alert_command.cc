// Running the on_alert command (see alert_command.h).
#include "launch/alert_command.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/log.h"
#include "launch/launcher.h"

extern char** environ;

namespace harness::launch {

absl::Status AlertCommand::Run(const std::vector<std::pair<std::string, std::string>>& vars) {
  if (argv_.empty()) return absl::OkStatus();
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "HARNESS_ALERT")) env.emplace_back(*e);
  }
  for (const auto& [name, value] : vars) env.push_back(absl::StrCat(name, "=", value));
  std::vector<std::string> args = argv_;
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_init(&actions);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigfillset(&defaults);
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  int err = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return ErrnoStatus(err, "cannot run coordinator.on_alert", argv_[0]);
  running_.push_back(pid);
  return absl::OkStatus();
}

int AlertCommand::Reap() {
  for (auto it = running_.begin(); it != running_.end();) {
    int status = 0;
    pid_t r = ::waitpid(*it, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) {
      ++it;
      continue;
    }
    if (r == *it && status != 0) {
      LogWarning(absl::StrCat("coordinator.on_alert (pid ", *it, ") ", DescribeWaitStatus(status)));
    }
    it = running_.erase(it);
  }
  return static_cast<int>(running_.size());
}

}  // namespace harness::launch
