// The claim suite: who holds an item is decided by a hard link in claims/, never twice, whether
// the claimers are threads, processes (claim_stress_worker) or agents asking the WorkQueue.
// The same rules are checked against ClaimDir (the on-disk arbiter) and WorkQueue (which grants
// leases and commits them through ClaimDir).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <optional>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "core/claim_dir.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::Eventually;
using ::harness::testing::LeaseFileOf;
using ::harness::testing::ListNames;
using ::harness::testing::MakeSpec;
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

store::LeaseRecord MakeLease(const std::string& item, uint64_t token, const std::string& agent,
                             absl::Time expires = kStart + absl::Seconds(30)) {
  store::LeaseRecord lease;
  lease.set_item_id(item);
  lease.set_token(token);
  lease.set_agent(agent);
  lease.set_attempt(1);
  lease.set_granted_unix_ms(absl::ToUnixMillis(kStart));
  lease.set_expires_unix_ms(absl::ToUnixMillis(expires));
  return lease;
}

class ClaimDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ClaimDir>> c = ClaimDir::Open(paths_);
    ASSERT_TRUE(c.ok()) << c.status();
    claims_ = std::move(*c);
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  std::unique_ptr<ClaimDir> claims_;
};

TEST_F(ClaimDirTest, SingleClaimSucceedsAndCanBeReadBack) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 7, "agent-1")));
  ASSERT_OK(claims_->Sync());
  absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), 7u);
  EXPECT_EQ(cur->agent(), "agent-1");
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), ElementsAre("item-1"));
}

// A lease record lives in a slot the ClaimDir reuses: once its claim is dropped the next claim
// writes over it in place, so leases/ does not change. Should that write not reach the disk
// before a crash, the claim links to the record of the lease the slot held before: Scan reports
// what the record names (recovery decides whose the claim is, recovery_test).
TEST_F(ClaimDirTest, ADroppedLeasesSlotIsReusedAndScanReportsWhatItsRecordNames) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 5, "agent-old")));
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0"));
  claims_->Drop("item-1", 5);
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0"));

  ASSERT_OK(claims_->Claim(MakeLease("item-2", 9, "agent-new")));
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0"));
  EXPECT_EQ(LeaseFileOf(paths_, "item-2"), paths_.LeasesDir() + "/.slot-0");
  absl::StatusOr<store::LeaseRecord> read = claims_->Read("item-2");
  ASSERT_OK(read);
  EXPECT_EQ(read->token(), 9u);
  EXPECT_EQ(read->agent(), "agent-new");
  ASSERT_OK(claims_->Claim(MakeLease("item-3", 10, "agent-new")));
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0", ".slot-1"));

  // The lost rewrites: item-2's slot holds item-1's record again, item-3's a record of item-3
  // with an older token.
  {
    std::ofstream f(paths_.ClaimFile("item-2"), std::ios::trunc | std::ios::binary);
    f << EncodeLeaseRecord(MakeLease("item-1", 5, "agent-old"));
  }
  {
    std::ofstream f(paths_.ClaimFile("item-3"), std::ios::trunc | std::ios::binary);
    f << EncodeLeaseRecord(MakeLease("item-3", 4, "agent-old"));
  }
  absl::StatusOr<std::vector<ClaimDir::Entry>> scan = claims_->Scan();
  ASSERT_OK(scan);
  ASSERT_EQ(scan->size(), 2u);
  std::sort(scan->begin(), scan->end(),
            [](const auto& a, const auto& b) { return a.item_id < b.item_id; });
  EXPECT_EQ((*scan)[0].item_id, "item-2");
  EXPECT_EQ((*scan)[0].token, 0u) << "another item's record is not the claim's";
  EXPECT_FALSE((*scan)[0].lease.has_value());
  EXPECT_EQ((*scan)[1].item_id, "item-3");
  EXPECT_EQ((*scan)[1].token, 4u);

  // Rewrite puts the right record back, in place.
  ASSERT_OK(claims_->Rewrite(MakeLease("item-2", 9, "agent-new")));
  EXPECT_EQ(claims_->Read("item-2")->token(), 9u);
  EXPECT_EQ(LeaseFileOf(paths_, "item-2"), paths_.LeasesDir() + "/.slot-0");
  EXPECT_EQ(claims_->Rewrite(MakeLease("item-9", 1, "a")).code(), absl::StatusCode::kNotFound);
}

// Slots outlive their claims only while the ClaimDir does: closed, it removes those no claim
// links to, and a new one never takes over a slot a claim still links to.
TEST_F(ClaimDirTest, ClosingRemovesFreeSlotsAndKeepsThoseAClaimLinksTo) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 1, "agent-1")));
  ASSERT_OK(claims_->Claim(MakeLease("item-2", 2, "agent-1")));
  claims_->Drop("item-1", 1);
  claims_.reset();
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-1"));
  auto again = ClaimDir::Open(paths_);
  ASSERT_OK(again);
  ASSERT_OK((*again)->Claim(MakeLease("item-3", 3, "agent-1")));
  ASSERT_OK((*again)->Claim(MakeLease("item-4", 4, "agent-1")));
  EXPECT_EQ(LeaseFileOf(paths_, "item-2"), paths_.LeasesDir() + "/.slot-1");
  EXPECT_EQ((*again)->Read("item-2")->token(), 2u);
  EXPECT_EQ((*again)->Read("item-3")->token(), 3u);
  EXPECT_EQ((*again)->Read("item-4")->token(), 4u);
  // The earlier run's slot is not this one's: when its claim goes it is an orphan, which
  // RemoveOrphanLeaseFiles removes and this ClaimDir's own free slots it keeps.
  (*again)->Drop("item-2", 2);
  (*again)->Drop("item-3", 3);
  absl::StatusOr<int> removed = (*again)->RemoveOrphanLeaseFiles();
  ASSERT_OK(removed);
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(ListNames(paths_.LeasesDir()).size(), 3u);  // .lock and the two slots of this run
  EXPECT_FALSE(PathExists(paths_.LeasesDir() + "/.slot-1"));
}

TEST_F(ClaimDirTest, DuplicateClaimFailsNamingTheItemAndItsHolder) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 1, "agent-1")));
  absl::Status s = claims_->Claim(MakeLease("item-1", 2, "agent-2"));
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(Msg(s), HasSubstr("\"item-1\""));
  EXPECT_THAT(Msg(s), HasSubstr("already claimed"));
  EXPECT_THAT(Msg(s), HasSubstr("\"agent-1\""));
  EXPECT_THAT(Msg(s), HasSubstr("lease token 1"));
  // The loser's slot is free for the next claim, and the winner keeps the item.
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), ElementsAre("item-1"));
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0", ".slot-1"));
  ASSERT_OK(claims_->Claim(MakeLease("item-2", 3, "agent-2")));
  EXPECT_EQ(ListNames(paths_.LeasesDir()).size(), 3u);
  absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), 1u);
}

TEST_F(ClaimDirTest, ExactlyOneOfTenThreadsClaimingOneItemWins) {
  constexpr int kThreads = 10;
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    std::latch start(kThreads);
    std::atomic<int> wins{0};
    std::atomic<int> already{0};
    std::atomic<uint64_t> winner{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        uint64_t token = static_cast<uint64_t>(round) * 100 + t + 1;
        start.arrive_and_wait();
        absl::Status s = claims_->Claim(MakeLease("item-x", token, absl::StrCat("agent-", t)));
        if (s.ok()) {
          wins.fetch_add(1);
          winner.store(token);
        } else if (absl::IsAlreadyExists(s)) {
          already.fetch_add(1);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(wins.load(), 1) << "round " << round;
    ASSERT_EQ(already.load(), kThreads - 1) << "round " << round;
    absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-x");
    ASSERT_OK(cur);
    ASSERT_EQ(cur->token(), winner.load());
    ASSERT_OK(claims_->Release("item-x", winner.load()));
  }
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_LE(ListNames(paths_.LeasesDir()).size(), 1u + kThreads);  // a slot per claimer at most
  claims_.reset();
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock"));
}

TEST_F(ClaimDirTest, ReleasedItemCanBeClaimedAgainAtOnce) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 1, "agent-1")));
  ASSERT_OK(claims_->Release("item-1", 1));
  EXPECT_EQ(claims_->Read("item-1").status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 2, "agent-2")));
  absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), 2u);
  EXPECT_EQ(cur->agent(), "agent-2");
}

TEST_F(ClaimDirTest, ReleaseWithAWrongTokenIsRefusedAndLeavesTheClaim) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 5, "agent-1")));
  absl::Status s = claims_->Release("item-1", 4);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("lease token 4"));
  EXPECT_THAT(Msg(s), HasSubstr("held with lease token 5"));
  absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), 5u);
  EXPECT_FALSE(LeaseFileOf(paths_, "item-1").empty());
}

TEST_F(ClaimDirTest, ReleaseOfAnUnclaimedItemIsNotFound) {
  absl::Status s = claims_->Release("item-1", 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(Msg(s), HasSubstr("\"item-1\" is not claimed"));
}

TEST_F(ClaimDirTest, ExpiredClaimIsBrokenAndTheItemCanBeClaimedAgain) {
  absl::Time expires = kStart + absl::Seconds(30);
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 1, "agent-1", expires)));
  absl::StatusOr<store::LeaseRecord> broken = claims_->BreakIfExpired("item-1", expires);
  ASSERT_OK(broken);
  EXPECT_EQ(broken->token(), 1u);
  EXPECT_EQ(broken->agent(), "agent-1");
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 2, "agent-2")));
  EXPECT_EQ(claims_->Read("item-1")->token(), 2u);
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock", ".slot-0"));  // reused
}

TEST_F(ClaimDirTest, LiveClaimIsNotBroken) {
  absl::Time expires = kStart + absl::Seconds(30);
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 1, "agent-1", expires)));
  absl::StatusOr<store::LeaseRecord> broken =
      claims_->BreakIfExpired("item-1", expires - absl::Milliseconds(1));
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kFailedPrecondition) << broken.status();
  EXPECT_THAT(Msg(broken.status()), HasSubstr("\"agent-1\""));
  absl::StatusOr<store::LeaseRecord> cur = claims_->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), 1u);
  EXPECT_EQ(claims_->BreakIfExpired("item-2", expires).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClaimDirTest, ClaimWithATornLeaseRecordIsBrokenAsExpired) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 3, "agent-1")));
  // A crash before the record's data reached the disk: the file exists but is empty.
  ASSERT_EQ(::truncate(paths_.ClaimFile("item-1").c_str(), 0), 0);
  EXPECT_EQ(claims_->Read("item-1").status().code(), absl::StatusCode::kDataLoss);
  absl::StatusOr<std::vector<ClaimDir::Entry>> scan = claims_->Scan();
  ASSERT_OK(scan);
  ASSERT_EQ(scan->size(), 1u);
  EXPECT_EQ((*scan)[0].token, 0u);  // unknown: recovery gives it to the running attempt
  EXPECT_FALSE((*scan)[0].lease.has_value());
  EXPECT_EQ(claims_->Release("item-1", 3).code(), absl::StatusCode::kFailedPrecondition)
      << "a release cannot tell whose a torn claim is";
  ASSERT_OK(claims_->BreakIfExpired("item-1", kStart));
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
}

TEST_F(ClaimDirTest, ClaimIsAHardLinkToItsLeaseRecord) {
  ASSERT_OK(claims_->Claim(MakeLease("item-1", 42, "agent-1")));
  struct stat claim_st, lease_st;
  ASSERT_EQ(::stat(paths_.ClaimFile("item-1").c_str(), &claim_st), 0);
  const std::string lease_file = LeaseFileOf(paths_, "item-1");
  EXPECT_EQ(lease_file, paths_.LeasesDir() + "/.slot-0");
  ASSERT_EQ(::stat(lease_file.c_str(), &lease_st), 0);
  EXPECT_EQ(claim_st.st_ino, lease_st.st_ino);
  EXPECT_EQ(claim_st.st_dev, lease_st.st_dev);
  EXPECT_EQ(claim_st.st_nlink, 2u);
  ASSERT_OK(claims_->Release("item-1", 42));
  EXPECT_FALSE(PathExists(paths_.ClaimFile("item-1")));
  ASSERT_EQ(::stat(lease_file.c_str(), &lease_st), 0);
  EXPECT_EQ(lease_st.st_nlink, 1u) << "the slot is kept, linked nowhere, for the next claim";
}

TEST_F(ClaimDirTest, ClaimOfAnInvalidItemIdIsRefusedAndTouchesNothing) {
  absl::Status s = claims_->Claim(MakeLease("../x", 1, "agent-1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock"));
  EXPECT_FALSE(PathExists(dir_.Sub("x")));
}

// 4 processes x 4 threads x 1000 claims of 3 items on one state dir. Each winner holds a marker
// file made with O_EXCL while it owns the item, so any double grant makes a worker exit 3.
TEST_F(ClaimDirTest, ClaimsFromManyProcessesAndThreadsNeverOverlap) {
  constexpr int kWorkers = 4;
  const std::string worker_bin = harness::testing::TestBinDir() + "/claim_stress_worker";
  ASSERT_EQ(::access(worker_bin.c_str(), X_OK), 0) << worker_bin << " is not built";
  std::vector<harness::testing::ChildProcess> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(harness::testing::ChildProcess::Spawn(
        {worker_bin, dir_.path(), absl::StrCat(w), "1000", "3", "4"},
        dir_.Sub(absl::StrCat("worker-", w, ".out")),
        dir_.Sub(absl::StrCat("worker-", w, ".err"))));
  }
  int64_t total_wins = 0;
  for (int w = 0; w < kWorkers; ++w) {
    int status = workers[w].Wait();
    absl::StatusOr<std::string> err = ReadFile(dir_.Sub(absl::StrCat("worker-", w, ".err")));
    ASSERT_TRUE(WIFEXITED(status)) << "worker " << w << " died, status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << "worker " << w << ": " << err.value_or("");
    absl::StatusOr<std::string> out = ReadFile(dir_.Sub(absl::StrCat("worker-", w, ".out")));
    ASSERT_OK(out);
    absl::string_view line = absl::StripAsciiWhitespace(*out);
    int64_t wins = 0;
    ASSERT_TRUE(absl::ConsumePrefix(&line, "wins=") && absl::SimpleAtoi(line, &wins))
        << "worker " << w << " printed: " << *out;
    total_wins += wins;
  }
  EXPECT_GT(total_wins, 0);
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock"));
  EXPECT_THAT(ListNames(dir_.Sub("holders")), IsEmpty());
}

// The same rules through the WorkQueue, which grants leases and commits them as claims.
class WorkQueueClaimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenQueueOrDie(QueueOptions(dir_.path()), &clock_);
    ASSERT_NE(queue_, nullptr);
  }

  void SubmitOne(const std::string& id) {
    absl::StatusOr<std::vector<std::string>> ids = queue_->Submit({MakeSpec(id)});
    ASSERT_OK(ids);
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  FakeClock clock_;
  std::unique_ptr<WorkQueue> queue_;
};

TEST_F(WorkQueueClaimTest, SingleAcquireGrantsTheItemAndCommitsItsClaim) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->spec.id(), "item-1");
  EXPECT_EQ((*g)->attempt, 1);
  EXPECT_EQ((*g)->expires, clock_.Now() + absl::Seconds(10));
  EXPECT_EQ(queue_->Get("item-1")->state(), store::ITEM_LEASED);
  auto claims = ClaimDir::Open(paths_);
  ASSERT_OK(claims);
  absl::StatusOr<store::LeaseRecord> cur = (*claims)->Read("item-1");
  ASSERT_OK(cur);
  EXPECT_EQ(cur->token(), (*g)->token);
  EXPECT_EQ(cur->agent(), "agent-1");
}

TEST_F(WorkQueueClaimTest, LeasedItemIsNotGrantedToASecondAgent) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> first = queue_->Acquire("agent-1");
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  absl::StatusOr<std::optional<Grant>> second = queue_->Acquire("agent-2");
  ASSERT_OK(second);
  EXPECT_FALSE(second->has_value());
  ASSERT_TRUE(queue_->LeaseOf("item-1").has_value());
  EXPECT_EQ(queue_->LeaseOf("item-1")->agent, "agent-1");
}

// A claim the queue does not know about (say, left by hand): the disk wins, no double grant.
// The claim is made by the grant's commit round, which the disk's refusal fails: the grant is
// never answered, and recovery reconciles the claims with the journal as a restart does (a
// pending item's claim is stale and removed). The next grant's token is above the intruder's.
TEST_F(WorkQueueClaimTest, AcquireIsRefusedWhenTheDiskAlreadyHoldsAClaimOfTheItem) {
  SubmitOne("item-1");
  auto claims = ClaimDir::Open(paths_);
  ASSERT_OK(claims);
  ASSERT_OK((*claims)->Claim(MakeLease("item-1", 999, "intruder")));
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnavailable) << g.status();
  EXPECT_THAT(Msg(g.status()), HasSubstr("\"item-1\" is already claimed"));
  EXPECT_THAT(Msg(g.status()), HasSubstr("\"intruder\""));

  // The failure is seen by the queue's recovery thread, which then serves again.
  ASSERT_TRUE(Eventually([&] {
    StoreHealth h = queue_->store_health();
    return h.failures == 1 && h.status.ok();
  })) << queue_->store_health().status;
  EXPECT_EQ(queue_->Get("item-1")->state(), store::ITEM_PENDING);
  EXPECT_FALSE(queue_->LeaseOf("item-1").has_value());
  EXPECT_FALSE((*claims)->Read("item-1").ok()) << "the stale claim was kept";

  absl::StatusOr<std::optional<Grant>> again = queue_->Acquire("agent-1");
  ASSERT_OK(again);
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->spec.id(), "item-1");
  EXPECT_GT((*again)->token, 999u);
  EXPECT_EQ((*claims)->Read("item-1")->token(), (*again)->token);
}

TEST_F(WorkQueueClaimTest, ExactlyOneOfTenConcurrentAcquirersGetsTheItem) {
  SubmitOne("item-1");
  constexpr int kThreads = 10;
  constexpr int kRounds = 200;
  uint64_t last_token = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::latch start(kThreads);
    std::atomic<int> wins{0};
    std::atomic<int> empty{0};
    std::atomic<uint64_t> token{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        absl::StatusOr<std::optional<Grant>> g = queue_->Acquire(absl::StrCat("agent-", t));
        if (g.ok() && g->has_value()) {
          wins.fetch_add(1);
          token.store((*g)->token);
        } else if (g.ok()) {
          empty.fetch_add(1);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(wins.load(), 1) << "round " << round;
    ASSERT_EQ(empty.load(), kThreads - 1) << "round " << round;
    ASSERT_GT(token.load(), last_token);
    last_token = token.load();
    ASSERT_OK(queue_->Release("item-1", token.load(), "next round"));
  }
  store::ItemRecord item = *queue_->Get("item-1");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  EXPECT_EQ(item.attempts_size(), kRounds);
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
}

TEST_F(WorkQueueClaimTest, ReleasedItemIsGrantedAgainAtOnceWithAHigherToken) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> first = queue_->Acquire("agent-1");
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  ASSERT_OK(queue_->Release("item-1", (*first)->token, "going away"));
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  absl::StatusOr<std::optional<Grant>> again = queue_->Acquire("agent-2");
  ASSERT_OK(again);
  ASSERT_TRUE(again->has_value());
  EXPECT_EQ((*again)->spec.id(), "item-1");
  EXPECT_GT((*again)->token, (*first)->token);
  EXPECT_EQ(queue_->LeaseOf("item-1")->agent, "agent-2");
}

// The RPC layer answers from WhenDurable and does not wait, so another agent may ask for work
// while an ended attempt's claim is still on disk (it goes only once the end is durable).
TEST_F(WorkQueueClaimTest, ItemEndedButNotYetDurableIsGrantedToTheNextAgent) {
  SubmitOne("item-1");
  for (int round = 0; round < 100; ++round) {
    absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
    ASSERT_OK(g);
    ASSERT_TRUE(g->has_value()) << "round " << round;
    Pending<ReportAnswer> released = queue_->BeginRelease("item-1", (*g)->token, "handing back");
    ASSERT_OK(released.value);
    absl::StatusOr<std::optional<Grant>> next = queue_->Acquire("agent-2");
    ASSERT_OK(next) << "round " << round;
    ASSERT_TRUE(next->has_value()) << "round " << round;
    EXPECT_GT((*next)->token, (*g)->token);
    ASSERT_OK(queue_->Wait(std::move(released)));
    ASSERT_OK(queue_->Release("item-1", (*next)->token));
  }
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  // No lease record is linked: only the lock and free slots (linked nowhere) kept for reuse.
  for (const std::string& name : ListNames(paths_.LeasesDir())) {
    EXPECT_TRUE(name == ".lock" || absl::StartsWith(name, ".slot-")) << name;
    struct stat st;
    ASSERT_EQ(::stat((paths_.LeasesDir() + "/" + name).c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 1u) << name;
  }
}

TEST_F(WorkQueueClaimTest, ReleaseWithAWrongTokenIsRefusedAndKeepsTheLease) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  uint64_t token = (*g)->token;
  absl::Status s = queue_->Release("item-1", token + 1000);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("no longer valid"));
  EXPECT_THAT(Msg(s), HasSubstr(absl::StrCat("leased with token ", token)));
  ASSERT_TRUE(queue_->LeaseOf("item-1").has_value());
  EXPECT_EQ(queue_->LeaseOf("item-1")->token, token);
  EXPECT_EQ(queue_->Get("item-1")->state(), store::ITEM_LEASED);
  EXPECT_TRUE(PathExists(paths_.ClaimFile("item-1")));
  EXPECT_OK(queue_->Release("item-1", token));
}

TEST_F(WorkQueueClaimTest, ExpiredLeaseIsReclaimedAndALiveOneIsNot) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  clock_.Advance(absl::Seconds(9));
  absl::StatusOr<std::vector<Lease>> none = queue_->ExpireDue();
  ASSERT_OK(none);
  EXPECT_THAT(*none, IsEmpty());
  EXPECT_TRUE(PathExists(paths_.ClaimFile("item-1")));

  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<std::vector<Lease>> expired = queue_->ExpireDue();
  ASSERT_OK(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].token, (*g)->token);
  EXPECT_FALSE(PathExists(paths_.ClaimFile("item-1")));
  absl::StatusOr<std::optional<Grant>> again = queue_->Acquire("agent-2");
  ASSERT_OK(again);
  ASSERT_TRUE(again->has_value());
  EXPECT_GT((*again)->token, (*g)->token);
}

TEST_F(WorkQueueClaimTest, GrantIsVisibleOnDiskAsAHardLinkUntilTheItemIsDone) {
  SubmitOne("item-1");
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  uint64_t token = (*g)->token;
  struct stat claim_st, lease_st;
  ASSERT_EQ(::stat(paths_.ClaimFile("item-1").c_str(), &claim_st), 0);
  const std::string lease_file = LeaseFileOf(paths_, "item-1");
  ASSERT_FALSE(lease_file.empty());
  ASSERT_EQ(::stat(lease_file.c_str(), &lease_st), 0);
  EXPECT_EQ(claim_st.st_ino, lease_st.st_ino);
  EXPECT_EQ(claim_st.st_nlink, 2u);
  ASSERT_OK(queue_->Complete("item-1", token));
  EXPECT_FALSE(PathExists(paths_.ClaimFile("item-1")));
  ASSERT_EQ(::stat(lease_file.c_str(), &lease_st), 0);
  EXPECT_EQ(lease_st.st_nlink, 1u) << "its slot is kept for the next lease, linked nowhere";
}

}  // namespace
}  // namespace harness
