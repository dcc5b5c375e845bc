// The status snapshots of /api/v1/status/stream (see status_feed.h).
#include "http/status_feed.h"

#include "client/render.h"
#include "core/thread_name.h"

namespace harness::http {

v1::StatusSnapshot WithoutClockFields(v1::StatusSnapshot s) {
  s.mutable_controller()->set_uptime_s(0);
  for (v1::AgentInfo& a : *s.mutable_agents()) a.set_last_heartbeat_ms_ago(0);
  return s;
}

StatusFeed::StatusFeed(std::function<v1::StatusSnapshot()> snapshot, StatusFeedOptions options)
    : snapshot_(std::move(snapshot)), options_(options) {
  poller_ = std::thread([this] { Poll(); });
}

StatusFeed::~StatusFeed() {
  Stop();
  if (poller_.joinable()) poller_.join();
}

void StatusFeed::Stop() {
  absl::MutexLock l(&mu_);
  stop_ = true;
}

int StatusFeed::clients() const {
  absl::MutexLock l(&mu_);
  return clients_;
}

bool StatusFeed::Join() {
  absl::MutexLock l(&mu_);
  if (stop_ || clients_ >= options_.max_clients) return false;
  if (clients_++ == 0) stale_ = true;
  return true;
}

void StatusFeed::Leave() {
  absl::MutexLock l(&mu_);
  --clients_;
}

std::optional<StatusFeed::Frame> StatusFeed::Next(uint64_t seen, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || (!stale_ && frame_.version > seen);
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (stop_) return std::nullopt;
  if (!stale_ && frame_.version > seen) return frame_;
  return Frame{seen, ""};
}

void StatusFeed::Poll() {
  NameThisThread("status-feed");
  std::string last_key;
  absl::Time last_publish = absl::InfinitePast();
  for (;;) {
    bool stale;
    {
      // Idle until a client listens (or the feed stops).
      absl::MutexLock l(&mu_);
      auto wanted = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || clients_ > 0;
      };
      mu_.Await(absl::Condition(&wanted));
      if (stop_) return;
      stale = stale_;
    }
    // Outside the lock: the snapshot takes the controller's own short locks, rendering none.
    v1::StatusSnapshot s = snapshot_();
    std::string key = WithoutClockFields(s).SerializeAsString();
    const absl::Time now = absl::Now();
    if (stale || key != last_key || now - last_publish >= options_.max_quiet) {
      std::string json = client::RenderStatusJson(s, /*pretty=*/false);
      last_key = std::move(key);
      last_publish = now;
      absl::MutexLock l(&mu_);
      frame_.version++;
      frame_.json = std::move(json);
      stale_ = false;
    }
    absl::MutexLock l(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.period);
    if (stop_) return;
  }
}

}  // namespace harness::http
