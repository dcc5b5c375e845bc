// The docker launcher (see docker_launcher.h and docs/LAUNCHERS.md).
#include "launch/docker_launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/ids.h"
#include "core/log.h"

namespace harness::launch {
namespace {

// Lines of an ended container's output kept in its agent's log.
constexpr int kKeptLogLines = 1000;

std::string Hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

absl::Status CheckNoNul(absl::string_view what, absl::string_view value) {
  if (value.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", QuoteForMessage(value), " contains a NUL"));
  }
  return absl::OkStatus();
}

// Docker reports a container's exit code; an init (tini, docker's) and the runtime give
// 128+N when the process was killed by signal N, which is how a signal shows here.
void DescribeExitCode(int code, bool oom_killed, LaunchExit* exit) {
  if (code > 128 && code <= 128 + 64) {
    exit->signal = code - 128;
    exit->reason = absl::StrCat("killed by signal ", code - 128,
                                oom_killed ? " (out of memory: the container's limit)" : "");
  } else {
    exit->exit_status = code;
    exit->reason = absl::StrCat("exited with status ", code,
                                oom_killed ? " (out of memory: the container's limit)" : "");
  }
}

}  // namespace

std::string DockerLauncher::ContainerName(absl::string_view controller_id,
                                          absl::string_view agent_id) {
  return absl::StrCat("harness-", controller_id, "-", agent_id);
}

absl::StatusOr<std::unique_ptr<DockerLauncher>> DockerLauncher::Create(
    DockerLauncherOptions options) {
  if (absl::Status s = ValidateAgentId(options.controller_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("docker launcher: controller id ",
                                                   QuoteForMessage(options.controller_id),
                                                   " must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"));
  }
  if (options.image.empty()) {
    return absl::InvalidArgumentError("docker launcher: no agent image given");
  }
  if (options.socket.empty()) {
    return absl::InvalidArgumentError("docker launcher: empty docker socket path");
  }
  auto launcher =
      std::unique_ptr<DockerLauncher>(new DockerLauncher(std::move(options), Hostname()));
  if (!launcher->wake_fd_.valid()) return ErrnoStatus(errno, "docker launcher:", "eventfd");
  launcher->watcher_ = std::thread([l = launcher.get()] { l->WatchLoop(); });
  return launcher;
}

DockerLauncher::DockerLauncher(DockerLauncherOptions options, std::string host)
    : options_(std::move(options)),
      host_(std::move(host)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      engine_(DockerEngineOptions{options_.socket, options_.call_timeout}),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

DockerLauncher::~DockerLauncher() {
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
  }
  Wake();
  if (watcher_.joinable()) watcher_.join();
}

void DockerLauncher::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void DockerLauncher::Unreserve(const std::string& agent_id) {
  absl::MutexLock l(&mu_);
  reserved_.erase(agent_id);
}

absl::StatusOr<std::string> DockerLauncher::CreateContainer(const ContainerSpec& spec) {
  // 409: the name is taken. A container of ours that has ended (its end not seen by any
  // controller, or seen and being removed by the watcher right now) is removed and the create
  // tried again; anything else is refused. A removal already in progress is waited for: while
  // docker removes a container, an inspect may already answer 404 (or the removal 409) although
  // the name is not free yet, so each such round waits a little longer, 10 s at most in all.
  absl::StatusOr<std::string> id = engine_.Create(spec);
  absl::Duration pause = absl::Milliseconds(20);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::IsFailedPrecondition(id.status()) && absl::Now() < give_up) {
    absl::StatusOr<ContainerInfo> old = engine_.Inspect(spec.name);
    bool wait = true;
    if (old.ok()) {
      auto label = old->labels.find(std::string(kLabelController));
      if (old->running || label == old->labels.end() ||
          label->second != options_.controller_id) {
        return absl::FailedPreconditionError(
            absl::StrCat("container ", spec.name, " already exists (", old->status, ", id ",
                         old->id.substr(0, 12), ")", old->running ? "" : " and is not ours"));
      }
      LogInfo(absl::StrCat("removing ended container ", spec.name, " (", old->status,
                           ") before starting it again"));
      absl::Status s = engine_.Remove(old->id, /*force=*/true);
      if (s.ok()) {
        wait = false;
      } else if (!absl::IsFailedPrecondition(s) && !absl::IsNotFound(s)) {
        return s;  // not a removal under way
      }
    } else if (!absl::IsNotFound(old.status())) {
      return id;
    }
    if (wait) {
      absl::SleepFor(pause);
      pause = std::min(pause * 2, absl::Milliseconds(250));
    }
    id = engine_.Create(spec);
  }
  return id;
}

absl::StatusOr<Launched> DockerLauncher::Start(const LaunchSpec& spec) {
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
                                    {"workdir", spec.workdir}}) {
    if (absl::Status s = CheckNoNul(what, value); !s.ok()) return s;
  }
  for (const std::string& arg : spec.extra_args) {
    if (absl::Status s = CheckNoNul("extra argument", arg); !s.ok()) return s;
  }
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, e] : entries_) {
      if (e.launched.agent_id != spec.agent_id) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          spec.agent_id, e.exiting ? " is ending (container " : " is already running (container ",
          id.substr(0, 12), ")"));
    }
    if (!reserved_.insert(spec.agent_id).second) {
      return absl::FailedPreconditionError(
          absl::StrCat(spec.agent_id, " is being started or examined by another call"));
    }
  }

  ContainerSpec c;
  c.name = ContainerName(spec.controller_id, spec.agent_id);
  c.image = options_.image;
  c.cmd = {spec.binary.empty() ? "agentd" : spec.binary, "--id", spec.agent_id, "--controller",
           spec.controller_address};
  if (!spec.workdir.empty()) {
    c.cmd.insert(c.cmd.end(), {"--workdir", spec.workdir});
    c.working_dir = spec.workdir;
  }
  c.cmd.insert(c.cmd.end(), spec.extra_args.begin(), spec.extra_args.end());
  c.env = {absl::StrCat("HARNESS_AGENT_ID=", spec.agent_id),
           absl::StrCat("HARNESS_SLOT=", spec.slot),
           absl::StrCat("HARNESS_CONTROLLER=", spec.controller_address),
           absl::StrCat("HARNESS_CONTROLLER_ID=", spec.controller_id)};
  c.labels = LabelsFor(spec.controller_id, spec.slot, spec.agent_id);
  c.network_mode = options_.network_mode;
  c.memory_bytes = options_.memory_bytes;
  c.nano_cpus = options_.nano_cpus;
  c.init = options_.init;
  c.binds = options_.binds;
  // The agent's credentials: the token in its environment, the TLS files bound read-only.
  absl::StatusOr<ContainerCredentials> creds = ForContainer(spec.credentials);
  if (!creds.ok()) {
    Unreserve(spec.agent_id);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot start ", spec.agent_id, ": ", creds.status().message()));
  }
  c.env.insert(c.env.end(), creds->env.begin(), creds->env.end());
  for (const auto& [host_path, target] : creds->files) {
    c.binds.push_back(absl::StrCat(host_path, ":", target, ":ro"));
  }

  absl::StatusOr<std::string> id = CreateContainer(c);
  if (!id.ok()) {
    Unreserve(spec.agent_id);
    return absl::Status(id.status().code(),
                        absl::StrCat("cannot start ", spec.agent_id, ": ", id.status().message()));
  }
  Launched launched{*id, 0, host_, clock_->Now(), spec.slot, spec.agent_id, c.labels, false};
  {
    // Tracked before it runs, so that its end, however soon, is not missed.
    absl::MutexLock l(&mu_);
    entries_[*id] = Entry{launched, /*starting=*/true, false, false, std::nullopt};
  }
  if (absl::Status s = engine_.Start(*id); !s.ok()) {
    {
      absl::MutexLock l(&mu_);
      entries_.erase(*id);
      reserved_.erase(spec.agent_id);
    }
    if (absl::Status r = engine_.Remove(*id, /*force=*/true); !r.ok()) {
      LogWarning(
          absl::StrCat("cannot remove container ", c.name, " that failed to start: ", r.message()));
    }
    return absl::Status(s.code(), absl::StrCat("cannot start ", spec.agent_id, ": ", s.message()));
  }
  absl::StatusOr<ContainerInfo> info = engine_.Inspect(*id);
  if (info.ok() && info->started_at != absl::InfinitePast()) launched.started = info->started_at;
  if (info.ok()) launched.pid = info->pid;  // the container's first process (tini), on the host
  {
    absl::MutexLock l(&mu_);
    Entry& e = entries_[*id];
    e.launched = launched;
    e.starting = false;
    if (e.died_starting) check_.insert(*id);  // the watcher reports it now
    reserved_.erase(spec.agent_id);
  }
  Wake();
  LogInfo(absl::StrCat("started ", spec.agent_id, " (slot ", spec.slot, ") in container ", c.name,
                       " (", id->substr(0, 12), ") of ", options_.image));
  return launched;
}

absl::Status DockerLauncher::Stop(absl::string_view id_view, absl::Duration grace) {
  const std::string id(id_view);
  std::string agent_id;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return absl::NotFoundError(
          absl::StrCat("no agent container ", QuoteForMessage(id), " is running"));
    }
    Entry& e = it->second;
    if (e.exiting) return absl::OkStatus();
    agent_id = e.launched.agent_id;
    if (grace > absl::ZeroDuration()) {
      absl::Time at = clock_->Now() + grace;
      if (!e.kill_at.has_value() || at < *e.kill_at) e.kill_at = at;
    }
  }
  LogInfo(absl::StrCat("stopping ", agent_id, " (container ", id.substr(0, 12), "), grace ",
                       absl::FormatDuration(grace)));
  absl::Status s = engine_.Kill(id, grace > absl::ZeroDuration() ? "SIGTERM" : "SIGKILL");
  if (absl::IsNotFound(s) || absl::IsFailedPrecondition(s)) {
    // Gone or not running: it has ended; the watcher confirms and reports it.
    absl::MutexLock l(&mu_);
    check_.insert(id);
    s = absl::OkStatus();
  }
  Wake();
  return s;
}

absl::StatusOr<std::vector<Launched>> DockerLauncher::List() {
  absl::StatusOr<std::vector<ContainerSummary>> found =
      engine_.List({absl::StrCat(kLabelController, "=", options_.controller_id)});
  if (!found.ok()) return found.status();
  for (const ContainerSummary& c : *found) {
    auto label = [&c](absl::string_view key) {
      auto it = c.labels.find(std::string(key));
      return it == c.labels.end() ? std::string() : it->second;
    };
    const std::string agent_id = label(kLabelAgent);
    int slot = 0;
    if (!ValidateAgentId(agent_id).ok() || !absl::SimpleAtoi(label(kLabelSlot), &slot) ||
        slot < 1 || c.name != ContainerName(options_.controller_id, agent_id)) {
      LogInfo(absl::StrCat("container ", c.name, " (", c.id.substr(0, 12), ") carries ",
                           kLabelController, "=", options_.controller_id,
                           " but not this launcher's name and labels: left alone"));
      continue;
    }
    {
      absl::MutexLock l(&mu_);
      if (entries_.count(c.id) != 0) continue;  // tracked already
      bool other = std::any_of(entries_.begin(), entries_.end(), [&](const auto& kv) {
        return kv.second.launched.agent_id == agent_id;
      });
      if (other || !reserved_.insert(agent_id).second) continue;
    }
    if (c.state == "running" || c.state == "paused" || c.state == "restarting") {
      Adopt(c, slot, agent_id);
    } else {
      LogWarning(absl::StrCat("removing container ", c.name, " (", c.id.substr(0, 12), "): it is ",
                              c.state, ", no controller saw it end"));
      if (absl::Status s = engine_.Remove(c.id, /*force=*/true); !s.ok()) {
        LogWarning(std::string(s.message()));
      }
    }
    Unreserve(agent_id);
  }
  std::vector<Launched> out;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, e] : entries_) {
      if (!e.exiting) out.push_back(e.launched);
    }
  }
  std::sort(out.begin(), out.end(), [](const Launched& a, const Launched& b) {
    return std::tie(a.slot, a.agent_id) < std::tie(b.slot, b.agent_id);
  });
  return out;
}

absl::Status DockerLauncher::Check() {
  absl::StatusOr<DockerVersion> v = engine_.Version();
  if (v.ok()) return absl::OkStatus();
  // The status says which daemon; "docker version: " names a call the user did not make.
  return absl::Status(v.status().code(),
                      absl::StripPrefix(v.status().message(), "docker version: "));
}

void DockerLauncher::Adopt(const ContainerSummary& c, int slot, const std::string& agent_id) {
  Launched launched{c.id,
                    0,
                    host_,
                    clock_->Now(),
                    slot,
                    agent_id,
                    LabelsFor(options_.controller_id, slot, agent_id),
                    true};
  absl::StatusOr<ContainerInfo> info = engine_.Inspect(c.id);
  if (info.ok() && info->started_at != absl::InfinitePast()) launched.started = info->started_at;
  if (info.ok()) launched.pid = info->pid;  // the container's first process (tini), on the host
  {
    absl::MutexLock l(&mu_);
    entries_[c.id] = Entry{launched, false, false, false, std::nullopt};
    check_.insert(c.id);  // it may have ended between the listing and now
  }
  Wake();
  LogInfo(absl::StrCat("adopted ", agent_id, " (slot ", slot, "), container ", c.name, " (",
                       c.id.substr(0, 12), ")"));
}

void DockerLauncher::WatchLoop() {
  std::unique_ptr<DockerEventStream> stream;
  std::string last_error;  // logged once per distinct failure
  for (;;) {
    std::vector<std::string> to_kill, to_check;
    absl::Duration wait = absl::Seconds(10);
    {
      absl::MutexLock l(&mu_);
      if (shutting_down_) return;
      const absl::Time now = clock_->Now();
      for (auto& [id, e] : entries_) {
        if (e.exiting || !e.kill_at.has_value()) continue;
        if (*e.kill_at <= now) {
          to_kill.push_back(id);
          e.kill_at.reset();
        } else {
          wait = std::min(wait, *e.kill_at - now);
        }
      }
      to_check.assign(check_.begin(), check_.end());
      check_.clear();
    }
    for (const std::string& id : to_kill) {
      absl::Status s = engine_.Kill(id, "SIGKILL");
      if (s.ok()) {
        LogWarning(
            absl::StrCat("container ", id.substr(0, 12), " still ran after its grace: killed"));
      } else if (absl::IsNotFound(s) || absl::IsFailedPrecondition(s)) {
        to_check.push_back(id);
      } else {
        LogWarning(absl::StrCat(s.message(), " (retrying in 1s)"));
        absl::MutexLock l(&mu_);
        auto it = entries_.find(id);
        if (it != entries_.end()) it->second.kill_at = clock_->Now() + absl::Seconds(1);
        wait = std::min(wait, absl::Seconds(1));
      }
    }
    if (stream == nullptr) {
      absl::StatusOr<std::unique_ptr<DockerEventStream>> s =
          engine_.Events({"die"}, {absl::StrCat(kLabelController, "=", options_.controller_id)});
      if (s.ok()) {
        stream = std::move(*s);
        if (!last_error.empty()) LogInfo("docker launcher: following docker events again");
        last_error.clear();
        // Whatever ended while no stream was open is found by inspecting every container.
        absl::MutexLock l(&mu_);
        for (const auto& [id, e] : entries_) to_check.push_back(id);
      } else {
        if (std::string(s.status().message()) != last_error) {
          last_error = std::string(s.status().message());
          LogWarning(absl::StrCat("docker launcher: ", last_error, " (retrying every ",
                                  absl::FormatDuration(options_.reconnect_delay), ")"));
        }
        wait = std::min(wait, options_.reconnect_delay);
      }
    }
    std::sort(to_check.begin(), to_check.end());
    to_check.erase(std::unique(to_check.begin(), to_check.end()), to_check.end());
    for (const std::string& id : to_check) Finish(id, std::nullopt);
    if (!to_check.empty()) continue;  // re-read deadlines and checks queued meanwhile

    std::vector<DockerEvent> events;
    if (stream != nullptr) {
      absl::Status s = stream->Poll(wait, wake_fd_.get(), &events);
      if (!s.ok()) {
        LogWarning(absl::StrCat("docker launcher: ", s.message(), " (reconnecting)"));
        last_error = std::string(s.message());
        stream.reset();
      }
    } else {
      pollfd fd{wake_fd_.get(), POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(wait)));
    }
    uint64_t count;
    (void)!::read(wake_fd_.get(), &count, sizeof count);
    for (const DockerEvent& e : events) {
      if (e.action != "die") continue;
      std::optional<int> code;
      int c = 0;
      auto it = e.attributes.find("exitCode");
      if (it != e.attributes.end() && absl::SimpleAtoi(it->second, &c)) code = c;
      Finish(e.id, code);
    }
  }
}

void DockerLauncher::KeepLog(const std::string& id, const std::string& agent_id) {
  const std::string dir = absl::StrCat(options_.log_dir, "/", agent_id);
  const std::string path = dir + "/agentd.log";
  absl::StatusOr<std::string> text = engine_.Logs(id, kKeptLogLines);
  if (!text.ok()) {
    LogWarning(absl::StrCat("cannot keep the output of ", agent_id, ": ", text.status().message()));
    return;
  }
  if (absl::Status s = MakeDirs(dir); !s.ok()) {
    LogWarning(absl::StrCat("cannot keep the output of ", agent_id, ": ", s.message()));
    return;
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  const std::string header = absl::StrCat("--- container ", id.substr(0, 12), " of ", agent_id,
                                          ", its last ", kKeptLogLines, " lines at most ---\n");
  if (!fd.valid() || ::write(fd.get(), header.data(), header.size()) < 0 ||
      ::write(fd.get(), text->data(), text->size()) < 0) {
    LogWarning(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
}

void DockerLauncher::Finish(const std::string& id, std::optional<int> event_exit_code) {
  // Only the watcher thread calls this, so no other Finish of `id` runs meanwhile; the entry is
  // marked exiting only once the daemon confirms the end (List keeps listing it until then).
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.exiting) return;  // not ours, or reported already
    if (it->second.starting) {
      it->second.died_starting = true;  // Start re-queues it when it is done
      return;
    }
  }
  absl::StatusOr<ContainerInfo> info = engine_.Inspect(id);
  if (info.ok() && (info->running || info->status == "paused" || info->status == "restarting")) {
    return;  // alive after all (a replayed or stale event, a check): keep watching
  }
  if (!info.ok() && !absl::IsNotFound(info.status())) {
    // The daemon cannot say (it went down): checked again once the event stream is back.
    LogWarning(
        absl::StrCat("cannot inspect container ", id.substr(0, 12), ": ", info.status().message()));
    return;
  }
  Launched launched;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.exiting) return;
    it->second.exiting = true;  // Stop no longer signals it; Start of its agent id waits
    launched = it->second.launched;
  }
  LaunchExit exit{id, launched.slot, launched.agent_id, "", std::nullopt, std::nullopt};
  if (info.ok()) {
    DescribeExitCode(info->exit_code, info->oom_killed, &exit);
    if (!info->error.empty()) absl::StrAppend(&exit.reason, ": ", info->error);
  } else if (event_exit_code.has_value()) {
    DescribeExitCode(*event_exit_code, false, &exit);
  } else {
    exit.reason = "ended (container removed by someone else; exit status unknown)";
  }
  LogInfo(absl::StrCat(launched.agent_id, " (slot ", launched.slot, ", container ",
                       id.substr(0, 12), ") ", exit.reason));
  // Its output is kept before the end is reported (a crash context reads it); the container is
  // removed after, off the path of the item moving on (a removal takes tens of ms). A Start of
  // the same agent meanwhile finds the ended container by name and removes it first.
  if (info.ok() && !options_.log_dir.empty()) KeepLog(id, launched.agent_id);
  {
    absl::MutexLock l(&mu_);
    entries_.erase(id);
  }
  if (options_.on_exit) options_.on_exit(exit);
  if (info.ok()) {
    if (absl::Status s = engine_.Remove(id, /*force=*/true); !s.ok() && !absl::IsNotFound(s)) {
      LogWarning(
          absl::StrCat("cannot remove the container of ", launched.agent_id, ": ", s.message()));
    }
  }
}

}  // namespace harness::launch
