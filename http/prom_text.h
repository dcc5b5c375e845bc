// PromWriter: writes the Prometheus text exposition format (version 0.0.4) that /metrics serves:
// a "# HELP" and "# TYPE" line per metric family, then its samples. Label values and help text
// are escaped as the format says (backslash, double quote, line feed). Pure: no I/O, no
// controller; http/metrics_page.cc decides what to write.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/histogram.h"

namespace harness::http {

using Labels = std::vector<std::pair<std::string, std::string>>;

class PromWriter {
 public:
  // Starts a family: `type` is "counter", "gauge" or "histogram". Each family once per page.
  void Family(absl::string_view name, absl::string_view type, absl::string_view help);
  // One sample of the current family (`name` may carry a suffix such as _bucket).
  void Sample(absl::string_view name, const Labels& labels, double value);
  void Sample(absl::string_view name, const Labels& labels, uint64_t value);
  // The _bucket (cumulative, with le="+Inf"), _sum and _count samples of a histogram.
  void Histogram(absl::string_view name, const Labels& labels, const HistogramSnapshot& h);

  const std::string& text() const { return out_; }

 private:
  void Start(absl::string_view name, const Labels& labels);
  std::string out_;
};

// A number as the format reads it: shortest round-trip form, "+Inf", "-Inf", "NaN".
std::string FormatPromValue(double value);

}  // namespace harness::http
