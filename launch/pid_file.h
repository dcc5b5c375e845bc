// The pid file of a launched agent, <state>/agents/<agent>/pid: which process it is (pid and
// start time, so a reused pid is not mistaken for it), which binary, which slot and controller.
// Text, one "key=value" per line, written atomically (temp, fsync, rename). Format only; the
// process launcher decides what to trust.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace harness::launch {

struct PidRecord {
  int64_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat when it was started
  std::string binary;        // the executable's absolute path
  int slot = 0;
  std::string agent_id;
  std::string controller_id;
  int64_t started_unix_ms = 0;  // wall clock at start, for status
};

std::string FormatPidRecord(const PidRecord& r);

// DataLoss naming `path` and the field for anything missing or malformed.
absl::StatusOr<PidRecord> ParsePidRecord(absl::string_view text, absl::string_view path);

}  // namespace harness::launch
