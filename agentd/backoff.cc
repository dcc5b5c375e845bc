// Backoff (see backoff.h).
#include "agentd/backoff.h"

#include <algorithm>

namespace harness::agentd {

Backoff::Backoff(absl::Duration initial, absl::Duration max, double jitter, uint64_t seed)
    : initial_(initial), max_(max), jitter_(jitter), current_(initial), rng_(seed) {}

absl::Duration Backoff::Next() {
  std::uniform_real_distribution<double> factor(1.0 - jitter_, 1.0 + jitter_);
  absl::Duration delay = current_ * factor(rng_);
  current_ = std::min(current_ * 2, max_);
  return delay;
}

}  // namespace harness::agentd
