// ItemLogs: the log tail each attempt reports, kept under <state>/logs/<item>/<attempt>.log for
// `harnessctl show`. Not part of the durable state: a lost tail loses no work.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/paths.h"

namespace harness {

class ItemLogs {
 public:
  explicit ItemLogs(StatePaths paths) : paths_(std::move(paths)) {}
  // Stores the tail of attempt `attempt` (item_id must be valid; ValidateItemId is applied).
  absl::Status Write(absl::string_view item_id, int attempt, absl::string_view tail) const;
  // The tail of the highest-numbered attempt that has one; empty if none.
  std::string Latest(absl::string_view item_id) const;
  // The tail of attempt `attempt`; nullopt if none was kept.
  std::optional<std::string> Read(absl::string_view item_id, int attempt) const;

 private:
  StatePaths paths_;
};

}  // namespace harness
