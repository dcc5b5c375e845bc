// The dashboard's per-minute ring (see minute_series.h).
#include "core/minute_series.h"

#include <algorithm>

namespace harness {

MinuteSeries::MinuteSeries(int minutes)
    : size_(static_cast<size_t>(std::max(minutes, 1))), ring_(size_) {
  for (MinutePoint& p : ring_) p.minute = -1;
}

size_t MinuteSeries::IndexOf(int64_t minute) const {
  const int64_t n = static_cast<int64_t>(size_);
  return static_cast<size_t>(((minute % n) + n) % n);
}

MinutePoint& MinuteSeries::Slot(int64_t minute) {
  MinutePoint& p = ring_[IndexOf(minute)];
  if (p.minute != minute) {
    p = MinutePoint{};
    p.minute = minute;
  }
  return p;
}

void MinuteSeries::RecordItemEnd(absl::Time at, bool done, absl::Duration run_time) {
  const double s = std::max(0.0, absl::ToDoubleSeconds(run_time));
  absl::MutexLock l(&mu_);
  MinutePoint& p = Slot(MinuteOf(at));
  (done ? p.done : p.failed)++;
  p.durations++;
  p.duration_sum_s += s;
  p.duration_max_s = std::max(p.duration_max_s, s);
}

void MinuteSeries::RecordDepth(absl::Time at, int64_t pending, int64_t leased) {
  absl::MutexLock l(&mu_);
  MinutePoint& p = Slot(MinuteOf(at));
  p.pending = pending;
  p.leased = leased;
}

std::vector<MinutePoint> MinuteSeries::Last(absl::Time now) const {
  const int64_t last = MinuteOf(now);
  std::vector<MinutePoint> out(size_);
  absl::MutexLock l(&mu_);
  for (size_t k = 0; k < size_; ++k) {
    const int64_t m = last - static_cast<int64_t>(size_ - 1 - k);
    const MinutePoint& p = ring_[IndexOf(m)];
    if (p.minute == m) {
      out[k] = p;
    } else {
      out[k].minute = m;
    }
  }
  return out;
}

}  // namespace harness
