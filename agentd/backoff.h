// Backoff: the jittered exponential delays agentd waits between attempts to reach the
// controller (Register, the Session stream, Acquire, reports). Pure arithmetic: it computes
// delays and never sleeps; the caller waits, interruptibly.
#pragma once

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace harness::agentd {

class Backoff {
 public:
  // Delays start at `initial`, double after each Next() up to `max`, and each is scaled by a
  // random factor in [1 - jitter, 1 + jitter] so that many agents do not retry in step.
  explicit Backoff(absl::Duration initial = absl::Milliseconds(100),
                   absl::Duration max = absl::Seconds(5), double jitter = 0.25,
                   uint64_t seed = std::random_device{}());

  // The delay to wait before the next attempt.
  absl::Duration Next();
  // Back to `initial`, after a success.
  void Reset() { current_ = initial_; }
  // Lowers (or raises) the longest delay from now on.
  void set_max(absl::Duration max) {
    max_ = max;
    if (current_ > max_) current_ = max_;
  }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  double jitter_;
  absl::Duration current_;
  std::mt19937_64 rng_;
};

}  // namespace harness::agentd
