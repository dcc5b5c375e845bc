// Recovery of a state dir by WorkQueue::Open: a clean reopen changes nothing; claims on disk
// are reconciled with the journal (stale claims removed, grants that never got their claim
// rolled back without costing an attempt, leases kept for one TTL); tokens found anywhere on
// disk are never reused; leftover temp files are removed and reported.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/claim_dir.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/item_table.h"
#include "core/paths.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::harness::testing::ListNames;
using ::harness::testing::MakeSpec;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kTtl = absl::Seconds(10);

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Reopen()); }

  void Reopen() {
    queue_.reset();
    queue_ = OpenQueueOrDie(QueueOptions(dir_.path(), kTtl), &clock_);
    ASSERT_NE(queue_, nullptr);
  }

  void Close() { queue_.reset(); }

  // A grant to `agent`, by default an agent of its own (an agent holds one lease at a time).
  Grant MustAcquire(std::string agent = "") {
    if (agent.empty()) agent = absl::StrCat("agent-", ++agents_);
    absl::StatusOr<std::optional<Grant>> g = queue_->Acquire(agent);
    EXPECT_TRUE(g.ok()) << g.status();
    EXPECT_TRUE(g.ok() && g->has_value()) << "nothing granted";
    return g.ok() && g->has_value() ? **g : Grant{};
  }

  // Writes a claim by hand, as a crashed controller could have left it.
  void ClaimByHand(const std::string& item, uint64_t token,
                   const std::string& agent = "agent-old") {
    absl::StatusOr<std::unique_ptr<ClaimDir>> claims = ClaimDir::Open(paths_);
    ASSERT_OK(claims);
    store::LeaseRecord lease;
    lease.set_item_id(item);
    lease.set_token(token);
    lease.set_agent(agent);
    lease.set_attempt(1);
    lease.set_granted_unix_ms(absl::ToUnixMillis(clock_.Now()));
    lease.set_expires_unix_ms(absl::ToUnixMillis(clock_.Now() + kTtl));
    ASSERT_OK((*claims)->Claim(lease));
    ASSERT_OK((*claims)->Sync());
  }

  std::map<std::string, store::ItemRecord> Snapshot() {
    std::map<std::string, store::ItemRecord> out;
    for (const store::ItemRecord& listed : queue_->List(std::nullopt, 10000)) {
      out[listed.spec().id()] = *queue_->Get(listed.spec().id());
    }
    return out;
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  FakeClock clock_;
  std::unique_ptr<WorkQueue> queue_;
  int agents_ = 0;
};

TEST_F(RecoveryTest, CleanReopenKeepsEveryItemAndState) {
  std::vector<store::ItemSpec> specs;
  for (const char* id :
       {"released", "leased", "done", "failed", "parked", "cancelled", "cancel-leased"}) {
    specs.push_back(MakeSpec(id, /*priority=*/0, /*max_attempts=*/1));
  }
  ASSERT_OK(queue_->Submit(specs));
  // Grants go in submission order (equal priority).
  Grant g = MustAcquire();
  ASSERT_EQ(g.spec.id(), "released");
  ASSERT_OK(queue_->Release("released", g.token));
  ASSERT_OK(queue_->Cancel("released"));
  ASSERT_OK(queue_->Submit({MakeSpec("pending")}));
  Grant leased = MustAcquire();
  ASSERT_EQ(leased.spec.id(), "leased");
  Grant done = MustAcquire();
  AttemptResult ok;
  ok.commit = "c0ffee";
  ok.branch = "harness/done";
  ASSERT_OK(queue_->Complete("done", done.token, ok));
  Grant failed = MustAcquire();
  AttemptResult fatal;
  fatal.not_retryable = true;
  fatal.error = "bad setup";
  ASSERT_OK(queue_->Fail("failed", failed.token, store::OUTCOME_FAILED, fatal));
  Grant parked = MustAcquire();
  ASSERT_OK(queue_->Fail("parked", parked.token, store::OUTCOME_TIMEOUT));
  ASSERT_OK(queue_->Cancel("cancelled"));
  Grant cl = MustAcquire();
  ASSERT_EQ(cl.spec.id(), "cancel-leased");
  ASSERT_OK(queue_->Cancel("cancel-leased"));

  std::map<std::string, store::ItemRecord> before = Snapshot();
  QueueCounts counts = queue_->Counts();
  ASSERT_EQ(counts.total, 8);
  EXPECT_EQ(counts.leased, 1);
  EXPECT_EQ(counts.done, 1);
  EXPECT_EQ(counts.failed, 1);
  EXPECT_EQ(counts.parked, 1);
  EXPECT_EQ(counts.cancelled, 3);
  EXPECT_EQ(counts.pending, 1);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  const RecoveryStats& r = queue_->recovery();
  EXPECT_EQ(r.items, 8u);
  EXPECT_GT(r.journal_records, 0u);
  EXPECT_EQ(r.leases_kept, 1u);
  EXPECT_EQ(r.claims_removed, 0u);
  EXPECT_EQ(r.grants_rolled_back, 0u);
  EXPECT_THAT(r.repairs, IsEmpty());
  std::map<std::string, store::ItemRecord> after = Snapshot();
  ASSERT_EQ(after.size(), before.size());
  for (const auto& [id, item] : before) {
    std::string diff;
    MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    EXPECT_TRUE(differ.Compare(item, after[id])) << id << ": " << diff;
  }
  QueueCounts again = queue_->Counts();
  EXPECT_EQ(again.pending, counts.pending);
  EXPECT_EQ(again.leased, counts.leased);
  EXPECT_EQ(again.cancelled, counts.cancelled);
  ASSERT_TRUE(queue_->LeaseOf("leased"));
  EXPECT_EQ(queue_->LeaseOf("leased")->token, leased.token);
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), ElementsAre("leased"));
  // The kept lease still completes with its token.
  EXPECT_OK(queue_->Complete("leased", leased.token));
}

TEST_F(RecoveryTest, ClaimOfAnItemThatIsDoneIsRemoved) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  Grant g = MustAcquire();
  ASSERT_OK(queue_->Complete("a", g.token));
  Close();
  // As if the controller died after the Ended record was durable but before the claim went.
  ASSERT_NO_FATAL_FAILURE(ClaimByHand("a", g.token, "agent-1"));
  ASSERT_TRUE(PathExists(paths_.ClaimFile("a")));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().claims_removed, 1u);
  EXPECT_EQ(queue_->recovery().leases_kept, 0u);
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr("removed stale claim of item \"a\""),
                             HasSubstr(absl::StrCat("lease token ", g.token)),
                             HasSubstr("the item is done"))));
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock"));
  EXPECT_EQ(queue_->Get("a")->state(), store::ITEM_DONE);
  EXPECT_FALSE(queue_->LeaseOf("a"));
}

TEST_F(RecoveryTest, ClaimOfAnItemNeverCommittedIsRemovedAndItsTokenIsNotReused) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  Close();
  // A claim linked just before a crash: its Granted record never reached the journal.
  ASSERT_NO_FATAL_FAILURE(ClaimByHand("a", 500));
  ASSERT_NO_FATAL_FAILURE(ClaimByHand("ghost", 700));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().claims_removed, 2u);
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr("\"ghost\""), HasSubstr("never committed"))));
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr("\"a\""), HasSubstr("the item is pending"))));
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
  EXPECT_EQ(queue_->Get("a")->state(), store::ITEM_PENDING);
  Grant g = MustAcquire();
  EXPECT_EQ(g.spec.id(), "a");
  EXPECT_GT(g.token, 700u);
}

TEST_F(RecoveryTest, GrantWithNoClaimOnDiskIsRolledBackWithoutCountingAnAttempt) {
  ASSERT_OK(queue_->Submit({MakeSpec("a", 0, /*max_attempts=*/1)}));
  Grant g = MustAcquire();
  Close();
  // The crash came after the Granted record but before the claim was durable.
  ASSERT_EQ(::unlink(paths_.ClaimFile("a").c_str()), 0);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().grants_rolled_back, 1u);
  EXPECT_EQ(queue_->recovery().leases_kept, 0u);
  EXPECT_EQ(queue_->recovery().claims_removed, 0u);
  store::ItemRecord item = *queue_->Get("a");
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), store::OUTCOME_RELEASED);
  EXPECT_EQ(ItemTable::CountedAttempts(item), 0);
  EXPECT_FALSE(queue_->LeaseOf("a"));
  EXPECT_THAT(ListNames(paths_.LeasesDir()), ElementsAre(".lock"));  // its orphan record went
  // The old token is dead, a new grant gets a higher one.
  EXPECT_EQ(queue_->Complete("a", g.token).code(), absl::StatusCode::kFailedPrecondition);
  Grant again = MustAcquire();
  EXPECT_GT(again.token, g.token);

  // The rollback itself was durable: the next open has nothing to roll back.
  ASSERT_OK(queue_->Release("a", again.token));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().grants_rolled_back, 0u);
  EXPECT_EQ(queue_->Get("a")->state(), store::ITEM_PENDING);
  EXPECT_EQ(ItemTable::CountedAttempts(*queue_->Get("a")), 0);
}

// A slot's record is rewritten in place and never fsynced: after a crash a durable claim may
// link to a torn record, or to the record of the lease its slot held before. The claim is the
// running attempt's all the same, and recovery writes that attempt's record over it.
TEST_F(RecoveryTest, LeaseWithATornRecordIsKeptForTheRunningAttemptAndItsRecordRewritten) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  Grant g = MustAcquire();
  Close();
  ASSERT_EQ(::truncate(paths_.ClaimFile("a").c_str(), 0), 0);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().leases_kept, 1u);
  EXPECT_EQ(queue_->recovery().grants_rolled_back, 0u);
  EXPECT_EQ(queue_->recovery().claims_removed, 0u);
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr("rewrote the lease record of item \"a\""),
                             HasSubstr(absl::StrCat("lease token ", g.token)),
                             HasSubstr("torn"))));
  ASSERT_TRUE(queue_->LeaseOf("a"));
  EXPECT_EQ(queue_->LeaseOf("a")->token, g.token);
  EXPECT_EQ(queue_->LeaseOf("a")->agent, "agent-1");
  absl::StatusOr<std::unique_ptr<ClaimDir>> claims = ClaimDir::Open(paths_);
  ASSERT_OK(claims);
  absl::StatusOr<store::LeaseRecord> record = (*claims)->Read("a");
  ASSERT_OK(record);
  EXPECT_EQ(record->token(), g.token);
  EXPECT_EQ(record->agent(), "agent-1");
  EXPECT_OK(queue_->Complete("a", g.token));
  EXPECT_THAT(ListNames(paths_.ClaimsDir()), IsEmpty());
}

TEST_F(RecoveryTest, ClaimWhoseRecordNamesAnotherLeaseIsTheRunningAttempts) {
  ASSERT_OK(queue_->Submit({MakeSpec("a"), MakeSpec("b")}));
  Grant first = MustAcquire();
  ASSERT_OK(queue_->Release(first.spec.id(), first.token));
  Grant g = MustAcquire();
  Grant other = MustAcquire();
  ASSERT_NE(g.spec.id(), other.spec.id());
  Close();
  // The slots' new records were lost: one claim shows an earlier lease of its item, the other
  // a lease of another item.
  auto put = [](const std::string& path, store::LeaseRecord r) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);  // the same inode: the record
    f << EncodeLeaseRecord(r);
  };
  store::LeaseRecord earlier;
  earlier.set_item_id(g.spec.id());
  earlier.set_token(first.token);
  earlier.set_agent("agent-old");
  put(paths_.ClaimFile(g.spec.id()), earlier);
  store::LeaseRecord foreign = earlier;
  foreign.set_item_id(g.spec.id());
  foreign.set_token(g.token);
  put(paths_.ClaimFile(other.spec.id()), foreign);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(queue_->recovery().leases_kept, 2u);
  EXPECT_EQ(queue_->recovery().grants_rolled_back, 0u);
  EXPECT_EQ(queue_->recovery().claims_removed, 0u);
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr(absl::StrCat("item \"", g.spec.id(), "\"")),
                             HasSubstr(absl::StrCat("named lease token ", first.token)))));
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr(absl::StrCat("item \"", other.spec.id(), "\"")),
                             HasSubstr("named another item"))));
  EXPECT_EQ(queue_->LeaseOf(g.spec.id())->token, g.token);
  EXPECT_EQ(queue_->LeaseOf(other.spec.id())->token, other.token);
  EXPECT_OK(queue_->Complete(g.spec.id(), g.token));
  EXPECT_OK(queue_->Complete(other.spec.id(), other.token));
}

TEST_F(RecoveryTest, LeftoverTempFilesAreRemovedAndReported) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  Close();
  const std::string snapshot_tmp = dir_.Sub("snapshot.tmp.123.0");
  ASSERT_OK(WriteFileAtomically(snapshot_tmp, "half a snapshot"));
  ASSERT_OK(MakeDirs(paths_.QuarantineDir()));
  const std::string quarantine_tmp = paths_.QuarantineDir() + "/journal-1-at-9.5.tmp.77.3";
  ASSERT_OK(WriteFileAtomically(quarantine_tmp, "half a copy"));
  const std::string orphan_lease = paths_.LeasesDir() + "/a.99";  // an older version's
  ASSERT_OK(WriteFileAtomically(orphan_lease, "never linked"));

  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_FALSE(PathExists(snapshot_tmp));
  EXPECT_FALSE(PathExists(quarantine_tmp));
  EXPECT_FALSE(PathExists(orphan_lease));
  EXPECT_THAT(queue_->recovery().repairs,
              Contains(AllOf(HasSubstr("removed unfinished temp file"), HasSubstr(snapshot_tmp))));
  EXPECT_THAT(queue_->recovery().repairs, Contains(HasSubstr(quarantine_tmp)));
  EXPECT_EQ(queue_->Get("a")->state(), store::ITEM_PENDING);
  EXPECT_FALSE(PathExists(paths_.SnapshotFile()));  // the temp file was never taken for one
}

TEST_F(RecoveryTest, RecoveryIsIdempotentAcrossRepeatedReopens) {
  ASSERT_OK(queue_->Submit({MakeSpec("a"), MakeSpec("b")}));
  Grant a = MustAcquire();
  ASSERT_OK(queue_->Complete("a", a.token));
  Grant b = MustAcquire();
  std::map<std::string, store::ItemRecord> before = Snapshot();
  for (int i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(Reopen());
    EXPECT_EQ(queue_->recovery().leases_kept, 1u);
    EXPECT_THAT(queue_->recovery().repairs, IsEmpty());
  }
  std::map<std::string, store::ItemRecord> after = Snapshot();
  for (const auto& [id, item] : before) {
    EXPECT_TRUE(MessageDifferencer::Equals(item, after[id])) << id;
  }
  // Each open began a segment of its own; none of them broke replay.
  absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
  ASSERT_OK(segs);
  EXPECT_THAT(*segs, SizeIs(4));
  EXPECT_OK(queue_->Complete("b", b.token));
}

// Many threads doing every kind of operation at once, with a snapshot every few KiB: what a
// reopen rebuilds from the snapshot and the journal is exactly the state that was running.
TEST(RecoveryUnderLoadTest, ConcurrentOperationsWithFrequentSnapshotsRecoverExactly) {
  TempDir dir;
  FakeClock clock;
  WorkQueueOptions options = QueueOptions(dir.path(), kTtl);
  options.snapshot_after_bytes = 2048;
  std::map<std::string, store::ItemRecord> before;
  std::atomic<int> granted{0};
  {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
    ASSERT_NE(q, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(1234 + t);
        for (int n = 0; n < 300; ++n) {
          const std::string agent = absl::StrCat("agent-", t);
          switch (rng() % 8) {
            case 0:
            case 1: {
              std::vector<store::ItemSpec> specs;
              for (int k = 0, m = 1 + rng() % 3; k < m; ++k) {
                specs.push_back(MakeSpec(rng() % 2 ? "" : absl::StrCat("t", t, "-", n, "-", k),
                                         static_cast<int64_t>(rng() % 3), 2));
              }
              EXPECT_OK(q->Submit(specs));
              break;
            }
            case 2:
            case 3:
            case 4: {
              absl::StatusOr<std::optional<Grant>> g = q->Acquire(agent);
              EXPECT_OK(g);
              if (!g.ok() || !g->has_value()) break;
              ++granted;
              const Grant& grant = **g;
              absl::Status s;
              switch (rng() % 4) {
                case 0:
                  s = q->Complete(grant.spec.id(), grant.token);
                  break;
                case 1:
                  s = q->Fail(grant.spec.id(), grant.token, store::OUTCOME_FAILED);
                  break;
                case 2:
                  s = q->Release(grant.spec.id(), grant.token);
                  break;
                default:
                  break;  // keep it; it may expire or be cancelled
              }
              // Another thread may have expired or cancelled it meanwhile.
              if (!s.ok()) {
                EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
              }
              break;
            }
            case 5: {
              std::vector<store::ItemRecord> items = q->List(std::nullopt, 100000);
              if (items.empty()) break;
              const std::string& id = items[rng() % items.size()].spec().id();
              if (rng() % 2) {
                (void)q->Cancel(id);
              } else {
                (void)q->Retry(id);
              }
              break;
            }
            case 6:
              clock.Advance(absl::Seconds(1));
              EXPECT_OK(q->ExpireDue());
              break;
            default: {
              std::vector<HeldLease> mine;
              for (const Lease& l : q->Leases()) {
                if (l.agent == agent) mine.push_back(HeldLease{l.item_id, l.token});
              }
              (void)q->Reconcile(agent, mine, Unlisted::kKeep);
              break;
            }
          }
        }
      });
    }
    for (std::thread& th : threads) th.join();
    for (const store::ItemRecord& listed : q->List(std::nullopt, 100000)) {
      before[listed.spec().id()] = *q->Get(listed.spec().id());
    }
  }
  EXPECT_GT(granted.load(), 100);
  ASSERT_TRUE(PathExists(StatePaths(dir.path()).SnapshotFile()));

  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->recovery().repairs, IsEmpty());
  EXPECT_EQ(q->recovery().grants_rolled_back, 0u);
  EXPECT_EQ(q->recovery().claims_removed, 0u);
  EXPECT_EQ(q->recovery().items, before.size());
  for (const auto& [id, item] : before) {
    absl::StatusOr<store::ItemRecord> after = q->Get(id);
    ASSERT_OK(after) << id;
    std::string diff;
    MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    EXPECT_TRUE(differ.Compare(item, *after)) << id << ": " << diff;
  }
  // Every leased item has its claim, and nothing else has one.
  std::vector<std::string> leased;
  for (const auto& [id, item] : before) {
    if (item.state() == store::ITEM_LEASED) leased.push_back(id);
  }
  EXPECT_EQ(ListNames(StatePaths(dir.path()).ClaimsDir()), leased);
  EXPECT_EQ(q->recovery().leases_kept, leased.size());
}

}  // namespace
}  // namespace harness
