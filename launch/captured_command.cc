// Running a command and capturing its output (see captured_command.h).
#include "launch/captured_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "launch/launcher.h"

extern char** environ;

namespace harness::launch {
namespace {

constexpr absl::Duration kSlice = absl::Milliseconds(100);
constexpr absl::Duration kExitPoll = absl::Milliseconds(5);  // output closed, exit not seen yet
constexpr absl::Duration kLeftoverGrace = absl::Seconds(2);

bool IsCredential(absl::string_view var) {
  if (!absl::StartsWith(var, "HARNESS_")) return false;
  absl::string_view name = var.substr(0, var.find('='));
  return absl::StrContains(name, "TOKEN") || absl::StrContains(name, "KEY");
}

std::vector<std::string> ChildEnv(const std::vector<std::pair<std::string, std::string>>& add) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view var(*e);
    if (IsCredential(var)) continue;
    bool replaced = false;
    for (const auto& [name, value] : add) {
      if (absl::StartsWith(var, absl::StrCat(name, "="))) replaced = true;
    }
    if (!replaced) env.emplace_back(var);
  }
  for (const auto& [name, value] : add) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

}  // namespace

bool CapturedRun::ok() const {
  return !timed_out && !cancelled && !too_much_output && WIFEXITED(wait_status) &&
         WEXITSTATUS(wait_status) == 0;
}

std::string CapturedRun::Describe(const CaptureOptions& options) const {
  if (timed_out) {
    return absl::StrCat("killed after the timeout of ", absl::FormatDuration(options.timeout));
  }
  if (cancelled) return "stopped (the controller is stopping)";
  if (too_much_output) {
    return absl::StrCat("killed: printed more than ", options.max_stdout_bytes,
                        " bytes on stdout");
  }
  return DescribeWaitStatus(wait_status);
}

absl::StatusOr<CapturedRun> RunCaptured(const std::vector<std::string>& argv_in,
                                        const CaptureOptions& options) {
  if (argv_in.empty() || argv_in[0].empty()) {
    return absl::InvalidArgumentError("the command is empty");
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "cannot create a pipe", "");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return ErrnoStatus(err, "cannot create a pipe", "");
  }
  std::vector<std::string> args = argv_in;
  std::vector<std::string> env = ChildEnv(options.env);
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
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  if (!options.work_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.work_dir.c_str());
  }
  pid_t pid = 0;
  int err = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (err != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return ErrnoStatus(err, "cannot run", argv_in[0]);
  }

  CapturedRun run;
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Time leftover_deadline = absl::InfiniteFuture();
  bool exited = false;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  auto kill_group = [&] { ::kill(-pid, SIGKILL); };
  // Until the command has exited and its pipes are closed: a command closes its output a moment
  // before it exits, so both pipes at EOF do not mean it is done (killing it then would turn its
  // exit 0 into SIGKILL).
  while (fds[0].fd >= 0 || fds[1].fd >= 0 || !exited) {
    absl::Time now = absl::Now();
    if (now >= deadline) run.timed_out = true;
    if (options.cancel != nullptr && options.cancel->load()) run.cancelled = true;
    if (run.timed_out || run.cancelled || run.too_much_output || now >= leftover_deadline) break;
    const bool pipes_closed = fds[0].fd < 0 && fds[1].fd < 0;  // poll(2) skips negative fds
    int n = ::poll(fds, 2,
                   static_cast<int>(absl::ToInt64Milliseconds(pipes_closed ? kExitPoll : kSlice)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && n > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        continue;
      }
      std::string* sink = sinks[i];
      size_t cap = i == 0 ? options.max_stdout_bytes : options.max_stderr_bytes;
      size_t room = sink->size() < cap ? cap - sink->size() : 0;
      sink->append(buf, std::min(room, static_cast<size_t>(got)));
      if (i == 0 && static_cast<size_t>(got) > room) run.too_much_output = true;
    }
    if (!exited) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        run.wait_status = status;
        leftover_deadline = absl::Now() + kLeftoverGrace;
      }
    }
  }
  // Whatever still runs in the group and holds its output (the command itself, or what it left
  // behind) is killed. A group whose pipes are all closed after the command exited is left
  // alone (a daemon the command started); while a pipe is open the group exists, so its id
  // cannot have been reused.
  bool pipes_open = false;
  for (struct pollfd& f : fds) {
    if (f.fd >= 0) pipes_open = true;
  }
  if (!exited || pipes_open) kill_group();
  for (struct pollfd& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  if (!exited) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    run.wait_status = status;
  }
  return run;
}

}  // namespace harness::launch
