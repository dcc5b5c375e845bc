// Histogram: a fixed-bucket histogram of seconds for the Prometheus /metrics page (fsync latency,
// item durations, RPC latencies). Observe() is lock-free (a few relaxed atomic adds), so it may
// sit on the committer thread or an RPC path; a scrape reads a snapshot that may be a few
// observations apart between buckets, which Prometheus tolerates. Not a sliding window: the
// counts only grow (core/metrics.h has the windowed figures of `harnessctl status`).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace harness {

struct HistogramSnapshot {
  std::vector<double> bounds;    // upper bounds in seconds, ascending (+Inf not included)
  std::vector<uint64_t> counts;  // cumulative count per bound, then one for +Inf (== count)
  double sum = 0;                // seconds
  uint64_t count = 0;
};

class Histogram {
 public:
  static constexpr size_t kMaxBuckets = 24;
  // Upper bounds in seconds, ascending, at most kMaxBuckets of them.
  explicit Histogram(std::vector<double> bounds);

  // 0.5 ms .. 10 s: disk syncs and RPCs.
  static std::vector<double> LatencyBounds();
  // 1 s .. 24 h: an agent's run of one item.
  static std::vector<double> RunTimeBounds();

  void Observe(absl::Duration d);
  HistogramSnapshot Get() const;

 private:
  const std::vector<double> bounds_;
  std::array<std::atomic<uint64_t>, kMaxBuckets + 1> buckets_{};  // not cumulative; last: +Inf
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace harness
