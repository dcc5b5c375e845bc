// CommandRunner (see command_runner.h).
#include "agentd/command_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agentd/activity_watch.h"
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

// agentd's own credentials, which the item's command must not see: the bearer token and any
// token file (HARNESS_TOKEN, HARNESS_TOKEN_FILE, HARNESS_<ROLE>_TOKEN[_FILE]) and the mTLS
// private key's path (HARNESS_KEY). HARNESS_LEASE_TOKEN is ours and is set below.
bool IsCredentialVariable(absl::string_view key) {
  if (!absl::StartsWith(key, "HARNESS_")) return false;
  if (key == "HARNESS_KEY") return true;
  return absl::EndsWith(key, "_TOKEN") || absl::EndsWith(key, "_TOKEN_FILE");
}

// The inherited environment, less agentd's credentials, with our variables put on top.
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
    if (!replaced && !IsCredentialVariable(key)) env.emplace_back(entry);
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

// Writes `text` to `path` as a private (0600) regular file with a single link. A file already
// there (the previous prompt, renamed by WorkDir) is reused, its inode kept, when it is one:
// left alone if it holds `text` already, else overwritten in place and cut to size (emptying
// it first would free its block, which on a file system mounted with `discard` is a request
// to the disk: 0.6 ms per item measured here). Anything else in its place (a hard link to
// another file, a symbolic link, a FIFO) is removed first, never written through.
absl::Status WritePromptFile(const std::string& path, absl::string_view text) {
  const int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  UniqueFd fd(open(path.c_str(), flags, 0600));
  struct stat st;
  if (fd.valid() && fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
    if ((st.st_mode & 07777) != 0600 && fchmod(fd.get(), 0600) != 0) {
      return ErrnoStatus(errno, "cannot write prompt file", path);
    }
    const size_t size = static_cast<size_t>(st.st_size);
    if (size == text.size() && size <= 64 << 10) {
      std::string old(size, '\0');
      if (pread(fd.get(), old.data(), size, 0) == static_cast<ssize_t>(size) && old == text) {
        return absl::OkStatus();
      }
    }
    if (absl::Status s = WriteAll(fd.get(), text, path); !s.ok()) return s;
    if (size > text.size() && ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0) {
      return ErrnoStatus(errno, "cannot write prompt file", path);
    }
    return absl::OkStatus();
  }
  fd.Reset();
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "cannot write prompt file", path);
  }
  fd = UniqueFd(open(path.c_str(), flags | O_EXCL, 0600));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot write prompt file", path);
  return WriteAll(fd.get(), text, path);
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

// Everything one run watches and applies, set up once by Run() for setup and command.
struct CommandRunner::Attempt {
  ~Attempt() {
    if (watch != nullptr) watch->Unwatch();  // nothing to queue until the next run
  }
  int log_fd = -1;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time next_tick = absl::InfiniteFuture();  // request.on_tick's
  bool stall_detection = false;
  absl::Duration stall_timeout = absl::InfiniteDuration();
  ActivityWatch* watch = nullptr;              // when stall_detection: request's or own_watch
  std::unique_ptr<ActivityWatch> own_watch;  // when the request brings none
  std::unique_ptr<AttemptCgroup> cgroup;  // a memory limit in a cgroup
  // Applied in the child between clone and exec.
  bool set_as = false;  // the memory limit without a cgroup
  rlimit as{};
  bool set_cpu = false;
  rlimit cpu{};
  bool set_nice = false;
  int nice = 0;
  std::string nice_failed;  // the log line when setpriority() fails
};

namespace {

// What a child that could not exec tells its parent on the error pipe.
struct ChildError {
  int stage;  // kStageExec or kStageCgroup
  int err;
};
constexpr int kStageExec = 0;
constexpr int kStageCgroup = 1;

// What the child of a spawn needs, prepared by the parent.
struct ChildSetup {
  pid_t parent = 0;
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* work_dir = nullptr;
  int log_fd = -1;
  int cgroup_fd = -1;  // the attempt cgroup's cgroup.procs, or -1
  int err_fd = -1;     // the error pipe's write end (close-on-exec)
  bool set_as = false;
  rlimit as{};
  bool set_cpu = false;
  rlimit cpu{};
  bool set_nice = false;
  int nice = 0;
  const char* nice_failed = nullptr;  // the log line when setpriority() fails
  size_t nice_failed_size = 0;
};

constexpr size_t kChildStackBytes = 64 << 10;

// The stack a spawning thread lends its children, mapped at its first spawn and kept until the
// thread ends: one child at a time per thread (CLONE_VFORK holds the thread until the child has
// exec'd), and a mapping made and removed per spawn cost ~15 % of the spawn (munmap's TLB
// shootdown reaches every CPU agentd's threads ran on).
class ChildStack {
 public:
  ChildStack() = default;
  ~ChildStack() {
    if (base_ != nullptr) munmap(base_, kChildStackBytes);
  }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;

  // The top of the stack (it grows down), or nullptr with errno set.
  char* Top() {
    if (base_ == nullptr) {
      void* p = mmap(nullptr, kChildStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      base_ = p;
    }
    return static_cast<char*>(base_) + kChildStackBytes;
  }

 private:
  void* base_ = nullptr;
};

// The child of a spawn, between clone and execve. It shares agentd's memory (CLONE_VM) while
// agentd's spawning thread waits (CLONE_VFORK), so it only reads `arg` and makes system calls:
// no allocation, no lock (another thread of agentd may hold one), nothing that writes memory
// agentd uses but errno. It starts with every signal blocked (the parent's doing).
int ChildMain(void* arg) {
  const ChildSetup& c = *static_cast<const ChildSetup*>(arg);
  // Default dispositions before anything can be delivered (a handler would run on agentd's
  // memory), then an empty mask: agentd blocks SIGTERM/SIGINT; the command must not.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);  // glibc's own: EINVAL
  }
  const uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
  setpgid(0, 0);  // a new group led by the child
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != c.parent) _exit(127);  // agentd died before the prctl
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  dup2(c.log_fd, 1);
  dup2(c.log_fd, 2);
  ChildError ce{kStageExec, 0};
  if (c.cgroup_fd >= 0 && write(c.cgroup_fd, "0", 1) != 1) {
    ce = {kStageCgroup, errno};
  } else {
    if (c.set_as) setrlimit(RLIMIT_AS, &c.as);
    if (c.set_cpu) setrlimit(RLIMIT_CPU, &c.cpu);
    if (c.set_nice && setpriority(PRIO_PROCESS, 0, c.nice) != 0) {
      (void)!write(2, c.nice_failed, c.nice_failed_size);
    }
    if (chdir(c.work_dir) != 0) {
      ce.err = errno;
    } else {
      execve(c.program, c.argv, c.envp);
      ce.err = errno;
    }
  }
  (void)!write(c.err_fd, &ce, sizeof ce);
  _exit(127);
}

// `want` lowered to fit under the current hard limit (raising a hard limit needs privileges).
rlimit Fitted(int resource, rlim_t soft, rlim_t hard) {
  rlimit cur{};
  if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
    hard = std::min(hard, cur.rlim_max);
    soft = std::min(soft, hard);
  }
  return rlimit{soft, hard};
}

}  // namespace

CommandRunner::ProcessEnd CommandRunner::RunProcess(const std::vector<std::string>& argv,
                                                    const std::vector<std::string>& env,
                                                    const CommandRequest& request,
                                                    Attempt& attempt) {
  ProcessEnd end;
  if (cancelled()) {
    end.stopped_by = StopReason::kCancel;
    return end;
  }

  // Our own spawn rather than posix_spawn, for PR_SET_PDEATHSIG (if agentd dies, even by
  // SIGKILL, its command is killed too, instead of running on in a worktree nobody owns) and
  // for the limits; the same technique as glibc's posix_spawn: clone(CLONE_VM | CLONE_VFORK) on
  // a stack of the child's own, so nothing of agentd's (threads, 20 MB of mappings) is copied,
  // and this thread waits until the child has exec'd or failed. Everything the child needs is
  // prepared here (ChildMain).
  std::string program = ResolveProgram(argv[0], request.work_dir);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    end.spawn_error = absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ", ErrnoText(errno));
    return end;
  }
  ChildSetup setup;
  setup.parent = getpid();
  setup.program = program.c_str();
  setup.argv = c_argv.data();
  setup.envp = c_env.data();
  setup.work_dir = request.work_dir.c_str();
  setup.log_fd = attempt.log_fd;
  setup.cgroup_fd = attempt.cgroup != nullptr ? attempt.cgroup->procs_fd() : -1;
  setup.err_fd = err_pipe[1];
  setup.set_as = attempt.set_as;
  setup.as = attempt.as;
  setup.set_cpu = attempt.set_cpu;
  setup.cpu = attempt.cpu;
  setup.set_nice = attempt.set_nice;
  setup.nice = attempt.nice;
  setup.nice_failed = attempt.nice_failed.data();
  setup.nice_failed_size = attempt.nice_failed.size();
  pid_t pid = -1;
  int spawn_errno = 0;
  thread_local ChildStack child_stack;
  char* stack_top = child_stack.Top();
  if (stack_top == nullptr) {
    spawn_errno = errno;
  } else {
    // Every signal blocked from here until the child has set default dispositions: a handler
    // of agentd's must never run in the child, on agentd's memory and stack.
    uint64_t all = ~uint64_t{0}, old = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
    pid = clone(ChildMain, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &setup);
    spawn_errno = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
  }
  close(err_pipe[1]);
  if (pid < 0) {
    close(err_pipe[0]);
    end.spawn_error =
        absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ", ErrnoText(spawn_errno));
    return end;
  }
  setpgid(pid, pid);  // also from here, so the group exists before we signal it
  ChildError child_error{};
  ssize_t got;
  do {
    got = read(err_pipe[0], &child_error, sizeof child_error);
  } while (got < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof child_error)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    end.spawn_error =
        child_error.stage == kStageCgroup
            ? absl::StrCat("cannot move ", QuoteForMessage(argv[0]), " into the memory cgroup ",
                           attempt.cgroup->path(), ": ", ErrnoText(child_error.err))
            : absl::StrCat("cannot run ", QuoteForMessage(argv[0]), ": ",
                           ErrnoText(child_error.err));
    return end;
  }
  end.spawned = true;

  // A pidfd turns "the child exited" into a poll event; without one (old kernels) we poll often.
  // (Called via syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.)
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const absl::Duration max_nap = pidfd >= 0 ? absl::Milliseconds(100) : absl::Milliseconds(20);
  bool term_sent = false, kill_sent = false;
  absl::Time kill_at = absl::InfiniteFuture();
  // Stall detection: the last time the log grew or a file changed (the start counts).
  absl::Time last_activity = clock_->Now();
  off_t log_size = -1;
  if (attempt.stall_detection) {
    struct stat st;
    if (fstat(attempt.log_fd, &st) == 0) log_size = st.st_size;
    (void)attempt.watch->Changed(last_activity);  // what setup did is not this process's
  }
  while (true) {
    // WNOWAIT: see the exit without reaping, so the group id cannot be reused before the
    // leftovers of the group are killed below.
    siginfo_t info;
    info.si_pid = 0;
    int w = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (w == 0 && info.si_pid == pid) break;
    if (w != 0 && errno != EINTR) break;

    absl::Time now = clock_->Now();
    absl::Time stall_at = absl::InfiniteFuture();
    if (attempt.stall_detection && !term_sent) {
      struct stat st;
      if (fstat(attempt.log_fd, &st) == 0 && st.st_size != log_size) {
        log_size = st.st_size;
        last_activity = now;
      }
      if (attempt.watch->Changed(now)) last_activity = now;
      stall_at = last_activity + attempt.stall_timeout;
    }
    if (!term_sent) {
      StopReason why = StopReason::kNone;
      if (cancelled()) {
        why = StopReason::kCancel;
      } else if (now >= attempt.deadline) {
        why = StopReason::kTimeout;
      } else if (attempt.cgroup != nullptr && attempt.cgroup->OomKills() > 0) {
        why = StopReason::kMemory;
      } else if (now >= stall_at) {
        why = StopReason::kStall;
      }
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
    if (now >= attempt.next_tick) {
      request.on_tick();
      attempt.next_tick = now + std::max(request.tick_interval, absl::Milliseconds(1));
    }

    absl::Duration nap = std::min(max_nap, attempt.next_tick - now);
    if (!term_sent) nap = std::min({nap, attempt.deadline - now, stall_at - now});
    if (term_sent && !kill_sent) nap = std::min(nap, kill_at - now);
    int timeout_ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(nap, absl::Milliseconds(1))), 0,
                            absl::ToInt64Milliseconds(max_nap)));
    pollfd fds[3] = {{wake_pipe_[0], POLLIN, 0}, {pidfd, POLLIN, 0}, {-1, POLLIN, 0}};
    // A change in the worktree wakes us only when it could matter (inotify; not after a stop).
    if (attempt.stall_detection && !term_sent) fds[2].fd = attempt.watch->fd();
    if (poll(fds, 3, timeout_ms) > 0 && (fds[0].revents & POLLIN)) DrainWakePipe();
  }
  kill(-pid, SIGKILL);  // whatever the command left running in its group
  int status = 0;
  struct rusage usage {};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (pidfd >= 0) close(pidfd);
  end.wait_status = status;
  end.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                    static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  if (attempt.cgroup != nullptr) end.oom_kills = attempt.cgroup->OomKills();
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
  if (absl::Status s = WritePromptFile(request.prompt_path, request.prompt); !s.ok()) {
    return fail(CommandOutcome::kSpawnFailed, std::string(s.message()));
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

  Attempt attempt;
  attempt.log_fd = log.get();
  attempt.deadline = deadline;
  if (request.on_tick) attempt.next_tick = clock_->Now() + request.tick_interval;
  attempt.stall_detection = request.stall_timeout > absl::ZeroDuration() &&
                            request.stall_timeout != absl::InfiniteDuration();
  const std::string stall_text = attempt.stall_detection
                                     ? absl::StrCat("stalled: no output and no file change for ",
                                                    FormatSeconds(request.stall_timeout), " s")
                                     : "";
  if (attempt.stall_detection) {
    attempt.stall_timeout = request.stall_timeout;
    if (request.stall_watch == nullptr) attempt.own_watch = std::make_unique<ActivityWatch>();
    attempt.watch =
        request.stall_watch != nullptr ? request.stall_watch : attempt.own_watch.get();
    attempt.watch->Watch(
        request.work_dir, ActivityWatch::Mode::kInotify,
        std::clamp(request.stall_timeout / 4, absl::Milliseconds(100), absl::Seconds(10)));
  }
  const ResourceLimits& limits = request.limits;
  std::string memory_text;  // the error of a command over its memory limit
  if (limits.memory_mb > 0) {
    absl::Status no_cgroup = absl::OkStatus();
    if (request.cgroups != nullptr && request.cgroups->kind() != MemoryCgroups::Kind::kNone) {
      absl::StatusOr<std::unique_ptr<AttemptCgroup>> cg =
          request.cgroups->Acquire(limits.memory_mb);
      if (cg.ok()) {
        attempt.cgroup = *std::move(cg);
        memory_text = absl::StrCat("exceeded memory limit of ", limits.memory_mb, " MiB (cgroup)");
      } else {
        no_cgroup = cg.status();
      }
    }
    if (attempt.cgroup == nullptr) {
      if (!no_cgroup.ok()) {
        Note(log.get(), absl::StrCat("no memory cgroup (", no_cgroup.message(),
                                     "): the memory limit is on each process's address space"));
      }
      const rlim_t bytes = static_cast<rlim_t>(limits.memory_mb) << 20;
      attempt.set_as = true;
      attempt.as = Fitted(RLIMIT_AS, bytes, bytes);
    }
  }
  if (limits.cpu_seconds > 0) {
    // SIGXCPU at the limit, SIGKILL a second later for a process that ignores it.
    const rlim_t secs = static_cast<rlim_t>(limits.cpu_seconds);
    attempt.set_cpu = true;
    attempt.cpu = Fitted(RLIMIT_CPU, secs, secs + 1);
  }
  if (limits.nice.has_value()) {
    attempt.set_nice = true;
    attempt.nice = *limits.nice;
    attempt.nice_failed =
        absl::StrCat("[harness] cannot set nice ", *limits.nice,
                     " (lowering it needs privileges): running at agentd's niceness\n");
  }
  // Why a process that ended this way went over a limit; "" when it did not (as far as can
  // be told).
  auto limit_text = [&](const ProcessEnd& end) -> std::string {
    const int ws = end.wait_status;
    if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return "";
    if (attempt.cgroup != nullptr && (end.stopped_by == StopReason::kMemory || end.oom_kills > 0))
      return memory_text;
    if (attempt.set_cpu) {
      // Killed by the rlimit itself, or a shell reporting that of its child (128 + signal).
      int sig = WIFSIGNALED(ws)                          ? WTERMSIG(ws)
                : WIFEXITED(ws) && WEXITSTATUS(ws) > 128 ? WEXITSTATUS(ws) - 128
                                                         : 0;
      const double limit = static_cast<double>(limits.cpu_seconds);
      if (sig == SIGXCPU || (sig == SIGKILL && end.cpu_seconds >= limit * 0.99)) {
        return absl::StrCat("exceeded cpu limit of ", limits.cpu_seconds, " s");
      }
    }
    return "";
  };
  // The memory limit without a cgroup makes allocations fail: say so with any failure.
  auto with_hint = [&](std::string error) {
    if (attempt.set_as) {
      absl::StrAppend(&error, " (memory is limited to ", limits.memory_mb,
                      " MiB of address space by RLIMIT_AS; a failed allocation may be why)");
    }
    return error;
  };

  if (!request.setup.empty()) {
    ProcessEnd end = RunProcess(request.setup, env, request, attempt);
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
    if (end.stopped_by == StopReason::kStall) {
      return finish(CommandOutcome::kStalled, absl::StrCat(stall_text, " (setup ", what, ")"));
    }
    if (std::string over = limit_text(end); !over.empty()) {
      return finish(CommandOutcome::kSetupFailed, absl::StrCat("setup failed: ", what, " ", over));
    }
    if (WIFSIGNALED(end.wait_status)) {
      return finish(CommandOutcome::kSetupFailed,
                    with_hint(absl::StrCat("setup failed: ", what, " killed by signal ",
                                           WTERMSIG(end.wait_status))));
    }
    if (WEXITSTATUS(end.wait_status) != 0) {
      return finish(CommandOutcome::kSetupFailed,
                    with_hint(absl::StrCat("setup failed: ", what, " exited with status ",
                                           WEXITSTATUS(end.wait_status))));
    }
  }

  std::vector<std::string> argv =
      SubstitutePlaceholders(request.argv, request.item_id, request.item_title, request.prompt);
  ProcessEnd end = RunProcess(argv, env, request, attempt);
  if (end.stopped_by == StopReason::kCancel)
    return finish(CommandOutcome::kCancelled, cancel_text());
  if (!end.spawned) return finish(CommandOutcome::kSpawnFailed, end.spawn_error);
  if (end.stopped_by == StopReason::kTimeout)
    return finish(CommandOutcome::kTimedOut, timeout_text);
  if (end.stopped_by == StopReason::kStall) return finish(CommandOutcome::kStalled, stall_text);
  if (WIFSIGNALED(end.wait_status)) {
    result.signal = WTERMSIG(end.wait_status);
    result.exit_code = 128 + result.signal;
  } else {
    result.exit_code = WEXITSTATUS(end.wait_status);
  }
  if (std::string over = limit_text(end); !over.empty()) {
    return finish(CommandOutcome::kLimitExceeded, std::move(over));
  }
  if (WIFSIGNALED(end.wait_status)) {
    return finish(CommandOutcome::kSignaled,
                  with_hint(absl::StrCat("command killed by signal ", result.signal)));
  }
  return finish(CommandOutcome::kExited,
                result.exit_code == 0
                    ? ""
                    : with_hint(absl::StrCat("command exited with status ", result.exit_code)));
}

}  // namespace harness::agentd
