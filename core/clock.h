// Clock: the one source of time for every timeout, lease and heartbeat in harness.
// Production code uses RealClock (monotonic, never goes back); tests inject FakeClock and move
// time by hand, so lease and health state machines are tested without sleeping.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace harness {

class Clock {
 public:
  virtual ~Clock() = default;
  // Current time. Successive calls never return a smaller value.
  virtual absl::Time Now() const = 0;
  // The process-wide real clock.
  static Clock* Real();
};

// Wall-clock time at construction advanced by CLOCK_MONOTONIC, so a wall-clock step (NTP)
// never shortens or lengthens a lease.
class RealClock : public Clock {
 public:
  RealClock();
  absl::Time Now() const override;

 private:
  absl::Time wall_base_;
  int64_t mono_base_ns_;
};

// A clock that only moves when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    if (d > absl::ZeroDuration()) now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness
