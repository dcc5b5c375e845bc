// ReadHold: whether a Session stream's next read is held back, and since when.
//
// Why: gRPC 1.51's HTTP/2 transport answers every message it receives with a WINDOW_UPDATE of
// its own, sent at once, when the server starts the next read as soon as a message arrives
// (its flow control sends an update immediately when a reader waits and any data came since the
// last one). For a report that is answered after its commit round, that was one more sendmsg
// here and one more wake-up of the agent per item. Starting the next read once the reply is on
// its way lets the update ride on the reply's write instead. A read is held for a message that
// awaits a reply only, and never for long: the controller's ticker starts any read held longer
// than kMaxHold (a slow disk must not leave an agent's heartbeats unread).
//
// Not thread-safe: the owner's lock guards it. Every call that returns true means "start the
// next read now", and exactly one of them does per held read.
#pragma once

#include "absl/time/time.h"

namespace harness {

class ReadHold {
 public:
  static constexpr absl::Duration kMaxHold = absl::Milliseconds(50);

  // The read path took a message at `now` and is handling it; hold the next read if the message
  // awaits a reply.
  void BeginHandling(bool awaits_reply, absl::Time now) {
    handling_ = true;
    held_ = awaits_reply;
    since_ = now;
  }
  // The read path is done with the message: true if it starts the next read itself.
  bool EndHandling() {
    handling_ = false;
    return !held_;
  }
  // A message goes out to the agent: true if the caller starts the held read (false while the
  // read path still handles the message: it starts the read itself, EndHandling says so).
  bool Release() {
    if (!held_) return false;
    held_ = false;
    return !handling_;
  }
  // The ticker: true if the read was held for `kMaxHold` or longer and the caller starts it.
  bool ReleaseIfOverdue(absl::Time now) {
    if (!held_ || handling_ || now - since_ < kMaxHold) return false;
    held_ = false;
    return true;
  }
  bool held() const { return held_; }

 private:
  bool handling_ = false;
  bool held_ = false;
  absl::Time since_;
};

}  // namespace harness
