// The pool state machine on a FakeClock: staggered starts, delayed restarts, the failure
// threshold and its one alert, re-arming, scale up and down (victims, drain, force), adoption of
// running agents at start-up, dead agents, failed launches and the next tick.
#include "core/pool.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One action as a short line, so a test states the whole list it expects.
std::string Describe(const PoolAction& a) {
  switch (a.kind) {
    case PoolAction::kStart:
      return absl::StrCat("start ", a.agent);
    case PoolAction::kStop:
      return absl::StrCat("stop ", a.launched_id, " grace ", absl::FormatDuration(a.grace),
                          a.release ? " releasing its item" : "");
    case PoolAction::kDrain:
      return absl::StrCat("drain ", a.agent);
    case PoolAction::kAlert:
      return absl::StrCat("alert ", a.agent, " after ", a.failures, ": ", a.reason);
  }
  return "?";
}

std::vector<std::string> Describe(const std::vector<PoolAction>& actions) {
  std::vector<std::string> out;
  for (const PoolAction& a : actions) out.push_back(Describe(a));
  return out;
}

// "agent-1 running p1 0 failures" per slot.
std::vector<std::string> Slots(const Pool& pool) {
  std::vector<std::string> out;
  for (const PoolSlotStatus& s : pool.Snapshot()) {
    out.push_back(absl::StrCat(s.agent, " ", SlotStateName(s.state),
                               s.launched_id.empty() ? "" : " ", s.launched_id, " ", s.failures,
                               " failures"));
  }
  return out;
}

PoolOptions Options(int target) {
  PoolOptions o;
  o.target = target;
  o.startup_stagger = absl::ZeroDuration();
  o.restart_delay = absl::Seconds(10);
  o.max_agent_failures = 2;  // the third death within the window fails the slot
  o.failure_window = absl::Minutes(10);
  o.stop_grace = absl::Seconds(5);
  return o;
}

class PoolTest : public ::testing::Test {
 protected:
  // A pool of `options`, all its slots started and launched as p<slot>.
  void StartRunning(PoolOptions options) {
    pool_ = std::make_unique<Pool>(options, &clock_);
    for (const PoolAction& a : pool_->Tick()) {
      ASSERT_EQ(a.kind, PoolAction::kStart);
      EXPECT_THAT(pool_->LaunchSucceeded(a.slot, absl::StrCat("p", a.slot)), IsEmpty());
    }
  }

  // Kills p<slot> and lets its restart come and launch as `next_id`.
  void DieAndRestart(int slot, const std::string& id, const std::string& next_id) {
    EXPECT_THAT(Describe(pool_->Exited(id, "killed by signal 9")), IsEmpty());
    clock_.Advance(absl::Seconds(10));
    EXPECT_THAT(Describe(pool_->Tick()), ElementsAre(absl::StrCat("start agent-", slot)));
    EXPECT_THAT(pool_->LaunchSucceeded(slot, next_id), IsEmpty());
  }

  FakeClock clock_;
  std::unique_ptr<Pool> pool_;
};

TEST_F(PoolTest, StartsTheTargetSlotsStaggered) {
  PoolOptions o = Options(3);
  o.startup_stagger = absl::Seconds(5);
  Pool pool(o, &clock_);
  absl::Time t0 = clock_.Now();
  EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-1"));
  EXPECT_THAT(pool.Tick(), IsEmpty());
  EXPECT_EQ(pool.NextTick(), t0 + absl::Seconds(5));
  clock_.Advance(absl::Seconds(4));
  EXPECT_THAT(pool.Tick(), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-2"));
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-3"));
  EXPECT_EQ(pool.NextTick(), absl::InfiniteFuture());
  EXPECT_THAT(Slots(pool), ElementsAre("agent-1 starting 0 failures", "agent-2 starting 0 failures",
                                       "agent-3 starting 0 failures"));
}

TEST_F(PoolTest, WithoutStaggerAllSlotsStartAtOnce) {
  Pool pool(Options(3), &clock_);
  EXPECT_THAT(Describe(pool.Tick()),
              ElementsAre("start agent-1", "start agent-2", "start agent-3"));
}

TEST_F(PoolTest, ADeathRestartsTheSlotAfterTheRestartDelayNotBefore) {
  StartRunning(Options(2));
  absl::Time died = clock_.Now();
  EXPECT_THAT(pool_->Exited("p2", "exited with status 3"), IsEmpty());
  std::vector<PoolSlotStatus> slots = pool_->Snapshot();
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[1].state, SlotState::kRestarting);
  EXPECT_EQ(slots[1].reason, "exited with status 3");
  EXPECT_EQ(slots[1].failures, 1);
  EXPECT_EQ(pool_->NextTick(), died + absl::Seconds(10));
  clock_.Advance(absl::Seconds(9));
  EXPECT_THAT(pool_->Tick(), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(Describe(pool_->Tick()), ElementsAre("start agent-2"));
  EXPECT_THAT(pool_->LaunchSucceeded(2, "p2b"), IsEmpty());
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2b 1 failures"));
}

TEST_F(PoolTest, ThreeDeathsInTheWindowFailTheSlotWithExactlyOneAlertAndNoMoreStarts) {
  StartRunning(Options(1));
  DieAndRestart(1, "p1", "p1b");
  DieAndRestart(1, "p1b", "p1c");
  EXPECT_THAT(Describe(pool_->Exited("p1c", "exited with status 3")),
              ElementsAre("alert agent-1 after 3: exited with status 3"));
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 failed 3 failures"));
  EXPECT_EQ(pool_->Snapshot()[0].reason, "exited with status 3");
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());
  // Nothing more: no start, no second alert, whatever comes late or however long it waits.
  EXPECT_THAT(pool_->Exited("p1c", "exited with status 3"), IsEmpty());
  EXPECT_THAT(pool_->AgentDead("agent-1", "heartbeat silent"), IsEmpty());
  clock_.Advance(absl::Hours(2));
  EXPECT_THAT(pool_->Tick(), IsEmpty());
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 failed 3 failures"));
}

// /metrics' harness_pool_agent_deaths_total: every death, restarted or failing; not an exit
// the pool asked for (a drain) nor a late exit of a failed slot.
TEST_F(PoolTest, DeathsAreCountedOnceEachAndDrainedExitsAreNot) {
  StartRunning(Options(2));
  pool_->ObserveAgents({{"agent-1", true, clock_.Now()}});
  EXPECT_THAT(Describe(*pool_->SetTarget(1, false)), ElementsAre("drain agent-2"));
  EXPECT_THAT(pool_->Exited("p2", "exited with status 0"), IsEmpty());
  EXPECT_EQ(pool_->deaths(), 0u);
  DieAndRestart(1, "p1", "p1b");
  DieAndRestart(1, "p1b", "p1c");
  EXPECT_EQ(pool_->deaths(), 2u);
  EXPECT_THAT(pool_->Exited("p1c", "exited with status 3"), testing::SizeIs(1));  // fails
  EXPECT_THAT(pool_->Exited("p1c", "exited with status 3"), IsEmpty());
  EXPECT_EQ(pool_->deaths(), 3u);
}

TEST_F(PoolTest, DeathsSpreadBeyondTheWindowDoNotFailTheSlot) {
  StartRunning(Options(1));
  std::string id = "p1";
  for (int i = 0; i < 6; ++i) {
    // A death every 6 minutes: never three within 10 minutes.
    std::string next = absl::StrCat("p1-", i);
    DieAndRestart(1, id, next);
    id = next;
    clock_.Advance(absl::Minutes(6) - absl::Seconds(10));
  }
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 running p1-5 1 failures"));
}

TEST_F(PoolTest, SettingTheTargetAgainReArmsAFailedSlot) {
  StartRunning(Options(2));
  DieAndRestart(2, "p2", "p2b");
  DieAndRestart(2, "p2b", "p2c");
  EXPECT_THAT(pool_->Exited("p2c", "exited with status 1"), testing::SizeIs(1));
  EXPECT_EQ(pool_->Snapshot()[1].state, SlotState::kFailed);
  absl::StatusOr<std::vector<PoolAction>> a = pool_->SetTarget(2, false);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(Describe(*a), ElementsAre("start agent-2"));
  EXPECT_THAT(pool_->LaunchSucceeded(2, "p2d"), IsEmpty());
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2d 0 failures"));
  // The threshold counts afresh: one more death restarts it.
  EXPECT_THAT(pool_->Exited("p2d", "exited with status 1"), IsEmpty());
  EXPECT_EQ(pool_->Snapshot()[1].state, SlotState::kRestarting);
}

TEST_F(PoolTest, ScaleUpAddsTheLowestFreeSlots) {
  StartRunning(Options(4));
  pool_->ObserveAgents({{"agent-1", true, clock_.Now()},
                        {"agent-3", true, clock_.Now()},
                        {"agent-4", true, clock_.Now()}});
  EXPECT_THAT(Describe(*pool_->SetTarget(3, false)), ElementsAre("drain agent-2"));
  EXPECT_THAT(pool_->Exited("p2", "exited with status 0"), IsEmpty());
  EXPECT_THAT(Describe(*pool_->SetTarget(6, false)),
              ElementsAre("start agent-2", "start agent-5", "start agent-6"));
  EXPECT_EQ(pool_->target(), 6);
}

TEST_F(PoolTest, ScaleUpDoesNotReuseASlotStillDraining) {
  StartRunning(Options(3));
  EXPECT_THAT(Describe(*pool_->SetTarget(2, false)), ElementsAre("drain agent-3"));
  EXPECT_THAT(Describe(*pool_->SetTarget(3, false)), ElementsAre("start agent-4"));
  EXPECT_THAT(pool_->Exited("p3", "exited with status 0"), IsEmpty());
  EXPECT_THAT(pool_->LaunchSucceeded(4, "p4"), IsEmpty());
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2 0 failures",
                          "agent-4 running p4 0 failures"));
}

TEST_F(PoolTest, ScaleDownDrainsIdleFirstThenTheShortestRunningHighestSlotsAmongEquals) {
  StartRunning(Options(7));
  absl::Time now = clock_.Now();
  pool_->ObserveAgents({{"agent-1", true, now - absl::Seconds(60)},
                        {"agent-2", false, absl::Time()},
                        {"agent-3", true, now - absl::Seconds(10)},
                        {"agent-4", true, now - absl::Seconds(60)},
                        {"agent-5", false, absl::Time()},
                        {"agent-6", true, now - absl::Seconds(60)},
                        {"agent-7", true, now - absl::Seconds(300)}});
  EXPECT_THAT(Describe(*pool_->SetTarget(2, false)),
              ElementsAre("drain agent-5", "drain agent-2", "drain agent-3", "drain agent-6",
                          "drain agent-4"));
  std::vector<PoolSlotStatus> slots = pool_->Snapshot();
  ASSERT_EQ(slots.size(), 7u);
  EXPECT_EQ(slots[0].state, SlotState::kRunning);
  EXPECT_EQ(slots[6].state, SlotState::kRunning);
  EXPECT_EQ(slots[1].state, SlotState::kDraining);
}

TEST_F(PoolTest, ScaleDownTakesSlotsWithNothingRunningBeforeAnyAgent) {
  StartRunning(Options(3));
  EXPECT_THAT(pool_->Exited("p1", "exited with status 2"), IsEmpty());  // restarting
  EXPECT_THAT(pool_->SetTarget(2, false)->size(), 0u);
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-2 running p2 0 failures", "agent-3 running p3 0 failures"));
  clock_.Advance(absl::Minutes(1));
  EXPECT_THAT(pool_->Tick(), IsEmpty());
}

TEST_F(PoolTest, ScaleDownWithForceStopsAtOnce) {
  StartRunning(Options(3));
  EXPECT_THAT(Describe(*pool_->SetTarget(2, false)), ElementsAre("drain agent-3"));
  // Force stops the new victim and the one still draining.
  EXPECT_THAT(Describe(*pool_->SetTarget(1, true)),
              ElementsAre("stop p3 grace 5s releasing its item", "stop p2 grace 5s releasing its item"));
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 stopped p2 0 failures",
                          "agent-3 stopped p3 0 failures"));
  EXPECT_THAT(pool_->Exited("p2", "killed by signal 15"), IsEmpty());
  EXPECT_THAT(pool_->Exited("p3", "killed by signal 9"), IsEmpty());
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 running p1 0 failures"));
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());
}

TEST_F(PoolTest, WhenOnlyTheHighestSlotsCanGoScaleDownDrainsTheHighestWhateverTheyDo) {
  PoolOptions o = Options(4);
  o.highest_slots_only = true;
  StartRunning(o);
  // Without the flag the idle agent-1 and agent-2 would go first.
  pool_->ObserveAgents({{"agent-3", true, clock_.Now() - absl::Minutes(5)},
                        {"agent-4", true, clock_.Now() - absl::Minutes(5)}});
  EXPECT_THAT(Describe(*pool_->SetTarget(2, false)), ElementsAre("drain agent-4", "drain agent-3"));
  EXPECT_EQ(pool_->SlotsToKeep(), 4);  // draining agents keep running until they exit
  EXPECT_THAT(pool_->Exited("p3", "exited with status 0"), IsEmpty());
  EXPECT_EQ(pool_->SlotsToKeep(), 4);
  EXPECT_THAT(pool_->Exited("p4", "exited with status 0"), IsEmpty());
  EXPECT_EQ(pool_->SlotsToKeep(), 2);
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2 0 failures"));
}

TEST_F(PoolTest, WhenOnlyTheHighestSlotsCanGoAForcedScaleDownKeepsNoneOfTheStoppedSlots) {
  PoolOptions o = Options(3);
  o.highest_slots_only = true;
  StartRunning(o);
  EXPECT_THAT(Describe(*pool_->SetTarget(1, true)),
              ElementsAre("stop p3 grace 5s releasing its item", "stop p2 grace 5s releasing its item"));
  EXPECT_EQ(pool_->SlotsToKeep(), 1);
}

TEST_F(PoolTest, WhenOnlyTheHighestSlotsCanGoScaleUpTakesBackALeavingSlotInsteadOfANewNumber) {
  PoolOptions o = Options(3);
  o.highest_slots_only = true;
  StartRunning(o);
  EXPECT_THAT(Describe(*pool_->SetTarget(1, false)), ElementsAre("drain agent-3", "drain agent-2"));
  // Back to 2: slot 2 stays (its draining agent is replaced once it exits), no slot 4 appears.
  EXPECT_THAT(Describe(*pool_->SetTarget(2, false)), IsEmpty());
  EXPECT_EQ(pool_->SlotsToKeep(), 3);  // agent-3 still drains
  EXPECT_THAT(Describe(pool_->Exited("p2", "exited with status 0")), ElementsAre("start agent-2"));
  EXPECT_THAT(pool_->LaunchSucceeded(2, "p2b"), IsEmpty());
  EXPECT_THAT(pool_->Exited("p3", "exited with status 0"), IsEmpty());
  EXPECT_EQ(pool_->SlotsToKeep(), 2);
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2b 0 failures"));
}

TEST_F(PoolTest, ADrainedAgentsExitRemovesItsSlotWithoutRestartingIt) {
  StartRunning(Options(2));
  EXPECT_THAT(Describe(*pool_->SetTarget(1, false)), ElementsAre("drain agent-2"));
  EXPECT_THAT(pool_->Exited("p2", "exited with status 0"), IsEmpty());
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 running p1 0 failures"));
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());
  clock_.Advance(absl::Minutes(1));
  EXPECT_THAT(pool_->Tick(), IsEmpty());
}

TEST_F(PoolTest, TheDeathThatReachesTheThresholdStillRestarts) {
  StartRunning(Options(1));
  DieAndRestart(1, "p1", "p1b");
  DieAndRestart(1, "p1b", "p1c");  // two deaths: max_agent_failures, not more
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 running p1c 2 failures"));
}

TEST_F(PoolTest, AnOperatorsDrainOfOneAgentStartsAFreshOneWithoutCountingADeath) {
  StartRunning(Options(2));
  absl::StatusOr<std::vector<PoolAction>> a = pool_->Replace("agent-2", /*force=*/false);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(Describe(*a), ElementsAre("drain agent-2"));
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 draining p2 0 failures"));
  // Its exit starts the slot again at once: no restart delay, no failure.
  EXPECT_THAT(Describe(pool_->Exited("p2", "exited with status 0")),
              ElementsAre("start agent-2"));
  EXPECT_THAT(pool_->LaunchSucceeded(2, "p2b"), IsEmpty());
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 running p2b 0 failures"));
  // The fresh agent's own death is a death again.
  EXPECT_THAT(pool_->Exited("p2b", "killed by signal 9"), IsEmpty());
  EXPECT_EQ(pool_->Snapshot()[1].state, SlotState::kRestarting);
}

TEST_F(PoolTest, AnOperatorsStopOfOneAgentStopsItAtOnce) {
  StartRunning(Options(1));
  absl::StatusOr<std::vector<PoolAction>> a = pool_->Replace("agent-1", /*force=*/true);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(Describe(*a), ElementsAre("stop p1 grace 5s releasing its item"));
  EXPECT_THAT(Describe(pool_->Exited("p1", "killed by signal 15")),
              ElementsAre("start agent-1"));
  EXPECT_EQ(pool_->Snapshot()[0].failures, 0);
}

TEST_F(PoolTest, ReplacingAnAgentOfNoSlotIsNotFound) {
  StartRunning(Options(1));
  EXPECT_EQ(pool_->Replace("remote-7", false).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pool_->Replace("agent-2", true).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PoolTest, AdoptionStartsOnlyMissingSlotsAndStopsStrays) {
  Pool pool(Options(3), &clock_);
  std::vector<PoolAction> a =
      pool.Adopt({{1, "p1"}, {3, "p3"}, {5, "p5"}, {1, "p1-twin"}, {0, "p-unlabelled"}});
  EXPECT_THAT(Describe(a), ElementsAre("stop p5 grace 5s", "stop p1-twin grace 5s",
                                       "stop p-unlabelled grace 5s", "start agent-2"));
  EXPECT_EQ(a[0].reason, "stray: slot 5 is not in the pool (target 3)");
  EXPECT_THAT(Slots(pool),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 starting 0 failures",
                          "agent-3 running p3 0 failures"));
  EXPECT_THAT(pool.Tick(), IsEmpty());
  // A stray's exit is not a death of any slot.
  EXPECT_THAT(pool.Exited("p5", "killed by signal 15"), IsEmpty());
  EXPECT_EQ(pool.Snapshot()[0].failures, 0);
}

TEST_F(PoolTest, ADeadAgentIsStoppedAndItsSlotRestarted) {
  StartRunning(Options(2));
  EXPECT_THAT(Describe(pool_->AgentDead("agent-2", "no heartbeat for 30s")),
              ElementsAre("stop p2 grace 0"));
  EXPECT_THAT(Slots(*pool_),
              ElementsAre("agent-1 running p1 0 failures", "agent-2 restarting 1 failures"));
  // The killed process's exit is not a second death.
  EXPECT_THAT(pool_->Exited("p2", "killed by signal 9"), IsEmpty());
  EXPECT_EQ(pool_->Snapshot()[1].failures, 1);
  EXPECT_EQ(pool_->Snapshot()[1].reason, "no heartbeat for 30s");
  clock_.Advance(absl::Seconds(10));
  EXPECT_THAT(Describe(pool_->Tick()), ElementsAre("start agent-2"));
}

TEST_F(PoolTest, ADeadAgentOfNoSlotIsIgnored) {
  StartRunning(Options(1));
  EXPECT_THAT(pool_->AgentDead("remote-7", "no heartbeat for 30s"), IsEmpty());
  EXPECT_THAT(Slots(*pool_), ElementsAre("agent-1 running p1 0 failures"));
}

TEST_F(PoolTest, AFailedLaunchCountsAsAFailure) {
  Pool pool(Options(1), &clock_);
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-1"));
    EXPECT_THAT(pool.LaunchFailed(1, "agentd: no such file"), IsEmpty());
    EXPECT_EQ(pool.Snapshot()[0].state, SlotState::kRestarting);
    EXPECT_EQ(pool.Snapshot()[0].failures, i + 1);
    clock_.Advance(absl::Seconds(10));
  }
  EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-1"));
  EXPECT_THAT(Describe(pool.LaunchFailed(1, "agentd: no such file")),
              ElementsAre("alert agent-1 after 3: launch failed: agentd: no such file"));
  EXPECT_THAT(Slots(pool), ElementsAre("agent-1 failed 3 failures"));
}

TEST_F(PoolTest, ALaunchAnsweredAfterItsSlotWasScaledAwayIsStopped) {
  Pool pool(Options(2), &clock_);
  EXPECT_THAT(Describe(pool.Tick()), ElementsAre("start agent-1", "start agent-2"));
  EXPECT_THAT(pool.SetTarget(1, false)->size(), 0u);
  EXPECT_THAT(Describe(pool.LaunchSucceeded(2, "p2")), ElementsAre("stop p2 grace 5s"));
  EXPECT_THAT(pool.Exited("p2", "killed by signal 15"), IsEmpty());
  // An answer nobody waits for is stopped too: nothing launched goes untracked.
  EXPECT_THAT(Describe(pool.LaunchSucceeded(7, "p7")), ElementsAre("stop p7 grace 5s"));
  EXPECT_THAT(pool.LaunchSucceeded(1, "p1"), IsEmpty());
  EXPECT_THAT(Slots(pool), ElementsAre("agent-1 running p1 0 failures"));
}

TEST_F(PoolTest, TheNextTickIsTheEarliestDueStart) {
  PoolOptions o = Options(2);
  o.startup_stagger = absl::Seconds(5);
  StartRunning(o);  // agent-1 now; agent-2 is due at t0 + 5s
  absl::Time t0 = clock_.Now();
  EXPECT_EQ(pool_->NextTick(), t0 + absl::Seconds(5));
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(Describe(pool_->Tick()), ElementsAre("start agent-2"));
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());  // a Start out is not a pending one
  EXPECT_THAT(pool_->LaunchSucceeded(2, "p2"), IsEmpty());
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());
  // Two deaths one second apart: restarts due at +10s and +11s, the second held by the stagger.
  absl::Time t1 = clock_.Now();
  EXPECT_THAT(pool_->Exited("p1", "killed by signal 9"), IsEmpty());
  EXPECT_EQ(pool_->NextTick(), t1 + absl::Seconds(10));
  clock_.Advance(absl::Seconds(1));
  EXPECT_THAT(pool_->Exited("p2", "killed by signal 9"), IsEmpty());
  EXPECT_EQ(pool_->NextTick(), t1 + absl::Seconds(10));
  clock_.Advance(absl::Seconds(9));
  EXPECT_THAT(Describe(pool_->Tick()), ElementsAre("start agent-1"));
  EXPECT_EQ(pool_->NextTick(), t1 + absl::Seconds(15));
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(Describe(pool_->Tick()), ElementsAre("start agent-2"));
  EXPECT_EQ(pool_->NextTick(), absl::InfiniteFuture());
}

TEST_F(PoolTest, ANegativeTargetIsRefused) {
  Pool pool(Options(1), &clock_);
  absl::StatusOr<std::vector<PoolAction>> a = pool.SetTarget(-1, false);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(a.status().message()), testing::HasSubstr("-1"));
  EXPECT_EQ(pool.target(), 1);
}

}  // namespace
}  // namespace harness
