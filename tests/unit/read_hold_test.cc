// ReadHold: a Session stream's next read is held only for a message that awaits a reply, and
// started exactly once: by the read path, by the reply's send, or by the ticker once overdue.
#include "controller/read_hold.h"

#include "gtest/gtest.h"

namespace harness {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(ReadHold, AMessageThatAwaitsNoReplyIsFollowedByTheNextReadAtOnce) {
  ReadHold h;
  h.BeginHandling(false, kT0);
  EXPECT_FALSE(h.Release());  // nothing held: a send starts nothing
  EXPECT_TRUE(h.EndHandling());
  EXPECT_FALSE(h.ReleaseIfOverdue(kT0 + absl::Seconds(10)));
}

TEST(ReadHold, AReportsReadIsStartedByTheReplysSendOnce) {
  ReadHold h;
  h.BeginHandling(true, kT0);
  EXPECT_FALSE(h.EndHandling());  // held: the read path does not start it
  EXPECT_TRUE(h.held());
  EXPECT_TRUE(h.Release());   // the reply goes out: start it now
  EXPECT_FALSE(h.Release());  // a second message: already started
  EXPECT_FALSE(h.ReleaseIfOverdue(kT0 + absl::Seconds(1)));
}

TEST(ReadHold, AReplySentWhileTheReadPathStillHandlesTheReportLeavesTheStartToTheReadPath) {
  ReadHold h;
  h.BeginHandling(true, kT0);
  EXPECT_FALSE(h.Release());    // answered at once (refused, or durable already)
  EXPECT_TRUE(h.EndHandling());  // so the read path starts the read, and nobody else
  EXPECT_FALSE(h.Release());
}

TEST(ReadHold, TheTickerStartsAReadHeldForTheMaximumOnlyAndOnlyOnce) {
  ReadHold h;
  h.BeginHandling(true, kT0);
  EXPECT_FALSE(h.ReleaseIfOverdue(kT0 + ReadHold::kMaxHold));  // still handling
  EXPECT_FALSE(h.EndHandling());
  EXPECT_FALSE(h.ReleaseIfOverdue(kT0 + ReadHold::kMaxHold - absl::Milliseconds(1)));
  EXPECT_TRUE(h.ReleaseIfOverdue(kT0 + ReadHold::kMaxHold));
  EXPECT_FALSE(h.Release());  // the late reply starts nothing more
  EXPECT_FALSE(h.ReleaseIfOverdue(kT0 + absl::Seconds(5)));
}

}  // namespace
}  // namespace harness
