// Validation and defaults of submitted items (the "Work items" rules of CONTRACT.md).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "core/records.pb.h"

namespace harness {

struct SpecLimits {
  size_t max_prompt_bytes = 1 << 20;
  size_t max_title_bytes = 1024;
  int default_max_attempts = 3;
  double default_timeout_s = 3600;
  int max_labels = 64;
};

// Checks a spec and fills in defaults. An empty id is allowed here (the queue assigns one).
// InvalidArgument messages name the item and the field: `item "x": title is required`.
absl::Status NormalizeSpec(const SpecLimits& limits, store::ItemSpec* spec);

}  // namespace harness
