// State files damaged by hand or by a crash mid-write, then reopened (WorkQueue::Open): recovery
// moves what it cannot read to quarantine/ and reports it, loses no more than the damaged
// record, never fails to open because of it, and never drops an item without a report.
#include <fcntl.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/journal.h"
#include "core/paths.h"
#include "core/record_io.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::ListNames;
using ::harness::testing::MakeSpec;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<size_t> FrameOffsets(const std::string& data) {
  std::vector<size_t> out;
  FrameReader reader(data);
  absl::string_view payload;
  size_t at = 0;
  while (reader.Next(&payload) == FrameStatus::kOk) {
    out.push_back(at);
    at = reader.offset();
  }
  return out;
}

class TamperedStateTest : public ::testing::Test {
 protected:
  std::unique_ptr<WorkQueue> Open() { return OpenQueueOrDie(QueueOptions(dir_.path()), &clock_); }

  // Items a0..a4, one record each, in segment 1.
  void SubmitFive() {
    std::unique_ptr<WorkQueue> q = Open();
    ASSERT_NE(q, nullptr);
    for (int i = 0; i < 5; ++i) ASSERT_OK(q->Submit({MakeSpec(absl::StrCat("a", i))}));
  }
  std::string ReadSegment(uint64_t n) {
    absl::StatusOr<std::string> d = ReadFile(paths_.SegmentFile(n));
    EXPECT_OK(d);
    return d.ok() ? *d : "";
  }
  void WriteSegment(uint64_t n, const std::string& data) {
    ASSERT_OK(WriteFileAtomically(paths_.SegmentFile(n), data));
  }
  // Flips one payload byte of frame `k` of segment `n` (its length stays readable).
  void CorruptFrame(uint64_t n, int k) {
    std::string d = ReadSegment(n);
    std::vector<size_t> at = FrameOffsets(d);
    ASSERT_GT(at.size(), static_cast<size_t>(k));
    d[at[k] + 8 + 2] ^= 0x40;
    WriteSegment(n, d);
  }
  std::vector<std::string> Present(WorkQueue* q) {
    std::vector<std::string> out;
    for (int i = 0; i < 5; ++i) {
      std::string id = absl::StrCat("a", i);
      if (q->Get(id).ok()) out.push_back(id);
    }
    return out;
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  FakeClock clock_;
};

TEST_F(TamperedStateTest, ACorruptRecordInTheMiddleLosesOnlyThatRecordAndSaysSo) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  const std::string before = ReadSegment(1);
  const std::vector<size_t> at = FrameOffsets(before);
  ASSERT_NO_FATAL_FAILURE(CorruptFrame(1, 2));

  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(Present(q.get()), ::testing::ElementsAre("a0", "a1", "a3", "a4"));
  ASSERT_THAT(q->recovery().repairs, SizeIs(1));
  EXPECT_THAT(q->recovery().repairs[0],
              AllOf(HasSubstr("corrupt record"), HasSubstr(absl::StrCat("at offset ", at[2])),
                    HasSubstr(paths_.QuarantineDir())));
  // Exactly the damaged frame is kept aside.
  std::vector<std::string> quarantined = ListNames(paths_.QuarantineDir());
  ASSERT_THAT(quarantined, SizeIs(1));
  absl::StatusOr<std::string> kept = ReadFile(paths_.QuarantineDir() + "/" + quarantined[0]);
  ASSERT_OK(kept);
  EXPECT_EQ(kept->size(), at[3] - at[2]);
  // A second open finds nothing more to repair, and the queue takes writes.
  q.reset();
  q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->recovery().repairs, SizeIs(0));
  EXPECT_THAT(Present(q.get()), SizeIs(4));
  EXPECT_OK(q->Submit({MakeSpec("b")}));
}

TEST_F(TamperedStateTest, LaterRecordsOfALostItemAreQuarantinedAndTheQueueStillOpens) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  {
    // Segment 2: a2 is granted and completed; a3 is granted.
    std::unique_ptr<WorkQueue> q = Open();
    ASSERT_NE(q, nullptr);
    ASSERT_OK(q->Cancel("a0"));
    ASSERT_OK(q->Cancel("a1"));
    absl::StatusOr<std::optional<Grant>> g = q->Acquire("agent-1");
    ASSERT_OK(g);
    ASSERT_TRUE(g->has_value());
    ASSERT_EQ((*g)->spec.id(), "a2");
    ASSERT_OK(q->Complete("a2", (*g)->token));
  }
  // a2's submit record is damaged: its grant and end in segment 2 refer to an unknown item.
  ASSERT_NO_FATAL_FAILURE(CorruptFrame(1, 2));

  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(Present(q.get()), ::testing::ElementsAre("a0", "a1", "a3", "a4"));
  EXPECT_EQ(q->Get("a0")->state(), store::ITEM_CANCELLED);
  EXPECT_EQ(q->Get("a3")->state(), store::ITEM_PENDING);
  // The damaged record, and each record that no longer applies, named and kept aside.
  EXPECT_THAT(q->recovery().repairs, Contains(HasSubstr("corrupt record")));
  EXPECT_THAT(q->recovery().repairs,
              Contains(AllOf(HasSubstr("does not apply"), HasSubstr("a2"),
                             HasSubstr(paths_.QuarantineDir()))));
  EXPECT_GE(ListNames(paths_.QuarantineDir()).size(), 2u);
  EXPECT_OK(q->Submit({MakeSpec("b")}));
  q.reset();
  q = Open();  // and again, with nothing left to repair
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->recovery().repairs, SizeIs(0));
}

TEST_F(TamperedStateTest, AnUnreadableLengthQuarantinesTheRestOfItsSegmentAndTheQueueOpens) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  {
    std::unique_ptr<WorkQueue> q = Open();  // segment 2: a4 cancelled
    ASSERT_NE(q, nullptr);
    ASSERT_OK(q->Cancel("a4"));
  }
  std::string d = ReadSegment(1);
  std::vector<size_t> at = FrameOffsets(d);
  d[at[3] + 3] = '\x7f';  // a length no reader takes: nothing after it can be found
  WriteSegment(1, d);

  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(Present(q.get()), ::testing::ElementsAre("a0", "a1", "a2"));
  EXPECT_THAT(q->recovery().repairs, Contains(HasSubstr("corrupt record")));
  EXPECT_THAT(q->recovery().repairs, Contains(AllOf(HasSubstr("does not apply"), HasSubstr("a4"))));
  EXPECT_OK(q->Submit({MakeSpec("b")}));
}

TEST_F(TamperedStateTest, AFrameWithAGoodChecksumOverBytesThatAreNoRecordIsSetAside) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  std::string d = ReadSegment(1);
  std::vector<size_t> at = FrameOffsets(d);
  // Written on purpose: a frame whose checksum holds, around bytes that do not parse.
  d.insert(at[1], EncodeFrame(std::string("\xff\xff\xff\xff", 4)));
  WriteSegment(1, d);
  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->Counts().total, 5);
  EXPECT_THAT(q->recovery().repairs, Contains(HasSubstr("unparsable record")));
  EXPECT_THAT(ListNames(paths_.QuarantineDir()), SizeIs(1));
}

TEST_F(TamperedStateTest, AJournalSegmentTruncatedToNothingOpens) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  WriteSegment(1, "");
  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->Counts().total, 0);
  EXPECT_OK(q->Submit({MakeSpec("b")}));
}

TEST_F(TamperedStateTest, AGarbageLeaseRecordKeepsTheRunningAttemptsLeaseAndTheItemRunsAgainAfterTheTtl) {
  ASSERT_NO_FATAL_FAILURE(SubmitFive());
  uint64_t token = 0;
  {
    std::unique_ptr<WorkQueue> q = Open();
    ASSERT_NE(q, nullptr);
    absl::StatusOr<std::optional<Grant>> g = q->Acquire("agent-1");
    ASSERT_OK(g);
    ASSERT_TRUE(g->has_value());
    token = (*g)->token;
  }
  const std::string lease = harness::testing::LeaseFileOf(paths_, "a0");
  ASSERT_FALSE(lease.empty()) << "claims/a0 links to no file in leases/";
  {
    // Overwritten in place (the claim is a hard link to the same inode).
    UniqueFd fd(::open(lease.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    ASSERT_OK(WriteAll(fd.get(), "edited by hand", lease));
  }
  std::unique_ptr<WorkQueue> q = Open();
  ASSERT_NE(q, nullptr);
  // The claim is the running attempt's (the journal says which): kept for its agent for one
  // TTL, not lost.
  EXPECT_EQ(q->Get("a0")->state(), store::ITEM_LEASED);
  EXPECT_EQ(q->recovery().leases_kept, 1u);
  clock_.Advance(absl::Seconds(11));
  ASSERT_OK(q->ExpireDue());
  EXPECT_EQ(q->Get("a0")->state(), store::ITEM_PENDING);
  EXPECT_EQ(q->Counts().total, 5);
  absl::StatusOr<std::optional<Grant>> g = q->Acquire("agent-2");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  EXPECT_GT((*g)->token, token);
}

}  // namespace
}  // namespace harness
