// Fuzzes the pid file parser (launch/pid_file.h): any bytes as <state>/agents/<agent>/pid, the
// file a restarted controller reads to find the agents it launched. A record that parses
// formats and parses back to the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "launch/pid_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto rec = harness::launch::ParsePidRecord(text, "agents/a/pid");
  if (!rec.ok()) return 0;
  auto again = harness::launch::ParsePidRecord(harness::launch::FormatPidRecord(*rec), "again");
  if (!again.ok() || again->pid != rec->pid || again->start_ticks != rec->start_ticks ||
      again->binary != rec->binary || again->slot != rec->slot ||
      again->agent_id != rec->agent_id || again->controller_id != rec->controller_id ||
      again->started_unix_ms != rec->started_unix_ms) {
    std::abort();
  }
  return 0;
}
