// PoolTarget: the pool's target size as `harnessctl scale` left it, kept in
// <state>/pool.target so that a restarted controller keeps it. The file also records the
// config's `parallel_agents` at the time of the scale: if the config has changed since (the
// operator edited it, or passed another --agents), the config wins, since that change is newer
// than the scale. Text, two lines: "target N" and "configured M".
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace harness {

struct PoolTargetChoice {
  int target = 0;
  std::string why;  // one line for the log: which value holds and why
};

// The target to start with: the recorded scale when the file exists and was written for the
// same `configured` value, `configured` otherwise. InvalidArgument naming the file for a file
// that cannot be parsed (never guessed over).
absl::StatusOr<PoolTargetChoice> LoadPoolTarget(const std::string& path, int configured);

// Replaces the file atomically (and durably) with `target` and `configured`.
absl::Status SavePoolTarget(const std::string& path, int target, int configured);

}  // namespace harness
