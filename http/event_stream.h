// /api/v1/events: the controller's event feed as Server-Sent Events. Each event is one frame
//   id: <seq>
//   data: <the event as one JSON object, as `harnessctl events --json` prints it>
// followed by a blank line; no `event:` field, so an EventSource's onmessage gets them all. A
// comment line (": keepalive") every kSseKeepalive keeps proxies from closing an idle stream.
// A reader that fell more than the feed's ring behind gets a frame of kind "skipped". The
// stream runs on one of the HTTP listener's threads, which waits on the feed (never on the
// queue) and only ever blocks its own connection. docs/HTTP.md documents the shape.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/event_feed.h"

namespace harness::http {

inline constexpr absl::Duration kSseKeepalive = absl::Seconds(15);

// One frame for `event`.
std::string SseFrame(const Event& event);

// Streams `feed` from after `after` through `write` (false: the client is gone) until the
// feed is closed, `stop` is set, or a write fails. Waits at most a second at a time.
void StreamEvents(EventFeed& feed, uint64_t after, const std::atomic<bool>& stop,
                  const std::function<bool(absl::string_view)>& write);

}  // namespace harness::http
