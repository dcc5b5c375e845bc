// Server-Sent Events of the event feed (see event_stream.h).
#include "http/event_stream.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/event_render.h"
#include "controller/follow_streams.h"

namespace harness::http {

std::string SseFrame(const Event& event) {
  // The JSON has no line breaks (strings escape them), so it is one `data:` line.
  return absl::StrCat("id: ", event.seq, "\ndata: ", client::RenderEventJson(ToApiEvent(event)),
                      "\n\n");
}

void StreamEvents(EventFeed& feed, uint64_t after, const std::atomic<bool>& stop,
                  const std::function<bool(absl::string_view)>& write) {
  // Tells EventSource to reconnect after 2 s (it then sends Last-Event-ID).
  if (!write("retry: 2000\n\n")) return;
  absl::Time last_write = absl::Now();
  while (!stop.load() && !feed.closed()) {
    feed.WaitAfter(after, absl::Seconds(1));
    EventFeed::Read r = feed.After(after, 256);
    std::string out;
    if (r.skipped > 0) {
      Event skipped;
      skipped.kind = "skipped";
      skipped.at = absl::Now();
      skipped.message = absl::StrCat(r.skipped, " events were missed (this reader fell behind)");
      skipped.seq = after + r.skipped;
      absl::StrAppend(&out, SseFrame(skipped));
    }
    for (const Event& e : r.events) {
      absl::StrAppend(&out, SseFrame(e));
      after = e.seq;
    }
    if (r.events.empty() && r.skipped > 0) after += r.skipped;
    if (out.empty() && absl::Now() - last_write >= kSseKeepalive) out = ": keepalive\n\n";
    if (out.empty()) continue;
    if (!write(out)) return;
    last_write = absl::Now();
  }
}

}  // namespace harness::http
