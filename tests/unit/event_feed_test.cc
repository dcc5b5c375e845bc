// EventFeed, LiveLogs and StateWatch: the in-memory feeds behind harnessctl events and logs,
// in-process (no sockets, no threads but the test's).
#include "core/event_feed.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/agent_registry.h"
#include "core/clock.h"
#include "core/live_logs.h"
#include "core/state_events.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

Event Kind(const std::string& kind) {
  Event e;
  e.kind = kind;
  return e;
}

TEST(EventFeed, EventsAreNumberedAndReadInOrderAfterASequence) {
  EventFeed feed(8);
  EXPECT_EQ(feed.Publish(Kind("a")), 1u);
  EXPECT_EQ(feed.Publish(Kind("b")), 2u);
  EXPECT_EQ(feed.Publish(Kind("c")), 3u);
  EventFeed::Read r = feed.After(1, 10);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].kind, "b");
  EXPECT_EQ(r.events[1].seq, 3u);
  EXPECT_EQ(r.skipped, 0u);
  EXPECT_TRUE(feed.After(3, 10).events.empty());
  EXPECT_EQ(feed.After(0, 2).events.size(), 2u);  // at most `max`
}

// Agent and slot events (StateWatch) carry no time of their own: they are stamped when
// published. Before, a default Event's time was the Unix epoch, which Publish kept, so
// `harnessctl events` showed agent_registered at 1970-01-01T00:00:00.000Z.
TEST(EventFeed, AnEventPublishedWithoutATimeIsStampedWithThePublishTime) {
  EventFeed feed;
  const absl::Time before = absl::Now();
  feed.Publish(Kind("agent_registered"));
  Event stamped = Kind("item_done");
  stamped.at = absl::FromUnixMillis(1714564800123);
  feed.Publish(stamped);
  std::vector<Event> kept = feed.Recent(2);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_GE(kept[0].at, before);
  EXPECT_EQ(kept[1].at, absl::FromUnixMillis(1714564800123));  // a given time is kept
}

TEST(EventFeed, AReaderThatFellBehindTheRingIsToldHowManyItSkipped) {
  EventFeed feed(3);
  for (int i = 0; i < 10; ++i) feed.Publish(Kind("x"));
  EventFeed::Read r = feed.After(2, 100);
  EXPECT_EQ(r.skipped, 5u);  // 3..7 are gone; 8, 9, 10 are kept
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events.front().seq, 8u);
  EXPECT_EQ(feed.After(0, 100).skipped, 0u);  // a new reader starts at the oldest kept
  EXPECT_EQ(feed.Recent(2).front().seq, 9u);
}

TEST(EventFeed, WaitAfterReturnsOnceANewerEventExistsOrTheFeedIsClosed) {
  EventFeed feed;
  feed.Publish(Kind("a"));
  EXPECT_TRUE(feed.WaitAfter(0, absl::ZeroDuration()));
  EXPECT_FALSE(feed.WaitAfter(1, absl::ZeroDuration()));
  feed.Close();
  EXPECT_TRUE(feed.closed());
  EXPECT_FALSE(feed.WaitAfter(1, absl::Hours(1)));  // returns at once: closed
}

TEST(LiveLogs, KeepsTheLastBytesOfAnAttemptAndAResentChunkOnce) {
  LiveLogs logs(/*max_bytes_per_attempt=*/8);
  logs.Begin("a", 1, 7, "agent-1");
  EXPECT_TRUE(logs.Append("a", 7, "agent-1", 0, "hello "));
  EXPECT_TRUE(logs.Append("a", 7, "agent-1", 0, "hello "));      // resent: kept once
  EXPECT_TRUE(logs.Append("a", 7, "agent-1", 3, "lo world"));    // overlaps
  EXPECT_EQ(logs.Kept("a", 1).value(), "lo world");               // the last 8 of "hello world"
  std::optional<LiveLogs::Chunk> c = logs.Read("a", 0, 0, 100);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->attempt, 1);
  EXPECT_EQ(c->offset, 3);
  EXPECT_EQ(c->skipped, 3);
  EXPECT_EQ(c->data, "lo world");
  EXPECT_FALSE(c->ended);
  c = logs.Read("a", 1, 11, 100);
  EXPECT_TRUE(c->data.empty());
  logs.End("a", 1);
  EXPECT_TRUE(logs.Read("a", 1, 11, 100)->ended);
  EXPECT_FALSE(logs.Read("a", 1, 3, 2)->ended);  // not at the end yet: more to read
}

TEST(LiveLogs, OutputFromAnotherTokenOrAgentOrAfterTheEndIsRefused) {
  LiveLogs logs(1024);
  logs.Begin("a", 2, 9, "agent-1");
  EXPECT_FALSE(logs.Append("a", 8, "agent-1", 0, "old lease"));
  EXPECT_FALSE(logs.Append("a", 9, "agent-2", 0, "other agent"));
  EXPECT_FALSE(logs.Append("b", 9, "agent-1", 0, "other item"));
  EXPECT_TRUE(logs.Append("a", 9, "agent-1", 0, "ok"));
  logs.End("a", 2);
  EXPECT_FALSE(logs.Append("a", 9, "agent-1", 2, "late"));
  EXPECT_EQ(logs.Kept("a", 2).value(), "ok");
  EXPECT_FALSE(logs.Read("a", 1, 0, 10).has_value());
}

TEST(LiveLogs, EndedAttemptsBeyondTheKeptNumberAreForgotten) {
  LiveLogs logs(1024, /*ended_kept=*/2);
  for (int i = 1; i <= 3; ++i) {
    logs.Begin("a", i, i, "x");
    logs.End("a", i);
  }
  EXPECT_FALSE(logs.Kept("a", 1).has_value());
  EXPECT_TRUE(logs.Kept("a", 2).has_value());
  EXPECT_EQ(logs.Read("a", 0, 0, 10)->attempt, 3);
}

// The life events come from the registry as they happened; health changes from two looks.
class StateWatchTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  AgentRegistry agents_{&clock_, absl::Seconds(1), absl::Seconds(10)};
  StateWatch watch_;
  std::vector<std::string> Look(const std::vector<PoolSlotStatus>& slots = {}) {
    std::vector<std::string> out;
    std::vector<AgentLifeEvent> life = agents_.TakeLifeEvents();
    for (const Event& e : watch_.Look(life, agents_.List(), slots)) {
      out.push_back(absl::StrCat(e.kind, " ", e.agent, " ", e.state));
    }
    return out;
  }
};

TEST_F(StateWatchTest, AgentRegistrationHealthDrainStopAndAFailedSlotBecomeEventsOnce) {
  const std::string s1 = agents_.Register("agent-1", 10, "h", "v");
  ASSERT_TRUE(agents_.Attach("agent-1", s1, nullptr).ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-1", s1, AgentState::kIdle).ok());
  EXPECT_EQ(Look(), std::vector<std::string>{"agent_registered agent-1 starting"});
  EXPECT_TRUE(Look().empty());  // nothing changed

  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(Look(), std::vector<std::string>{"agent_suspect agent-1 idle"});
  ASSERT_TRUE(agents_.Heartbeat("agent-1", s1, AgentState::kIdle).ok());
  ASSERT_TRUE(agents_.Drain("agent-1").ok());
  EXPECT_EQ(Look(), (std::vector<std::string>{"agent_drained agent-1 draining",
                                              "agent_healthy agent-1 draining"}));
  EXPECT_TRUE(agents_.Drain("agent-1").ok());  // already draining: not news again
  EXPECT_TRUE(Look().empty());
  agents_.MarkExited("agent-1", 10, "killed by signal 9");
  EXPECT_EQ(Look(), (std::vector<std::string>{"agent_stopped agent-1 stopped",
                                              "agent_dead agent-1 stopped"}));
  agents_.Register("agent-1", 11, "h", "v");  // registered again
  EXPECT_EQ(Look().at(0), "agent_registered agent-1 starting");

  PoolSlotStatus slot;
  slot.slot = 1;
  slot.state = SlotState::kFailed;
  slot.reason = "exited with status 1";
  std::vector<AgentLifeEvent> none;
  std::vector<Event> ev = watch_.Look(none, agents_.List(), {slot});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, "pool_slot_failed");
  EXPECT_NE(ev[0].message.find("exited with status 1"), std::string::npos);
  EXPECT_TRUE(watch_.Look(none, agents_.List(), {slot}).empty());
}

// A drained agent that exits, and its slot's new agent under the same id, all between two
// looks (the pool relaunches within milliseconds): every step is still in the feed, in order,
// and the log's "drained" line is not lost to the new registration either.
TEST_F(StateWatchTest, ADrainStopAndNewSessionBetweenTwoLooksAreAllReported) {
  const std::string s1 = agents_.Register("agent-1", 10, "h", "v");
  ASSERT_TRUE(agents_.Attach("agent-1", s1, nullptr).ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-1", s1, AgentState::kIdle).ok());
  EXPECT_EQ(Look().size(), 1u);
  ASSERT_TRUE(agents_.Drain("agent-1").ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-1", s1, AgentState::kStopped).ok());
  agents_.MarkExited("agent-1", 10, "exited with status 0");
  const std::string s2 = agents_.Register("agent-1", 11, "h", "v");
  ASSERT_TRUE(agents_.Attach("agent-1", s2, nullptr).ok());
  EXPECT_EQ(Look(), (std::vector<std::string>{
                        "agent_drained agent-1 draining", "agent_stopped agent-1 stopped",
                        "agent_registered agent-1 starting"}));
  std::vector<std::string> logged;
  for (const AgentChange& c : agents_.TakeChanges()) logged.push_back(c.what);
  EXPECT_EQ(logged, std::vector<std::string>{"drained"});
}

TEST(StateEvents, ALeaseEndIsNamedByItsOutcomeWithTheLeaseTokenAndAttempt) {
  LeaseEnded e;
  e.lease.item_id = "a";
  e.lease.token = 42;
  e.lease.agent = "agent-1";
  e.lease.attempt = 2;
  e.outcome = store::OUTCOME_TIMEOUT;
  e.item_state = store::ITEM_PENDING;
  Event ev = EventOfLeaseEnded(e);
  EXPECT_EQ(ev.kind, "item_failed");
  EXPECT_EQ(ev.outcome, "timeout");
  EXPECT_EQ(ev.state, "pending");
  EXPECT_EQ(ev.lease_token, 42u);
  EXPECT_EQ(ev.attempt, 2);
  e.outcome = store::OUTCOME_EXPIRED;
  EXPECT_EQ(EventOfLeaseEnded(e).kind, "item_expired");
}

// A drained agent says it stopped and then falls silent: agent_stopped is the news, not the
// suspect and dead that its silence makes of its health afterwards (they read like a crash).
TEST_F(StateWatchTest, AnAgentThatStoppedCleanlyIsNotReportedSuspectAndDeadAfterwards) {
  const std::string s1 = agents_.Register("agent-2", 10, "h", "v");
  ASSERT_TRUE(agents_.Attach("agent-2", s1, nullptr).ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-2", s1, AgentState::kIdle).ok());
  ASSERT_EQ(Look().size(), 1u);  // registered
  ASSERT_TRUE(agents_.Drain("agent-2").ok());
  EXPECT_EQ(Look(), std::vector<std::string>{"agent_drained agent-2 draining"});
  ASSERT_TRUE(agents_.Heartbeat("agent-2", s1, AgentState::kStopped).ok());
  EXPECT_EQ(Look(), std::vector<std::string>{"agent_stopped agent-2 stopped"});
  agents_.Detach("agent-2", nullptr);
  clock_.Advance(absl::Seconds(3));
  EXPECT_TRUE(Look().empty());  // suspect: expected
  clock_.Advance(absl::Seconds(10));
  EXPECT_TRUE(Look().empty());  // dead: expected

  // Stop and silence seen in one look: still only agent_drained and agent_stopped.
  const std::string s3 = agents_.Register("agent-3", 12, "h", "v");
  ASSERT_TRUE(agents_.Attach("agent-3", s3, nullptr).ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-3", s3, AgentState::kWorking).ok());
  EXPECT_EQ(Look().size(), 1u);  // registered (agent-2's forgetting aside)
  ASSERT_TRUE(agents_.Drain("agent-3").ok());
  ASSERT_TRUE(agents_.Heartbeat("agent-3", s3, AgentState::kStopped).ok());
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(Look(), (std::vector<std::string>{"agent_drained agent-3 working",
                                              "agent_stopped agent-3 stopped"}));
}

}  // namespace
}  // namespace harness
