// StatusFeed: the status snapshots that /api/v1/status/stream pushes (Server-Sent Events). One
// thread polls the controller for every client at once, as WatchStatus does for one gRPC
// stream (Controller::Status()), but only while a client listens, at most every `period`; it
// publishes a new frame when the snapshot changed (heartbeat ages and uptime do not count as a
// change) or `max_quiet` passed, so an idle controller costs a few renders a minute per feed,
// not per client. Clients wait for a newer frame on their own (httplib) thread. The number of
// clients is capped: Join() refuses past `max_clients` (the listener answers 503).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "harness/v1/types.pb.h"

namespace harness::http {

struct StatusFeedOptions {
  absl::Duration period = absl::Milliseconds(250);  // at most 4 frames a second
  absl::Duration max_quiet = absl::Seconds(5);      // a frame at least this often (ages move)
  int max_clients = 16;
};

class StatusFeed {
 public:
  StatusFeed(std::function<v1::StatusSnapshot()> snapshot, StatusFeedOptions options);
  ~StatusFeed();  // Stop()s and joins the poller

  struct Frame {
    uint64_t version = 0;  // increases with each new frame; 0: none yet
    std::string json;      // the document of GET /api/v1/status (harnessctl status --json)
  };
  // A client slot; false when max_clients listen already. Every true is followed by Leave().
  bool Join();
  void Leave();
  // Waits until a frame newer than `seen` exists (returned), `timeout` passes (a frame with
  // version == seen and no json), or the feed stops (nullopt).
  std::optional<Frame> Next(uint64_t seen, absl::Duration timeout);
  // Wakes every waiting client with nullopt; later calls to Next return nullopt at once.
  void Stop();

  int clients() const;

 private:
  void Poll();

  const std::function<v1::StatusSnapshot()> snapshot_;
  const StatusFeedOptions options_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int clients_ ABSL_GUARDED_BY(mu_) = 0;
  // Set while no client listened: frame_ may be old, and the next poll publishes at once.
  bool stale_ ABSL_GUARDED_BY(mu_) = true;
  Frame frame_ ABSL_GUARDED_BY(mu_);
  std::thread poller_;
};

// The snapshot with what moves on its own (heartbeat ages, uptime) zeroed: two snapshots are
// the same state when these match.
v1::StatusSnapshot WithoutClockFields(v1::StatusSnapshot s);

}  // namespace harness::http
