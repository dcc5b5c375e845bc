// CrashContext: what is kept when an agent dies, its command stalls or times out, so that the
// cause can be found after the fact: <state>/crashes/<agent>/<UTC timestamp>/ holding
//   reason      one line: what happened
//   status      the agent's last known status (state, health, last heartbeat, pid, host)
//   item        the item it held ("item X token T attempt N"), if any
//   log.tail    the end of the agent's log (its agentd.log, or the attempt's log)
// A folder appears whole (written hidden, then renamed) or not at all. At most `keep` folders
// per agent: the oldest go first. Written on the pool manager's thread, never under a lock.
// See docs/CONTROLLER.md, "The pool".
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace harness {

inline constexpr int kKeepCrashesPerAgent = 20;
inline constexpr size_t kCrashLogTailBytes = 64 * 1024;

struct CrashContext {
  std::string agent;
  // The folder's name under crashes/<agent>/; empty: the UTC timestamp of `at`
  // (CrashFolderName). A name that is taken gets a "-2", "-3" suffix.
  std::string folder;
  std::string reason;
  std::string status;
  std::string item;
  std::string log_tail;
};

// Writes the folder (a "-2", "-3" suffix if the timestamp is taken) and prunes the agent's
// oldest folders beyond `keep`. Returns the folder's path. InvalidArgument for a bad agent id.
absl::StatusOr<std::string> WriteCrashContext(const std::string& crashes_dir,
                                              const CrashContext& context, absl::Time at,
                                              int keep = kKeepCrashesPerAgent);

// "20261130T023045.123Z": the name of a folder written at `at`.
std::string CrashFolderName(absl::Time at);

// The last `max_bytes` of the file at `path`; "" if it cannot be read.
std::string ReadFileTail(const std::string& path, size_t max_bytes);

}  // namespace harness
