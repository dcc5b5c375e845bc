// The swarm launcher (see swarm_launcher.h and docs/LAUNCHERS.md, "Swarm").
#include "launch/swarm_launcher.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "core/log.h"

namespace harness::launch {
namespace {

using json = nlohmann::json;

// Update retries when the service's version moved under us.
constexpr int kUpdateAttempts = 10;
// How long Start waits, with no task of the slot that swarm still wants running, before it
// concludes swarm gave up on the slot (a replacement task appears at once after a death).
constexpr absl::Duration kGaveUpAfter = absl::Seconds(5);
constexpr absl::Duration kStartPoll = absl::Milliseconds(200);

int64_t Nanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }

bool WantedRunning(const SwarmTask& t) {
  return (t.desired_state == "ready" || t.desired_state == "running") && !SwarmTaskEnded(t.state);
}

// As the docker launcher: an init and the runtime give 128+N for a death by signal N.
void DescribeExitCode(int code, LaunchExit* exit) {
  if (code > 128 && code <= 128 + 64) {
    exit->signal = code - 128;
    exit->reason = absl::StrCat("killed by signal ", code - 128);
  } else {
    exit->exit_status = code;
    exit->reason = absl::StrCat("exited with status ", code);
  }
}

std::string Short(const std::string& id) { return id.substr(0, 12); }

}  // namespace

absl::StatusOr<std::unique_ptr<SwarmLauncher>> SwarmLauncher::Create(
    SwarmLauncherOptions options) {
  if (absl::Status s = ValidateAgentId(options.controller_id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("swarm launcher: controller id ",
                                                   QuoteForMessage(options.controller_id),
                                                   " must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"));
  }
  if (absl::Status s = ValidateAgentId(options.service); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("swarm launcher: service name ",
                                                   QuoteForMessage(options.service),
                                                   " must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}"));
  }
  if (options.image.empty()) return absl::InvalidArgumentError("swarm launcher: no agent image");
  if (options.socket.empty()) {
    return absl::InvalidArgumentError("swarm launcher: empty docker socket path");
  }
  auto launcher = std::unique_ptr<SwarmLauncher>(new SwarmLauncher(std::move(options)));
  launcher->watcher_ = std::thread([l = launcher.get()] { l->WatchLoop(); });
  return launcher;
}

SwarmLauncher::SwarmLauncher(SwarmLauncherOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      engine_(DockerEngineOptions{options_.socket, options_.call_timeout}) {}

SwarmLauncher::~SwarmLauncher() {
  {
    absl::MutexLock l(&mu_);
    shutting_down_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

std::string SwarmLauncher::ServiceSpec(const LaunchSpec& spec, const ContainerCredentials& creds,
                                       int replicas) const {
  std::vector<std::string> args = {"/bin/sh", "-c", "exec \"$0\" --id \"$HARNESS_AGENT_ID\" \"$@\"",
                                   spec.binary.empty() ? "agentd" : spec.binary, "--controller",
                                   spec.controller_address};
  if (!spec.workdir.empty()) args.insert(args.end(), {"--workdir", spec.workdir});
  args.insert(args.end(), spec.extra_args.begin(), spec.extra_args.end());
  const json labels = {{std::string(kLabelController), options_.controller_id}};
  json container = {
      {"Image", options_.image},
      {"Args", args},
      // Templates expand in Env and Hostname (not in Args: hence the shell above).
      {"Env",
       {"HARNESS_AGENT_ID=agent-{{.Task.Slot}}", "HARNESS_SLOT={{.Task.Slot}}",
        absl::StrCat("HARNESS_CONTROLLER=", spec.controller_address),
        absl::StrCat("HARNESS_CONTROLLER_ID=", options_.controller_id)}},
      {"Hostname", "agent-{{.Task.Slot}}"},
      {"Labels", labels},
      {"StopGracePeriod", Nanos(options_.stop_grace)},
  };
  if (!spec.workdir.empty()) container["Dir"] = spec.workdir;
  // The agent's credentials: the token in the environment, the TLS files bound read-only from
  // the same path on every node (docs/LAUNCHERS.md).
  for (const std::string& e : creds.env) container["Env"].push_back(e);
  if (!creds.files.empty()) {
    json mounts = json::array();
    for (const auto& [host_path, target] : creds.files) {
      mounts.push_back(
          {{"Type", "bind"}, {"Source", host_path}, {"Target", target}, {"ReadOnly", true}});
    }
    container["Mounts"] = mounts;
  }
  json task = {
      {"ContainerSpec", container},
      {"RestartPolicy",
       {{"Condition", "any"},
        {"Delay", Nanos(options_.restart_delay)},
        {"MaxAttempts", std::max(options_.max_attempts, 0)},
        {"Window", Nanos(options_.failure_window)}}},
      {"Networks", json::array({{{"Target", "host"}}})},
  };
  if (options_.memory_bytes > 0) {
    task["Resources"]["Limits"]["MemoryBytes"] = options_.memory_bytes;
  }
  if (options_.nano_cpus > 0) task["Resources"]["Limits"]["NanoCPUs"] = options_.nano_cpus;
  json service = {{"Name", options_.service},
                  {"Labels", labels},
                  {"TaskTemplate", task},
                  {"Mode", {{"Replicated", {{"Replicas", replicas}}}}}};
  return service.dump();
}

absl::StatusOr<SwarmService> SwarmLauncher::EnsureService(const LaunchSpec* spec, int replicas) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::StatusOr<SwarmService> svc = engine_.InspectService(options_.service);
    if (svc.ok()) {
      auto it = svc->labels.find(std::string(kLabelController));
      if (it == svc->labels.end() || it->second != options_.controller_id) {
        return absl::FailedPreconditionError(absl::StrCat(
            "swarm service ", options_.service, " is not this controller's (its ",
            kLabelController, " is ",
            QuoteForMessage(it == svc->labels.end() ? std::string() : it->second), ", not ",
            options_.controller_id, "): left alone (one controller per swarm service)"));
      }
      return svc;
    }
    if (!absl::IsNotFound(svc.status()) || spec == nullptr) return svc.status();
    absl::StatusOr<ContainerCredentials> creds = ForContainer(spec->credentials);
    if (!creds.ok()) return creds.status();
    absl::StatusOr<std::string> id =
        engine_.CreateService(options_.service, ServiceSpec(*spec, *creds, replicas));
    if (id.ok()) {
      LogInfo(absl::StrCat("created swarm service ", options_.service, " (", Short(*id), ") of ",
                           options_.image, ", ", replicas, " replicas"));
      continue;  // read it back
    }
    if (!absl::IsFailedPrecondition(id.status())) return id.status();  // 409: made meanwhile
  }
  return absl::UnavailableError(
      absl::StrCat("swarm service ", options_.service, " is neither there nor creatable"));
}

absl::Status SwarmLauncher::SetReplicas(int count, bool raise) {
  absl::Status last;
  for (int attempt = 0; attempt < kUpdateAttempts; ++attempt) {
    absl::StatusOr<SwarmService> svc = EnsureService(nullptr, 0);
    if (!svc.ok()) return svc.status();
    if (svc->replicas < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("swarm service ", options_.service, " is not a replicated service"));
    }
    if (raise ? svc->replicas >= count : svc->replicas <= count) return absl::OkStatus();
    json spec = json::parse(svc->spec, nullptr, /*allow_exceptions=*/false);
    if (!spec.is_object()) {
      return absl::InternalError(absl::StrCat("swarm service ", options_.service, ": bad spec"));
    }
    spec["Mode"]["Replicated"]["Replicas"] = count;
    last = engine_.UpdateService(svc->id, svc->version, spec.dump());
    if (last.ok()) {
      LogInfo(absl::StrCat("swarm service ", options_.service, ": replicas ", svc->replicas,
                           " -> ", count));
      return absl::OkStatus();
    }
    if (!absl::IsAborted(last)) return last;  // else: the version moved; read it again
  }
  return last;
}

std::string SwarmLauncher::HostOf(const std::string& node_id) {
  if (node_id.empty()) return "(not scheduled yet)";
  {
    absl::MutexLock l(&mu_);
    auto it = hosts_.find(node_id);
    if (it != hosts_.end()) return it->second;
  }
  absl::StatusOr<std::vector<SwarmNode>> nodes = engine_.Nodes();
  absl::MutexLock l(&mu_);
  if (nodes.ok()) {
    for (const SwarmNode& n : *nodes) hosts_[n.id] = absl::StrCat(n.hostname, " (", n.addr, ")");
  }
  auto it = hosts_.find(node_id);
  return it != hosts_.end() ? it->second : absl::StrCat("node ", Short(node_id));
}

Launched SwarmLauncher::MakeLaunched(const SwarmTask& t, bool adopted) {
  const std::string agent = absl::StrCat("agent-", t.slot);
  return Launched{t.id,
                  0,
                  HostOf(t.node_id),
                  t.created != absl::InfinitePast() ? t.created : clock_->Now(),
                  t.slot,
                  agent,
                  LabelsFor(options_.controller_id, t.slot, agent),
                  adopted};
}

absl::StatusOr<Launched> SwarmLauncher::Start(const LaunchSpec& spec) {
  const std::string agent = absl::StrCat("agent-", spec.slot);
  if (spec.slot < 1 || spec.agent_id != agent) {
    return absl::InvalidArgumentError(
        absl::StrCat("swarm launcher: slot ", spec.slot, " runs agent-<slot> (the task slot "
                     "names it), not ", QuoteForMessage(spec.agent_id)));
  }
  if (spec.controller_id != options_.controller_id) {
    return absl::InvalidArgumentError(absl::StrCat("controller id ",
                                                   QuoteForMessage(spec.controller_id), " of ",
                                                   agent, " is not this launcher's (",
                                                   options_.controller_id, ")"));
  }
  if (spec.controller_address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no controller address for ", agent));
  }
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, e] : entries_) {
      if (e.launched.slot == spec.slot && !e.stopping) {
        return absl::FailedPreconditionError(
            absl::StrCat(agent, " is already running (swarm task ", Short(id), ")"));
      }
    }
  }
  auto fail = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("cannot start ", agent, ": ", s.message()));
  };
  if (absl::StatusOr<SwarmService> svc = EnsureService(&spec, spec.slot); !svc.ok()) {
    return fail(svc.status());
  }
  if (absl::Status s = SetReplicas(spec.slot, /*raise=*/true); !s.ok()) return fail(s);

  const absl::Time deadline = absl::Now() + options_.start_timeout;
  std::optional<absl::Time> none_since;
  for (;;) {
    absl::StatusOr<std::vector<SwarmTask>> tasks = engine_.Tasks(options_.service);
    if (!tasks.ok()) return fail(tasks.status());
    const SwarmTask* pick = nullptr;
    bool any_wanted = false;
    {
      absl::MutexLock l(&mu_);
      for (const SwarmTask& t : *tasks) {
        if (t.slot != spec.slot || !WantedRunning(t)) continue;
        any_wanted = true;
        if (ended_.count(t.id) != 0 || entries_.count(t.id) != 0) continue;
        if (pick == nullptr || t.created > pick->created) pick = &t;
      }
    }
    if (pick != nullptr) {
      Launched launched = MakeLaunched(*pick, /*adopted=*/false);
      {
        absl::MutexLock l(&mu_);
        entries_[pick->id] = Entry{launched, pick->node_id, pick->container_id, false, std::nullopt};
      }
      LogInfo(absl::StrCat("started ", agent, " (slot ", spec.slot, ") as swarm task ",
                           Short(pick->id), " of service ", options_.service, " on ",
                           launched.host, " (", pick->state, ")"));
      return launched;
    }
    const absl::Time now = absl::Now();
    if (any_wanted) {
      none_since.reset();
    } else if (!none_since.has_value()) {
      none_since = now;
    } else if (now - *none_since >= kGaveUpAfter) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "swarm keeps no task for slot ", spec.slot, " of service ", options_.service,
          ": it gave up restarting it (restart policy: ", options_.max_attempts,
          " attempts within ", absl::FormatDuration(options_.failure_window),
          "); only `docker service update --force ", options_.service,
          "` revives it, and that restarts every task")));
    }
    if (now >= deadline) {
      return fail(absl::DeadlineExceededError(absl::StrCat(
          "no new task of slot ", spec.slot, " of service ", options_.service, " within ",
          absl::FormatDuration(options_.start_timeout),
          any_wanted ? " (swarm still runs the one asked to stop)" : "")));
    }
    absl::SleepFor(kStartPoll);
  }
}

absl::Status SwarmLauncher::Stop(absl::string_view id_view, absl::Duration grace) {
  const std::string id(id_view);
  Entry e;
  int count = -1;
  std::string local;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("no swarm task ", QuoteForMessage(id),
                                              " of this launcher is running"));
    }
    it->second.stopping = true;  // Start of its slot waits for another task
    e = it->second;
    count = slot_count_;
    local = local_node_;
  }
  const std::string& agent = e.launched.agent_id;
  if (count >= 0 && e.launched.slot > count) {
    // Leaving the pool: fewer replicas remove it (swarm: SIGTERM, SIGKILL after stop_grace).
    LogInfo(absl::StrCat("stopping ", agent, " (swarm task ", Short(id),
                         "): the replicas drop to ", count));
    return SetReplicas(count, /*raise=*/false);
  }
  if (local.empty()) {
    absl::StatusOr<SwarmInfo> info = engine_.Swarm();
    if (info.ok()) {
      local = info->node_id;
      absl::MutexLock l(&mu_);
      local_node_ = local;
    }
  }
  if (e.container_id.empty() || e.node_id.empty()) {
    // Found by Start before its container existed: read the task again.
    absl::StatusOr<std::vector<SwarmTask>> tasks = engine_.Tasks(options_.service);
    if (tasks.ok()) {
      for (const SwarmTask& t : *tasks) {
        if (t.id != id) continue;
        e.container_id = t.container_id;
        e.node_id = t.node_id;
      }
    }
  }
  if (!local.empty() && e.node_id == local && !e.container_id.empty()) {
    LogInfo(absl::StrCat("stopping ", agent, " (swarm task ", Short(id), ", container ",
                         Short(e.container_id), "), grace ", absl::FormatDuration(grace)));
    absl::Status s =
        engine_.Kill(e.container_id, grace > absl::ZeroDuration() ? "SIGTERM" : "SIGKILL");
    if (absl::IsNotFound(s) || absl::IsFailedPrecondition(s)) return absl::OkStatus();  // ended
    if (s.ok() && grace > absl::ZeroDuration()) {
      absl::MutexLock l(&mu_);
      auto it = entries_.find(id);
      if (it != entries_.end()) it->second.kill_at = clock_->Now() + grace;
    }
    return s;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot stop ", agent, " (swarm task ", Short(id), ") on ", e.launched.host,
      ": the Engine API stops a single task only on the manager's own node; swarm replaces it "
      "if its node goes down, and its lease expires if it hangs"));
}

void SwarmLauncher::SetSlotCount(int count) {
  {
    absl::MutexLock l(&mu_);
    if (count == slot_count_) return;
    slot_count_ = count;
  }
  absl::Status s = SetReplicas(count, /*raise=*/false);
  if (!s.ok() && !absl::IsNotFound(s)) {
    LogWarning(absl::StrCat("swarm service ", options_.service, ": cannot lower the replicas to ",
                            count, ": ", s.message(), " (retried at the next change)"));
    absl::MutexLock l(&mu_);
    slot_count_ = -1;  // try again next time
  }
}

absl::Status SwarmLauncher::Check() {
  absl::StatusOr<SwarmInfo> info = engine_.Swarm();
  if (!info.ok()) return info.status();
  if (info->local_node_state != "active" || !info->control_available) {
    return absl::UnavailableError(
        absl::StrCat("the docker daemon at unix://", options_.socket,
                     " is not an active swarm manager (node state \"", info->local_node_state, "\"",
                     info->control_available ? "" : ", no control",
                     "): run `docker swarm init` or point agent.docker.socket at a manager"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Launched>> SwarmLauncher::List() {
  absl::StatusOr<SwarmService> svc = EnsureService(nullptr, 0);
  if (!svc.ok() && !absl::IsNotFound(svc.status())) return svc.status();
  if (svc.ok()) {
    absl::StatusOr<std::vector<SwarmTask>> tasks = engine_.Tasks(options_.service);
    if (!tasks.ok()) return tasks.status();
    for (const SwarmTask& t : *tasks) {
      if (!WantedRunning(t) || t.slot < 1) continue;
      {
        absl::MutexLock l(&mu_);
        if (entries_.count(t.id) != 0 || ended_.count(t.id) != 0) continue;
      }
      Launched launched = MakeLaunched(t, /*adopted=*/true);
      LogInfo(absl::StrCat("adopted ", launched.agent_id, " (slot ", t.slot, "), swarm task ",
                           Short(t.id), " of service ", options_.service, " on ",
                           launched.host));
      absl::MutexLock l(&mu_);
      entries_[t.id] = Entry{launched, t.node_id, t.container_id, false, std::nullopt};
    }
  }
  std::vector<Launched> out;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, e] : entries_) out.push_back(e.launched);
  }
  std::sort(out.begin(), out.end(), [](const Launched& a, const Launched& b) {
    return std::tie(a.slot, a.started) < std::tie(b.slot, b.started);
  });
  return out;
}

void SwarmLauncher::Report(const std::string& id, const std::optional<SwarmTask>& task) {
  Launched launched;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    launched = it->second.launched;
    entries_.erase(it);
    ended_.insert(id);
  }
  LaunchExit exit{id, launched.slot, launched.agent_id, "", std::nullopt, std::nullopt};
  if (!task.has_value()) {
    exit.reason = "ended (its swarm task is gone; exit status unknown)";
  } else if (task->state == "rejected") {
    exit.reason = absl::StrCat("rejected by swarm: ", task->error);
  } else if (task->state == "orphaned") {
    exit.reason = "orphaned: its node was gone too long (exit status unknown)";
  } else if (task->container_id.empty()) {
    exit.reason = absl::StrCat("ended before its container started (", task->state,
                               task->error.empty() ? "" : ": ", task->error, ")");
  } else {
    DescribeExitCode(task->exit_code, &exit);
    if (!task->error.empty()) absl::StrAppend(&exit.reason, " (", task->error, ")");
  }
  LogInfo(absl::StrCat(launched.agent_id, " (slot ", launched.slot, ", swarm task ", Short(id),
                       " on ", launched.host, ") ", exit.reason));
  if (options_.on_exit) options_.on_exit(exit);
}

void SwarmLauncher::WatchLoop() {
  std::string last_error;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> to_kill;  // task, container
    {
      absl::MutexLock l(&mu_);
      auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutting_down_; };
      mu_.AwaitWithTimeout(absl::Condition(&done), options_.poll_interval);
      if (shutting_down_) return;
      const absl::Time now = clock_->Now();
      for (auto& [id, e] : entries_) {
        if (e.kill_at.has_value() && *e.kill_at <= now) {
          to_kill.emplace_back(id, e.container_id);
          e.kill_at.reset();
        }
      }
    }
    for (const auto& [task, container] : to_kill) {
      absl::Status s = engine_.Kill(container, "SIGKILL");
      if (s.ok()) {
        LogWarning(absl::StrCat("swarm task ", Short(task), " still ran after its grace: killed"));
      }
    }
    absl::StatusOr<std::vector<SwarmTask>> tasks = engine_.Tasks(options_.service);
    if (!tasks.ok()) {
      if (std::string(tasks.status().message()) != last_error) {
        last_error = std::string(tasks.status().message());
        LogWarning(absl::StrCat("swarm launcher: ", last_error, " (retrying)"));
      }
      continue;
    }
    if (!last_error.empty()) LogInfo("swarm launcher: reading the service's tasks again");
    last_error.clear();
    std::map<std::string, const SwarmTask*> by_id;
    for (const SwarmTask& t : *tasks) by_id[t.id] = &t;
    std::vector<std::string> tracked;
    std::vector<std::pair<std::string, std::string>> placed;  // task, node: learn its host
    {
      absl::MutexLock l(&mu_);
      for (const auto& [id, e] : entries_) tracked.push_back(id);
      for (auto it = ended_.begin(); it != ended_.end();) {
        it = by_id.count(*it) == 0 ? ended_.erase(it) : std::next(it);  // pruned by swarm
      }
      for (const auto& [id, t] : by_id) {  // learn the container of a task Start found early
        auto e = entries_.find(id);
        if (e == entries_.end()) continue;
        if (!t->container_id.empty()) e->second.container_id = t->container_id;
        if (!t->node_id.empty() && e->second.node_id != t->node_id) {
          e->second.node_id = t->node_id;
          placed.emplace_back(id, t->node_id);
        }
      }
    }
    for (const auto& [id, node] : placed) {
      std::string host = HostOf(node);
      absl::MutexLock l(&mu_);
      auto e = entries_.find(id);
      if (e != entries_.end()) e->second.launched.host = host;
    }
    for (const std::string& id : tracked) {
      auto it = by_id.find(id);
      if (it == by_id.end()) {
        Report(id, std::nullopt);
      } else if (SwarmTaskEnded(it->second->state)) {
        Report(id, *it->second);
      }
    }
  }
}

}  // namespace harness::launch
