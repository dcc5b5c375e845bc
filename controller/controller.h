// Controller: everything the controller process runs except the gRPC plumbing: the durable
// queue, the agent registry, the long-poll dispatcher, metrics, item logs, and the ticker that
// expires leases and idle long polls. The services in service_*.cc translate RPCs into calls
// on this class.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/acquire_dispatcher.h"
#include "controller/pool_manager.h"
#include "controller/repo_results.h"
#include "controller/result_lander.h"
#include "controller/work_sources.h"
#include "controller/rpc_metrics.h"
#include "core/agent_registry.h"
#include "core/clock.h"
#include "core/event_feed.h"
#include "core/item_logs.h"
#include "core/live_logs.h"
#include "core/limits.h"
#include "core/lease_events.h"
#include "core/metrics.h"
#include "core/minute_series.h"
#include "core/state_events.h"
#include "core/work_queue.h"
#include "harness/v1/types.pb.h"

namespace harness {

// What every lease carries for agentd to enforce on the item's setup and command
// (agent.stall_timeout, resource_limits.*). 0 limits mean none.
struct CommandLimits {
  absl::Duration stall_timeout = absl::Seconds(900);  // infinite: no stall detection
  int64_t max_memory_mb = 0;
  int64_t max_cpu_seconds = 0;
  int nice = 0;
};

struct ControllerOptions {
  WorkQueueOptions queue;
  absl::Duration heartbeat_interval = absl::Seconds(5);
  absl::Duration heartbeat_timeout = absl::Seconds(30);
  std::vector<std::string> agent_command;  // sent with each lease
  std::vector<std::string> setup;          // sent with each lease
  // The managed pool: launcher, target, restart rules. Its state_dir is the queue's.
  PoolManagerOptions pool;
  CommandLimits command_limits;            // sent with each lease
  // The repository agents work on; "" or not a repository: no git (results are not landed).
  std::string repo_path;
  std::string base_branch;
  bool repo_required = false;  // a bad repo_path is an error (it was given explicitly)
  uint64_t max_pack_bytes = 1ull << 30;  // repo.max_pack_mb (also queue.limits.max_pack_bytes)
  // The gRPC server's largest received message (limits.max_message_mb).
  int max_message_bytes = 64 << 20;
  // Dead agents stay listed this long before they are forgotten.
  absl::Duration keep_dead_agents = absl::Minutes(10);
  // queue.sources and queue.on_done (work_sources.h).
  WorkSourcesOptions sources;
};

class Controller : public LeaseListener {
 public:
  static absl::StatusOr<std::unique_ptr<Controller>> Open(ControllerOptions options, Clock* clock);
  ~Controller() override;

  // Starts the ticker thread, the pool manager and the work sources. `address` is what status reports and what
  // launched agents dial.
  void Start(const std::string& address);
  // Stops granting (parked Acquires get "no work"), the ticker and the work sources; the queue
  // stays usable for in-flight completions until destruction.
  void StopGranting();

  WorkQueue& queue() { return *queue_; }
  AgentRegistry& agents() { return agents_; }
  AcquireDispatcher& dispatcher() { return *dispatcher_; }
  Metrics& metrics() { return metrics_; }
  const Metrics& metrics() const { return metrics_; }
  // Calls per gRPC method and code, and their durations (filled by the server's interceptor).
  RpcMetrics& rpc_metrics() { return rpc_metrics_; }
  const ItemLogs& logs() const { return logs_; }
  // The last hour per minute (items ended, their run times, queue depth) for the dashboard.
  const MinuteSeries& series() const { return series_; }
  // The output of running (and recently ended) attempts as agents stream it (harnessctl logs).
  LiveLogs& live_logs() { return live_logs_; }
  // Recent item and agent state changes (harnessctl events, /api/v1/events).
  EventFeed& events() { return events_; }
  // Open agent sessions per peer host (limits.max_sessions_per_peer).
  PeerSessions& sessions() { return sessions_; }
  // The repository, or nullptr when the controller runs without git.
  RepoResults* repo() { return repo_.get(); }
  const RepoResults* repo_const() const { return repo_.get(); }
  // Where result refs move and report answers wait for them (never the committer thread).
  ResultLander& lander() { return *lander_; }
  const ControllerOptions& options() const { return options_; }
  Clock* clock() const { return clock_; }

  // The managed pool (harnessctl scale, drain and stop of launched agents).
  PoolManager& pool() { return *pool_; }
  const PoolManager& pool() const { return *pool_; }

  v1::StatusSnapshot Status() const;
  std::vector<v1::AgentInfo> AgentInfos() const;
  v1::AgentInfo ToApiAgent(const AgentInfo& a, const std::string& item) const;

  // LeaseListener: every side effect of a lease's end, whatever ended it (on the committer
  // thread: nothing here blocks). Metrics; LeaseLost or CancelItem to an agent that did not
  // end it itself; the result's ref (or a failed attempt's work) to the lander.
  void OnLeaseEnded(const LeaseEnded& ended) override;
  // The event feed and the live logs hear of submits, grants, retries and cancels (same thread).
  void OnItemChanged(const ItemChanged& changed) override;

  // Wakes the ticker (a new deadline may be earlier than the one it sleeps for).
  void Wake();

 private:
  Controller(ControllerOptions options, Clock* clock);
  absl::Status OpenRepo();     // before the queue: validates the repository
  absl::Status RecoverRepo();  // after it: cleanup, and result branches a crash left behind
  void TickerLoop();
  void Tick();

  const ControllerOptions options_;
  Clock* const clock_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<RepoResults> repo_;
  std::unique_ptr<ResultLander> lander_;
  AgentRegistry agents_;
  std::unique_ptr<AcquireDispatcher> dispatcher_;
  Metrics metrics_;
  RpcMetrics rpc_metrics_;
  MinuteSeries series_;
  absl::Time last_depth_sample_ = absl::InfinitePast();  // the ticker thread's only
  ItemLogs logs_;
  LiveLogs live_logs_;
  EventFeed events_;
  StateWatch state_watch_;  // the ticker's only
  absl::Time last_look_ = absl::InfinitePast();  // the ticker's only
  PeerSessions sessions_;
  std::unique_ptr<PoolManager> pool_;
  std::unique_ptr<WorkSources> sources_;  // set right after the queue opens
  absl::Time started_;
  // Set by Start(), after the server serves; Status() reads it on RPC threads.
  mutable absl::Mutex address_mu_;
  std::string address_ ABSL_GUARDED_BY(address_mu_);

  absl::Mutex ticker_mu_;
  bool ticker_stop_ ABSL_GUARDED_BY(ticker_mu_) = false;
  bool ticker_wake_ ABSL_GUARDED_BY(ticker_mu_) = false;
  std::thread ticker_;
};

}  // namespace harness
