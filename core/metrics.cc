// Sliding-window metrics (see metrics.h).
#include "core/metrics.h"

#include <algorithm>

namespace harness {

Metrics::Metrics(Clock* clock, absl::Duration window)
    : clock_(clock), window_(window), started_(clock->Now()) {}

void Metrics::RecordAttempt(bool done, absl::Duration run_time) {
  absl::MutexLock l(&mu_);
  const absl::Time now = clock_->Now();
  events_.push_back({now, done, run_time});
  Prune(now);
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
