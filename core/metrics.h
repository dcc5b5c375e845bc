// Metrics: throughput, item time and success rate over a sliding window (default one hour),
// for `harnessctl status`; and the running totals of /metrics (attempts by outcome, expired
// leases, a histogram of item run times), which only grow. Thread-safe; time from the injected
// Clock. The totals are atomics: reading them takes no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/histogram.h"
#include "core/records.pb.h"

namespace harness {

struct MetricsSnapshot {
  double items_per_hour =
      0;                    // items done per hour over the window (or over the uptime, if shorter)
  double avg_item_s = 0;    // mean run time of the attempts that finished an item
  double success_rate = 1;  // done / (done + failed + timed out + expired attempts); 1 if none
};

// Totals since the controller started, for /metrics.
struct MetricsTotals {
  // Attempts ended, indexed by store::Outcome (RUNNING and UNSPECIFIED stay 0).
  std::array<uint64_t, store::Outcome_ARRAYSIZE> attempts_by_outcome{};
  uint64_t leases_expired = 0;    // leases that ran out (not renewed within the lease TTL)
  HistogramSnapshot item_seconds;  // run time (grant to end) of the attempts that were done
};

class Metrics {
 public:
  Metrics(Clock* clock, absl::Duration window = absl::Hours(1));
  // An attempt ended with `outcome`; `run_time` from grant to end. `lease_expired`: it ended
  // because its lease ran out.
  void RecordAttempt(store::Outcome outcome, bool lease_expired, absl::Duration run_time);
  MetricsSnapshot Get() const;
  MetricsTotals Totals() const;

 private:
  struct Event {
    absl::Time at;
    bool done;
    absl::Duration run_time;
  };
  void Prune(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration window_;
  const absl::Time started_;
  mutable absl::Mutex mu_;
  mutable std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  std::array<std::atomic<uint64_t>, store::Outcome_ARRAYSIZE> by_outcome_{};
  std::atomic<uint64_t> leases_expired_{0};
  Histogram item_seconds_{Histogram::RunTimeBounds()};
};

}  // namespace harness
