// Prometheus text format writer (see prom_text.h).
#include "http/prom_text.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace harness::http {
namespace {

// `quote`: also escape double quotes (label values; help text keeps them).
void AppendEscaped(absl::string_view s, bool quote, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

}  // namespace

std::string FormatPromValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general);
  return std::string(buf, static_cast<size_t>(end - buf));
}

void PromWriter::Family(absl::string_view name, absl::string_view type, absl::string_view help) {
  absl::StrAppend(&out_, "# HELP ", name, " ");
  AppendEscaped(help, /*quote=*/false, &out_);
  absl::StrAppend(&out_, "\n# TYPE ", name, " ", type, "\n");
}

void PromWriter::Start(absl::string_view name, const Labels& labels) {
  out_.append(name.data(), name.size());
  if (labels.empty()) {
    out_.push_back(' ');
    return;
  }
  out_.push_back('{');
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out_.push_back(',');
    absl::StrAppend(&out_, labels[i].first, "=\"");
    AppendEscaped(labels[i].second, /*quote=*/true, &out_);
    out_.push_back('"');
  }
  out_.append("} ");
}

void PromWriter::Sample(absl::string_view name, const Labels& labels, double value) {
  Start(name, labels);
  absl::StrAppend(&out_, FormatPromValue(value), "\n");
}

void PromWriter::Sample(absl::string_view name, const Labels& labels, uint64_t value) {
  Start(name, labels);
  absl::StrAppend(&out_, value, "\n");
}

void PromWriter::Histogram(absl::string_view name, const Labels& labels,
                           const HistogramSnapshot& h) {
  const std::string bucket = absl::StrCat(name, "_bucket");
  for (size_t i = 0; i < h.counts.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", i < h.bounds.size() ? FormatPromValue(h.bounds[i]) : "+Inf");
    Sample(bucket, with_le, h.counts[i]);
  }
  Sample(absl::StrCat(name, "_sum"), labels, h.sum);
  Sample(absl::StrCat(name, "_count"), labels, h.count);
}

}  // namespace harness::http
