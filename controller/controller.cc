// The controller's state and ticker (see controller.h).
#include "controller/controller.h"

#include <unistd.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "config/flags.h"
#include "controller/convert.h"
#include "core/log.h"
#include "git/agent_worktree.h"
#include "git/git_util.h"
#include "git/pack_receiver.h"
#include "core/thread_name.h"

namespace harness {

Controller::Controller(ControllerOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      agents_(clock, options_.heartbeat_interval, options_.heartbeat_timeout),
      metrics_(clock),
      logs_(StatePaths(options_.queue.state_dir)),
      live_logs_(options_.queue.limits.max_log_bytes_per_attempt),
      sessions_(options_.queue.limits.max_sessions_per_peer),
      started_(clock->Now()) {}

absl::StatusOr<std::unique_ptr<Controller>> Controller::Open(ControllerOptions options,
                                                             Clock* clock) {
  options.queue.limits.max_pack_bytes = options.max_pack_bytes;  // one value, two readers
  auto c = std::unique_ptr<Controller>(new Controller(std::move(options), clock));
  // The repository first: a bad one is refused before the state dir is touched.
  if (absl::Status s = c->OpenRepo(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<WorkQueue>> q = WorkQueue::Open(c->options_.queue, clock);
  if (!q.ok()) return q.status();
  c->queue_ = std::move(*q);
  c->sources_ = std::make_unique<WorkSources>(c->options_.sources, c->queue_.get());
  if (absl::Status s = c->RecoverRepo(); !s.ok()) return s;
  c->lander_ = std::make_unique<ResultLander>(c->repo_.get());
  c->queue_->SetLeaseListener(c.get());
  AcquireDispatcher::BaseProvider base;
  if (c->repo_) base = [r = c->repo_.get()] { return r->BaseCommit(); };
  c->dispatcher_ =
      std::make_unique<AcquireDispatcher>(c->queue_.get(), &c->agents_, clock, std::move(base));
  PoolManagerOptions po = c->options_.pool;
  po.state_dir = c->options_.queue.state_dir;
  po.heartbeat_timeout = c->options_.heartbeat_timeout;
  // Launched processes are on this host: they work in linked worktrees of the repository
  // itself rather than fetching the base over gRPC. Containers do not see the host's
  // repository: they fetch the base and upload their results over gRPC. (main.cc made the
  // path absolute: an agent runs in its own folder under the state dir.)
  if (c->repo_ && po.launcher == "process" &&
      std::find(po.agent_args.begin(), po.agent_args.end(), "--repo") == po.agent_args.end()) {
    po.agent_args.insert(po.agent_args.end(), {"--repo", c->repo_->path()});
  }
  absl::StatusOr<std::unique_ptr<PoolManager>> pool =
      PoolManager::Create(std::move(po), c->queue_.get(), &c->agents_, clock);
  if (!pool.ok()) return pool.status();
  c->pool_ = std::move(*pool);
  Controller* self = c.get();
  c->queue_->SetOnPending([self] { self->dispatcher_->OnPending(); });
  const RecoveryStats& r = c->queue_->recovery();
  LogInfo(absl::StrCat("state dir ", c->options_.queue.state_dir, ": ", r.items, " items, ",
                       r.journal_records, " journal records replayed, ", r.leases_kept,
                       " leases kept for one TTL, ", r.grants_rolled_back, " grants handed back, ",
                       r.claims_removed, " stale claims removed",
                       r.repairs.empty() ? ""
                                         : absl::StrCat("; ", r.repairs.size(),
                                                        " repairs (harnessctl status lists them)")));
  return c;
}

absl::Status Controller::OpenRepo() {
  if (options_.repo_path.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<RepoResults>> repo =
      RepoResults::Open(options_.repo_path, options_.base_branch, options_.max_pack_bytes);
  if (!repo.ok()) {
    if (options_.repo_required || absl::IsNotFound(repo.status())) {
      return absl::InvalidArgumentError(repo.status().message());
    }
    LogWarning(
        absl::StrCat("no git repository at ", options_.repo_path,
                     ": agents get a plain work dir and results are not landed on branches (",
                     repo.status().message(), ")"));
    return absl::OkStatus();
  }
  repo_ = std::move(*repo);
  return absl::OkStatus();
}

absl::Status Controller::RecoverRepo() {
  if (!repo_) return absl::OkStatus();
  if (absl::StatusOr<git::Repository> handle = git::OpenRepository(repo_->path()); handle.ok()) {
    if (absl::StatusOr<int> n = git::RemoveAbandonedIncomingPacks(handle->get());
        n.ok() && *n > 0) {
      LogInfo(absl::StrCat("removed ", *n, " unfinished uploads left by a crash"));
    }
  }
  if (absl::StatusOr<int> pruned = git::PruneDeadWorktrees(repo_->path());
      pruned.ok() && *pruned > 0) {
    LogInfo(absl::StrCat("pruned ", *pruned, " worktrees of agents that are gone"));
  }
  absl::StatusOr<int> landed = repo_->LandDone(*queue_);
  if (!landed.ok()) return landed.status();
  absl::StatusOr<std::string> base = repo_->BaseCommit();
  LogInfo(absl::StrCat("repository ", repo_->path(), ": base ", repo_->base_ref(), " at ",
                       base.ok() ? *base : std::string(base.status().message())));
  return absl::OkStatus();
}

Controller::~Controller() {
  pool_.reset();  // its thread ends the leases of agents it sees die: before the queue goes
  if (dispatcher_) StopGranting();
  if (queue_) {
    queue_->SetOnPending(nullptr);
    queue_->SetLeaseListener(nullptr);
  }
}

void Controller::Start(const std::string& address) {
  {
    absl::MutexLock l(&address_mu_);
    address_ = address;
  }
  ticker_ = std::thread([this] { TickerLoop(); });
  pool_->Start(address);
  sources_->Start();
}

void Controller::StopGranting() {
  events_.Close();  // followers of the feed finish
  if (sources_) sources_->Stop();
  dispatcher_->Shutdown();
  {
    absl::MutexLock l(&ticker_mu_);
    ticker_stop_ = true;
  }
  if (ticker_.joinable()) ticker_.join();
}

void Controller::Wake() {
  absl::MutexLock l(&ticker_mu_);
  ticker_wake_ = true;
}

void Controller::TickerLoop() {
  NameThisThread("ticker");
  for (;;) {
    Tick();
    absl::Time next = std::min(queue_->NextExpiry(), dispatcher_->ExpireWaiters());
    // Health and watchers are judged at read time; a coarse tick bounds every other delay.
    absl::Duration wait =
        std::clamp(next - clock_->Now(), absl::Milliseconds(1), absl::Milliseconds(100));
    absl::MutexLock l(&ticker_mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(ticker_mu_) {
      return ticker_stop_ || ticker_wake_;
    };
    ticker_mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
    if (ticker_stop_) return;
    ticker_wake_ = false;
  }
}

void Controller::Tick() {
  if (queue_->NextExpiry() <= clock_->Now()) {
    // Side effects (LeaseLost, metrics, waking acquirers) follow from the queue's LeaseEnded.
    absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
    if (!expired.ok()) {
      LogError(absl::StrCat("expiring leases failed: ", expired.status().message()));
    }
  }
  // Agents' and pool slots' changes for the event feed (health is judged when read).
  if (clock_->Now() - last_look_ >= absl::Milliseconds(200)) {
    last_look_ = clock_->Now();
    std::vector<AgentLifeEvent> life = agents_.TakeLifeEvents();
    for (Event& e : state_watch_.Look(life, agents_.List(), pool_->Slots())) {
      events_.Publish(std::move(e));
    }
  }
  agents_.TickSinks();  // e.g. a Session stream's read held back too long (read_hold.h)
  for (const AgentChange& c : agents_.TakeChanges()) {
    const bool bad = std::string_view(c.what) == "suspect" || std::string_view(c.what) == "dead";
    const std::string message = absl::StrCat("agent ", c.what);
    if (c.reason.empty()) {
      Log(bad ? LogLevel::kWarning : LogLevel::kInfo, message, {{"agent", c.agent}});
    } else {
      Log(bad ? LogLevel::kWarning : LogLevel::kInfo, message,
          {{"agent", c.agent}, {"reason", c.reason}});
    }
  }
  static thread_local absl::Time last_forget = absl::InfinitePast();
  if (clock_->Now() - last_forget > absl::Seconds(5)) {
    last_forget = clock_->Now();
    agents_.ForgetDead(options_.keep_dead_agents);
  }
  // The chart's queue depth: a sample every few seconds, the minute's last one is kept.
  if (clock_->Now() - last_depth_sample_ >= absl::Seconds(5)) {
    last_depth_sample_ = clock_->Now();
    const QueueCounts c = queue_->Counts();
    series_.RecordDepth(last_depth_sample_, c.pending, c.leased);
  }
}

void Controller::OnItemChanged(const ItemChanged& c) {
  if (c.kind == ItemChanged::kLeased) {
    live_logs_.Begin(c.item_id, c.lease.attempt, c.lease.token, c.lease.agent);
  }
  events_.Publish(EventOfItemChanged(c));
}

void Controller::OnLeaseEnded(const LeaseEnded& e) {
  const Lease& l = e.lease;
  live_logs_.End(l.item_id, l.attempt);
  events_.Publish(EventOfLeaseEnded(e));
  metrics_.RecordAttempt(e.outcome, e.by == EndedBy::kExpiry, e.at - l.granted);
  // The chart's failures: items that ended failed, or parked with their attempts used up.
  if (e.item_state == store::ITEM_DONE || e.item_state == store::ITEM_FAILED ||
      e.item_state == store::ITEM_PARKED) {
    series_.RecordItemEnd(e.at, e.item_state == store::ITEM_DONE, e.at - l.granted);
  }
  switch (e.by) {
    case EndedBy::kAgent:
      break;
    case EndedBy::kCancel:
      agents_.Send(l.agent, AgentCommand{AgentCommand::kCancel, l.item_id, l.token, e.reason, {}});
      break;
    case EndedBy::kExpiry:
    case EndedBy::kReconcile:
      // Logged by the queue ("item expired", "item released"), with the reason.
      agents_.Send(l.agent,
                   AgentCommand{AgentCommand::kLeaseLost, l.item_id, l.token, e.reason, {}});
      break;
  }
  if (e.item_state == store::ITEM_DONE && sources_) sources_->ItemDone(l.item_id);
  if (e.commit.empty()) return;
  if (e.outcome == store::OUTCOME_DONE) {
    lander_->Land(l.item_id, e.commit);
  } else {
    lander_->KeepAttempt(l.item_id, l.attempt, e.commit);
  }
}

v1::AgentInfo Controller::ToApiAgent(const AgentInfo& a, const std::string& item) const {
  v1::AgentInfo out;
  out.set_id(a.id);
  AgentState state = a.state;
  // Working is holding a lease: the queue knows that at once, heartbeats only later (agentd
  // sends none for going from idle to working and back).
  if (state == AgentState::kIdle || state == AgentState::kWorking) {
    state = item.empty() ? AgentState::kIdle : AgentState::kWorking;
  }
  if (a.draining && state != AgentState::kWorking && state != AgentState::kStopped) {
    state = AgentState::kDraining;
  }
  if (a.health == Health::kDead) state = AgentState::kStopped;
  out.set_state(ToApi(state));
  out.set_health(ToApi(a.health));
  out.set_item(item);
  out.set_last_heartbeat_ms_ago(absl::ToInt64Milliseconds(clock_->Now() - a.last_seen));
  out.set_pid(a.pid);
  out.set_host(a.host);
  out.set_version(a.version);
  return out;
}

std::vector<v1::AgentInfo> Controller::AgentInfos() const {
  std::map<std::string, const Lease*> lease_of;
  const std::vector<Lease> leases = queue_->Leases();
  for (const Lease& l : leases) lease_of[l.agent] = &l;
  const absl::Time now = clock_->Now();
  // A launched agent's pid is its main process's on this host (a container's agentd reports
  // the pid it has inside its namespace; a swarm task's runs elsewhere: 0).
  const std::map<std::string, int64_t> launched = pool_->LaunchedPids();
  const bool in_containers = pool_->launcher_kind() == "docker" || pool_->launcher_kind() == "swarm";
  std::vector<v1::AgentInfo> out;
  for (const AgentInfo& a : agents_.List()) {
    const Lease* l = lease_of.count(a.id) ? lease_of[a.id] : nullptr;
    out.push_back(ToApiAgent(a, l != nullptr ? l->item_id : std::string()));
    if (l != nullptr) {
      out.back().set_item_elapsed_ms(std::max<int64_t>(0, absl::ToInt64Milliseconds(now - l->granted)));
      if (a.output_token == l->token) out.back().set_last_output_line(a.last_output_line);
    }
    auto it = launched.find(a.id);
    if (in_containers && it != launched.end()) out.back().set_pid(it->second);
  }
  return out;
}

v1::StatusSnapshot Controller::Status() const {
  v1::StatusSnapshot s;
  v1::ControllerInfo* c = s.mutable_controller();
  c->set_pid(::getpid());
  c->set_uptime_s(absl::ToInt64Seconds(clock_->Now() - started_));
  {
    absl::MutexLock l(&address_mu_);
    c->set_address(address_);
  }
  c->set_version(HarnessVersion());
  // What recovery repaired at this start (fixed since); at most kMaxRepairsShown lines.
  constexpr size_t kMaxRepairsShown = 100;
  const std::vector<std::string>& repairs = queue_->recovery().repairs;
  for (size_t i = 0; i < repairs.size() && i < kMaxRepairsShown; ++i) {
    c->add_recovery_repairs(repairs[i]);
  }
  if (repairs.size() > kMaxRepairsShown) {
    c->add_recovery_repairs(absl::StrCat("... and ", repairs.size() - kMaxRepairsShown,
                                         " more repairs (the controller's log at its start)"));
  }
  if (StoreHealth h = queue_->store_health(); !h.status.ok()) {
    c->set_store_error(std::string(h.status.message()));
    c->set_store_failing_since_unix_ms(absl::ToUnixMillis(h.failing_since));
  }
  int active = 0;
  for (v1::AgentInfo& a : AgentInfos()) {
    if (a.health() != v1::HEALTH_DEAD) ++active;
    *s.add_agents() = std::move(a);
  }
  *s.mutable_queue() = ToApi(queue_->Counts());
  v1::PoolInfo* pool = s.mutable_pool();
  pool->set_target(pool_->target());
  pool->set_active(active);
  pool->set_launcher(pool_->launcher_kind());
  pool->set_launcher_error(pool_->launcher_error());
  for (const PoolSlotStatus& slot : pool_->Slots()) {
    v1::PoolSlot* out = pool->add_slots();
    out->set_slot(slot.slot);
    out->set_agent(slot.agent);
    out->set_state(SlotStateName(slot.state));
    out->set_failures(slot.failures);
    out->set_reason(slot.reason);
  }
  MetricsSnapshot m = metrics_.Get();
  s.mutable_metrics()->set_items_per_hour(m.items_per_hour);
  s.mutable_metrics()->set_avg_item_s(m.avg_item_s);
  s.mutable_metrics()->set_success_rate(m.success_rate);
  return s;
}

}  // namespace harness
