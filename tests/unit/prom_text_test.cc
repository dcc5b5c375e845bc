// The Prometheus text writer and the fixed-bucket histogram behind /metrics: escaping, the
// cumulative buckets with +Inf, which bucket a value on a bound falls into.
#include "http/prom_text.h"

#include "core/histogram.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness::http {
namespace {

using ::testing::HasSubstr;

TEST(Histogram, AValueOnABoundCountsInThatBucketAndBucketsAreCumulative) {
  Histogram h({0.1, 1});
  h.Observe(absl::Milliseconds(50));
  h.Observe(absl::Milliseconds(100));  // le="0.1" includes 0.1
  h.Observe(absl::Milliseconds(500));
  h.Observe(absl::Seconds(7));
  HistogramSnapshot s = h.Get();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum, 7.65);
}

TEST(Histogram, ANegativeDurationCountsAsZero) {
  Histogram h({1});
  h.Observe(absl::Seconds(-3));
  EXPECT_EQ(h.Get().counts, (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(h.Get().sum, 0);
}

TEST(PromWriter, WritesHelpTypeAndEscapedLabelValues) {
  PromWriter w;
  w.Family("x_total", "counter", "Help with a \\ and a\nline break.");
  w.Sample("x_total", {{"agent", "a\"b\\c\nd"}, {"code", "OK"}}, uint64_t{3});
  w.Sample("x_total", {}, 0.25);
  EXPECT_EQ(w.text(),
            "# HELP x_total Help with a \\\\ and a\\nline break.\n"
            "# TYPE x_total counter\n"
            "x_total{agent=\"a\\\"b\\\\c\\nd\",code=\"OK\"} 3\n"
            "x_total 0.25\n");
}

TEST(PromWriter, AHistogramHasCumulativeBucketsEndingInInfThenSumAndCount) {
  Histogram h({0.5, 2});
  h.Observe(absl::Seconds(1));
  PromWriter w;
  w.Histogram("d_seconds", {{"method", "m"}}, h.Get());
  EXPECT_EQ(w.text(),
            "d_seconds_bucket{method=\"m\",le=\"0.5\"} 0\n"
            "d_seconds_bucket{method=\"m\",le=\"2\"} 1\n"
            "d_seconds_bucket{method=\"m\",le=\"+Inf\"} 1\n"
            "d_seconds_sum{method=\"m\"} 1\n"
            "d_seconds_count{method=\"m\"} 1\n");
}

TEST(PromWriter, NumbersUseTheFormatsSpellingOfInfinityAndNaN) {
  EXPECT_EQ(FormatPromValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatPromValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatPromValue(0.0 / 0.0), "NaN");
  EXPECT_EQ(FormatPromValue(0.0005), "0.0005");
  EXPECT_THAT(FormatPromValue(1e21), HasSubstr("e+21"));
}

}  // namespace
}  // namespace harness::http
