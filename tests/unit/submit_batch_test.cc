// A submitted batch is one journal record: replay keeps all of its items or none, whatever cut
// the journal; ItemTable applies a batch whole or not at all; and snapshots of any size are
// written in frames a reader accepts.
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/item_table.h"
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

using ::harness::testing::MakeSpec;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;
using ::testing::HasSubstr;

std::vector<store::ItemSpec> Batch(const std::string& prefix, int n) {
  std::vector<store::ItemSpec> specs;
  for (int i = 0; i < n; ++i) specs.push_back(MakeSpec(absl::StrCat(prefix, i)));
  return specs;
}

TEST(SubmitBatch, ATornBatchRecordAtTheJournalsEndKeepsNoneOfItsItems) {
  TempDir dir;
  StatePaths paths(dir.path());
  FakeClock clock;
  size_t batch_start = 0, batch_end = 0;
  {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
    ASSERT_NE(q, nullptr);
    ASSERT_OK(q->Submit({MakeSpec("before")}));
    absl::StatusOr<std::string> seg = ReadFile(paths.SegmentFile(1));
    ASSERT_OK(seg);
    batch_start = seg->size();
    ASSERT_OK(q->Submit(Batch("b", 50)));
    seg = ReadFile(paths.SegmentFile(1));
    ASSERT_OK(seg);
    batch_end = seg->size();
  }
  absl::StatusOr<std::string> whole = ReadFile(paths.SegmentFile(1));
  ASSERT_OK(whole);
  // A crash during the append leaves any prefix of the batch's bytes.
  for (size_t cut : {batch_start + 1, batch_start + 8, batch_start + (batch_end - batch_start) / 3,
                     (batch_start + batch_end) / 2, batch_end - 1}) {
    SCOPED_TRACE(absl::StrCat("journal cut at byte ", cut, " of ", batch_end));
    ASSERT_OK(WriteFileAtomically(paths.SegmentFile(1), whole->substr(0, cut)));
    for (const std::string& name : testing::ListNames(paths.JournalDir())) {
      std::optional<uint64_t> seg = StatePaths::ParseSegmentName(name);
      if (seg && *seg != 1) {  // the segments the earlier reopens started
        ::unlink((paths.JournalDir() + "/" + name).c_str());
      }
    }
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
    ASSERT_NE(q, nullptr);
    EXPECT_OK(q->Get("before"));
    EXPECT_EQ(q->Counts().total, 1) << "a torn batch keeps none of its items";
    EXPECT_EQ(q->Get("b0").status().code(), absl::StatusCode::kNotFound);
    ASSERT_FALSE(q->recovery().repairs.empty());
    EXPECT_THAT(q->recovery().repairs.back(), HasSubstr("torn tail"));
  }
  // And the whole record keeps every item.
  ASSERT_OK(WriteFileAtomically(paths.SegmentFile(1), *whole));
  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->Counts().total, 51);
  EXPECT_EQ(q->Counts().pending, 51);
}

TEST(SubmitBatch, ABatchWithOneRefusedItemChangesNothingInTheTable) {
  ItemTable table;
  store::JournalRecord first;
  first.mutable_submitted()->mutable_spec()->set_id("x");
  first.mutable_submitted()->set_seq(1);
  ASSERT_OK(table.Apply(first));
  store::JournalRecord batch;
  for (const char* id : {"a", "b", "x", "c"}) {
    store::ItemRecord* item = batch.mutable_batch()->add_items();
    item->mutable_spec()->set_id(id);
    item->set_seq(2);
  }
  absl::Status s = table.Apply(batch);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"x\""));
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.counts().total, 1);
  EXPECT_EQ(table.counts().pending, 1);
  EXPECT_FALSE(table.Contains("a"));

  store::JournalRecord twice;
  for (const char* id : {"d", "d"}) twice.mutable_batch()->add_items()->mutable_spec()->set_id(id);
  EXPECT_EQ(table.Apply(twice).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(table.Contains("d"));
}

TEST(SubmitBatch, ASubmitCallIsOneJournalRecord) {
  TempDir dir;
  StatePaths paths(dir.path());
  FakeClock clock;
  {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(QueueOptions(dir.path()), &clock);
    ASSERT_NE(q, nullptr);
    absl::StatusOr<std::vector<std::string>> ids = q->Submit(Batch("", 3));
    ASSERT_OK(ids);
    EXPECT_EQ(ids->size(), 3u);
    ASSERT_OK(q->Submit({MakeSpec("single")}));
  }
  absl::StatusOr<std::string> seg = ReadFile(paths.SegmentFile(1));
  ASSERT_OK(seg);
  FrameReader reader(*seg);
  absl::string_view payload;
  std::vector<store::JournalRecord> records;
  while (reader.Next(&payload) == FrameStatus::kOk) {
    records.emplace_back();
    ASSERT_TRUE(records.back().ParseFromArray(payload.data(), static_cast<int>(payload.size())));
  }
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].batch().items_size(), 3);
  EXPECT_TRUE(records[1].has_submitted());
}

// The old format wrote a snapshot as one frame, and a reader refuses frames over 64 MiB: a
// queue of large prompts then could not be reopened.
TEST(SnapshotSize, ASnapshotLargerThanAnyFrameIsWrittenInPiecesAndReadWhole) {
  TempDir dir;
  StatePaths paths(dir.path());
  FakeClock clock;
  WorkQueueOptions options = QueueOptions(dir.path());
  options.snapshot_after_bytes = 70ull << 20;
  const std::string prompt((1 << 20) - 512, 'p');
  int n = 0;
  {
    std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
    ASSERT_NE(q, nullptr);
    while (!PathExists(paths.SnapshotFile())) {
      ASSERT_LT(n, 100) << "no snapshot was written";
      store::ItemSpec spec = MakeSpec(absl::StrCat("big-", n++));
      spec.set_prompt(prompt);
      ASSERT_OK(q->Submit({spec}));
    }
  }
  absl::StatusOr<std::string> snap = ReadFile(paths.SnapshotFile());
  ASSERT_OK(snap);
  EXPECT_GT(snap->size(), size_t{70} << 20);
  FrameReader reader(*snap);
  absl::string_view payload;
  int frames = 0;
  while (reader.Next(&payload) == FrameStatus::kOk) {
    ++frames;
    EXPECT_LE(payload.size(), size_t{16} << 20);
  }
  EXPECT_GT(frames, 1);
  std::unique_ptr<WorkQueue> q = OpenQueueOrDie(options, &clock);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->Counts().total, n);
  absl::StatusOr<store::ItemRecord> last = q->Get(absl::StrCat("big-", n - 1));
  ASSERT_OK(last);
  EXPECT_EQ(last->spec().prompt(), prompt);
}

}  // namespace
}  // namespace harness
