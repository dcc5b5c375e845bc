// Validation and defaults of submitted items (the "Work items" rules of CONTRACT.md).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "core/limits.h"
#include "core/records.pb.h"

namespace harness {

// What an item submitted without them gets, and the fixed title limit.
struct SpecDefaults {
  size_t max_title_bytes = 1024;
  int default_max_attempts = 3;
  double default_timeout_s = 3600;
};

// Checks a spec against `limits` (prompt size, labels) and fills in defaults. An empty id is
// allowed here (the queue assigns one). InvalidArgument messages name the item and the field:
// `item "x": title is required`, `item "x": prompt of 2,100,000 bytes is over ...`.
absl::Status NormalizeSpec(const SpecDefaults& defaults, const Limits& limits,
                           store::ItemSpec* spec);

}  // namespace harness
