// FollowLog and WatchEvents (see follow_streams.h).
#include "controller/follow_streams.h"

#include <deque>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "controller/poll_writer.h"
#include "controller/refused_call.h"
#include "core/ids.h"

namespace harness {
namespace {

// What one FollowLog call has sent and still waits for.
struct LogFollow {
  Controller* controller;
  std::string item;
  int attempt;  // 0 until the newest attempt is known
  bool follow;
  int64_t offset = 0;

  PollStep Next(v1::LogChunk* out, absl::Status* status) {
    std::optional<LiveLogs::Chunk> c =
        controller->live_logs().Read(item, attempt, offset, kLogChunkBytes);
    if (c.has_value()) {
      attempt = c->attempt;  // following "the newest" sticks to the one found
      if (!c->data.empty()) {
        out->Clear();
        out->set_attempt(c->attempt);
        out->set_offset(c->offset);
        out->set_skipped_bytes(c->skipped);
        offset = c->offset + static_cast<int64_t>(c->data.size());
        out->set_data(std::move(c->data));
        return PollStep::kWrite;
      }
      return c->ended || !follow ? PollStep::kDone : PollStep::kWait;
    }
    // Not streamed here: an attempt that ended before this controller started or long ago,
    // or one that has not begun yet.
    absl::StatusOr<store::ItemRecord> rec = controller->queue().Get(item);
    if (!rec.ok()) {
      *status = rec.status();
      return PollStep::kDone;
    }
    const int attempts = rec->attempts_size();
    const bool running = controller->queue().LeaseOf(item).has_value();
    if (follow && ((attempt == 0 && rec->state() == store::ITEM_PENDING) ||
                   (running && (attempt == 0 || attempt == attempts)))) {
      return PollStep::kWait;  // its next attempt, or one whose output this controller lacks
    }
    const int which = attempt == 0 ? attempts : attempt;
    if (which == 0 || which > attempts) {
      if (offset > 0) return PollStep::kDone;
      *status = absl::NotFoundError(
          which == 0 ? absl::StrCat("item ", QuoteForMessage(item), " has not run yet")
                     : absl::StrCat("item ", QuoteForMessage(item), " has no attempt ", which,
                                    " (it has ", attempts, ")"));
      return PollStep::kDone;
    }
    if (offset > 0) return PollStep::kDone;  // the file was sent
    std::optional<std::string> kept = controller->logs().Read(item, which);
    attempt = which;
    if (!kept.has_value() || kept->empty()) return PollStep::kDone;
    out->Clear();
    out->set_attempt(which);
    out->set_offset(0);
    offset = static_cast<int64_t>(kept->size());
    out->set_data(*std::move(kept));
    return PollStep::kWrite;
  }
};

// What one WatchEvents call has sent.
struct EventFollow {
  Controller* controller;
  bool follow;
  uint64_t cursor = 0;
  std::deque<Event> ready;

  PollStep Next(v1::Event* out, absl::Status* status) {
    if (ready.empty()) {
      EventFeed& feed = controller->events();
      EventFeed::Read r = feed.After(cursor, 256);
      if (r.skipped > 0) {
        Event skipped;
        skipped.kind = "skipped";
        skipped.at = absl::Now();
        skipped.message = absl::StrCat(r.skipped, " events were missed (this reader fell behind)");
        ready.push_back(std::move(skipped));
      }
      for (Event& e : r.events) ready.push_back(std::move(e));
    }
    if (ready.empty()) {
      if (!follow) return PollStep::kDone;
      if (controller->events().closed()) {
        *status = absl::UnavailableError("the controller is shutting down");
        return PollStep::kDone;
      }
      return PollStep::kWait;
    }
    Event e = std::move(ready.front());
    ready.pop_front();
    if (e.seq > cursor) cursor = e.seq;
    *out = ToApiEvent(e);
    return PollStep::kWrite;
  }
};

}  // namespace

v1::Event ToApiEvent(const Event& e) {
  v1::Event out;
  out.set_seq(e.seq);
  out.set_at_unix_ms(absl::ToUnixMillis(e.at));
  out.set_kind(e.kind);
  out.set_item(e.item);
  out.set_agent(e.agent);
  out.set_lease_token(e.lease_token);
  out.set_attempt(e.attempt);
  out.set_state(e.state);
  out.set_outcome(e.outcome);
  out.set_message(e.message);
  return out;
}

grpc::ServerWriteReactor<v1::LogChunk>* StartFollowLog(Controller* controller,
                                                       const v1::FollowLogRequest& request) {
  if (absl::Status s = ValidateItemId(request.id()); !s.ok()) {
    return new RefusedWriter<v1::LogChunk>(s);
  }
  if (request.attempt() < 0) {
    return new RefusedWriter<v1::LogChunk>(absl::InvalidArgumentError(
        absl::StrCat("logs: attempt must be 0 (the newest) or more, got ", request.attempt())));
  }
  auto state = std::make_shared<LogFollow>();
  state->controller = controller;
  state->item = request.id();
  state->attempt = request.attempt();
  state->follow = request.follow();
  return new PollWriter<v1::LogChunk>(
      [state](v1::LogChunk* out, absl::Status* status) { return state->Next(out, status); },
      kFollowPoll);
}

grpc::ServerWriteReactor<v1::Event>* StartWatchEvents(Controller* controller,
                                                      const v1::WatchEventsRequest& request) {
  if (request.recent() < 0) {
    return new RefusedWriter<v1::Event>(absl::InvalidArgumentError(
        absl::StrCat("events: recent must be 0 (the default) or more, got ", request.recent())));
  }
  auto state = std::make_shared<EventFollow>();
  state->controller = controller;
  state->follow = request.follow();
  const size_t recent = request.recent() == 0 ? kDefaultRecentEvents : request.recent();
  std::vector<Event> first = controller->events().Recent(recent);
  state->cursor = first.empty() ? controller->events().last_seq() : first.front().seq - 1;
  return new PollWriter<v1::Event>(
      [state](v1::Event* out, absl::Status* status) { return state->Next(out, status); },
      kFollowPoll);
}

}  // namespace harness
