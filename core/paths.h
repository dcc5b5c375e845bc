// Every path of the controller's state dir, named in one place (as leveldb's filename.cc and
// Mesos' paths.hpp do). Callers pass ids that ValidateItemId/ValidateAgentId accepted.
//
//   <state>/LOCK                      flock'd by the one controller that owns the dir
//   <state>/controller.addr           the address the controller listens on
//   <state>/journal/<n>.wal           append-only journal segments (record_io framing)
//   <state>/snapshot                  every item as of a journal segment (written atomically)
//   <state>/leases/.slot-<n>          lease records, each rewritten in place for the next lease
//                                     it holds (claim_dir.h)
//   <state>/leases/.lock              flock'd while a claim is removed by a non-owner
//   <state>/claims/<item>             hard link to the item's current lease record
//   <state>/quarantine/<name>.<ms>    damaged bytes moved aside by recovery, never deleted
//                                     (journal-<segment>-at-<offset>.<unix ms>: a torn tail)
//   <state>/logs/<item>/<n>.log       the log tail of attempt n of an item
//   *.tmp.*                           temp files of atomic writes (removed by recovery)
//   <state>/spool/                    packs FetchBase is sending, as files without a name
//                                     (spool_file.h); emptied at start-up
//   <state>/agents/<agent>/           a launched agent's folder (launch/process_launcher.h):
//   <state>/agents/<agent>/pid        its pid, start time, binary, slot (written atomically)
//   <state>/agents/<agent>/agentd.log its stdout and stderr, appended
//   <state>/agents/<agent>/work/      its --workdir
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace harness {

class StatePaths {
 public:
  explicit StatePaths(std::string root);

  const std::string& root() const { return root_; }
  std::string LockFile() const { return root_ + "/LOCK"; }
  std::string AddressFile() const { return root_ + "/controller.addr"; }
  // The HTTP listener's HOST:PORT (http.listen), while it serves.
  std::string HttpAddressFile() const { return root_ + "/http.addr"; }
  std::string JournalDir() const { return root_ + "/journal"; }
  std::string SegmentFile(uint64_t n) const;
  std::string SnapshotFile() const { return root_ + "/snapshot"; }
  std::string LeasesDir() const { return root_ + "/leases"; }
  std::string ClaimsDir() const { return root_ + "/claims"; }
  std::string ClaimFile(absl::string_view item_id) const;
  std::string QuarantineDir() const { return root_ + "/quarantine"; }
  std::string LogsDir() const { return root_ + "/logs"; }
  std::string SpoolDir() const { return root_ + "/spool"; }
  std::string AgentsDir() const { return root_ + "/agents"; }
  std::string CrashesDir() const { return root_ + "/crashes"; }
  // The last `harnessctl scale` (core/pool_target.h).
  std::string PoolTargetFile() const { return root_ + "/pool.target"; }
  // This state dir's controller id, made once: the label on everything it launches.
  std::string ControllerIdFile() const { return root_ + "/controller.id"; }
  std::string AgentDir(absl::string_view agent_id) const;
  std::string AgentPidFile(absl::string_view agent_id) const { return AgentDir(agent_id) + "/pid"; }
  std::string AgentLogFile(absl::string_view agent_id) const {
    return AgentDir(agent_id) + "/agentd.log";
  }
  std::string AgentWorkDir(absl::string_view agent_id) const {
    return AgentDir(agent_id) + "/work";
  }

  // The name of lease record slot n in LeasesDir(): ".slot-<n>".
  static std::string SlotName(uint64_t n);
  // "<n>.wal" -> n.
  static std::optional<uint64_t> ParseSegmentName(absl::string_view name);

 private:
  std::string root_;
};

}  // namespace harness
