// A failed write, for real: the state dir on a small tmpfs that the test fills. A refused change
// leaves nothing in memory or on disk, the queue says it is failing and refuses changes (leases
// held stay held), and it serves again by itself once space returns, with everything it
// acknowledged kept. Skipped where mount(2) is not permitted.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/paths.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/small_fs.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::Eventually;
using ::harness::testing::MakeSpec;
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::SmallFs;
using ::harness::testing::TempDir;
using ::testing::HasSubstr;

class StoreFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mounted = fs_.Mount(tmp_.Sub("fs"), 4);
    if (!mounted.ok()) GTEST_SKIP() << mounted.message();
    options_ = QueueOptions(tmp_.Sub("fs/state"));
    options_.store_retry_interval = absl::Milliseconds(20);
    q_ = OpenQueueOrDie(options_, &clock_);
    ASSERT_NE(q_, nullptr);
  }
  void TearDown() override { q_.reset(); }

  // Items with prompts large enough that no slack in a page takes them.
  static std::vector<store::ItemSpec> Batch(const std::string& prefix, int n) {
    std::vector<store::ItemSpec> specs;
    for (int i = 0; i < n; ++i) {
      store::ItemSpec spec = MakeSpec(absl::StrCat(prefix, i));
      spec.set_prompt(std::string(4096, 'p'));
      specs.push_back(spec);
    }
    return specs;
  }

  // Fills the disk and sees a submit refused, until the queue says it is failing.
  void FillUntilFailing() {
    for (int i = 0; i < 5 && q_->store_health().status.ok(); ++i) {
      fs_.Fill();
      absl::StatusOr<std::vector<std::string>> refused = q_->Submit(Batch("refused-", 20));
      ASSERT_FALSE(refused.ok());
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
      EXPECT_THAT(Msg(refused.status()), HasSubstr(options_.state_dir));
      EXPECT_THAT(Msg(refused.status()), HasSubstr("No space left on device"));
      Eventually([&] { return !q_->store_health().status.ok(); });
    }
    ASSERT_FALSE(q_->store_health().status.ok()) << "the disk is full, yet the store says ok";
  }

  TempDir tmp_;
  SmallFs fs_;
  FakeClock clock_;
  WorkQueueOptions options_;
  std::unique_ptr<WorkQueue> q_;
};

TEST_F(StoreFailureTest, ARefusedSubmitLeavesNothingAndTheQueueServesAgainWhenSpaceReturns) {
  ASSERT_OK(q_->Submit({MakeSpec("kept")}));
  ASSERT_NO_FATAL_FAILURE(FillUntilFailing());
  StoreHealth h = q_->store_health();
  EXPECT_EQ(h.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(Msg(h.status), HasSubstr("No space left on device"));
  EXPECT_EQ(h.failing_since, clock_.Now());
  EXPECT_GE(h.failures, 1u);

  // Memory is what is durable: the refused items are nowhere and their ids are free.
  EXPECT_TRUE(Eventually([&] { return q_->Counts().total == 1; })) << q_->Counts().total;
  EXPECT_EQ(q_->Get("refused-0").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::vector<std::string>> again = q_->Submit({MakeSpec("refused-0")});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable) << again.status();
  absl::StatusOr<std::optional<Grant>> grant = q_->Acquire("agent-1");
  EXPECT_EQ(grant.status().code(), absl::StatusCode::kUnavailable) << grant.status();
  EXPECT_OK(q_->Get("kept"));

  fs_.Free();
  ASSERT_TRUE(Eventually([&] { return q_->store_health().status.ok(); }))
      << q_->store_health().status;
  EXPECT_EQ(q_->store_health().failing_since, absl::InfinitePast());
  ASSERT_OK(q_->Submit(Batch("refused-", 20))) << "the ids of refused items are free";
  grant = q_->Acquire("agent-1");
  ASSERT_OK(grant);
  ASSERT_TRUE(grant->has_value());
  EXPECT_EQ((*grant)->spec.id(), "kept");
  EXPECT_EQ(q_->Counts().total, 21);

  // And the disk agrees: a reopen finds exactly that.
  q_.reset();
  q_ = OpenQueueOrDie(options_, &clock_);
  ASSERT_NE(q_, nullptr);
  EXPECT_EQ(q_->Counts().total, 21);
  EXPECT_EQ(q_->Counts().leased, 1);
  EXPECT_EQ(q_->recovery().leases_kept, 1u);
}

TEST_F(StoreFailureTest, LeasesHeldWhenTheDiskFillsStayHeldAndEndOnceWritesSucceed) {
  ASSERT_OK(q_->Submit({MakeSpec("a"), MakeSpec("b"), MakeSpec("c")}));
  absl::StatusOr<std::optional<Grant>> ga = q_->Acquire("agent-a");
  absl::StatusOr<std::optional<Grant>> gb = q_->Acquire("agent-b");
  ASSERT_OK(ga);
  ASSERT_OK(gb);
  ASSERT_TRUE(ga->has_value() && gb->has_value());
  ASSERT_NO_FATAL_FAILURE(FillUntilFailing());

  EXPECT_TRUE(Eventually([&] { return q_->Counts().total == 3; }));
  EXPECT_EQ(q_->Counts().leased, 2);
  EXPECT_EQ(q_->Leases().size(), 2u);
  clock_.Advance(absl::Seconds(5));
  absl::StatusOr<Reconciled> renewed = q_->Reconcile(
      "agent-a", {HeldLease{(*ga)->spec.id(), (*ga)->token}}, Unlisted::kKeep);
  ASSERT_OK(renewed) << "renewals need no write";
  EXPECT_EQ(renewed->renewed.size(), 1u);
  absl::Status refused = q_->Complete((*ga)->spec.id(), (*ga)->token);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_EQ(q_->Acquire("agent-c").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(q_->Counts().leased, 2);

  fs_.Free();
  ASSERT_TRUE(Eventually([&] { return q_->store_health().status.ok(); }));
  EXPECT_OK(q_->Complete((*ga)->spec.id(), (*ga)->token)) << "the lease survived the failure";
  EXPECT_OK(q_->Fail((*gb)->spec.id(), (*gb)->token, store::OUTCOME_FAILED));
  absl::StatusOr<std::optional<Grant>> gc = q_->Acquire("agent-c");
  ASSERT_OK(gc);
  ASSERT_TRUE(gc->has_value());
  EXPECT_GT((*gc)->token, (*gb)->token);
  absl::StatusOr<store::ItemRecord> a = q_->Get((*ga)->spec.id());
  ASSERT_OK(a);
  EXPECT_EQ(a->state(), store::ITEM_DONE);
}

// The disk fills between two grants: the next grant's lease file cannot be written. Its commit
// round fails, so the grant is refused as unavailable (not an internal error), nothing is
// claimed, and the item is granted once space returns.
TEST_F(StoreFailureTest, AGrantWhoseLeaseFileCannotBeWrittenIsRefusedAsUnavailable) {
  ASSERT_OK(q_->Submit({MakeSpec("a")}));
  fs_.Fill();
  absl::StatusOr<std::optional<Grant>> refused = q_->Acquire("agent-a");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_THAT(Msg(refused.status()), HasSubstr(options_.state_dir));
  EXPECT_THAT(Msg(refused.status()), HasSubstr("No space left on device"));
  // The refusal failed the store; its recovery rebuilds the memory from the disk, where the
  // grant never was.
  EXPECT_TRUE(Eventually([&] { return q_->Counts().leased == 0; })) << q_->Counts().leased;
  EXPECT_FALSE(q_->LeaseOf("a").has_value());

  fs_.Free();
  absl::StatusOr<std::optional<Grant>> granted;
  ASSERT_TRUE(Eventually([&] {
    granted = q_->Acquire("agent-a");
    return granted.ok();
  })) << granted.status();
  ASSERT_TRUE(granted->has_value());
  EXPECT_EQ((*granted)->spec.id(), "a");
}

// The controller restarts on a full disk and its recovery must write (a grant whose claim is
// gone is handed back). The queue opens anyway, refusing changes like after any failed write,
// and the recovery's writes are done once space returns.
TEST_F(StoreFailureTest, AQueueOpenedOnAFullDiskServesReadsAndEndsItsRecoveryWhenSpaceReturns) {
  ASSERT_OK(q_->Submit({MakeSpec("a"), MakeSpec("b")}));
  absl::StatusOr<std::optional<Grant>> g = q_->Acquire("agent-a");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  q_.reset();
  // The claim and its lease record are gone (so recovery frees no page a write could take).
  StatePaths paths(options_.state_dir);
  const std::string lease = harness::testing::LeaseFileOf(paths, (*g)->spec.id());
  ASSERT_FALSE(lease.empty());
  ASSERT_EQ(::unlink(paths.ClaimFile((*g)->spec.id()).c_str()), 0);
  ASSERT_EQ(::unlink(lease.c_str()), 0);
  fs_.Fill();

  q_ = OpenQueueOrDie(options_, &clock_);
  ASSERT_NE(q_, nullptr) << "a full disk at start-up stopped the queue";
  // Its recovery failed to write; reads are served. (It may take writes again already: the
  // recovery thread's repair frees the pages the failed write took.)
  EXPECT_GE(q_->store_health().failures, 1u);
  EXPECT_EQ(q_->Counts().total, 2);

  fs_.Free();
  ASSERT_TRUE(Eventually([&] { return q_->store_health().status.ok(); }))
      << q_->store_health().status;
  EXPECT_EQ(q_->Counts().leased, 0);
  EXPECT_EQ(q_->Counts().pending, 2);
  ASSERT_OK(q_->Submit({MakeSpec("c")}));
  q_.reset();
  q_ = OpenQueueOrDie(options_, &clock_);
  ASSERT_NE(q_, nullptr);
  EXPECT_EQ(q_->Counts().pending, 3);
  EXPECT_EQ(q_->Counts().leased, 0);
  EXPECT_TRUE(q_->store_health().status.ok());
}

}  // namespace
}  // namespace harness
