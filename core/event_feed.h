// EventFeed: the controller's recent item and agent state changes (harnessctl events,
// /api/v1/events), a bounded ring of events numbered by a sequence. Publishing is a copy into
// the ring under a short lock of its own: no I/O, never the queue's lock, never waits for a
// reader. Readers poll by sequence: a reader that fell more than the ring's capacity behind
// is told how many it skipped instead of holding anything up. Not durable: a restarted
// controller starts at sequence 1 again. No gRPC here.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace harness {

// One state change. `kind` names it ("item_leased", "agent_dead", ...: docs/HTTP.md lists
// them); fields that do not apply are empty or 0.
struct Event {
  uint64_t seq = 0;  // set by Publish: 1, 2, ...
  absl::Time at = absl::InfinitePast();  // set by Publish when left so
  std::string kind;
  std::string item;
  std::string agent;
  uint64_t lease_token = 0;
  int attempt = 0;
  std::string state;    // the item's or agent's state after the change
  std::string outcome;  // an attempt's outcome (lease ends)
  std::string message;  // a reason or detail, for people
};

class EventFeed {
 public:
  static constexpr size_t kDefaultCapacity = 4096;
  explicit EventFeed(size_t capacity = kDefaultCapacity);

  // Numbers the event, keeps it (dropping the oldest beyond capacity) and wakes waiters.
  uint64_t Publish(Event event) ABSL_LOCKS_EXCLUDED(mu_);

  struct Read {
    std::vector<Event> events;  // seq > after, oldest first
    uint64_t skipped = 0;       // events after `after` that are no longer kept
  };
  // At most `max` events after sequence `after` (0: from the oldest kept).
  Read After(uint64_t after, size_t max) const ABSL_LOCKS_EXCLUDED(mu_);
  // The newest `n` events kept (for `events` without -f), oldest first.
  std::vector<Event> Recent(size_t n) const ABSL_LOCKS_EXCLUDED(mu_);
  // The sequence of the newest event (0: none yet).
  uint64_t last_seq() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks up to `timeout` until an event after `after` exists or Close(); true if one does.
  // For readers on threads of their own (the HTTP listener's); gRPC readers poll.
  bool WaitAfter(uint64_t after, absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes every WaitAfter for good (controller shutdown).
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  bool closed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<Event> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace harness
