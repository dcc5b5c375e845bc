// The lease state machine of WorkQueue on a fake clock: grant, renew, expiry, fencing tokens
// (also across a restart), the one TTL a lease found on disk gets, run order, retries and
// parking, release, cancel, terminal failure, and the state dir's single owner.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/item_table.h"
#include "core/paths.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::ListNames;
using ::harness::testing::MakeSpec;
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kTtl = absl::Seconds(10);

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Reopen()); }

  // Closes the queue (if open) and opens it again on the same state dir and clock.
  void Reopen() {
    queue_.reset();
    queue_ = OpenQueueOrDie(QueueOptions(dir_.path(), kTtl), &clock_);
    ASSERT_NE(queue_, nullptr);
  }

  void Submit(std::vector<store::ItemSpec> specs) {
    absl::StatusOr<std::vector<std::string>> ids = queue_->Submit(std::move(specs));
    ASSERT_OK(ids);
  }

  // The next grant for `agent` (by default an agent of its own: an agent holds one lease at a
  // time); nullopt (and a test failure) if there is none.
  std::optional<Grant> MustAcquire(std::string agent = "") {
    if (agent.empty()) agent = absl::StrCat("agent-", ++agents_);
    absl::StatusOr<std::optional<Grant>> g = queue_->Acquire(agent);
    EXPECT_TRUE(g.ok()) << g.status();
    if (!g.ok()) return std::nullopt;
    EXPECT_TRUE(g->has_value()) << "nothing was granted to " << agent;
    if (g->has_value()) agent_of_[(*g)->token] = agent;
    return *g;
  }

  // A heartbeat of the lease's agent listing it: the new expiry, or why it is lost.
  absl::StatusOr<absl::Time> Renew(const std::string& item_id, uint64_t token) {
    absl::StatusOr<Reconciled> r =
        queue_->Reconcile(agent_of_[token], {HeldLease{item_id, token}}, Unlisted::kKeep);
    if (!r.ok()) return r.status();
    if (!r->renewed.empty()) return r->renewed[0].expires;
    if (!r->lost.empty()) return absl::FailedPreconditionError(r->lost[0].second);
    return absl::InternalError("neither renewed nor lost");
  }

  bool NothingToAcquire() {
    absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-idle");
    return g.ok() && !g->has_value();
  }

  store::ItemRecord Get(const std::string& id) {
    absl::StatusOr<store::ItemRecord> item = queue_->Get(id);
    EXPECT_TRUE(item.ok()) << item.status();
    return item.value_or(store::ItemRecord());
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  FakeClock clock_;
  std::unique_ptr<WorkQueue> queue_;
  int agents_ = 100;
  std::map<uint64_t, std::string> agent_of_;  // token -> the agent it was granted to
};

TEST_F(LeaseTest, RenewedLeaseOutlivesItsOriginalTtl) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->expires, clock_.Now() + kTtl);
  clock_.Advance(absl::Seconds(8));
  absl::StatusOr<absl::Time> renewed = Renew("a", g->token);
  ASSERT_OK(renewed);
  EXPECT_EQ(*renewed, clock_.Now() + kTtl);
  clock_.Advance(absl::Seconds(8));  // 16s after the grant: past the first TTL
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  EXPECT_THAT(*expired, IsEmpty());
  EXPECT_EQ(queue_->NextExpiry(), *renewed);
  EXPECT_OK(queue_->Complete("a", g->token));
  EXPECT_EQ(Get("a").state(), store::ITEM_DONE);
}

TEST_F(LeaseTest, AHeartbeatRenewsOnlyTheLeasesItsAgentLists) {
  Submit({MakeSpec("a"), MakeSpec("b")});
  std::optional<Grant> a = MustAcquire("agent-1");
  std::optional<Grant> b = MustAcquire("agent-2");
  ASSERT_TRUE(a && b);
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<Reconciled> r =
      queue_->Reconcile("agent-1", {HeldLease{"a", a->token}}, Unlisted::kKeep);
  ASSERT_OK(r);
  EXPECT_EQ(r->renewed.size(), 1u);
  EXPECT_THAT(r->lost, IsEmpty());
  EXPECT_THAT(r->ended, IsEmpty());
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].item_id, "b");
  EXPECT_EQ(Get("a").state(), store::ITEM_LEASED);
}

TEST_F(LeaseTest, UnrenewedLeaseExpiresAndTheItemIsGrantedAgainWithAHigherToken) {
  Submit({MakeSpec("a")});
  std::optional<Grant> first = MustAcquire("agent-1");
  ASSERT_TRUE(first);
  clock_.Advance(kTtl);
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].item_id, "a");
  EXPECT_EQ((*expired)[0].token, first->token);
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_EXPIRED);
  EXPECT_THAT(item.error(), HasSubstr("lease expired"));
  EXPECT_FALSE(PathExists(paths_.ClaimFile("a")));

  std::optional<Grant> second = MustAcquire("agent-2");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->spec.id(), "a");
  EXPECT_GT(second->token, first->token);
  EXPECT_EQ(second->attempt, 2);
}

TEST_F(LeaseTest, LateCompleteWithTheOldTokenIsRefusedAndTheNewHoldersResultStands) {
  Submit({MakeSpec("a")});
  std::optional<Grant> old_grant = MustAcquire("agent-1");
  ASSERT_TRUE(old_grant);
  clock_.Advance(kTtl);
  ASSERT_OK(queue_->ExpireDue());
  std::optional<Grant> new_grant = MustAcquire("agent-2");
  ASSERT_TRUE(new_grant);

  AttemptResult late;
  late.commit = "old-commit";
  absl::Status s = queue_->Complete("a", old_grant->token, late);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr(absl::StrCat("lease token ", old_grant->token)));
  EXPECT_THAT(Msg(s), HasSubstr("is no longer valid"));
  EXPECT_EQ(Get("a").state(), store::ITEM_LEASED);

  AttemptResult good;
  good.commit = "new-commit";
  good.branch = "harness/a";
  ASSERT_OK(queue_->Complete("a", new_grant->token, good));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_DONE);
  EXPECT_EQ(item.result_commit(), "new-commit");
  EXPECT_EQ(item.result_branch(), "harness/a");
  ASSERT_EQ(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_EXPIRED);
  EXPECT_EQ(item.attempts(1).outcome(), store::OUTCOME_DONE);

  // And once done, the old token stays refused, saying how its attempt ended.
  s = queue_->Complete("a", old_grant->token, late);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("ended as expired"));
  EXPECT_EQ(Get("a").result_commit(), "new-commit");
}

// /metrics' harness_leases_granted_total and harness_leases_fenced_total.
TEST_F(LeaseTest, GrantsAndCallsRefusedForAStaleTokenAreCounted) {
  Submit({MakeSpec("a")});
  std::optional<Grant> old_grant = MustAcquire("agent-1");
  ASSERT_TRUE(old_grant);
  EXPECT_EQ(queue_->leases_granted(), 1u);
  clock_.Advance(kTtl);
  ASSERT_OK(queue_->ExpireDue());
  std::optional<Grant> new_grant = MustAcquire("agent-2");
  ASSERT_TRUE(new_grant);
  EXPECT_EQ(queue_->leases_granted(), 2u);
  EXPECT_EQ(queue_->leases_fenced(), 0u);

  EXPECT_FALSE(queue_->Complete("a", old_grant->token).ok());  // a late result
  EXPECT_FALSE(Renew("a", old_grant->token).ok());             // a late renewal
  EXPECT_EQ(queue_->leases_fenced(), 2u);
  ASSERT_OK(queue_->Complete("a", new_grant->token));
  ASSERT_OK(queue_->Complete("a", new_grant->token));  // a retried report: the same answer
  EXPECT_EQ(queue_->leases_fenced(), 2u);
  EXPECT_EQ(queue_->leases_granted(), 2u);
}

TEST_F(LeaseTest, RetriedCompleteWhoseAnswerWasLostGetsTheSameAnswer) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  AttemptResult r;
  r.commit = "first";
  ASSERT_OK(queue_->Complete("a", g->token, r));
  ASSERT_OK(queue_->Complete("a", g->token, r));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_DONE);
  EXPECT_EQ(item.result_commit(), "first");
  EXPECT_EQ(item.attempts_size(), 1);
  // But a token that ended otherwise cannot turn into a completion.
  absl::Status other = queue_->Fail("a", g->token, store::OUTCOME_FAILED);
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_EQ(Get("a").state(), store::ITEM_DONE);
}

TEST_F(LeaseTest, RetriedFailReportCountsOnce) {
  Submit({MakeSpec("a", 0, /*max_attempts=*/2)});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED));
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  EXPECT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(ItemTable::CountedAttempts(item), 1);
  EXPECT_EQ(queue_->Complete("a", g->token).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(LeaseTest, CompleteAfterExpiryIsRefusedEvenBeforeExpireDueRuns) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  clock_.Advance(kTtl);
  absl::Status s = queue_->Complete("a", g->token);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("no longer valid: the lease expired"));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_EXPIRED);
  EXPECT_FALSE(PathExists(paths_.ClaimFile("a")));
  EXPECT_FALSE(queue_->LeaseOf("a").has_value());
}

TEST_F(LeaseTest, RenewAfterExpiryIsRefusedAndDoesNotReviveTheLease) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  clock_.Advance(kTtl);
  absl::StatusOr<absl::Time> renewed = Renew("a", g->token);
  EXPECT_EQ(renewed.status().code(), absl::StatusCode::kFailedPrecondition) << renewed.status();
  EXPECT_THAT(Msg(renewed.status()), HasSubstr("expired"));
  EXPECT_FALSE(queue_->LeaseOf("a").has_value());
  EXPECT_EQ(Get("a").state(), store::ITEM_PENDING);
}

TEST_F(LeaseTest, TokensStayMonotonicAcrossARestart) {
  Submit({MakeSpec("a"), MakeSpec("b"), MakeSpec("c")});
  std::optional<Grant> a = MustAcquire();
  std::optional<Grant> b = MustAcquire();
  ASSERT_TRUE(a && b);
  ASSERT_OK(queue_->Complete("a", a->token));
  uint64_t max_old = std::max(a->token, b->token);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().leases_kept, 1u);
  std::optional<Grant> c = MustAcquire();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->spec.id(), "c");
  EXPECT_GT(c->token, max_old);

  // The lease of b, found on disk, expires; b's next grant still gets a fresh token.
  clock_.Advance(kTtl);
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  EXPECT_EQ(expired->size(), 2u);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::optional<Grant> b2 = MustAcquire();
  std::optional<Grant> c2 = MustAcquire();
  ASSERT_TRUE(b2 && c2);
  EXPECT_EQ(b2->spec.id(), "b");
  EXPECT_GT(b2->token, c->token);
  EXPECT_GT(c2->token, b2->token);
}

TEST_F(LeaseTest, LeaseFoundOnDiskAfterARestartGetsOneTtlToComplete) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  clock_.Advance(absl::Seconds(8));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  // The controller was down past the lease's first expiry.
  clock_.Advance(absl::Seconds(5));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().leases_kept, 1u);
  std::optional<Lease> lease = queue_->LeaseOf("a");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->token, g->token);
  EXPECT_EQ(lease->agent, "agent-1");
  EXPECT_EQ(lease->expires, clock_.Now() + kTtl);

  clock_.Advance(kTtl - absl::Seconds(1));
  AttemptResult r;
  r.commit = "abc";
  ASSERT_OK(queue_->Complete("a", g->token, r));
  EXPECT_EQ(Get("a").state(), store::ITEM_DONE);
  EXPECT_EQ(Get("a").result_commit(), "abc");
}

TEST_F(LeaseTest, LeaseFoundOnDiskAfterARestartExpiresAfterOneTtlAndIsRequeued) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_TRUE(queue_->LeaseOf("a"));
  clock_.Advance(kTtl);
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].token, g->token);
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_EXPIRED);
  EXPECT_FALSE(PathExists(paths_.ClaimFile("a")));
  absl::Status late = queue_->Complete("a", g->token);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition) << late;
  std::optional<Grant> again = MustAcquire("agent-2");
  ASSERT_TRUE(again);
  EXPECT_GT(again->token, g->token);
}

TEST_F(LeaseTest, HigherPriorityRunsFirstAndTiesRunOldestFirst) {
  Submit({MakeSpec("low-1", 0), MakeSpec("high-1", 5)});
  clock_.Advance(absl::Seconds(1));
  Submit({MakeSpec("neg", -3), MakeSpec("low-2", 0)});
  Submit({MakeSpec("high-2", 5)});
  std::vector<std::string> order;
  for (int i = 0; i < 5; ++i) {
    std::optional<Grant> g = MustAcquire();
    ASSERT_TRUE(g);
    order.push_back(g->spec.id());
  }
  EXPECT_THAT(order, ElementsAre("high-1", "high-2", "low-1", "low-2", "neg"));
  EXPECT_TRUE(NothingToAcquire());
}

TEST_F(LeaseTest, RequeuedItemKeepsItsPlaceInTheOrder) {
  Submit({MakeSpec("first"), MakeSpec("second")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  ASSERT_EQ(g->spec.id(), "first");
  ASSERT_OK(queue_->Fail("first", g->token, store::OUTCOME_FAILED));
  std::optional<Grant> again = MustAcquire();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->spec.id(), "first");
}

TEST_F(LeaseTest, StalledAttemptsCountAndParkTheItemAfterMaxAttempts) {
  Submit({MakeSpec("s", 0, /*max_attempts=*/2)});
  for (int attempt = 1; attempt <= 2; ++attempt) {
    std::optional<Grant> g = MustAcquire();
    ASSERT_TRUE(g);
    AttemptResult r;
    r.error = "stalled: no output and no file change for 900 s";
    ASSERT_OK(queue_->Fail("s", g->token, store::OUTCOME_STALLED, r));
    EXPECT_EQ(Get("s").state(), attempt < 2 ? store::ITEM_PENDING : store::ITEM_PARKED);
  }
  store::ItemRecord parked = Get("s");
  EXPECT_EQ(parked.attempts(0).outcome(), store::OUTCOME_STALLED);
  EXPECT_EQ(ItemTable::CountedAttempts(parked), 2);
  EXPECT_THAT(parked.error(), HasSubstr("gave up after 2 attempts; last: stalled"));
}

TEST_F(LeaseTest, FailingItemIsRetriedThenParkedAndRetryMakesItPendingAgain) {
  Submit({MakeSpec("a", 0, /*max_attempts=*/3)});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    std::optional<Grant> g = MustAcquire();
    ASSERT_TRUE(g);
    EXPECT_EQ(g->attempt, attempt);
    AttemptResult r;
    r.exit_code = 1;
    r.error = absl::StrCat("boom ", attempt);
    ASSERT_OK(queue_->Fail("a", g->token,
                           attempt == 2 ? store::OUTCOME_TIMEOUT : store::OUTCOME_FAILED, r));
    store::ItemRecord item = Get("a");
    EXPECT_EQ(item.state(), attempt < 3 ? store::ITEM_PENDING : store::ITEM_PARKED) << attempt;
  }
  store::ItemRecord parked = Get("a");
  EXPECT_THAT(parked.error(), HasSubstr("gave up after 3 attempts"));
  EXPECT_THAT(parked.error(), HasSubstr("boom 3"));
  EXPECT_EQ(parked.attempts(1).outcome(), store::OUTCOME_TIMEOUT);
  EXPECT_EQ(queue_->Counts().parked, 1);
  EXPECT_TRUE(NothingToAcquire());

  ASSERT_OK(queue_->Retry("a"));
  store::ItemRecord retried = Get("a");
  EXPECT_EQ(retried.state(), store::ITEM_PENDING);
  EXPECT_TRUE(retried.error().empty());
  EXPECT_EQ(ItemTable::CountedAttempts(retried), 0);
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->attempt, 4);
  // A fresh budget: one failure after the retry sends it back to pending, not to parked.
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED));
  EXPECT_EQ(Get("a").state(), store::ITEM_PENDING);
}

TEST_F(LeaseTest, ExpiryCountsAsAnAttempt) {
  Submit({MakeSpec("a", 0, /*max_attempts=*/1)});
  ASSERT_TRUE(MustAcquire());
  clock_.Advance(kTtl);
  ASSERT_OK(queue_->ExpireDue());
  EXPECT_EQ(Get("a").state(), store::ITEM_PARKED);
}

TEST_F(LeaseTest, ReleaseDoesNotCountAsAnAttempt) {
  Submit({MakeSpec("a", 0, /*max_attempts=*/1)});
  for (int i = 0; i < 3; ++i) {
    std::optional<Grant> g = MustAcquire();
    ASSERT_TRUE(g);
    ASSERT_OK(queue_->Release("a", g->token, "agent is draining"));
    store::ItemRecord item = Get("a");
    EXPECT_EQ(item.state(), store::ITEM_PENDING);
    EXPECT_EQ(item.attempts(i).outcome(), store::OUTCOME_RELEASED);
    EXPECT_EQ(item.attempts(i).error(), "agent is draining");
    EXPECT_EQ(ItemTable::CountedAttempts(item), 0);
  }
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED));
  EXPECT_EQ(Get("a").state(), store::ITEM_PARKED);
}

TEST_F(LeaseTest, CancelledPendingItemIsNeverGranted) {
  Submit({MakeSpec("a")});
  absl::StatusOr<std::optional<Lease>> cancelled = queue_->Cancel("a");
  ASSERT_OK(cancelled);
  EXPECT_FALSE(cancelled->has_value());
  EXPECT_EQ(Get("a").state(), store::ITEM_CANCELLED);
  EXPECT_EQ(queue_->Counts().cancelled, 1);
  EXPECT_EQ(queue_->Counts().pending, 0);
  EXPECT_TRUE(NothingToAcquire());
  absl::StatusOr<std::optional<Lease>> again = queue_->Cancel("a");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_THAT(Msg(again.status()), HasSubstr("is cancelled"));
}

TEST_F(LeaseTest, CancelledLeaseCannotCompleteAndItsClaimIsRemoved) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire("agent-1");
  ASSERT_TRUE(g);
  absl::StatusOr<std::optional<Lease>> cancelled = queue_->Cancel("a");
  ASSERT_OK(cancelled);
  ASSERT_TRUE(cancelled->has_value());
  EXPECT_EQ((*cancelled)->token, g->token);
  EXPECT_EQ((*cancelled)->agent, "agent-1");
  EXPECT_FALSE(PathExists(paths_.ClaimFile("a")));

  absl::Status s = queue_->Complete("a", g->token);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("the item is cancelled"));
  EXPECT_EQ(Renew("a", g->token).status().code(), absl::StatusCode::kFailedPrecondition);
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_CANCELLED);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_CANCELLED);
  EXPECT_TRUE(item.result_commit().empty());
}

TEST_F(LeaseTest, DoneItemCannotBeCancelledOrRetried) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Complete("a", g->token));
  EXPECT_EQ(queue_->Cancel("a").status().code(), absl::StatusCode::kFailedPrecondition);
  absl::Status retry = queue_->Retry("a");
  EXPECT_EQ(retry.code(), absl::StatusCode::kFailedPrecondition) << retry;
  EXPECT_THAT(Msg(retry), HasSubstr("only failed or parked items can be retried"));
  EXPECT_EQ(Get("a").state(), store::ITEM_DONE);
}

TEST_F(LeaseTest, NotRetryableFailureGoesToFailed) {
  Submit({MakeSpec("a", 0, /*max_attempts=*/5)});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  AttemptResult r;
  r.exit_code = 2;
  r.error = "setup failed: no such command";
  r.not_retryable = true;
  ASSERT_OK(queue_->Fail("a", g->token, store::OUTCOME_FAILED, r));
  store::ItemRecord item = Get("a");
  EXPECT_EQ(item.state(), store::ITEM_FAILED);
  EXPECT_EQ(item.error(), "setup failed: no such command");
  EXPECT_EQ(item.attempts(0).exit_code(), 2);
  EXPECT_EQ(queue_->Counts().failed, 1);
  EXPECT_TRUE(NothingToAcquire());
  ASSERT_OK(queue_->Retry("a"));
  EXPECT_EQ(Get("a").state(), store::ITEM_PENDING);
}

TEST_F(LeaseTest, FailWithAnOutcomeOtherThanFailedOrTimeoutIsInvalid) {
  Submit({MakeSpec("a")});
  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  absl::Status s = queue_->Fail("a", g->token, store::OUTCOME_DONE);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(Get("a").state(), store::ITEM_LEASED);
}

TEST_F(LeaseTest, BeginFormsAnswerOnceDurableAndWakeWaitersForPendingItems) {
  int woken = 0;
  queue_->SetOnPending([&] { ++woken; });
  Pending<std::vector<std::string>> submitted = queue_->BeginSubmit({MakeSpec("a")});
  ASSERT_OK(submitted.value);
  EXPECT_NE(submitted.ticket, 0u);
  EXPECT_EQ(woken, 1);
  absl::Notification durable;
  absl::Status answer = absl::UnknownError("not called");
  queue_->WhenDurable(submitted.ticket, [&](absl::Status s) {
    answer = s;
    durable.Notify();
  });
  durable.WaitForNotification();
  EXPECT_OK(answer);

  std::optional<Grant> g = MustAcquire();
  ASSERT_TRUE(g);
  ASSERT_OK(queue_->Release("a", g->token));
  EXPECT_EQ(woken, 2);
  g = MustAcquire();
  ASSERT_TRUE(g);
  clock_.Advance(kTtl);
  ASSERT_OK(queue_->ExpireDue());
  EXPECT_EQ(woken, 3);
  // Nothing to wait for: answered at once.
  bool called = false;
  queue_->WhenDurable(0, [&](absl::Status s) { called = s.ok(); });
  EXPECT_TRUE(called);
}

TEST_F(LeaseTest, SecondOpenOfAStateDirInUseIsRefused) {
  absl::StatusOr<std::unique_ptr<WorkQueue>> second =
      WorkQueue::Open(QueueOptions(dir_.path(), kTtl), &clock_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(Msg(second.status()), HasSubstr("in use"));
  EXPECT_THAT(Msg(second.status()), HasSubstr(dir_.path()));
  queue_.reset();
  absl::StatusOr<std::unique_ptr<WorkQueue>> after =
      WorkQueue::Open(QueueOptions(dir_.path(), kTtl), &clock_);
  EXPECT_OK(after);
}

TEST_F(LeaseTest, CountsFollowEveryTransition) {
  Submit({MakeSpec("a"), MakeSpec("b"), MakeSpec("c"), MakeSpec("d")});
  std::optional<Grant> a = MustAcquire();
  std::optional<Grant> b = MustAcquire();
  ASSERT_TRUE(a && b);
  ASSERT_OK(queue_->Complete("a", a->token));
  ASSERT_OK(queue_->Cancel("c"));
  QueueCounts c = queue_->Counts();
  EXPECT_EQ(c.total, 4);
  EXPECT_EQ(c.pending, 1);
  EXPECT_EQ(c.leased, 1);
  EXPECT_EQ(c.done, 1);
  EXPECT_EQ(c.cancelled, 1);
  EXPECT_EQ(queue_->Leases().size(), 1u);
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), ElementsAre("b"));
}

}  // namespace
}  // namespace harness
