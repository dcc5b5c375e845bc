// CommandRunner (see command_runner.h).
#include "agentd/command_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/file_util.h"
#include "core/ids.h"

extern char** environ;

namespace harness::agentd {
namespace {

std::string ErrnoText(int err) {
  char buf[256];
  return strerror_r(err, buf, sizeof buf);  // the GNU variant returns the message
}

// "`npm ci`" for messages; long commands are cut.
std::string DescribeArgv(const std::vector<std::string>& argv) {
  std::string joined = absl::StrJoin(argv, " ");
  if (joined.size() > 80) joined = absl::StrCat(joined.substr(0, 77), "...");
  return absl::StrCat("`", joined, "`");
}

// The inherited environment with our variables put on top.
std::vector<std::string> BuildEnvironment(const CommandRequest& r) {
  std::vector<std::pair<std::string, std::string>> ours = {
      {"HARNESS_ITEM_ID", r.item_id},
      {"HARNESS_ITEM_TITLE", r.item_title},
      {"HARNESS_PROMPT_FILE", r.prompt_path},
      {"HARNESS_AGENT_ID", r.agent_id},
      {"HARNESS_LEASE_TOKEN", absl::StrCat(r.lease_token)},
      {"HARNESS_ATTEMPT", absl::StrCat(r.attempt)},
  };
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    absl::string_view key = entry.substr(0, entry.find('='));
    bool replaced =
        std::any_of(ours.begin(), ours.end(), [&](const auto& kv) { return key == kv.first; });
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [key, value] : ours) env.push_back(absl::StrCat(key, "=", value));
  return env;
}

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::string ReadTail(int fd, size_t max_bytes) {
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) return "";
  size_t size = static_cast<size_t>(st.st_size);
  size_t n = std::min(size, max_bytes);
  std::string out(n, '\0');
  ssize_t got = pread(fd, out.data(), n, static_cast<off_t>(size - n));
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

// A line from agentd itself in the item's log, so that the log tail says what happened.
void Note(int log_fd, absl::string_view text) {
  std::string line = absl::StrCat("[harness] ", text, "\n");
  (void)WriteAll(log_fd, line, "log");
}

}  // namespace

std::vector<std::string> SubstitutePlaceholders(const std::vector<std::string>& argv,
                                                absl::string_view id, absl::string_view title,
                                                absl::string_view prompt) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (const std::string& a : argv) {
    out.push_back(absl::StrReplaceAll(a, {{"{prompt}", prompt}, {"{id}", id}, {"{title}", title}}));
  }
  return out;
}

std::string FormatSeconds(absl::Duration d) {
  double s = absl::ToDoubleSeconds(d);
  if (s == std::floor(s) && std::fabs(s) < 1e15) return absl::StrCat(static_cast<int64_t>(s));
  return absl::StrFormat("%.3g", s);
}

CommandRunner::CommandRunner(Clock* clock) : clock_(clock) {
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) wake_pipe_[0] = wake_pipe_[1] = -1;
}

CommandRunner::~CommandRunner() {
  for (int fd : wake_pipe_) {
    if (fd >= 0) close(fd);
  }
}

void CommandRunner::Cancel(absl::string_view reason) {
  {
    absl::MutexLock l(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    cancel_reason_ = std::string(reason);
  }
  if (wake_pipe_[1] >= 0) {
    char b = 1;
    (void)!write(wake_pipe_[1], &b, 1);
  }
}

bool CommandRunner::cancelled() const {
  absl::MutexLock l(&mu_);
  return cancelled_;
}

void CommandRunner::DrainWakePipe() {
  char buf[64];
  while (wake_pipe_[0] >= 0 && read(wake_pipe_[0], buf, sizeof buf) > 0) {
  }
}

// The program execvp would run for `name`: a name with a slash as it is (relative to the
// work dir, where the child runs), else the first executable match on agentd's PATH; if none
// matches, `name` itself (exec then fails with a clear errno).
static std::string ResolveProgram(const std::string& name, const std::string& work_dir) {
  if (name.find('/') != std::string::npos) {
    return name[0] == '/' ? name : work_dir + "/" + name;
  }
  const char* path = getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return name;
}

CommandRunner::ProcessEnd CommandRunner::RunProcess(const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& env,
                                                    const CommandRequest& request, int log_fd,
                                                    absl::Time deadline) {
  ProcessEnd end;
  if (cancelled()) {
    end.stopped_by = StopReason::kCancel;
    return end;
  }

  // fork+exec rather than posix_spawn, for PR_SET_PDEATHSIG: if agentd dies (even by
  // SIGKILL) its command is killed too, instead of running on in a worktree nobody owns.
  // Everything the child needs is prepared here; after fork it only makes system calls.
  std::string program = ResolveProgram(argv[0], request.work_dir);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    end.spawn_error = absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ", ErrnoText(errno));
    return end;
  }
  const pid_t parent = getpid();
  const char* work_dir = request.work_dir.c_str();
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // a new group led by the child
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // agentd died before the prctl
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig :
         {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM}) {
      sigaction(sig, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // agentd blocks SIGTERM/SIGINT; the child must not
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    int e = 0;
    if (chdir(work_dir) != 0) {
      e = errno;
    } else {
      execve(program.c_str(), c_argv.data(), c_env.data());
      e = errno;
    }
    (void)!write(err_pipe[1], &e, sizeof e);
    _exit(127);
  }
  close(err_pipe[1]);
  if (pid < 0) {
    close(err_pipe[0]);
    end.spawn_error = absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ", ErrnoText(errno));
    return end;
  }
  setpgid(pid, pid);  // also from here, so the group exists before we signal it
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(err_pipe[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    end.spawn_error =
        absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ", ErrnoText(exec_errno));
    return end;
  }
  end.spawned = true;

  // A pidfd turns "the child exited" into a poll event; without one (old kernels) we poll often.
  // (Called via syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.)
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const absl::Duration max_nap = pidfd >= 0 ? absl::Milliseconds(100) : absl::Milliseconds(20);
  bool term_sent = false, kill_sent = false;
  absl::Time kill_at = absl::InfiniteFuture();
  while (true) {
    // WNOWAIT: see the exit without reaping, so the group id cannot be reused before the
    // leftovers of the group are killed below.
    siginfo_t info;
    info.si_pid = 0;
    int w = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (w == 0 && info.si_pid == pid) break;
    if (w != 0 && errno != EINTR) break;

    absl::Time now = clock_->Now();
    if (!term_sent) {
      StopReason why = cancelled()       ? StopReason::kCancel
                       : now >= deadline ? StopReason::kTimeout
                                         : StopReason::kNone;
      if (why != StopReason::kNone) {
        end.stopped_by = why;
        kill(-pid, SIGTERM);
        term_sent = true;
        kill_at = now + std::max(request.kill_grace, absl::ZeroDuration());
      }
    }
    if (term_sent && !kill_sent && now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_sent = true;
    }

    absl::Duration nap = max_nap;
    if (!term_sent) nap = std::min(nap, deadline - now);
    if (term_sent && !kill_sent) nap = std::min(nap, kill_at - now);
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(nap, absl::Milliseconds(1))), 0,
                            absl::ToInt64Milliseconds(max_nap)));
    pollfd fds[2] = {{wake_pipe_[0], POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(fds, pidfd >= 0 ? 2 : 1, timeout_ms) > 0 && (fds[0].revents & POLLIN)) {
      DrainWakePipe();
    }
  }
  kill(-pid, SIGKILL);  // whatever the command left running in its group
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (pidfd >= 0) close(pidfd);
  end.wait_status = status;
  return end;
}

CommandResult CommandRunner::Run(const CommandRequest& request) {
  CommandResult result;
  auto fail = [&](CommandOutcome outcome, std::string error) {
    result.outcome = outcome;
    result.error = std::move(error);
    return result;
  };
  if (request.argv.empty() || request.argv[0].empty()) {
    return fail(CommandOutcome::kSpawnFailed, "no command to run");
  }
  struct stat st;
  if (stat(request.work_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return fail(CommandOutcome::kSpawnFailed,
                absl::StrCat("work dir ", request.work_dir, " is not a directory"));
  }
  UniqueFd log(open(request.log_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log.valid()) {
    return fail(CommandOutcome::kSpawnFailed,
                ErrnoStatus(errno, "cannot open log file", request.log_path).ToString());
  }
  {
    UniqueFd prompt(open(request.prompt_path.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    absl::Status s = prompt.valid()
                         ? WriteAll(prompt.get(), request.prompt, request.prompt_path)
                         : ErrnoStatus(errno, "cannot write prompt file", request.prompt_path);
    if (!s.ok()) return fail(CommandOutcome::kSpawnFailed, std::string(s.message()));
  }

  const bool limited =
      request.timeout > absl::ZeroDuration() && request.timeout != absl::InfiniteDuration();
  const absl::Time deadline = limited ? clock_->Now() + request.timeout : absl::InfiniteFuture();
  const std::string timeout_text =
      limited ? absl::StrCat("timed out after ", FormatSeconds(request.timeout), " s") : "";
  const std::vector<std::string> env = BuildEnvironment(request);
  auto cancel_text = [&] {
    absl::MutexLock l(&mu_);
    return absl::StrCat("cancelled: ", cancel_reason_);
  };
  auto finish = [&](CommandOutcome outcome, std::string error) {
    if (!error.empty()) Note(log.get(), error);
    result.outcome = outcome;
    result.error = std::move(error);
    result.log_tail = ReadTail(log.get(), kLogTailBytes);
    return result;
  };

  if (!request.setup.empty()) {
    ProcessEnd end = RunProcess(request.setup, env, request, log.get(), deadline);
    const std::string what = DescribeArgv(request.setup);
    if (end.stopped_by == StopReason::kCancel)
      return finish(CommandOutcome::kCancelled, cancel_text());
    if (!end.spawned) {
      return finish(CommandOutcome::kSetupFailed, absl::StrCat("setup failed: ", end.spawn_error));
    }
    if (end.stopped_by == StopReason::kTimeout) {
      return finish(CommandOutcome::kSetupFailed,
                    absl::StrCat("setup failed: ", what, " ", timeout_text));
    }
    if (WIFSIGNALED(end.wait_status)) {
      return finish(
          CommandOutcome::kSetupFailed,
          absl::StrCat("setup failed: ", what, " killed by signal ", WTERMSIG(end.wait_status)));
    }
    if (WEXITSTATUS(end.wait_status) != 0) {
      return finish(CommandOutcome::kSetupFailed,
                    absl::StrCat("setup failed: ", what, " exited with status ",
                                 WEXITSTATUS(end.wait_status)));
    }
  }

  std::vector<std::string> argv =
      SubstitutePlaceholders(request.argv, request.item_id, request.item_title, request.prompt);
  ProcessEnd end = RunProcess(argv, env, request, log.get(), deadline);
  if (end.stopped_by == StopReason::kCancel)
    return finish(CommandOutcome::kCancelled, cancel_text());
  if (!end.spawned) return finish(CommandOutcome::kSpawnFailed, end.spawn_error);
  if (end.stopped_by == StopReason::kTimeout)
    return finish(CommandOutcome::kTimedOut, timeout_text);
  if (WIFSIGNALED(end.wait_status)) {
    result.signal = WTERMSIG(end.wait_status);
    result.exit_code = 128 + result.signal;
    return finish(CommandOutcome::kSignaled,
                  absl::StrCat("command killed by signal ", result.signal));
  }
  result.exit_code = WEXITSTATUS(end.wait_status);
  return finish(
      CommandOutcome::kExited,
      result.exit_code == 0 ? "" : absl::StrCat("command exited with status ", result.exit_code));
}

}  // namespace harness::agentd
