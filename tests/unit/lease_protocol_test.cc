// The lease protocol's rules that the RPC layer used to hold, now in WorkQueue, on a fake clock:
// the result fenced by commit (a repeated report never changes what was recorded), one lease
// per agent, reports only from the lease's own agent, reconciliation of an agent's held leases,
// and the one "lease ended" event that every end publishes once durable (with the wake-up of
// parked acquirers on every path).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/lease_events.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::MakeSpec;
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kTtl = absl::Seconds(10);

// Records every LeaseEnded (they arrive on the store's committer thread).
class RecordingListener : public LeaseListener {
 public:
  void OnLeaseEnded(const LeaseEnded& e) override {
    absl::MutexLock l(&mu_);
    events_.push_back(e);
  }
  // Waits until at least `n` events arrived (they follow durability by a moment), then
  // returns them all.
  std::vector<LeaseEnded> WaitFor(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return events_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(30));
    return events_;
  }

 private:
  absl::Mutex mu_;
  std::vector<LeaseEnded> events_ ABSL_GUARDED_BY(mu_);
};

class LeaseProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenQueueOrDie(QueueOptions(dir_.path(), kTtl), &clock_);
    ASSERT_NE(queue_, nullptr);
    queue_->SetLeaseListener(&events_);
    queue_->SetOnPending([this] {
      absl::MutexLock l(&mu_);
      ++woken_;
    });
  }
  void TearDown() override {
    if (queue_) queue_->SetLeaseListener(nullptr);
  }

  std::optional<Grant> MustAcquire(const std::string& agent) {
    absl::StatusOr<std::optional<Grant>> g = queue_->Acquire(agent);
    EXPECT_TRUE(g.ok()) << g.status();
    if (!g.ok() || !g->has_value()) {
      ADD_FAILURE() << "nothing was granted to " << agent;
      return std::nullopt;
    }
    return *g;
  }

  AttemptResult ResultFrom(const std::string& agent, const std::string& commit) {
    AttemptResult r;
    r.agent = agent;
    r.commit = commit;
    if (!commit.empty()) r.branch = "harness/a";
    return r;
  }

  store::ItemRecord Get(const std::string& id) {
    absl::StatusOr<store::ItemRecord> item = queue_->Get(id);
    EXPECT_TRUE(item.ok()) << item.status();
    return item.value_or(store::ItemRecord());
  }

  int woken() {
    absl::MutexLock l(&mu_);
    return woken_;
  }

  TempDir dir_;
  FakeClock clock_;
  RecordingListener events_;
  std::unique_ptr<WorkQueue> queue_;
  absl::Mutex mu_;
  int woken_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(LeaseProtocolTest, ARepeatedCompleteWithTheSameCommitGetsTheSameAnswer) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  absl::StatusOr<ReportAnswer> first =
      queue_->Wait(queue_->BeginComplete("a", g->token, ResultFrom("agent-1", "c1")));
  ASSERT_OK(first);
  EXPECT_FALSE(first->repeat);
  absl::StatusOr<ReportAnswer> again =
      queue_->Wait(queue_->BeginComplete("a", g->token, ResultFrom("agent-1", "c1")));
  ASSERT_OK(again);
  EXPECT_TRUE(again->repeat);
  EXPECT_EQ(again->commit, "c1");
  EXPECT_EQ(again->branch, "harness/a");
  EXPECT_EQ(again->item_state, store::ITEM_DONE);
  EXPECT_EQ(again->attempt, first->attempt);
  EXPECT_EQ(Get("a").attempts_size(), 1);
  // One end, one event: the repeat published nothing.
  EXPECT_EQ(events_.WaitFor(1).size(), 1u);
}

TEST_F(LeaseProtocolTest, ARepeatedCompleteWithAnotherCommitIsRefusedNamingBothAndChangesNothing) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Complete("a", g->token, ResultFrom("agent-1", "c1")));
  absl::Status s = queue_->Complete("a", g->token, ResultFrom("agent-1", "evil"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("c1"));
  EXPECT_THAT(Msg(s), HasSubstr("evil"));
  // Without a commit it is another result too.
  s = queue_->Complete("a", g->token, ResultFrom("agent-1", ""));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("(no commit)"));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_DONE);
  EXPECT_EQ(item.result_commit(), "c1");
  EXPECT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).commit(), "c1");
  std::vector<LeaseEnded> ended = events_.WaitFor(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].commit, "c1");
}

TEST_F(LeaseProtocolTest, ARepeatedFailWithAnotherCommitIsRefusedNamingBoth) {
  ASSERT_OK(queue_->Submit({MakeSpec("a", 0, /*max_attempts=*/3)}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED, ResultFrom("agent-1", "p1")));
  absl::StatusOr<ReportAnswer> same = queue_->Wait(
      queue_->BeginFail("a", g->token, store::OUTCOME_FAILED, ResultFrom("agent-1", "p1")));
  ASSERT_OK(same);
  EXPECT_TRUE(same->repeat);
  EXPECT_EQ(same->commit, "p1");
  EXPECT_EQ(same->item_state, store::ITEM_PENDING);
  absl::Status other =
      queue_->Fail("a", g->token, store::OUTCOME_FAILED, ResultFrom("agent-1", "p2"));
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_THAT(Msg(other), HasSubstr("p1"));
  EXPECT_THAT(Msg(other), HasSubstr("p2"));
  EXPECT_EQ(Get("a").attempts(0).commit(), "p1");
  EXPECT_EQ(ItemTable::CountedAttempts(Get("a")), 1);
}

TEST_F(LeaseProtocolTest, ARepeatedReleaseGetsTheSameAnswer) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Release("a", g->token, "stopping"));
  absl::StatusOr<ReportAnswer> again =
      queue_->Wait(queue_->BeginRelease("a", g->token, "stopping", "agent-1"));
  ASSERT_OK(again);
  EXPECT_TRUE(again->repeat);
  EXPECT_EQ(again->item_state, store::ITEM_PENDING);
  EXPECT_EQ(Get("a").attempts_size(), 1);
}

TEST_F(LeaseProtocolTest, AnAgentThatAsksAgainWhileHoldingALeaseGetsThatSameLeaseRenewed) {
  ASSERT_OK(queue_->Submit({MakeSpec("a"), MakeSpec("b")}));
  std::optional<Grant> first = MustAcquire("agent-1");
  ASSERT_TRUE(first);
  clock_.Advance(absl::Seconds(6));
  std::optional<Grant> again = MustAcquire("agent-1");  // the first answer was lost
  ASSERT_TRUE(again);
  EXPECT_EQ(again->spec.id(), first->spec.id());
  EXPECT_EQ(again->token, first->token);
  EXPECT_EQ(again->attempt, 1);
  EXPECT_EQ(again->expires, clock_.Now() + kTtl);
  EXPECT_EQ(Get(first->spec.id()).attempts_size(), 1);
  EXPECT_EQ(queue_->Counts().pending, 1);  // the other item is still there for someone else
  std::optional<Grant> other = MustAcquire("agent-2");
  ASSERT_TRUE(other);
  EXPECT_NE(other->spec.id(), first->spec.id());
}

TEST_F(LeaseProtocolTest, AReportFromAnAgentThatDoesNotHoldTheLeaseIsRefused) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  absl::Status s = queue_->Complete("a", g->token, ResultFrom("agent-2", "c1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("belongs to agent \"agent-1\", not to agent \"agent-2\""));
  EXPECT_EQ(queue_->Release("a", g->token).code(), absl::StatusCode::kOk);  // unchecked: no agent
  EXPECT_EQ(Get("a").state(), store::ITEM_PENDING);
  EXPECT_TRUE(Get("a").result_commit().empty());
}

TEST_F(LeaseProtocolTest, EveryWayALeaseEndsPublishesOneEventOnceDurable) {
  ASSERT_OK(queue_->Submit({MakeSpec("done"), MakeSpec("failed", 0, 3), MakeSpec("released"),
                            MakeSpec("cancelled"), MakeSpec("expired"), MakeSpec("restarted"),
                            MakeSpec("stopped")}));
  std::map<std::string, std::optional<Grant>> g;
  for (const char* agent : {"a1", "a2", "a3", "a4", "a5", "a6", "a7"}) {
    std::optional<Grant> grant = MustAcquire(agent);
    ASSERT_TRUE(grant);
    g[grant->spec.id()] = grant;
  }
  ASSERT_OK(queue_->Complete("done", g["done"]->token, ResultFrom("a1", "c-done")));
  ASSERT_OK(
      queue_->Fail("failed", g["failed"]->token, store::OUTCOME_FAILED, ResultFrom("a2", "c-part")));
  ASSERT_OK(queue_->Release("released", g["released"]->token, "bye"));
  ASSERT_OK(queue_->Cancel("cancelled"));
  ASSERT_OK(queue_->Reconcile("a6", {}, Unlisted::kExpire));   // registered again without it
  ASSERT_OK(queue_->Reconcile("a7", {}, Unlisted::kRelease));  // stopped without it
  // Nobody renews "expired".
  clock_.Advance(kTtl);
  ASSERT_OK(queue_->ExpireDue());

  std::vector<LeaseEnded> ended = events_.WaitFor(7);
  ASSERT_EQ(ended.size(), 7u);
  std::map<std::string, LeaseEnded> by_item;
  for (const LeaseEnded& e : ended) {
    EXPECT_FALSE(by_item.count(e.lease.item_id)) << e.lease.item_id << " ended twice";
    by_item[e.lease.item_id] = e;
  }
  EXPECT_EQ(by_item["done"].by, EndedBy::kAgent);
  EXPECT_EQ(by_item["done"].outcome, store::OUTCOME_DONE);
  EXPECT_EQ(by_item["done"].commit, "c-done");
  EXPECT_EQ(by_item["done"].item_state, store::ITEM_DONE);
  EXPECT_EQ(by_item["failed"].outcome, store::OUTCOME_FAILED);
  EXPECT_EQ(by_item["failed"].commit, "c-part");
  EXPECT_EQ(by_item["failed"].item_state, store::ITEM_PENDING);
  EXPECT_EQ(by_item["released"].outcome, store::OUTCOME_RELEASED);
  EXPECT_EQ(by_item["released"].by, EndedBy::kAgent);
  EXPECT_EQ(by_item["released"].commit, "");
  EXPECT_EQ(by_item["cancelled"].by, EndedBy::kCancel);
  EXPECT_EQ(by_item["cancelled"].outcome, store::OUTCOME_CANCELLED);
  EXPECT_EQ(by_item["cancelled"].lease.agent, "a4");
  EXPECT_EQ(by_item["expired"].by, EndedBy::kExpiry);
  EXPECT_EQ(by_item["expired"].outcome, store::OUTCOME_EXPIRED);
  EXPECT_EQ(by_item["restarted"].by, EndedBy::kReconcile);
  EXPECT_EQ(by_item["restarted"].outcome, store::OUTCOME_EXPIRED);
  EXPECT_EQ(by_item["stopped"].by, EndedBy::kReconcile);
  EXPECT_EQ(by_item["stopped"].outcome, store::OUTCOME_RELEASED);
  // Restarting counts as an attempt (the item may be what kills its agent); a stop does not.
  EXPECT_EQ(ItemTable::CountedAttempts(Get("restarted")), 1);
  EXPECT_EQ(ItemTable::CountedAttempts(Get("stopped")), 0);
}

TEST_F(LeaseProtocolTest, AReconcileCanSayWhyItEndsTheLeases) {
  ASSERT_OK(queue_->Submit({MakeSpec("x")}));
  std::optional<Grant> g = MustAcquire("a1");
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Reconcile("a1", {}, Unlisted::kExpire, "its agent died: killed by signal 9"));
  std::vector<LeaseEnded> ended = events_.WaitFor(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].reason, "its agent died: killed by signal 9");
  EXPECT_EQ(ended[0].outcome, store::OUTCOME_EXPIRED);
  EXPECT_EQ(Get("x").attempts(0).error(), "its agent died: killed by signal 9");
  EXPECT_EQ(ItemTable::CountedAttempts(Get("x")), 1);
}

TEST_F(LeaseProtocolTest, AnEndIsPublishedBeforeTheCallerHearsItIsDurable) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  Pending<ReportAnswer> p = queue_->BeginComplete("a", g->token, ResultFrom("agent-1", "c1"));
  ASSERT_OK(p.value);
  absl::Mutex mu;
  size_t events_seen = 99;
  bool answered = false;
  queue_->WhenDurable(p.ticket, [&](absl::Status s) {
    EXPECT_OK(s);
    size_t n = events_.WaitFor(0).size();
    absl::MutexLock l(&mu);
    events_seen = n;
    answered = true;
  });
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(&answered));
  EXPECT_EQ(events_seen, 1u);
}

TEST_F(LeaseProtocolTest, AnExpiryFoundByAReportEndsTheLeaseAsTheTickerWouldAndWakesAcquirers) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  const int woken_before = woken();
  clock_.Advance(kTtl);
  // A Fail that finds the lease expired: refused, and the lease ends with every side effect.
  absl::Status s = queue_->Fail("a", g->token, store::OUTCOME_FAILED, ResultFrom("agent-1", ""));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("the lease expired"));
  EXPECT_EQ(woken(), woken_before + 1);  // a parked acquirer may take the item now
  std::vector<LeaseEnded> ended = events_.WaitFor(1);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].by, EndedBy::kExpiry);
  EXPECT_EQ(Get("a").state(), store::ITEM_PENDING);
  absl::StatusOr<std::vector<Lease>> again = queue_->ExpireDue();
  ASSERT_OK(again);
  EXPECT_THAT(*again, IsEmpty());  // ended once
}

TEST_F(LeaseProtocolTest, ACompleteRefusedForAnExpiredLeaseWakesAcquirersToo) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  const int woken_before = woken();
  clock_.Advance(kTtl);
  EXPECT_EQ(queue_->Complete("a", g->token, ResultFrom("agent-1", "c")).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(woken(), woken_before + 1);
  EXPECT_TRUE(Get("a").result_commit().empty());
}

TEST_F(LeaseProtocolTest, AHeartbeatRenewsItsOwnLeasesAndHearsTheOthersAreLost) {
  ASSERT_OK(queue_->Submit({MakeSpec("a"), MakeSpec("b")}));
  std::optional<Grant> mine = MustAcquire("agent-1");
  std::optional<Grant> theirs = MustAcquire("agent-2");
  ASSERT_TRUE(mine && theirs);
  clock_.Advance(absl::Seconds(4));
  absl::StatusOr<Reconciled> r = queue_->Reconcile(
      "agent-1",
      {HeldLease{mine->spec.id(), mine->token}, HeldLease{theirs->spec.id(), theirs->token},
       HeldLease{mine->spec.id(), mine->token + 100}},
      Unlisted::kKeep);
  ASSERT_OK(r);
  ASSERT_EQ(r->renewed.size(), 1u);
  EXPECT_EQ(r->renewed[0].token, mine->token);
  EXPECT_EQ(r->renewed[0].expires, clock_.Now() + kTtl);
  ASSERT_EQ(r->lost.size(), 2u);
  EXPECT_THAT(r->lost[0].second, HasSubstr("belongs to agent \"agent-2\""));
  EXPECT_THAT(r->lost[1].second, HasSubstr("no longer valid"));
  EXPECT_THAT(r->ended, IsEmpty());
  // Nothing of agent-2's changed.
  EXPECT_EQ(queue_->LeaseOf(theirs->spec.id())->expires, theirs->expires);
}

TEST_F(LeaseProtocolTest, RegisteringAgainKeepsTheListedLeaseAndEndsTheOthersOfThatAgent) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  absl::StatusOr<Reconciled> kept =
      queue_->Reconcile("agent-1", {HeldLease{"a", g->token}}, Unlisted::kExpire);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->renewed.size(), 1u);
  EXPECT_THAT(kept->ended, IsEmpty());
  EXPECT_EQ(Get("a").state(), store::ITEM_LEASED);
  absl::StatusOr<Reconciled> restarted = queue_->Reconcile("agent-1", {}, Unlisted::kExpire);
  ASSERT_OK(restarted);
  ASSERT_EQ(restarted->ended.size(), 1u);
  EXPECT_EQ(restarted->ended[0].token, g->token);
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_EXPIRED);
  EXPECT_THAT(item.attempts(0).error(), HasSubstr("registered again without it"));
}

TEST_F(LeaseProtocolTest, CheckLiveRefusesAnExpiredLeaseAndEndsIt) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  absl::StatusOr<Lease> live = queue_->CheckLive("a", g->token, "agent-1");
  ASSERT_OK(live);
  EXPECT_EQ(live->agent, "agent-1");
  EXPECT_EQ(queue_->CheckLive("a", g->token, "agent-9").status().code(),
            absl::StatusCode::kFailedPrecondition);
  clock_.Advance(kTtl);
  absl::StatusOr<Lease> late = queue_->CheckLive("a", g->token, "agent-1");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition) << late.status();
  EXPECT_THAT(Msg(late.status()), HasSubstr("expired"));
  EXPECT_EQ(events_.WaitFor(1).size(), 1u);
  EXPECT_FALSE(queue_->LeaseOf("a").has_value());
}

}  // namespace
}  // namespace harness
