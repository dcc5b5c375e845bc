// The pool manager's thread (see pool_manager.h).
#include "controller/pool_manager.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/pool_target.h"
#include "launch/docker_launcher.h"
#include "launch/process_launcher.h"
#include "launch/swarm_launcher.h"
#include "core/thread_name.h"

namespace harness {
namespace {

// The state dir's controller id: read, or made and kept on first use.
absl::StatusOr<std::string> ControllerId(const StatePaths& paths) {
  const std::string file = paths.ControllerIdFile();
  if (PathExists(file)) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) return text.status();
    std::string id(absl::StripAsciiWhitespace(*text));
    if (absl::Status s = ValidateAgentId(id); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": not a controller id (", s.message(), "); remove the file and "
                             "stop the agents it launched to start afresh"));
    }
    return id;
  }
  std::random_device rd;
  std::string id = absl::StrFormat("ctl-%08x%08x", rd(), rd());
  if (absl::Status s = WriteFileAtomically(file, id + "\n"); !s.ok()) return s;
  return id;
}

std::string StatusText(const std::optional<AgentInfo>& info, absl::Time now) {
  if (!info) return "never registered";
  return absl::StrCat("state ", AgentStateName(info->state), "\nhealth ", HealthName(info->health),
                      "\nlast heartbeat ", absl::FormatDuration(now - info->last_seen),
                      " ago\nregistered ", absl::FormatTime(info->registered),
                      "\npid ", info->pid, "\nhost ", info->host, "\nversion ", info->version,
                      info->draining ? "\ndraining" : "");
}

}  // namespace

absl::StatusOr<std::unique_ptr<PoolManager>> PoolManager::Create(PoolManagerOptions options,
                                                                 WorkQueue* queue,
                                                                 AgentRegistry* agents,
                                                                 Clock* clock) {
  if (options.launcher != "process" && options.launcher != "docker" &&
      options.launcher != "swarm" && options.launcher != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent.launcher ", QuoteForMessage(options.launcher), " is not available here"));
  }
  StatePaths paths(options.state_dir);
  absl::StatusOr<std::string> id = ControllerId(paths);
  if (!id.ok()) return id.status();
  absl::StatusOr<PoolTargetChoice> target =
      LoadPoolTarget(paths.PoolTargetFile(), options.pool.target);
  if (!target.ok()) return target.status();
  LogInfo(target->why);
  auto m = std::unique_ptr<PoolManager>(
      new PoolManager(std::move(options), queue, agents, clock, *id, target->target));
  if (m->managed()) {
    PoolManager* self = m.get();
    auto on_exit = [self](const launch::LaunchExit& e) {
      Event ev;
      ev.kind = Event::kExit;
      ev.exit = e;
      self->Post(std::move(ev));
    };
    if (m->options_.launcher == "docker") {
      launch::DockerLauncherOptions lo;
      lo.socket = m->options_.docker_socket;
      lo.controller_id = m->controller_id_;
      lo.image = m->options_.docker_image;
      lo.memory_bytes = m->options_.docker_memory_bytes;
      lo.nano_cpus = m->options_.docker_nano_cpus;
      lo.log_dir = StatePaths(m->options_.state_dir).AgentsDir();  // crash contexts read them
      lo.clock = clock;
      lo.on_exit = std::move(on_exit);
      absl::StatusOr<std::unique_ptr<launch::DockerLauncher>> l =
          launch::DockerLauncher::Create(std::move(lo));
      if (!l.ok()) return l.status();
      m->launcher_ = std::move(*l);
    } else if (m->options_.launcher == "swarm") {
      launch::SwarmLauncherOptions lo;
      lo.socket = m->options_.docker_socket;
      lo.service = m->options_.swarm_service;
      lo.controller_id = m->controller_id_;
      lo.image = m->options_.docker_image;
      lo.memory_bytes = m->options_.docker_memory_bytes;
      lo.nano_cpus = m->options_.docker_nano_cpus;
      // Swarm restarts the tasks itself: as the pool would, and it gives up where the pool
      // marks the slot failed.
      lo.restart_delay = m->options_.pool.restart_delay;
      lo.max_attempts = m->options_.pool.max_agent_failures;
      lo.failure_window = m->options_.pool.failure_window;
      lo.stop_grace = m->options_.pool.stop_grace;
      lo.clock = clock;
      lo.on_exit = std::move(on_exit);
      absl::StatusOr<std::unique_ptr<launch::SwarmLauncher>> l =
          launch::SwarmLauncher::Create(std::move(lo));
      if (!l.ok()) return l.status();
      m->launcher_ = std::move(*l);
    } else {
      launch::ProcessLauncherOptions lo;
      lo.state_dir = m->options_.state_dir;
      lo.controller_id = m->controller_id_;
      lo.clock = clock;
      lo.on_exit = std::move(on_exit);
      absl::StatusOr<std::unique_ptr<launch::ProcessLauncher>> l =
          launch::ProcessLauncher::Create(std::move(lo));
      if (!l.ok()) return l.status();
      m->launcher_ = std::move(*l);
    }
    if (m->launcher_->removes_highest_slots_only()) {
      // The pool must then choose the highest slots as victims (nothing ran yet).
      PoolOptions po = m->options_.pool;
      po.target = m->pool_->target();
      po.highest_slots_only = true;
      m->pool_ = std::make_unique<Pool>(po, clock);
    }
  }
  return m;
}

PoolManager::PoolManager(PoolManagerOptions options, WorkQueue* queue, AgentRegistry* agents,
                         Clock* clock, std::string controller_id, int target)
    : options_(std::move(options)),
      queue_(queue),
      agents_(agents),
      clock_(clock),
      controller_id_(std::move(controller_id)),
      alert_(options_.on_alert),
      unmanaged_target_(target),
      outage_(options_.launcher_retry_min, options_.launcher_retry_max) {
  if (managed()) {
    PoolOptions po = options_.pool;
    po.target = target;
    pool_ = std::make_unique<Pool>(po, clock_);
  }
  absl::MutexLock l(&mu_);
  published_target_ = target;
}

PoolManager::~PoolManager() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  launcher_.reset();  // its watcher ends before the events it would post
}

void PoolManager::Start(const std::string& address) {
  address_ = address;
  LogInfo(managed()
              ? absl::StrCat("pool: launcher ", options_.launcher, ", target ",
                             pool_->target(), ", agentd ", options_.binary, ", controller id ",
                             controller_id_)
              : absl::StrCat("pool: launcher none (agents are started elsewhere), target ",
                             unmanaged_target_, " recorded only"));
  if (managed()) {
    absl::StatusOr<std::vector<launch::Launched>> alive = launcher_->List();
    std::vector<LaunchedThing> found;
    if (!alive.ok() && LauncherOutage::IsOutage(alive.status())) {
      EnterOutage(alive.status());  // what runs is adopted once the launcher answers
    } else if (!alive.ok()) {
      LogError(absl::StrCat("cannot list the agents a previous controller launched: ",
                            alive.status().message()));
    } else {
      for (const launch::Launched& l : *alive) {
        found.push_back(LaunchedThing{l.slot, l.id});
        things_[l.id] = Thing{l.agent_id, l.slot, l.pid, clock_->Now(), false};
        LogInfo(absl::StrCat("adopted ", l.agent_id, " (slot ", l.slot, ", ", l.id,
                             ") launched by a previous controller"));
      }
    }
    Execute(pool_->Adopt(found));
  }
  Publish();
  thread_ = std::thread([this] { Loop(); });
}

void PoolManager::Post(Event e) {
  absl::MutexLock l(&mu_);
  events_.push_back(std::move(e));
}

void PoolManager::Scale(int target, bool force,
                        std::function<void(absl::StatusOr<ScaleResult>)> done) {
  Event e;
  e.kind = Event::kScale;
  e.target = target;
  e.force = force;
  e.scale_done = std::move(done);
  Post(std::move(e));
}

void PoolManager::Replace(const std::string& agent, bool force,
                          std::function<void(absl::Status)> done) {
  Event e;
  e.kind = Event::kReplace;
  e.agent = agent;
  e.force = force;
  e.replace_done = std::move(done);
  Post(std::move(e));
}

void PoolManager::KeepContext(CrashContext context) {
  Event e;
  e.kind = Event::kContext;
  e.context = std::move(context);
  Post(std::move(e));
}

int PoolManager::target() const {
  absl::MutexLock l(&mu_);
  return published_target_;
}

std::vector<PoolSlotStatus> PoolManager::Slots() const {
  absl::MutexLock l(&mu_);
  return published_slots_;
}

uint64_t PoolManager::deaths() const {
  absl::MutexLock l(&mu_);
  return published_deaths_;
}

std::string PoolManager::launcher_error() const {
  absl::MutexLock l(&mu_);
  return published_launcher_error_;
}

std::map<std::string, int64_t> PoolManager::LaunchedPids() const {
  absl::MutexLock l(&mu_);
  return published_pids_;
}

void PoolManager::Shutdown() {
  {
    absl::MutexLock l(&mu_);
    if (stop_ || !thread_.joinable()) return;
    Event e;
    e.kind = Event::kShutdown;
    events_.push_back(std::move(e));
  }
  absl::MutexLock l(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_done_; };
  mu_.AwaitWithTimeout(absl::Condition(&done), options_.pool.stop_grace + absl::Seconds(5));
}

void PoolManager::Loop() {
  NameThisThread("pool");
  for (;;) {
    std::vector<Event> events;
    {
      absl::MutexLock l(&mu_);
      absl::Duration wait = options_.observe_interval;
      if (pool_ && !shutting_down_) {
        wait = std::min(wait, pool_->NextTick() - clock_->Now());
        wait = std::min(wait, outage_.next_try() - clock_->Now());
      }
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !events_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), std::max(wait, absl::Milliseconds(1)));
      if (stop_) return;
      events.swap(events_);
    }
    for (Event& e : events) Handle(e);
    if (pool_ && !shutting_down_) {
      Observe();
      Execute(pool_->Tick());
      if (outage_.active() && clock_->Now() >= outage_.next_try()) RetryLauncher();
      DropUnwantedHeld();
    }
    alert_.Reap();
    Publish();
    if (shutting_down_ && things_.empty()) {
      absl::MutexLock l(&mu_);
      shutdown_done_ = true;
    }
  }
}

void PoolManager::Handle(Event& e) {
  switch (e.kind) {
    case Event::kScale: {
      int old = pool_ ? pool_->target() : unmanaged_target_;
      std::vector<PoolAction> actions;
      if (pool_) {
        Observe();  // the victims are chosen from what the agents do now
        absl::StatusOr<std::vector<PoolAction>> a = pool_->SetTarget(e.target, e.force);
        if (!a.ok()) {
          e.scale_done(a.status());
          return;
        }
        actions = std::move(*a);
      } else if (e.target < 0) {
        e.scale_done(absl::InvalidArgumentError(
            absl::StrCat("pool target ", e.target, " is invalid: it must be 0 or more")));
        return;
      } else {
        unmanaged_target_ = e.target;
      }
      absl::Status saved = SavePoolTarget(StatePaths(options_.state_dir).PoolTargetFile(),
                                          e.target, options_.pool.target);
      if (!saved.ok()) {
        LogError(absl::StrCat("pool target ", e.target, " is in force but not kept for a restart: ",
                              saved.message()));
      }
      LogInfo(absl::StrCat("pool target ", old, " -> ", e.target, e.force ? " (force)" : ""));
      Publish();
      e.scale_done(ScaleResult{old, e.target});
      Execute(std::move(actions));
      return;
    }
    case Event::kReplace: {
      if (!pool_ || shutting_down_) {
        e.replace_done(absl::NotFoundError(absl::StrCat("no pool agent is called ", e.agent)));
        return;
      }
      absl::StatusOr<std::vector<PoolAction>> a = pool_->Replace(e.agent, e.force);
      if (!a.ok()) {
        e.replace_done(a.status());
        return;
      }
      LogInfo(absl::StrCat(e.agent, e.force ? " stopped" : " draining",
                           " by the operator; its slot starts a fresh agent after it exits"));
      Execute(std::move(*a));  // first: the answer describes the agent as drained
      e.replace_done(absl::OkStatus());
      return;
    }
    case Event::kExit:
      HandleExit(e.exit);
      return;
    case Event::kContext: {
      absl::StatusOr<std::string> dir =
          WriteCrashContext(StatePaths(options_.state_dir).CrashesDir(), e.context,
                            clock_->Now(), options_.keep_crashes);
      if (!dir.ok()) LogWarning(absl::StrCat("cannot keep context: ", dir.status().message()));
      return;
    }
    case Event::kShutdown:
      shutting_down_ = true;
      // Numbered replicas (swarm): none kept, so each Stop below is carried out by the count.
      if (launcher_ && launcher_->removes_highest_slots_only()) launcher_->SetSlotCount(0);
      for (const auto& [id, t] : things_) {
        if (absl::Status s = launcher_->Stop(id, options_.pool.stop_grace); !s.ok()) {
          LogWarning(absl::StrCat("cannot stop ", t.agent, ": ", s.message()));
        }
      }
      LogInfo(absl::StrCat("stopping ", things_.size(), " launched agents (each finishes or "
                           "releases its item; killed after ",
                           absl::FormatDuration(options_.pool.stop_grace), ")"));
      return;
  }
}

void PoolManager::HandleExit(const launch::LaunchExit& exit) {
  auto it = things_.find(exit.id);
  if (it == things_.end()) return;  // not ours (an agent the launcher tracks for no slot)
  Thing t = it->second;
  things_.erase(it);
  // Only the process launcher's pid is the one the agent registers with (a container's agentd
  // reports its pid from inside its namespace). A thing declared dead was replaced already;
  // without a pid to tell registrations apart (containers, swarm tasks), its late exit must not
  // mark its successor exited.
  const int64_t agent_pid = launcher_->kind() == "process" ? t.pid : 0;
  if (!(t.declared_dead && agent_pid == 0)) {
    agents_->MarkExited(t.agent, static_cast<int>(agent_pid), exit.reason);
  }
  if (!pool_) return;
  bool death = false;
  for (const PoolSlotStatus& s : pool_->Snapshot()) {
    if (s.launched_id == exit.id) {
      death = s.state != SlotState::kDraining && s.state != SlotState::kStopped;
    }
  }
  if (shutting_down_) return;  // asked to stop: not a death, and nothing is restarted
  if (death && !t.declared_dead) OnDeath(t.agent, exit.id, exit.reason);
  Execute(pool_->Exited(exit.id, exit.reason));
}

void PoolManager::Observe() {
  const absl::Time now = clock_->Now();
  std::vector<AgentActivity> activity;
  for (const Lease& l : queue_->Leases()) {
    activity.push_back(AgentActivity{l.agent, true, l.granted});
  }
  pool_->ObserveAgents(activity);
  for (auto& [id, t] : things_) {
    if (t.declared_dead || t.slot <= 0) continue;
    std::optional<AgentInfo> info = agents_->Get(t.agent);
    bool registered = info && info->registered >= t.watch_from;
    std::string reason;
    if (registered && info->health == Health::kDead) {
      reason = absl::StrCat("no heartbeat for ", absl::FormatDuration(now - info->last_seen));
    } else if (!registered && now - t.watch_from > RegisterDeadline()) {
      reason = absl::StrCat("did not register within ", absl::FormatDuration(RegisterDeadline()),
                            " of its start");
    }
    if (reason.empty()) continue;
    t.declared_dead = true;
    std::string launched = id;
    std::string agent = t.agent;
    OnDeath(agent, launched, reason);
    Execute(pool_->AgentDead(agent, reason));
    return;  // things_ may have changed
  }
}

void PoolManager::OnDeath(const std::string& agent, const std::string& launched_id,
                          const std::string& reason) {
  const StatePaths paths(options_.state_dir);
  const absl::Time now = clock_->Now();
  CrashContext c;
  c.agent = agent;
  c.folder = CrashFolderName(now);
  c.reason = absl::StrCat(agent, " (", launched_id, ") died: ", reason);
  c.status = StatusText(agents_->Get(agent), now);
  for (const Lease& l : queue_->Leases()) {
    if (l.agent == agent) {
      c.item = absl::StrCat("item ", l.item_id, " token ", l.token, " attempt ", l.attempt);
    }
  }
  // The lease first (the item runs elsewhere at once), then the folder it names.
  const std::string dir = absl::StrCat(paths.CrashesDir(), "/", agent, "/", c.folder);
  Pending<Reconciled> ended = queue_->BeginReconcile(
      agent, {}, Unlisted::kExpire,
      absl::StrCat("its agent died: ", reason, " (context in ", dir, ")"));
  if (!ended.value.ok()) {
    LogError(absl::StrCat("cannot end the lease of dead agent ", agent, ": ",
                          ended.value.status().message(), " (it expires at its TTL)"));
  }
  c.log_tail = ReadFileTail(paths.AgentLogFile(agent), kCrashLogTailBytes);
  absl::StatusOr<std::string> written =
      WriteCrashContext(paths.CrashesDir(), c, now, options_.keep_crashes);
  if (!written.ok()) {
    LogWarning(absl::StrCat("cannot keep the context of ", agent, ": ",
                            written.status().message()));
  }
  // The "agent dead" line itself is the controller's (AgentRegistry::TakeChanges); this one
  // says what the pool did about it.
  LogWarning(absl::StrCat(agent, " died: ", reason,
                          c.item.empty() ? "" : absl::StrCat("; its ", c.item, " runs again"),
                          written.ok() ? absl::StrCat("; context in ", *written) : ""),
             {{"agent", agent}, {"context", written.ok() ? *written : std::string()}});
}

std::string PoolManager::LaunchedIdOf(const std::string& agent) const {
  for (const auto& [id, t] : things_) {
    if (t.agent == agent) return id;
  }
  return "";
}

void PoolManager::Execute(std::vector<PoolAction> actions) {
  // A launcher of numbered replicas removes the slots the pool no longer keeps (before a
  // Stop of one of them, which the lower count then carries out).
  if (launcher_ && pool_ && launcher_->removes_highest_slots_only() && !shutting_down_) {
    launcher_->SetSlotCount(pool_->SlotsToKeep());
  }
  // Agents about to be stopped take no more work first, so that the item one of them hands
  // back is not granted to another that is stopped next.
  for (const PoolAction& a : actions) {
    if (a.kind == PoolAction::kStop && a.release && !a.agent.empty()) {
      (void)agents_->Drain(a.agent);
    }
  }
  for (size_t i = 0; i < actions.size(); ++i) {
    const PoolAction a = actions[i];  // a copy: `actions` grows below
    std::vector<PoolAction> more;
    switch (a.kind) {
      case PoolAction::kStart:
        if (!shutting_down_) Launch(a, more);
        break;
      case PoolAction::kStop: {
        if (a.release && !a.agent.empty()) {
          // Stopped on purpose: its item goes back to the queue, not counted as an attempt.
          Pending<Reconciled> r = queue_->BeginReconcile(
              a.agent, {}, Unlisted::kRelease, absl::StrCat("its agent was stopped: ", a.reason));
          if (!r.value.ok()) {
            LogWarning(absl::StrCat("cannot release the item of ", a.agent, ": ",
                                    r.value.status().message()));
          }
        }
        LogInfo(absl::StrCat("stopping ", a.agent.empty() ? a.launched_id : a.agent, " (",
                             a.launched_id, "): ", a.reason));
        if (absl::Status s = launcher_->Stop(a.launched_id, a.grace); !s.ok()) {
          LogWarning(absl::StrCat("cannot stop ", a.launched_id, ": ", s.message()));
        }
        break;
      }
      case PoolAction::kDrain: {
        absl::StatusOr<AgentInfo> info = agents_->Drain(a.agent);
        if (info.ok()) {
          LogInfo(absl::StrCat(a.agent, " is draining: ", a.reason));
          break;
        }
        // Not registered (yet): nothing to finish, so it is stopped instead.
        std::string id = LaunchedIdOf(a.agent);
        if (!id.empty()) {
          LogInfo(absl::StrCat(a.agent, " is not registered: stopping it (", a.reason, ")"));
          if (absl::Status s = launcher_->Stop(id, options_.pool.stop_grace); !s.ok()) {
            LogWarning(absl::StrCat("cannot stop ", id, ": ", s.message()));
          }
        }
        break;
      }
      case PoolAction::kAlert: {
        std::string message =
            absl::StrCat("pool slot ", a.slot, " (", a.agent, ") failed: ", a.failures,
                         " deaths within ", absl::FormatDuration(options_.pool.failure_window),
                         ", the last: ", a.reason, "; not restarted until `harnessctl scale`");
        LogError("pool slot failed", {{"slot", a.slot},
                                      {"agent", a.agent},
                                      {"failures", a.failures},
                                      {"reason", a.reason},
                                      {"message", message}});
        absl::Status s = alert_.Run({{"HARNESS_ALERT", message},
                                     {"HARNESS_ALERT_SLOT", absl::StrCat(a.slot)},
                                     {"HARNESS_ALERT_AGENT", a.agent},
                                     {"HARNESS_ALERT_REASON", a.reason},
                                     {"HARNESS_ALERT_FAILURES", absl::StrCat(a.failures)},
                                     {"HARNESS_ALERT_WINDOW_S",
                                      absl::StrCat(absl::ToDoubleSeconds(
                                          options_.pool.failure_window))}});
        if (!s.ok()) LogError(std::string(s.message()));
        break;
      }
    }
    actions.insert(actions.end(), more.begin(), more.end());
  }
}

void PoolManager::Launch(const PoolAction& a, std::vector<PoolAction>& more) {
  if (outage_.active()) {
    outage_.Hold(a);  // started once the launcher answers (RetryLauncher)
    return;
  }
  launch::LaunchSpec spec;
  spec.slot = a.slot;
  spec.agent_id = a.agent;
  spec.controller_id = controller_id_;
  spec.controller_address = address_;
  spec.binary = options_.binary;
  spec.extra_args = options_.agent_args;
  spec.credentials = options_.agent_credentials;
  absl::StatusOr<launch::Launched> l = launcher_->Start(spec);
  if (!l.ok() && LauncherOutage::IsOutage(l.status())) {
    // The launcher cannot act (its daemon is down): no death of the slot; held and retried.
    EnterOutage(l.status());
    outage_.Hold(a);
    return;
  }
  if (!l.ok()) {
    LogWarning(absl::StrCat("cannot launch ", a.agent, ": ", l.status().message()));
    more = pool_->LaunchFailed(a.slot, std::string(l.status().message()));
    return;
  }
  things_[l->id] = Thing{a.agent, a.slot, l->pid, clock_->Now(), false};
  more = pool_->LaunchSucceeded(a.slot, l->id);
}

void PoolManager::Publish() {
  int target = pool_ ? pool_->target() : unmanaged_target_;
  std::vector<PoolSlotStatus> slots;
  if (pool_) slots = pool_->Snapshot();
  const uint64_t deaths = pool_ ? pool_->deaths() : 0;
  std::map<std::string, int64_t> pids;
  for (const auto& [id, t] : things_) {
    if (!t.declared_dead && t.slot > 0) pids[t.agent] = t.pid;
  }
  absl::MutexLock l(&mu_);
  published_pids_ = std::move(pids);
  published_target_ = target;
  published_slots_ = std::move(slots);
  published_launcher_error_ = outage_.error();
  published_deaths_ = deaths;
}

}  // namespace harness
