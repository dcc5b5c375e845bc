// Pid file format (see pid_file.h).
#include "launch/pid_file.h"

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/ids.h"

namespace harness::launch {

std::string FormatPidRecord(const PidRecord& r) {
  return absl::StrCat("pid=", r.pid, "\nstart_ticks=", r.start_ticks, "\nbinary=", r.binary,
                      "\nslot=", r.slot, "\nagent=", r.agent_id, "\ncontroller=", r.controller_id,
                      "\nstarted_unix_ms=", r.started_unix_ms, "\n");
}

absl::StatusOr<PidRecord> ParsePidRecord(absl::string_view text, absl::string_view path) {
  absl::flat_hash_map<std::string, std::string> kv;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::DataLossError(
          absl::StrCat("pid file ", path, ": line ", QuoteForMessage(line), " has no '='"));
    }
    kv[line.substr(0, eq)] = std::string(line.substr(eq + 1));
  }
  auto missing = [&](absl::string_view key) {
    return absl::DataLossError(
        absl::StrCat("pid file ", path, ": \"", key, "\" is missing or malformed"));
  };
  PidRecord r;
  if (!absl::SimpleAtoi(kv["pid"], &r.pid) || r.pid <= 1) return missing("pid");
  if (!absl::SimpleAtoi(kv["start_ticks"], &r.start_ticks)) return missing("start_ticks");
  r.binary = kv["binary"];
  if (r.binary.empty() || r.binary[0] != '/') return missing("binary");
  if (!absl::SimpleAtoi(kv["slot"], &r.slot) || r.slot < 1) return missing("slot");
  r.agent_id = kv["agent"];
  if (!ValidateAgentId(r.agent_id).ok()) return missing("agent");
  r.controller_id = kv["controller"];
  if (!absl::SimpleAtoi(kv["started_unix_ms"], &r.started_unix_ms)) r.started_unix_ms = 0;
  return r;
}

}  // namespace harness::launch
