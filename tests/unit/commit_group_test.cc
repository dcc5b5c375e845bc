// WorkQueue::CommitGroup: changes begun under one share a single commit round, nothing is
// durable (nor answered) while it is held, and everything is once it is released.
#include <atomic>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/work_queue.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::MakeSpec;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;

TEST(CommitGroupTest, ACompletionAndTheNextGrantShareOneRound) {
  testing::TempDir dir;
  FakeClock clock(absl::FromUnixSeconds(1000));
  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
  ASSERT_NE(q, nullptr);
  ASSERT_OK(q->Submit({MakeSpec("a"), MakeSpec("b")}));
  absl::StatusOr<std::optional<Grant>> first = q->Acquire("agent-1");
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());

  const uint64_t rounds_before = q->commit_rounds();
  std::atomic<int> answered{0};
  {
    WorkQueue::CommitGroup group(q.get());
    Pending<ReportAnswer> done = q->BeginComplete("a", (*first)->token, AttemptResult{});
    ASSERT_OK(done.value);
    Pending<std::optional<Grant>> next = q->BeginAcquire("agent-1", "");
    ASSERT_OK(next.value);
    ASSERT_TRUE(next.value->has_value());
    EXPECT_EQ((*next.value)->spec.id(), "b");
    q->WhenDurable(done.ticket, [&](absl::Status s) {
      EXPECT_OK(s);
      ++answered;
    });
    q->WhenDurable(next.ticket, [&](absl::Status s) {
      EXPECT_OK(s);
      ++answered;
    });
    // Held: the committer starts no round, so nothing is answered however long we wait.
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_EQ(answered.load(), 0);
    EXPECT_EQ(q->commit_rounds(), rounds_before);
  }
  // Released: both become durable together.
  for (int i = 0; i < 1000 && answered.load() < 2; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(answered.load(), 2);
  EXPECT_EQ(q->commit_rounds(), rounds_before + 1);
  EXPECT_EQ(q->Get("a")->state(), store::ITEM_DONE);
  EXPECT_EQ(q->Get("b")->state(), store::ITEM_LEASED);
}

TEST(CommitGroupTest, GroupsNestAndTheLastReleaseCommits) {
  testing::TempDir dir;
  FakeClock clock(absl::FromUnixSeconds(1000));
  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
  ASSERT_NE(q, nullptr);
  absl::Notification durable;
  {
    WorkQueue::CommitGroup outer(q.get());
    {
      WorkQueue::CommitGroup inner(q.get());
      Pending<std::vector<std::string>> p = q->BeginSubmit({MakeSpec("x")});
      ASSERT_OK(p.value);
      q->WhenDurable(p.ticket, [&](absl::Status s) {
        EXPECT_OK(s);
        durable.Notify();
      });
    }
    EXPECT_FALSE(durable.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  }
  EXPECT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

}  // namespace
}  // namespace harness
