// Fixed-bucket histogram (see histogram.h).
#include "core/histogram.h"

#include <algorithm>
#include <cassert>

namespace harness {

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  assert(bounds_.size() <= kMaxBuckets);
  assert(std::is_sorted(bounds_.begin(), bounds_.end()));
}

std::vector<double> Histogram::LatencyBounds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> Histogram::RunTimeBounds() {
  return {1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400};
}

void Histogram::Observe(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const double s = absl::ToDoubleSeconds(d);
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), s) - bounds_.begin();  // s <= bound
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(absl::ToInt64Nanoseconds(d)), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::Get() const {
  HistogramSnapshot out;
  out.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out.counts.push_back(running);
  }
  out.count = running;
  out.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return out;
}

}  // namespace harness
