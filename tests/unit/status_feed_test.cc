// StatusFeed (/api/v1/status/stream): a frame when the snapshot changes, not when only heartbeat
// ages move; a fresh frame for a client that joins an idle feed; a cap on clients; Stop wakes
// every waiting client.
#include "http/status_feed.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace harness::http {
namespace {

// A controller stand-in: the snapshot the feed reads, changed by the test.
class FakeSource {
 public:
  v1::StatusSnapshot Get() {
    absl::MutexLock l(&mu_);
    ++reads_;
    return s_;
  }
  void SetPending(int64_t n) {
    absl::MutexLock l(&mu_);
    s_.mutable_queue()->set_pending(n);
  }
  void SetHeartbeatAge(int64_t ms) {
    absl::MutexLock l(&mu_);
    if (s_.agents_size() == 0) s_.add_agents()->set_id("a1");
    s_.mutable_agents(0)->set_last_heartbeat_ms_ago(ms);
  }
  int reads() {
    absl::MutexLock l(&mu_);
    return reads_;
  }

 private:
  absl::Mutex mu_;
  v1::StatusSnapshot s_ ABSL_GUARDED_BY(mu_);
  int reads_ ABSL_GUARDED_BY(mu_) = 0;
};

StatusFeedOptions Fast() {
  StatusFeedOptions o;
  o.period = absl::Milliseconds(10);
  o.max_quiet = absl::Hours(1);  // no frame for the passing of time alone in these tests
  o.max_clients = 2;
  return o;
}

TEST(StatusFeed, AClientGetsAFrameAndANewOneWhenTheQueueChanges) {
  FakeSource src;
  StatusFeed feed([&] { return src.Get(); }, Fast());
  ASSERT_TRUE(feed.Join());
  std::optional<StatusFeed::Frame> first = feed.Next(0, absl::Seconds(30));
  ASSERT_TRUE(first.has_value());
  ASSERT_GT(first->version, 0u);
  EXPECT_NE(first->json.find("\"pending\": 0"), std::string::npos) << first->json;
  src.SetPending(3);
  std::optional<StatusFeed::Frame> second = feed.Next(first->version, absl::Seconds(30));
  ASSERT_TRUE(second.has_value());
  EXPECT_GT(second->version, first->version);
  EXPECT_NE(second->json.find("\"pending\": 3"), std::string::npos) << second->json;
  feed.Leave();
}

TEST(StatusFeed, HeartbeatAgesAloneDoNotMakeANewFrame) {
  FakeSource src;
  src.SetHeartbeatAge(10);
  StatusFeed feed([&] { return src.Get(); }, Fast());
  ASSERT_TRUE(feed.Join());
  std::optional<StatusFeed::Frame> first = feed.Next(0, absl::Seconds(30));
  ASSERT_TRUE(first.has_value());
  src.SetHeartbeatAge(900);
  // The poller reads the source again several times, and publishes nothing new.
  const int reads = src.reads();
  while (src.reads() < reads + 5) std::this_thread::yield();
  std::optional<StatusFeed::Frame> none = feed.Next(first->version, absl::ZeroDuration());
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->version, first->version);
  EXPECT_TRUE(none->json.empty());
  feed.Leave();
}

TEST(StatusFeed, AnIdleFeedReadsNothingAndAJoiningClientGetsAFreshFrame) {
  FakeSource src;
  StatusFeed feed([&] { return src.Get(); }, Fast());
  ASSERT_TRUE(feed.Join());
  std::optional<StatusFeed::Frame> first = feed.Next(0, absl::Seconds(30));
  ASSERT_TRUE(first.has_value());
  feed.Leave();
  src.SetPending(7);
  // No client: the frame stays old. A new client must not be shown it.
  ASSERT_TRUE(feed.Join());
  std::optional<StatusFeed::Frame> fresh = feed.Next(0, absl::Seconds(30));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_NE(fresh->json.find("\"pending\": 7"), std::string::npos) << fresh->json;
  feed.Leave();
}

TEST(StatusFeed, ClientsPastTheCapAreRefusedUntilOneLeaves) {
  FakeSource src;
  StatusFeed feed([&] { return src.Get(); }, Fast());
  EXPECT_TRUE(feed.Join());
  EXPECT_TRUE(feed.Join());
  EXPECT_FALSE(feed.Join());
  EXPECT_EQ(feed.clients(), 2);
  feed.Leave();
  EXPECT_TRUE(feed.Join());
  feed.Leave();
  feed.Leave();
}

TEST(StatusFeed, StopWakesAWaitingClient) {
  FakeSource src;
  StatusFeed feed([&] { return src.Get(); }, Fast());
  ASSERT_TRUE(feed.Join());
  std::optional<StatusFeed::Frame> first = feed.Next(0, absl::Seconds(30));
  ASSERT_TRUE(first.has_value());
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    // Nothing changes: only Stop can end this wait before an hour.
    EXPECT_FALSE(feed.Next(first->version, absl::Hours(1)).has_value());
    woke = true;
  });
  feed.Stop();
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_FALSE(feed.Join());
  feed.Leave();
}

}  // namespace
}  // namespace harness::http
