// MinuteSeries: per-minute figures of the last hour for the dashboard's chart (throughput, item
// durations, queue depth), kept in a bounded ring: one slot per minute, a slot reused when its
// minute comes round again. Updating is a short lock and a few additions (it runs on the
// store's committer thread, from Controller::OnLeaseEnded); no I/O, no allocation after
// construction. Times are passed in (the caller's Clock), so tests need no clock at all.
// Not durable: a restarted controller starts an empty chart.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace harness {

struct MinutePoint {
  int64_t minute = 0;          // unix time / 60
  int64_t done = 0;            // items that ended done in this minute
  int64_t failed = 0;          // items that ended failed (no attempts left)
  int64_t durations = 0;       // run times recorded (the attempts that ended an item)
  double duration_sum_s = 0;   // their sum
  double duration_max_s = 0;   // and the longest
  int64_t pending = -1;        // queue depth at the minute's last sample; -1: none taken
  int64_t leased = -1;
};

class MinuteSeries {
 public:
  explicit MinuteSeries(int minutes = 60);

  // An item ended at `at` (done or failed) after an attempt of `run_time`.
  void RecordItemEnd(absl::Time at, bool done, absl::Duration run_time);
  // The queue's depth at `at`; the last sample of a minute is the one kept.
  void RecordDepth(absl::Time at, int64_t pending, int64_t leased);
  // `minutes` points, oldest first, the last one `now`'s minute; minutes with no record are
  // empty points (depth -1).
  std::vector<MinutePoint> Last(absl::Time now) const;
  int minutes() const { return static_cast<int>(size_); }

 private:
  static int64_t MinuteOf(absl::Time t) { return absl::ToUnixSeconds(t) / 60; }
  size_t IndexOf(int64_t minute) const;
  // The slot of `minute`, cleared first if it still holds an older minute.
  MinutePoint& Slot(int64_t minute) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t size_;
  mutable absl::Mutex mu_;
  std::vector<MinutePoint> ring_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness
