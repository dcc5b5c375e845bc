// What /proc says about a process: its state, process group and start time (field 22 of
// /proc/<pid>/stat, clock ticks since boot, which tells a process from a later one that got
// its pid), and its executable. Used to trust a pid file only for the process it was written
// for. Linux only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace harness::launch {

struct ProcStat {
  char state = '?';          // 'R', 'S', 'Z' (zombie: ended, not yet reaped)...
  int64_t pgrp = 0;          // process group
  int64_t session = 0;       // session id (field 6)
  uint64_t start_ticks = 0;  // field 22: start time in clock ticks after boot
};

// NotFound when /proc/<pid> does not exist (the process is gone and reaped).
absl::StatusOr<ProcStat> ReadProcStat(pid_t pid);

// The target of /proc/<pid>/exe, without the " (deleted)" the kernel appends when the file was
// replaced or removed since the process started it.
absl::StatusOr<std::string> ReadProcExe(pid_t pid);

// Every process in session `sid` (from a scan of /proc), `sid` itself included if alive.
std::vector<pid_t> ProcessesInSession(pid_t sid);

// True while `pid` is a live (not zombie) process that started at `start_ticks`.
bool IsSameLiveProcess(pid_t pid, uint64_t start_ticks);

}  // namespace harness::launch
