// Item spec validation (see item_spec.h).
#include "core/item_spec.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"

namespace harness {
namespace {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      extra = 3;
    } else {
      return false;
    }
    if (n - i - 1 < extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += 1 + extra;
  }
  return true;
}

}  // namespace

absl::Status NormalizeSpec(const SpecDefaults& defaults, const Limits& limits,
                           store::ItemSpec* spec) {
  std::string who =
      spec->id().empty() ? "new item" : absl::StrCat("item ", QuoteForMessage(spec->id()));
  auto bad = [&](absl::string_view field, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", field, " ", why));
  };
  if (!spec->id().empty()) {
    if (absl::Status s = ValidateItemId(spec->id()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("id: ", s.message()));
    }
  }
  if (spec->title().empty()) return bad("title", "is required");
  if (spec->title().size() > defaults.max_title_bytes) {
    return bad("title", absl::StrFormat("is too long: %d bytes, at most %d", spec->title().size(),
                                        defaults.max_title_bytes));
  }
  if (!IsValidUtf8(spec->title())) return bad("title", "is not valid UTF-8");
  if (spec->prompt().empty()) return bad("prompt", "is required");
  if (!IsValidUtf8(spec->prompt())) return bad("prompt", "is not valid UTF-8");
  if (absl::Status s = CheckPromptSize(limits, spec->prompt().size()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", s.message()));
  }
  if (spec->max_attempts() < 0) {
    return bad("max_attempts", absl::StrCat("must be at least 1, got ", spec->max_attempts()));
  }
  if (spec->max_attempts() == 0) spec->set_max_attempts(defaults.default_max_attempts);
  if (spec->max_attempts() > 1000) {
    return bad("max_attempts", absl::StrCat("must be at most 1000, got ", spec->max_attempts()));
  }
  if (std::isnan(spec->timeout_s()) || spec->timeout_s() < 0 || std::isinf(spec->timeout_s())) {
    return bad("timeout_s",
               absl::StrCat("must be a positive number of seconds, got ", spec->timeout_s()));
  }
  if (spec->timeout_s() == 0) spec->set_timeout_s(defaults.default_timeout_s);
  if (absl::Status s = CheckLabelCount(limits, spec->labels_size()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": ", s.message()));
  }
  for (const auto& [k, v] : spec->labels()) {
    if (absl::Status s = CheckLabel(limits, k, v); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(who, ": ", s.message()));
    }
    if (k.empty() || !IsValidUtf8(k)) {
      return bad("labels", absl::StrCat("key ", QuoteForMessage(k), " is empty or not UTF-8"));
    }
    if (!IsValidUtf8(v)) {
      return bad("labels", absl::StrCat("value of ", QuoteForMessage(k), " is not UTF-8"));
    }
  }
  return absl::OkStatus();
}

}  // namespace harness
