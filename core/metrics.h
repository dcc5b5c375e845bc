// Metrics: throughput, item time and success rate over a sliding window (default one hour),
// for `harnessctl status`. Thread-safe; time from the injected Clock.
#pragma once

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"

namespace harness {

struct MetricsSnapshot {
  double items_per_hour =
      0;                    // items done per hour over the window (or over the uptime, if shorter)
  double avg_item_s = 0;    // mean run time of the attempts that finished an item
  double success_rate = 1;  // done / (done + failed + timed out + expired attempts); 1 if none
};

class Metrics {
 public:
  Metrics(Clock* clock, absl::Duration window = absl::Hours(1));
  // An attempt ended: `done` if it finished its item; `run_time` from grant to end.
  void RecordAttempt(bool done, absl::Duration run_time);
  MetricsSnapshot Get() const;

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
};

}  // namespace harness
