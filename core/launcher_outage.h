// LauncherOutage: the pool's record of a launcher that cannot act because what it acts through
// is not there (the docker daemon is down or refuses: UNAVAILABLE, DEADLINE_EXCEEDED). That is
// no agent's death, so the starts made meanwhile are held here instead of being answered to
// the Pool as failed launches (which would burn the slots' failure threshold): the slots stay
// `starting`, the error shows in `status`, and the launcher is tried again with exponential
// backoff. It decides nothing else and does no I/O: the pool manager probes the launcher, and
// when it answers adopts what runs and starts the held slots. Not thread-safe (the manager's
// thread only). No gRPC.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/pool.h"

namespace harness {

class LauncherOutage {
 public:
  // Retries start `min_backoff` after the first failure and double up to `max_backoff`.
  LauncherOutage(absl::Duration min_backoff, absl::Duration max_backoff);

  // Whether a launcher's error says it cannot reach what it acts through (an outage), rather
  // than that this start failed (a bad image, an agent that cannot run: a death of the slot).
  static bool IsOutage(const absl::Status& status);

  bool active() const { return !error_.empty(); }
  // Why the launcher cannot act; "" when it can.
  const std::string& error() const { return error_; }
  // When to probe the launcher again (InfiniteFuture when not active).
  absl::Time next_try() const { return active() ? next_try_ : absl::InfiniteFuture(); }

  // The launcher failed with `error` (not empty) at `now`: the next try comes after the current
  // backoff, which then doubles (up to the maximum). True when the error is new or changed
  // (worth a log line), false when it repeats.
  bool Failed(const std::string& error, absl::Time now);
  // The launcher answers again: no error, the backoff back to its minimum. The held starts
  // stay held until taken.
  void Recovered();

  // A Start made while the launcher cannot act (one per slot; a later one replaces it).
  void Hold(const PoolAction& start);
  bool IsHeld(int slot) const { return held_.count(slot) != 0; }
  // Forgets a held start (its slot left the pool, or it was found running after all).
  void Drop(int slot) { held_.erase(slot); }
  std::vector<int> HeldSlots() const;
  // The held starts, by slot, and forgets them.
  std::vector<PoolAction> TakeHeld();

 private:
  const absl::Duration min_backoff_;
  const absl::Duration max_backoff_;
  absl::Duration backoff_;
  std::string error_;
  absl::Time next_try_ = absl::InfiniteFuture();
  std::map<int, PoolAction> held_;  // by slot
};

}  // namespace harness
