// The /metrics page (see metrics_page.h).
#include "http/metrics_page.h"

#include <map>

#include "client/render.h"
#include "core/item_table.h"
#include "http/prom_text.h"

namespace harness::http {
namespace {

void QueueMetrics(const v1::StatusSnapshot& s, PromWriter& w) {
  w.Family("harness_queue_items", "gauge", "Items in the queue by state.");
  const v1::QueueCounts& q = s.queue();
  for (const auto& [state, n] : {std::pair{"pending", q.pending()}, {"leased", q.leased()},
                                 {"done", q.done()}, {"failed", q.failed()},
                                 {"parked", q.parked()}, {"cancelled", q.cancelled()}}) {
    w.Sample("harness_queue_items", {{"state", state}}, static_cast<uint64_t>(n));
  }
}

void LeaseMetrics(Controller& c, const MetricsTotals& t, PromWriter& w) {
  w.Family("harness_leases_granted_total", "counter", "Leases granted to agents.");
  w.Sample("harness_leases_granted_total", {}, c.queue().leases_granted());
  w.Family("harness_leases_expired_total", "counter",
           "Leases that ran out because their agent did not renew them in time.");
  w.Sample("harness_leases_expired_total", {}, t.leases_expired);
  w.Family("harness_leases_fenced_total", "counter",
           "Calls naming a lease that was no longer live (a late result, renewal or upload), "
           "refused.");
  w.Sample("harness_leases_fenced_total", {}, c.queue().leases_fenced());
}

void AttemptMetrics(const MetricsTotals& t, PromWriter& w) {
  w.Family("harness_attempts_total", "counter", "Attempts ended, by outcome.");
  for (int o = store::OUTCOME_DONE; o < store::Outcome_ARRAYSIZE; ++o) {
    w.Sample("harness_attempts_total", {{"outcome", OutcomeName(static_cast<store::Outcome>(o))}},
             t.attempts_by_outcome[static_cast<size_t>(o)]);
  }
  w.Family("harness_item_duration_seconds", "histogram",
           "Run time (lease grant to report) of the attempts that finished their item.");
  w.Histogram("harness_item_duration_seconds", {}, t.item_seconds);
}

void AgentMetrics(const v1::StatusSnapshot& s, PromWriter& w) {
  std::map<std::string, uint64_t> by_health = {{"healthy", 0}, {"suspect", 0}, {"dead", 0}};
  for (const v1::AgentInfo& a : s.agents()) ++by_health[client::HealthName(a.health())];
  w.Family("harness_agents", "gauge", "Agents known to the controller, by health.");
  for (const auto& [health, n] : by_health) w.Sample("harness_agents", {{"health", health}}, n);
  w.Family("harness_agent_heartbeat_age_seconds", "gauge",
           "Seconds since each agent was last heard from.");
  for (const v1::AgentInfo& a : s.agents()) {
    w.Sample("harness_agent_heartbeat_age_seconds", {{"agent", a.id()}},
             static_cast<double>(a.last_heartbeat_ms_ago()) / 1000.0);
  }
}

void PoolMetrics(Controller& c, const v1::StatusSnapshot& s, PromWriter& w) {
  const v1::PoolInfo& p = s.pool();
  w.Family("harness_pool_target", "gauge", "Agents the managed pool should run.");
  w.Sample("harness_pool_target", {}, static_cast<uint64_t>(p.target()));
  std::map<std::string, uint64_t> by_state = {{"starting", 0}, {"running", 0}, {"restarting", 0},
                                              {"draining", 0}, {"stopped", 0},  {"failed", 0}};
  for (const v1::PoolSlot& slot : p.slots()) ++by_state[slot.state()];
  w.Family("harness_pool_slots", "gauge",
           "Slots of the managed pool by state (failed: stopped restarting after too many "
           "deaths).");
  for (const auto& [state, n] : by_state) w.Sample("harness_pool_slots", {{"state", state}}, n);
  w.Family("harness_pool_agent_deaths_total", "counter",
           "Deaths of launched agents (each is followed by a restart or a failed slot).");
  w.Sample("harness_pool_agent_deaths_total", {}, c.pool().deaths());
}

void StoreMetrics(Controller& c, const v1::StatusSnapshot& s, PromWriter& w) {
  w.Family("harness_store_commit_rounds_total", "counter",
           "Commit rounds of the state dir (each makes a group of changes durable).");
  w.Sample("harness_store_commit_rounds_total", {}, c.queue().commit_rounds());
  w.Family("harness_store_sync_duration_seconds", "histogram",
           "Duration of each commit round's syncs (journal fdatasync and lease folder fsyncs).");
  w.Histogram("harness_store_sync_duration_seconds", {}, c.queue().sync_latency());
  w.Family("harness_store_round_duration_seconds", "histogram",
           "Duration of each whole commit round: the journal write, the syncs and the answers to "
           "the round's callers.");
  w.Histogram("harness_store_round_duration_seconds", {}, c.queue().round_latency());
  w.Family("harness_store_healthy", "gauge",
           "1 while the state dir takes writes, 0 while the store refuses changes.");
  w.Sample("harness_store_healthy", {}, uint64_t{s.controller().store_error().empty() ? 1u : 0u});
}

void RpcMetricsFamilies(Controller& c, PromWriter& w) {
  const std::vector<RpcMetrics::Method> methods = c.rpc_metrics().Get();
  w.Family("harness_rpc_calls_total", "counter", "gRPC calls by method and status code.");
  for (const RpcMetrics::Method& m : methods) {
    for (int code = 0; code < RpcMetrics::kCodes; ++code) {
      const uint64_t n = m.calls_by_code[static_cast<size_t>(code)];
      if (n == 0 && code != 0) continue;  // every method shows OK; other codes once seen
      w.Sample("harness_rpc_calls_total", {{"method", m.name}, {"code", RpcMetrics::CodeName(code)}},
               n);
    }
  }
  w.Family("harness_rpc_duration_seconds", "histogram",
           "gRPC call durations by method (a stream: its whole life).");
  for (const RpcMetrics::Method& m : methods) {
    if (m.duration.count == 0) continue;
    w.Histogram("harness_rpc_duration_seconds", {{"method", m.name}}, m.duration);
  }
}

}  // namespace

std::string RenderMetricsPage(Controller& controller) {
  const v1::StatusSnapshot s = controller.Status();
  const MetricsTotals totals = controller.metrics().Totals();
  PromWriter w;
  w.Family("harness_build_info", "gauge", "Always 1; the controller's version as a label.");
  w.Sample("harness_build_info", {{"version", s.controller().version()}}, uint64_t{1});
  w.Family("harness_controller_uptime_seconds", "gauge", "Seconds since the controller started.");
  w.Sample("harness_controller_uptime_seconds", {},
           static_cast<uint64_t>(s.controller().uptime_s()));
  QueueMetrics(s, w);
  LeaseMetrics(controller, totals, w);
  AttemptMetrics(totals, w);
  AgentMetrics(s, w);
  PoolMetrics(controller, s, w);
  StoreMetrics(controller, s, w);
  RpcMetricsFamilies(controller, w);
  return w.text();
}

}  // namespace harness::http
