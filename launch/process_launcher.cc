// The process launcher (see process_launcher.h and docs/LAUNCHERS.md).
#include "launch/process_launcher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}

#include <algorithm>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "core/log.h"
#include "launch/proc_stat.h"

extern char** environ;

namespace harness::launch {
namespace {

// Environment variables the launcher sets; inherited values of the same names are dropped.
constexpr absl::string_view kEnvNames[] = {
    "HARNESS_AGENT_ID",  "HARNESS_SLOT", "HARNESS_CONTROLLER", "HARNESS_CONTROLLER_ID",
    "HARNESS_AGENT_DIR", "HARNESS_CA",   "HARNESS_CERT",       "HARNESS_KEY",
};

// Dropped from the inherited environment: what the launcher sets, and every credential of the
// controller's (HARNESS_ADMIN_TOKEN, HARNESS_READ_TOKEN, HARNESS_AGENT_TOKEN, any other
// HARNESS_*_TOKEN or HARNESS_*_TOKEN_FILE, HARNESS_TOKEN): the agent gets its own token only.
bool IsDroppedEnv(absl::string_view entry) {
  const absl::string_view key = entry.substr(0, entry.find('='));
  if (key.size() == entry.size()) return false;  // no '=': left as it is
  for (absl::string_view name : kEnvNames) {
    if (key == name) return true;
  }
  return absl::StartsWith(key, "HARNESS_") &&
         (absl::EndsWith(key, "_TOKEN") || absl::EndsWith(key, "_TOKEN_FILE"));
}

// argv or envp for posix_spawn: pointers into `strings`, null-terminated.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

absl::Status CheckNoNul(absl::string_view what, absl::string_view value) {
  if (value.find('\0') != absl::string_view::npos || value.find('\n') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", QuoteForMessage(value), " contains a NUL or a line break"));
  }
  return absl::OkStatus();
}

// RAII for the posix_spawn attribute and file action objects.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Sets up everything but argv and envp; returns the first posix_spawn_* error number.
int PrepareSpawn(SpawnSetup* s, int log_fd, const std::string& cwd) {
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigfillset(&defaults);  // ignored signals (SIGPIPE...) would otherwise survive exec
  sigdelset(&defaults, SIGKILL);
  sigdelset(&defaults, SIGSTOP);
  int err = 0;
  auto check = [&err](int e) {
    if (err == 0) err = e;
  };
  check(posix_spawnattr_setflags(
      &s->attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
  // setsid: a new session and process group, both led by the child. The agent's commands run
  // in process groups of their own but stay in this session, which is how they are found
  // when the agent dies (Finish).
  check(posix_spawnattr_setsigmask(&s->attr, &empty));
  check(posix_spawnattr_setsigdefault(&s->attr, &defaults));
  check(posix_spawn_file_actions_addopen(&s->actions, 0, "/dev/null", O_RDONLY, 0));
  check(posix_spawn_file_actions_adddup2(&s->actions, log_fd, 1));
  check(posix_spawn_file_actions_adddup2(&s->actions, log_fd, 2));
  check(posix_spawn_file_actions_addclosefrom_np(&s->actions, 3));
  check(posix_spawn_file_actions_addchdir_np(&s->actions, cwd.c_str()));
  return err;
}

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessLauncher>> ProcessLauncher::Create(
    ProcessLauncherOptions options) {
  if (options.state_dir.empty())
    return absl::InvalidArgumentError("process launcher: empty state dir");
  if (absl::Status s = ValidateAgentId(options.controller_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("process launcher: controller id ",
                                                   QuoteForMessage(options.controller_id),
                                                   " must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"));
  }
  // Agents run in their own folders: every path they are given must be absolute.
  if (options.state_dir[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) {
      return ErrnoStatus(errno, "process launcher: cannot resolve the state dir", options.state_dir);
    }
    options.state_dir = absl::StrCat(cwd, "/", options.state_dir);
  }
  auto launcher =
      std::unique_ptr<ProcessLauncher>(new ProcessLauncher(std::move(options), Hostname()));
  if (!launcher->wake_fd_.valid()) return ErrnoStatus(errno, "process launcher:", "eventfd");
  launcher->watcher_ = std::thread([l = launcher.get()] { l->WatchLoop(); });
  return launcher;
}

ProcessLauncher::ProcessLauncher(ProcessLauncherOptions options, std::string host)
    : options_(std::move(options)),
      paths_(options_.state_dir),
      host_(std::move(host)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ProcessLauncher::~ProcessLauncher() {
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
  }
  Wake();
  if (watcher_.joinable()) watcher_.join();
}

void ProcessLauncher::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

absl::StatusOr<Launched> ProcessLauncher::Start(const LaunchSpec& spec) {
  if (absl::Status s = ValidateAgentId(spec.agent_id); !s.ok()) return s;
  if (spec.slot < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("slot ", spec.slot, " of ", spec.agent_id, " must be 1 or more"));
  }
  if (spec.controller_id != options_.controller_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("controller id ", QuoteForMessage(spec.controller_id), " of ", spec.agent_id,
                     " is not this launcher's (", options_.controller_id, ")"));
  }
  if (spec.controller_address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no controller address for ", spec.agent_id));
  }
  for (const auto& [what, value] : {std::pair<absl::string_view, absl::string_view>{
                                        "controller address", spec.controller_address},
                                    {"agentd binary", spec.binary},
                                    {"workdir", spec.workdir},
                                    {"agent CA file", spec.credentials.ca_file},
                                    {"agent certificate file", spec.credentials.cert_file},
                                    {"agent key file", spec.credentials.key_file}}) {
    if (absl::Status s = CheckNoNul(what, value); !s.ok()) return s;
  }
  if (spec.credentials.token.find_first_of(std::string("\0\n", 2)) != std::string::npos) {
    return absl::InvalidArgumentError("the agent token contains a NUL or a line break");
  }
  for (const std::string& arg : spec.extra_args) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("extra argument ", QuoteForMessage(arg), " contains a NUL"));
    }
  }
  if (spec.binary.empty()) return absl::InvalidArgumentError("no agentd binary given");
  char resolved[PATH_MAX];
  if (::realpath(spec.binary.c_str(), resolved) == nullptr) {
    return ErrnoStatus(errno, "agentd binary", QuoteForMessage(spec.binary));
  }
  const std::string binary = resolved;
  if (::access(binary.c_str(), X_OK) != 0) {
    return ErrnoStatus(errno, "agentd binary is not executable:", binary);
  }

  {
    absl::MutexLock l(&mu_);
    for (const auto& [pid, e] : entries_) {
      if (e.launched.agent_id != spec.agent_id) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          spec.agent_id, e.exiting ? " is ending (pid " : " is already running (pid ", pid, ")"));
    }
    if (!reserved_.insert(spec.agent_id).second) {
      return absl::FailedPreconditionError(
          absl::StrCat(spec.agent_id, " is being started or examined by another call"));
    }
  }
  // From here every return goes through `done`, which gives the reservation back.
  auto done = [this, &spec](auto result) {
    Unreserve(spec.agent_id);
    return result;
  };

  const std::string dir = paths_.AgentDir(spec.agent_id);
  const std::string workdir =
      spec.workdir.empty() ? paths_.AgentWorkDir(spec.agent_id) : spec.workdir;
  for (const std::string& d : {dir, workdir}) {
    if (absl::Status s = MakeDirs(d); !s.ok()) return done(absl::StatusOr<Launched>(s));
  }
  const std::string log_path = paths_.AgentLogFile(spec.agent_id);
  UniqueFd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log_fd.valid()) {
    return done(absl::StatusOr<Launched>(ErrnoStatus(errno, "cannot open agent log", log_path)));
  }

  std::vector<std::string> args = {
      binary, "--id", spec.agent_id, "--controller", spec.controller_address, "--workdir", workdir};
  args.insert(args.end(), spec.extra_args.begin(), spec.extra_args.end());
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!IsDroppedEnv(*e)) env.emplace_back(*e);
  }
  const AgentCredentials& creds = spec.credentials;
  if (!creds.token.empty()) env.push_back(absl::StrCat("HARNESS_TOKEN=", creds.token));
  if (!creds.ca_file.empty()) env.push_back(absl::StrCat("HARNESS_CA=", creds.ca_file));
  if (!creds.cert_file.empty()) env.push_back(absl::StrCat("HARNESS_CERT=", creds.cert_file));
  if (!creds.key_file.empty()) env.push_back(absl::StrCat("HARNESS_KEY=", creds.key_file));
  env.push_back(absl::StrCat("HARNESS_AGENT_ID=", spec.agent_id));
  env.push_back(absl::StrCat("HARNESS_SLOT=", spec.slot));
  env.push_back(absl::StrCat("HARNESS_CONTROLLER=", spec.controller_address));
  env.push_back(absl::StrCat("HARNESS_CONTROLLER_ID=", spec.controller_id));
  env.push_back(absl::StrCat("HARNESS_AGENT_DIR=", dir));

  SpawnSetup setup;
  if (int err = PrepareSpawn(&setup, log_fd.get(), dir); err != 0) {
    return done(absl::StatusOr<Launched>(ErrnoStatus(err, "cannot prepare to spawn", binary)));
  }
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = 0;
  if (int err =
          posix_spawn(&pid, binary.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
      err != 0) {
    return done(absl::StatusOr<Launched>(
        ErrnoStatus(err, absl::StrCat("cannot start ", spec.agent_id, ": spawn of"), binary)));
  }
  log_fd.Reset();

  // Kills and reaps the new child when it cannot be recorded: nothing unrecorded is left.
  auto abandon = [&](absl::Status why) {
    ::kill(-pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return done(absl::StatusOr<Launched>(std::move(why)));
  };
  // Not reaped yet, so /proc/<pid> exists even if it has already exited.
  absl::StatusOr<ProcStat> st = ReadProcStat(pid);
  if (!st.ok()) return abandon(st.status());

  const absl::Time now = clock_->Now();
  Entry entry;
  entry.record = PidRecord{pid,
                           st->start_ticks,
                           binary,
                           spec.slot,
                           spec.agent_id,
                           spec.controller_id,
                           absl::ToUnixMillis(now)};
  if (absl::Status s =
          WriteFileAtomically(paths_.AgentPidFile(spec.agent_id), FormatPidRecord(entry.record));
      !s.ok()) {
    return abandon(s);
  }
  if (options_.use_pidfd) entry.pidfd = UniqueFd(pidfd_open(pid, 0));
  entry.pgid = pid;
  entry.child = true;
  entry.launched = Launched{absl::StrCat(pid),
                            pid,
                            host_,
                            now,
                            spec.slot,
                            spec.agent_id,
                            LabelsFor(spec.controller_id, spec.slot, spec.agent_id),
                            false};
  Launched out = entry.launched;
  LogInfo(absl::StrCat("launched ", spec.agent_id, " (slot ", spec.slot, ") as pid ", pid, ": ",
                       binary, ", log ", log_path));
  Insert(std::move(entry));
  return done(absl::StatusOr<Launched>(std::move(out)));
}

void ProcessLauncher::Insert(Entry entry) {
  {
    absl::MutexLock l(&mu_);
    pid_t pid = static_cast<pid_t>(entry.record.pid);
    entries_.insert_or_assign(pid, std::move(entry));
  }
  Wake();
}

void ProcessLauncher::Unreserve(const std::string& agent_id) {
  absl::MutexLock l(&mu_);
  reserved_.erase(agent_id);
}

absl::Status ProcessLauncher::Stop(absl::string_view id, absl::Duration grace) {
  pid_t pid = 0;
  if (!absl::SimpleAtoi(id, &pid) || pid <= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("launched id ", QuoteForMessage(id), " is not a pid"));
  }
  std::string agent_id;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("no agent launched as pid ", pid, " is running"));
    }
    Entry& e = it->second;
    if (e.exiting) return absl::OkStatus();  // ended; may be reaped already: no signals
    // The entry is not reaped while listed here (Finish reaps after marking it exiting), so
    // the group id cannot have been reused for a child; an adopted one is checked by pidfd.
    if (grace <= absl::ZeroDuration()) {
      ::kill(-e.pgid, SIGKILL);
    } else {
      ::kill(-e.pgid, SIGTERM);
      absl::Time at = clock_->Now() + grace;
      if (!e.kill_at.has_value() || at < *e.kill_at) e.kill_at = at;
    }
    agent_id = e.launched.agent_id;
  }
  LogInfo(
      absl::StrCat("stopping ", agent_id, " (pid ", pid, "), grace ", absl::FormatDuration(grace)));
  Wake();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Launched>> ProcessLauncher::List() {
  std::vector<std::string> names;
  {
    const std::string dir = paths_.AgentsDir();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr && errno != ENOENT) return ErrnoStatus(errno, "cannot list", dir);
    if (d != nullptr) {
      while (struct dirent* de = ::readdir(d)) {
        if (ValidateAgentId(de->d_name).ok()) names.emplace_back(de->d_name);
      }
      ::closedir(d);
    }
  }
  for (const std::string& name : names) {
    {
      absl::MutexLock l(&mu_);
      bool tracked = std::any_of(entries_.begin(), entries_.end(), [&](const auto& kv) {
        return kv.second.launched.agent_id == name;
      });
      if (tracked || !reserved_.insert(name).second) continue;
    }
    AdoptOrDrop(name);
    Unreserve(name);
  }
  std::vector<Launched> out;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [pid, e] : entries_) {
      if (!e.exiting) out.push_back(e.launched);
    }
  }
  std::sort(out.begin(), out.end(), [](const Launched& a, const Launched& b) {
    return std::tie(a.slot, a.agent_id) < std::tie(b.slot, b.agent_id);
  });
  return out;
}

std::optional<Launched> ProcessLauncher::AdoptOrDrop(const std::string& agent_id) {
  const std::string path = paths_.AgentPidFile(agent_id);
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (!absl::IsNotFound(text.status())) {
      LogWarning(absl::StrCat("cannot read ", path, ": ", text.status().message()));
    }
    return std::nullopt;  // a folder without a pid file: an agent that ended (logs kept)
  }
  absl::StatusOr<PidRecord> rec = ParsePidRecord(*text, path);
  std::string stale;  // why the pid file is not trusted
  std::optional<ProcStat> st;
  if (!rec.ok()) {
    stale = std::string(rec.status().message());
  } else if (rec->controller_id != options_.controller_id) {
    LogInfo(absl::StrCat(path, " belongs to controller ", QuoteForMessage(rec->controller_id),
                         ", not ", options_.controller_id, ": left alone"));
    return std::nullopt;
  } else if (rec->agent_id != agent_id) {
    stale = absl::StrCat("names agent ", rec->agent_id, ", not ", agent_id);
  } else {
    const pid_t pid = static_cast<pid_t>(rec->pid);
    absl::StatusOr<ProcStat> s = ReadProcStat(pid);
    absl::StatusOr<std::string> exe = ReadProcExe(pid);
    if (!s.ok() || s->state == 'Z' || s->state == 'X') {
      stale = absl::StrCat("pid ", pid, " is not running");
    } else if (s->start_ticks != rec->start_ticks) {
      stale = absl::StrCat("pid ", pid, " started at tick ", s->start_ticks, ", not ",
                           rec->start_ticks, " (pid reused)");
    } else if (!exe.ok() || *exe != rec->binary) {
      stale = absl::StrCat("pid ", pid, " runs ",
                           exe.ok() ? QuoteForMessage(*exe) : std::string(exe.status().message()),
                           ", not ", rec->binary);
    } else {
      st = *s;
    }
  }
  if (!stale.empty()) {
    LogWarning(absl::StrCat("removing stale pid file ", path, ": ", stale));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      LogWarning(absl::StrCat("cannot remove ", path, ": ", strerror(errno)));
    }
    return std::nullopt;
  }
  const pid_t pid = static_cast<pid_t>(rec->pid);
  Entry entry;
  if (options_.use_pidfd) {
    entry.pidfd = UniqueFd(pidfd_open(pid, 0));
    // The pid could have ended and been reused between the check and the open: the pidfd
    // names whatever holds the pid now, so check again that it is the recorded process.
    if (entry.pidfd.valid() && !IsSameLiveProcess(pid, rec->start_ticks)) entry.pidfd.Reset();
    if (!entry.pidfd.valid() && !IsSameLiveProcess(pid, rec->start_ticks)) return std::nullopt;
  }
  entry.record = *rec;
  entry.pgid = static_cast<pid_t>(st->pgrp);
  entry.child = false;
  entry.launched = Launched{absl::StrCat(pid),
                            pid,
                            host_,
                            absl::FromUnixMillis(rec->started_unix_ms),
                            rec->slot,
                            rec->agent_id,
                            LabelsFor(rec->controller_id, rec->slot, rec->agent_id),
                            true};
  Launched out = entry.launched;
  LogInfo(absl::StrCat("adopted ", agent_id, " (slot ", rec->slot, "), pid ", pid));
  Insert(std::move(entry));
  return out;
}

void ProcessLauncher::WatchLoop() {
  for (;;) {
    std::vector<pollfd> fds = {{wake_fd_.get(), POLLIN, 0}};
    std::vector<pid_t> fd_pids = {0};
    std::vector<std::pair<pid_t, bool>> polled;  // (pid, child) of entries without a pidfd
    std::vector<std::string> killed;             // for the log, written after the lock
    int timeout_ms = -1;
    {
      absl::MutexLock l(&mu_);
      if (shutting_down_) return;
      const absl::Time now = clock_->Now();
      for (auto& [pid, e] : entries_) {
        if (e.exiting) continue;
        if (e.kill_at.has_value() && *e.kill_at <= now) {
          ::kill(-e.pgid, SIGKILL);
          e.kill_at.reset();
          killed.push_back(absl::StrCat(e.launched.agent_id, " (pid ", pid, ")"));
        }
        if (e.kill_at.has_value()) {
          int64_t ms =
              absl::ToInt64Milliseconds(absl::Ceil(*e.kill_at - now, absl::Milliseconds(1)));
          timeout_ms = timeout_ms < 0 ? static_cast<int>(ms) : std::min<int>(timeout_ms, ms);
        }
        if (e.pidfd.valid()) {
          fds.push_back({e.pidfd.get(), POLLIN, 0});
          fd_pids.push_back(pid);
        } else {
          polled.emplace_back(pid, e.child);
        }
      }
    }
    for (const std::string& k : killed) {
      LogWarning(absl::StrCat(k, " still ran after its grace: killed its process group"));
    }
    if (!polled.empty()) {
      int interval = static_cast<int>(absl::ToInt64Milliseconds(options_.poll_interval));
      timeout_ms = timeout_ms < 0 ? interval : std::min(timeout_ms, interval);
    }
    // Entries without a pidfd: a child is checked with waitid(WNOWAIT), which leaves it to be
    // reaped by Finish; an adopted process by its /proc entry.
    std::vector<pid_t> ended;
    for (const auto& [pid, child] : polled) {
      if (child) {
        siginfo_t info{};
        if (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) {
          ended.push_back(pid);
        }
      } else {
        uint64_t ticks;
        {
          absl::MutexLock l(&mu_);
          auto it = entries_.find(pid);
          if (it == entries_.end()) continue;
          ticks = it->second.record.start_ticks;
        }
        if (!IsSameLiveProcess(pid, ticks)) ended.push_back(pid);
      }
    }
    if (ended.empty()) {
      int n = ::poll(fds.data(), fds.size(), timeout_ms);
      if (n < 0 && errno != EINTR) {
        LogError(absl::StrCat("process launcher: poll failed: ", strerror(errno)));
      }
      if (fds[0].revents & POLLIN) {
        uint64_t count;
        (void)!::read(wake_fd_.get(), &count, sizeof count);
      }
      for (size_t i = 1; n > 0 && i < fds.size(); ++i) {
        if (fds[i].revents != 0) ended.push_back(fd_pids[i]);
      }
    }
    for (pid_t pid : ended) Finish(pid);
  }
}

void ProcessLauncher::Finish(pid_t pid) {
  Entry e;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(pid);
    if (it == entries_.end() || it->second.exiting) return;
    it->second.exiting = true;  // Stop no longer signals it; Start of its agent id waits
    e.launched = it->second.launched;
    e.pgid = it->second.pgid;
    e.child = it->second.child;
  }
  // Whatever the agent left in its group or its session (its commands run in groups of their
  // own) goes with it: no orphans. A child is still a zombie here, so its pid (the group and
  // session id) cannot have been reused.
  ::kill(-e.pgid, SIGKILL);
  for (pid_t p : ProcessesInSession(e.pgid)) {
    if (p != pid) ::kill(p, SIGKILL);
  }
  LaunchExit exit{e.launched.id, e.launched.slot, e.launched.agent_id, "",
                  std::nullopt,  std::nullopt};
  if (e.child) {
    int status = 0;
    pid_t r;
    while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (r == pid) {
      exit.reason = DescribeWaitStatus(status);
      if (WIFEXITED(status)) exit.exit_status = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
    } else {
      exit.reason = absl::StrCat("ended (exit status unknown: waitpid: ", strerror(errno), ")");
    }
  } else {
    exit.reason = "ended (exit status unknown: adopted, not our child)";
  }
  const std::string pid_file = paths_.AgentPidFile(e.launched.agent_id);
  if (::unlink(pid_file.c_str()) != 0 && errno != ENOENT) {
    LogWarning(absl::StrCat("cannot remove ", pid_file, ": ", strerror(errno)));
  }
  LogInfo(absl::StrCat(e.launched.agent_id, " (slot ", e.launched.slot, ", pid ", pid, ") ",
                       exit.reason));
  {
    absl::MutexLock l(&mu_);
    entries_.erase(pid);
  }
  if (options_.on_exit) options_.on_exit(exit);
}

}  // namespace harness::launch
