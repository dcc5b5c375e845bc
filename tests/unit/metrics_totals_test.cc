// The running totals behind /metrics (core/metrics.h): attempts by outcome, expired leases, and
// the run-time histogram of the attempts that finished their item.
#include "core/metrics.h"

#include "gtest/gtest.h"

namespace harness {
namespace {

TEST(MetricsTotals, CountAttemptsByOutcomeExpiriesAndTimeOnlyTheDoneOnes) {
  FakeClock clock;
  Metrics m(&clock);
  m.RecordAttempt(store::OUTCOME_DONE, false, absl::Seconds(3));
  m.RecordAttempt(store::OUTCOME_DONE, false, absl::Seconds(40));
  m.RecordAttempt(store::OUTCOME_FAILED, false, absl::Seconds(2));
  m.RecordAttempt(store::OUTCOME_EXPIRED, true, absl::Seconds(30));
  m.RecordAttempt(store::OUTCOME_EXPIRED, false, absl::Seconds(1));  // its agent re-registered
  MetricsTotals t = m.Totals();
  EXPECT_EQ(t.attempts_by_outcome[store::OUTCOME_DONE], 2u);
  EXPECT_EQ(t.attempts_by_outcome[store::OUTCOME_FAILED], 1u);
  EXPECT_EQ(t.attempts_by_outcome[store::OUTCOME_EXPIRED], 2u);
  EXPECT_EQ(t.attempts_by_outcome[store::OUTCOME_RELEASED], 0u);
  EXPECT_EQ(t.leases_expired, 1u);
  EXPECT_EQ(t.item_seconds.count, 2u);
  EXPECT_DOUBLE_EQ(t.item_seconds.sum, 43);
  // Totals never age out, unlike the windowed figures of `harnessctl status`.
  clock.Advance(absl::Hours(5));
  EXPECT_EQ(m.Totals().attempts_by_outcome[store::OUTCOME_DONE], 2u);
  EXPECT_EQ(m.Get().items_per_hour, 0);
}

}  // namespace
}  // namespace harness
