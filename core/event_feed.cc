// The event feed's ring (see event_feed.h).
#include "core/event_feed.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace harness {

EventFeed::EventFeed(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

uint64_t EventFeed::Publish(Event event) {
  if (event.at == absl::InfinitePast()) event.at = absl::Now();
  absl::MutexLock l(&mu_);
  event.seq = next_seq_++;
  const uint64_t seq = event.seq;
  ring_.push_back(std::move(event));
  if (ring_.size() > capacity_) ring_.pop_front();
  return seq;  // absl::Mutex wakes WaitAfter's condition on unlock
}

EventFeed::Read EventFeed::After(uint64_t after, size_t max) const {
  Read out;
  absl::MutexLock l(&mu_);
  if (ring_.empty()) {
    if (next_seq_ > after + 1) out.skipped = next_seq_ - 1 - after;
    return out;
  }
  const uint64_t oldest = ring_.front().seq;
  if (after + 1 < oldest && after != 0) out.skipped = oldest - after - 1;
  const uint64_t first = std::max(after + 1, oldest);
  for (size_t i = first - oldest; i < ring_.size() && out.events.size() < max; ++i) {
    out.events.push_back(ring_[i]);
  }
  return out;
}

std::vector<Event> EventFeed::Recent(size_t n) const {
  absl::MutexLock l(&mu_);
  const size_t k = std::min(n, ring_.size());
  return std::vector<Event>(ring_.end() - static_cast<std::ptrdiff_t>(k), ring_.end());
}

uint64_t EventFeed::last_seq() const {
  absl::MutexLock l(&mu_);
  return next_seq_ - 1;
}

bool EventFeed::WaitAfter(uint64_t after, absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  auto ready = [this, after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || next_seq_ - 1 > after;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return next_seq_ - 1 > after;
}

void EventFeed::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
}

bool EventFeed::closed() const {
  absl::MutexLock l(&mu_);
  return closed_;
}

}  // namespace harness
