// LauncherOutage: which launcher errors are outages, the backoff between probes, and the starts
// held meanwhile (core/launcher_outage.h).
#include "core/launcher_outage.h"

#include "gtest/gtest.h"

namespace harness {
namespace {

PoolAction Start(int slot) {
  PoolAction a;
  a.kind = PoolAction::kStart;
  a.slot = slot;
  a.agent = PoolAgentId(slot);
  return a;
}

TEST(LauncherOutage, OnlyAnUnreachableOrSilentDaemonIsAnOutage) {
  EXPECT_TRUE(LauncherOutage::IsOutage(absl::UnavailableError("daemon is not reachable")));
  EXPECT_TRUE(LauncherOutage::IsOutage(absl::DeadlineExceededError("daemon did not answer")));
  EXPECT_FALSE(LauncherOutage::IsOutage(absl::NotFoundError("No such image: x:1")));
  EXPECT_FALSE(LauncherOutage::IsOutage(absl::FailedPreconditionError("API 1.12 is too old")));
  EXPECT_FALSE(LauncherOutage::IsOutage(absl::OkStatus()));
}

TEST(LauncherOutage, ProbesBackOffExponentiallyUpToTheMaximumAndStartOverOnRecovery) {
  LauncherOutage o(absl::Milliseconds(500), absl::Seconds(2));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_FALSE(o.active());
  EXPECT_EQ(o.next_try(), absl::InfiniteFuture());
  EXPECT_TRUE(o.Failed("down", t0));
  EXPECT_TRUE(o.active());
  EXPECT_EQ(o.error(), "down");
  EXPECT_EQ(o.next_try(), t0 + absl::Milliseconds(500));
  EXPECT_FALSE(o.Failed("down", t0)) << "the same error again is not news";
  EXPECT_EQ(o.next_try(), t0 + absl::Seconds(1));
  EXPECT_TRUE(o.Failed("refused", t0)) << "a different error is";
  EXPECT_EQ(o.next_try(), t0 + absl::Seconds(2));
  o.Failed("refused", t0);
  EXPECT_EQ(o.next_try(), t0 + absl::Seconds(2)) << "capped";
  o.Recovered();
  EXPECT_FALSE(o.active());
  EXPECT_EQ(o.error(), "");
  EXPECT_EQ(o.next_try(), absl::InfiniteFuture());
  o.Failed("down", t0);
  EXPECT_EQ(o.next_try(), t0 + absl::Milliseconds(500));
}

TEST(LauncherOutage, HoldsOneStartPerSlotUntilTakenOrDropped) {
  LauncherOutage o(absl::Seconds(1), absl::Seconds(8));
  o.Failed("down", absl::FromUnixSeconds(0));
  o.Hold(Start(3));
  o.Hold(Start(1));
  o.Hold(Start(3));
  EXPECT_EQ(o.HeldSlots(), (std::vector<int>{1, 3}));
  EXPECT_TRUE(o.IsHeld(3));
  o.Drop(3);
  EXPECT_FALSE(o.IsHeld(3));
  o.Recovered();
  EXPECT_EQ(o.HeldSlots(), (std::vector<int>{1})) << "recovery starts nothing by itself";
  std::vector<PoolAction> taken = o.TakeHeld();
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].slot, 1);
  EXPECT_EQ(taken[0].agent, "agent-1");
  EXPECT_TRUE(o.HeldSlots().empty());
}

}  // namespace
}  // namespace harness
