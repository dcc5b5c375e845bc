// The journal and its framing: records round-trip; a torn tail (a crash mid-append) is cut off,
// quarantined and reported while every record before it survives; a corrupt record in the
// middle is reported and quarantined, never silently dropped; snapshots replace the journal
// they cover without changing any item.
#include "core/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/record_io.h"
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
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// ---- Framing ----

TEST(RecordIoTest, FramesRoundTripInOrder) {
  std::vector<std::string> payloads = {"first", "", std::string(100000, 'x'), "last\0one"};
  std::string data;
  for (const std::string& p : payloads) AppendFrame(p, &data);
  FrameReader reader(data);
  absl::string_view got;
  for (const std::string& p : payloads) {
    ASSERT_EQ(reader.Next(&got), FrameStatus::kOk);
    EXPECT_EQ(got, p);
  }
  EXPECT_EQ(reader.Next(&got), FrameStatus::kEnd);
  EXPECT_EQ(reader.offset(), data.size());
}

TEST(RecordIoTest, SingleFrameDecodesOnlyWhenItIsTheWholeBuffer) {
  absl::string_view got;
  std::string one = EncodeFrame("lease");
  ASSERT_TRUE(DecodeSingleFrame(one, &got));
  EXPECT_EQ(got, "lease");
  EXPECT_FALSE(DecodeSingleFrame(one + EncodeFrame("more"), &got));
  EXPECT_FALSE(DecodeSingleFrame(one.substr(0, one.size() - 1), &got));
  EXPECT_FALSE(DecodeSingleFrame("", &got));
}

FrameStatus StatusAfterOneGoodFrame(const std::string& tail, size_t* offset = nullptr) {
  std::string data = EncodeFrame("good") + tail;
  FrameReader reader(data);
  absl::string_view got;
  EXPECT_EQ(reader.Next(&got), FrameStatus::kOk);
  FrameStatus st = reader.Next(&got);
  if (offset) *offset = reader.offset();
  return st;
}

TEST(RecordIoTest, IncompleteFramesAtTheEndAreTorn) {
  std::string frame = EncodeFrame("a payload that was being written");
  size_t offset = 0;
  EXPECT_EQ(StatusAfterOneGoodFrame(frame.substr(0, 3), &offset), FrameStatus::kTorn);
  EXPECT_EQ(offset, EncodeFrame("good").size());  // nothing past the good frame is consumed
  EXPECT_EQ(StatusAfterOneGoodFrame(frame.substr(0, 8)), FrameStatus::kTorn);
  EXPECT_EQ(StatusAfterOneGoodFrame(frame.substr(0, frame.size() - 1)), FrameStatus::kTorn);
}

TEST(RecordIoTest, ZeroFillAtTheEndIsTornButZerosFollowedByDataAreCorrupt) {
  EXPECT_EQ(StatusAfterOneGoodFrame(std::string(4096, '\0')), FrameStatus::kTorn);
  EXPECT_EQ(StatusAfterOneGoodFrame(std::string(4096, '\0') + "x"), FrameStatus::kCorrupt);
}

TEST(RecordIoTest, ChecksumMismatchIsCorruptInTheMiddleAndTornAtTheEnd) {
  std::string bad = EncodeFrame("payload");
  bad[10] ^= 0x01;
  EXPECT_EQ(StatusAfterOneGoodFrame(bad + EncodeFrame("next")), FrameStatus::kCorrupt);
  EXPECT_EQ(StatusAfterOneGoodFrame(bad), FrameStatus::kTorn);
}

TEST(RecordIoTest, ImpossibleLengthIsCorrupt) {
  std::string garbage("\xff\xff\xff\xff\x01\x02\x03\x04", 8);
  EXPECT_EQ(StatusAfterOneGoodFrame(garbage + std::string(64, 'g')), FrameStatus::kCorrupt);
}

// ---- Journal segments ----

store::JournalRecord CancelledRecord(const std::string& id) {
  store::JournalRecord rec;
  rec.mutable_cancelled()->set_item_id(id);
  return rec;
}

TEST(JournalTest, RecordsReplayInOrderAcrossSegmentsAndCoveredSegmentsAreDeleted) {
  TempDir dir;
  StatePaths paths(dir.path());
  {
    absl::StatusOr<std::unique_ptr<Journal>> j = Journal::Create(paths, 1);
    ASSERT_OK(j);
    (*j)->Add(CancelledRecord("r1"));
    (*j)->Add(CancelledRecord("r2"));
    EXPECT_TRUE((*j)->HasBuffered());
    ASSERT_OK((*j)->Flush());
    EXPECT_FALSE((*j)->HasBuffered());
    (*j)->Add(CancelledRecord("r3"));
    absl::StatusOr<uint64_t> seg = (*j)->Rotate();
    ASSERT_OK(seg);
    EXPECT_EQ(*seg, 2u);
    (*j)->Add(CancelledRecord("r4"));
    ASSERT_OK((*j)->Flush());
  }
  EXPECT_THAT(*ListSegments(paths), ::testing::ElementsAre(1u, 2u));
  EXPECT_EQ(Journal::Create(paths, 2).status().code(), absl::StatusCode::kAlreadyExists);

  std::vector<std::string> seen;
  auto collect = [&](const store::JournalRecord& r) {
    seen.push_back(r.cancelled().item_id());
    return absl::OkStatus();
  };
  absl::StatusOr<ReplayReport> all = ReplayJournal(paths, 1, collect);
  ASSERT_OK(all);
  EXPECT_THAT(seen, ::testing::ElementsAre("r1", "r2", "r3", "r4"));
  EXPECT_EQ(all->records, 4u);
  EXPECT_EQ(all->last_segment, 2u);
  EXPECT_THAT(all->repairs, IsEmpty());

  seen.clear();
  absl::StatusOr<ReplayReport> tail = ReplayJournal(paths, 2, collect);
  ASSERT_OK(tail);
  EXPECT_THAT(seen, ::testing::ElementsAre("r4"));
  EXPECT_THAT(*ListSegments(paths), ::testing::ElementsAre(2u));
}

TEST(JournalTest, ARecordThatDoesNotApplyIsSetAsideAndAnyOtherRefusalStopsTheReplay) {
  TempDir dir;
  StatePaths paths(dir.path());
  {
    absl::StatusOr<std::unique_ptr<Journal>> j = Journal::Create(paths, 1);
    ASSERT_OK(j);
    for (const char* id : {"a", "b", "c"}) (*j)->Add(CancelledRecord(id));
    ASSERT_OK((*j)->Flush());
  }
  int calls = 0;
  // FailedPrecondition: the record is quarantined and cut out; the others are replayed.
  absl::StatusOr<ReplayReport> r = ReplayJournal(paths, 1, [&](const store::JournalRecord& rec) {
    ++calls;
    return rec.cancelled().item_id() == "b" ? absl::FailedPreconditionError("b does not fit")
                                            : absl::OkStatus();
  });
  ASSERT_OK(r);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r->records, 2u);
  ASSERT_THAT(r->repairs, SizeIs(1));
  EXPECT_THAT(r->repairs[0], AllOf(HasSubstr("does not apply (b does not fit)"),
                                   HasSubstr(paths.QuarantineDir())));
  EXPECT_THAT(ListNames(paths.QuarantineDir()), SizeIs(1));
  calls = 0;
  r = ReplayJournal(paths, 1, [&](const store::JournalRecord&) {
    ++calls;
    return absl::OkStatus();
  });
  ASSERT_OK(r);
  EXPECT_EQ(calls, 2);  // "b" is no longer in the segment
  EXPECT_THAT(r->repairs, SizeIs(0));

  // Any other error stops the replay, naming the segment.
  calls = 0;
  r = ReplayJournal(paths, 1, [&](const store::JournalRecord&) {
    ++calls;
    return absl::DataLossError("a record of a newer version");
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Msg(r.status()), HasSubstr("a record of a newer version"));
  EXPECT_THAT(Msg(r.status()), HasSubstr(paths.SegmentFile(1)));
  EXPECT_EQ(calls, 1);
}

// ---- Damage found by WorkQueue::Open ----

// Offsets of the frames of a segment file.
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

class JournalDamageTest : public ::testing::Test {
 protected:
  // Submits items a0..a4 one record each, then closes the queue: segment 1 holds 5 frames.
  void WriteFiveItems() {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir_.path()), &clock_);
    ASSERT_NE(q, nullptr);
    for (int i = 0; i < 5; ++i) ASSERT_OK(q->Submit({MakeSpec(absl::StrCat("a", i))}));
    q.reset();
    absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
    ASSERT_OK(segs);
    ASSERT_THAT(*segs, ::testing::ElementsAre(1u));
    absl::StatusOr<std::string> data = ReadFile(Segment());
    ASSERT_OK(data);
    original_ = *data;
    offsets_ = FrameOffsets(original_);
    ASSERT_EQ(offsets_.size(), 5u);
  }

  std::string Segment() const { return paths_.SegmentFile(1); }

  void WriteSegment(const std::string& data) { ASSERT_OK(WriteFileAtomically(Segment(), data)); }

  std::unique_ptr<WorkQueue> Reopen() { return OpenQueueOrDie(QueueOptions(dir_.path()), &clock_); }

  void ExpectItems(WorkQueue* q, int present) {
    for (int i = 0; i < 5; ++i) {
      std::string id = absl::StrCat("a", i);
      if (i < present) {
        EXPECT_OK(q->Get(id));
      } else {
        EXPECT_EQ(q->Get(id).status().code(), absl::StatusCode::kNotFound) << id;
      }
    }
    EXPECT_EQ(q->Counts().total, present);
  }

  TempDir dir_;
  StatePaths paths_{dir_.path()};
  FakeClock clock_;
  std::string original_;
  std::vector<size_t> offsets_;
};

struct TornCase {
  const char* name;
  // Makes the damaged segment from the original one and its frame offsets; sets the number of
  // items that must survive and the offset the segment must be cut at.
  std::function<std::string(const std::string&, const std::vector<size_t>&)> damage;
  int survivors;
  bool reported_as_torn;
};

class TornTailTest : public JournalDamageTest, public ::testing::WithParamInterface<TornCase> {};

TEST_P(TornTailTest, TornTailIsCutOffQuarantinedAndReportedAndEarlierRecordsSurvive) {
  ASSERT_NO_FATAL_FAILURE(WriteFiveItems());
  std::string damaged = GetParam().damage(original_, offsets_);
  ASSERT_NO_FATAL_FAILURE(WriteSegment(damaged));
  const size_t good_bytes =
      GetParam().survivors == 5 ? original_.size() : offsets_[GetParam().survivors];

  std::unique_ptr<WorkQueue> q = Reopen();
  ASSERT_NE(q, nullptr);
  ExpectItems(q.get(), GetParam().survivors);
  ASSERT_THAT(q->recovery().repairs, SizeIs(1));
  const std::string& line = q->recovery().repairs[0];
  EXPECT_THAT(line, AllOf(HasSubstr(Segment()), HasSubstr(absl::StrCat("at offset ", good_bytes)),
                          HasSubstr("quarantine"), HasSubstr("cut off")));
  if (GetParam().reported_as_torn) {
    EXPECT_THAT(line, HasSubstr("torn tail"));
  }

  // The cut-off bytes are kept in quarantine/, exactly.
  std::vector<std::string> quarantined = ListNames(paths_.QuarantineDir());
  ASSERT_THAT(quarantined, SizeIs(1));
  absl::StatusOr<std::string> kept = ReadFile(paths_.QuarantineDir() + "/" + quarantined[0]);
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, damaged.substr(good_bytes));
  // The segment itself now ends after the last good record.
  absl::StatusOr<std::string> now = ReadFile(Segment());
  ASSERT_OK(now);
  EXPECT_EQ(*now, original_.substr(0, good_bytes));

  // Work goes on, and the next open finds nothing to repair.
  ASSERT_OK(q->Submit({MakeSpec("after")}));
  q.reset();
  q = Reopen();
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->recovery().repairs, IsEmpty());
  EXPECT_OK(q->Get("after"));
  EXPECT_EQ(q->Counts().total, GetParam().survivors + 1);
}

INSTANTIATE_TEST_SUITE_P(
    Journal, TornTailTest,
    ::testing::Values(TornCase{"TruncatedInsideTheLastHeader",
                               [](const std::string& d, const std::vector<size_t>& o) {
                                 return d.substr(0, o[4] + 5);
                               },
                               4, true},
                      TornCase{"TruncatedInsideTheLastPayload",
                               [](const std::string& d, const std::vector<size_t>& o) {
                                 return d.substr(0, o[4] + (d.size() - o[4]) / 2);
                               },
                               4, true},
                      TornCase{"ZeroBytesAppended",
                               [](const std::string& d, const std::vector<size_t>&) {
                                 return d + std::string(4096, '\0');
                               },
                               5, true},
                      TornCase{"PlausibleLengthWithNoPayload",
                               [](const std::string& d, const std::vector<size_t>&) {
                                 return d +
                                        std::string("\x40\x00\x00\x00\x12\x34\x56\x78\x01\x02", 10);
                               },
                               5, true},
                      TornCase{"GarbageLengthAppended",
                               [](const std::string& d, const std::vector<size_t>&) {
                                 return d +
                                        std::string("\xff\xff\xff\x7f\xde\xad\xbe\xef garbage", 16);
                               },
                               5, false}),
    [](const ::testing::TestParamInfo<TornCase>& info) { return std::string(info.param.name); });

TEST_F(JournalDamageTest, CorruptByteInAMiddleRecordIsReportedAndQuarantinedNotDropped) {
  ASSERT_NO_FATAL_FAILURE(WriteFiveItems());
  std::string damaged = original_;
  damaged[offsets_[2] + 8 + 3] ^= 0x20;  // a payload byte of the third record
  ASSERT_NO_FATAL_FAILURE(WriteSegment(damaged));

  std::unique_ptr<WorkQueue> q = Reopen();
  ASSERT_NE(q, nullptr);
  // Only the damaged record is lost: its length still leads to the next good frame.
  EXPECT_EQ(q->Counts().total, 4);
  EXPECT_EQ(q->Get("a2").status().code(), absl::StatusCode::kNotFound);
  ASSERT_THAT(q->recovery().repairs, SizeIs(1));
  EXPECT_THAT(q->recovery().repairs[0],
              AllOf(HasSubstr("corrupt record"), HasSubstr(absl::StrCat("at offset ", offsets_[2])),
                    HasSubstr(paths_.QuarantineDir())));
  // The damaged record is kept for a human, byte for byte.
  std::vector<std::string> quarantined = ListNames(paths_.QuarantineDir());
  ASSERT_THAT(quarantined, SizeIs(1));
  absl::StatusOr<std::string> kept = ReadFile(paths_.QuarantineDir() + "/" + quarantined[0]);
  ASSERT_OK(kept);
  EXPECT_EQ(*kept, damaged.substr(offsets_[2], offsets_[3] - offsets_[2]));
}

TEST_F(JournalDamageTest, CorruptSnapshotRefusesToStart) {
  ASSERT_NO_FATAL_FAILURE(WriteFiveItems());
  ASSERT_OK(WriteFileAtomically(paths_.SnapshotFile(), EncodeFrame("not a snapshot") + "junk"));
  absl::StatusOr<std::unique_ptr<WorkQueue>> q =
      WorkQueue::Open(QueueOptions(dir_.path()), &clock_);
  EXPECT_EQ(q.status().code(), absl::StatusCode::kDataLoss) << q.status();
  EXPECT_THAT(Msg(q.status()), HasSubstr("snapshot"));
  EXPECT_THAT(Msg(q.status()), HasSubstr("refusing to start"));
}

// ---- Snapshots ----

TEST(SnapshotTest, SnapshotsReplaceTheJournalAndEveryItemSurvivesAReopen) {
  TempDir dir;
  StatePaths paths(dir.path());
  FakeClock clock;
  WorkQueueOptions options = QueueOptions(dir.path());
  options.snapshot_after_bytes = 4096;
  std::map<std::string, store::ItemRecord> before;
  uint64_t max_token = 0;
  {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
    ASSERT_NE(q, nullptr);
    for (int i = 0; i < 120; ++i) {
      store::ItemSpec spec = MakeSpec(absl::StrCat("item-", i), i % 3, /*max_attempts=*/2);
      (*spec.mutable_labels())["batch"] = absl::StrCat(i / 10);
      ASSERT_OK(q->Submit({spec}));
    }
    for (int i = 0; i < 100; ++i) {
      clock.Advance(absl::Seconds(1));
      absl::StatusOr<std::optional<Grant>> g = q->Acquire(absl::StrCat("agent-", i));
      ASSERT_OK(g);
      ASSERT_TRUE(g->has_value());
      const std::string id = (*g)->spec.id();
      max_token = std::max(max_token, (*g)->token);
      AttemptResult r;
      switch (i % 5) {
        case 0:
        case 1:
          r.commit = absl::StrCat("commit-", i);
          r.branch = "harness/" + id;
          ASSERT_OK(q->Complete(id, (*g)->token, r));
          break;
        case 2:
          r.exit_code = 1;
          r.error = "tests failed";
          ASSERT_OK(q->Fail(id, (*g)->token, store::OUTCOME_FAILED, r));
          break;
        case 3:
          ASSERT_OK(q->Release(id, (*g)->token, "draining"));
          break;
        case 4:
          if (i >= 90) break;  // leave a few leased
          ASSERT_OK(q->Cancel(id));
          break;
      }
    }
    for (const store::ItemRecord& listed : q->List(std::nullopt, 1000)) {
      absl::StatusOr<store::ItemRecord> item = q->Get(listed.spec().id());
      ASSERT_OK(item);
      before[listed.spec().id()] = *item;
    }
    ASSERT_EQ(before.size(), 120u);
  }

  // A snapshot was written and the segments it covers are gone.
  absl::StatusOr<std::string> snap_bytes = ReadFile(paths.SnapshotFile());
  ASSERT_OK(snap_bytes);
  absl::string_view payload;
  ASSERT_TRUE(DecodeSingleFrame(*snap_bytes, &payload));
  store::Snapshot snap;
  ASSERT_TRUE(snap.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  EXPECT_GT(snap.first_segment(), 1u);
  absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths);
  ASSERT_OK(segs);
  ASSERT_FALSE(segs->empty());
  EXPECT_GE(segs->front(), snap.first_segment());
  EXPECT_THAT(*segs, ::testing::Not(Contains(1u)));

  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
  ASSERT_NE(q, nullptr);
  EXPECT_THAT(q->recovery().repairs, IsEmpty());
  EXPECT_EQ(q->recovery().items, 120u);
  EXPECT_EQ(q->recovery().leases_kept, 2u);  // i = 94 and 99 were left leased
  EXPECT_EQ(q->Counts().total, 120);
  for (const auto& [id, item] : before) {
    absl::StatusOr<store::ItemRecord> after = q->Get(id);
    ASSERT_OK(after);
    std::string diff;
    MessageDifferencer differ;
    differ.ReportDifferencesToString(&diff);
    EXPECT_TRUE(differ.Compare(item, *after)) << id << ": " << diff;
  }
  absl::StatusOr<std::optional<Grant>> next = q->Acquire("agent-new");
  ASSERT_OK(next);
  ASSERT_TRUE(next->has_value());
  EXPECT_GT((*next)->token, max_token);
}

}  // namespace
}  // namespace harness
