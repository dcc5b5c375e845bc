// RealClock: monotonic wall-anchored time.
#include "core/clock.h"

#include <time.h>

namespace harness {
namespace {
int64_t MonoNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

RealClock::RealClock() : wall_base_(absl::Now()), mono_base_ns_(MonoNanos()) {}

absl::Time RealClock::Now() const {
  return wall_base_ + absl::Nanoseconds(MonoNanos() - mono_base_ns_);
}

Clock* Clock::Real() {
  static RealClock* clock = new RealClock();
  return clock;
}

}  // namespace harness
