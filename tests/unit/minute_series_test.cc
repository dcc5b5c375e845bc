// MinuteSeries: the dashboard chart's per-minute ring keeps the last hour and nothing older.
#include "core/minute_series.h"

#include "gtest/gtest.h"

namespace harness {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000 / 60 * 60);  // a minute's start

TEST(MinuteSeries, ItemEndsAreCountedInTheirMinute) {
  MinuteSeries s(60);
  s.RecordItemEnd(kT0 + absl::Seconds(5), true, absl::Seconds(10));
  s.RecordItemEnd(kT0 + absl::Seconds(50), true, absl::Seconds(30));
  s.RecordItemEnd(kT0 + absl::Seconds(70), false, absl::Seconds(4));
  std::vector<MinutePoint> pts = s.Last(kT0 + absl::Seconds(70));
  ASSERT_EQ(pts.size(), 60u);
  const MinutePoint& prev = pts[58];
  const MinutePoint& cur = pts[59];
  EXPECT_EQ(prev.minute, absl::ToUnixSeconds(kT0) / 60);
  EXPECT_EQ(prev.done, 2);
  EXPECT_EQ(prev.failed, 0);
  EXPECT_EQ(prev.durations, 2);
  EXPECT_DOUBLE_EQ(prev.duration_sum_s, 40);
  EXPECT_DOUBLE_EQ(prev.duration_max_s, 30);
  EXPECT_EQ(cur.done, 0);
  EXPECT_EQ(cur.failed, 1);
  EXPECT_EQ(pts[0].minute, cur.minute - 59);
}

TEST(MinuteSeries, TheLastDepthSampleOfAMinuteIsKept) {
  MinuteSeries s(60);
  s.RecordDepth(kT0, 10, 2);
  s.RecordDepth(kT0 + absl::Seconds(30), 7, 3);
  std::vector<MinutePoint> pts = s.Last(kT0 + absl::Minutes(1));
  EXPECT_EQ(pts[58].pending, 7);
  EXPECT_EQ(pts[58].leased, 3);
  EXPECT_EQ(pts[59].pending, -1);  // no sample in the current minute yet
}

TEST(MinuteSeries, AMinuteOlderThanTheRingIsForgottenWhenItsSlotComesRound) {
  MinuteSeries s(60);
  s.RecordItemEnd(kT0, true, absl::Seconds(1));
  // 60 minutes later the same slot is reused: the old count must not leak into the new minute.
  s.RecordItemEnd(kT0 + absl::Minutes(60), true, absl::Seconds(2));
  std::vector<MinutePoint> pts = s.Last(kT0 + absl::Minutes(60));
  int64_t total = 0;
  for (const MinutePoint& p : pts) total += p.done;
  EXPECT_EQ(total, 1);
  EXPECT_DOUBLE_EQ(pts[59].duration_sum_s, 2);
  // And an hour with no records at all reads as empty, not as the stale slot.
  std::vector<MinutePoint> later = s.Last(kT0 + absl::Minutes(200));
  for (const MinutePoint& p : later) EXPECT_EQ(p.done, 0);
}

}  // namespace
}  // namespace harness
