// Sliding-window metrics (see metrics.h).
#include "core/metrics.h"

#include <algorithm>

namespace harness {

Metrics::Metrics(Clock* clock, absl::Duration window)
    : clock_(clock), window_(window), started_(clock->Now()) {}

void Metrics::RecordAttempt(store::Outcome outcome, bool lease_expired,
                            absl::Duration run_time) {
  const bool done = outcome == store::OUTCOME_DONE;
  if (outcome >= 0 && outcome < store::Outcome_ARRAYSIZE) {
    by_outcome_[outcome].fetch_add(1, std::memory_order_relaxed);
  }
  if (lease_expired) leases_expired_.fetch_add(1, std::memory_order_relaxed);
  if (done) item_seconds_.Observe(run_time);
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  events_.push_back({now, done, run_time});
  Prune(now);
}

MetricsTotals Metrics::Totals() const {
  MetricsTotals t;
  for (size_t i = 0; i < by_outcome_.size(); ++i) {
    t.attempts_by_outcome[i] = by_outcome_[i].load(std::memory_order_relaxed);
  }
  t.leases_expired = leases_expired_.load(std::memory_order_relaxed);
  t.item_seconds = item_seconds_.Get();
  return t;
}

void Metrics::Prune(absl::Time now) const {
  while (!events_.empty() && events_.front().at < now - window_) events_.pop_front();
}

MetricsSnapshot Metrics::Get() const {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  Prune(now);
  MetricsSnapshot m;
  int64_t done = 0, total = 0;
  absl::Duration run = absl::ZeroDuration();
  for (const Event& e : events_) {
    ++total;
    if (e.done) {
      ++done;
      run += e.run_time;
    }
  }
  absl::Duration span = std::min(window_, now - started_);
  if (span > absl::ZeroDuration()) m.items_per_hour = done * (absl::Hours(1) / span);
  m.avg_item_s = done > 0 ? absl::ToDoubleSeconds(run) / static_cast<double>(done) : 0;
  m.success_rate = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  return m;
}

}  // namespace harness
