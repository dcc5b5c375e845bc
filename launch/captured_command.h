// RunCaptured: runs a short command (a work source, the on_done hook) to completion and hands
// back what it printed. The argv is run directly (no shell), looked up on PATH, in its own
// process group, stdin /dev/null, in `work_dir`, with the controller's environment less its
// credentials (HARNESS_*TOKEN*, HARNESS_*KEY*) plus `env`. Standard output is kept up to
// `max_stdout_bytes`: one byte more and the group is killed (too_much_output). Standard error
// keeps its first `max_stderr_bytes`; the rest is dropped. Past `timeout`, or when `cancel`
// becomes true, the whole group is killed (SIGKILL to the group of the child's pid). Once the
// main process has exited, what it left running is given 2 s to close the pipes, then killed.
// Blocks the calling thread for the run: call it from a thread of its own, never under a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace harness::launch {

struct CaptureOptions {
  absl::Duration timeout = absl::Seconds(60);
  size_t max_stdout_bytes = 16 << 20;
  size_t max_stderr_bytes = 64 << 10;
  std::string work_dir;  // "": the caller's
  std::vector<std::pair<std::string, std::string>> env;  // added (replacing inherited values)
  const std::atomic<bool>* cancel = nullptr;              // checked every 100 ms
};

struct CapturedRun {
  int wait_status = 0;  // as from waitpid
  bool timed_out = false;
  bool cancelled = false;
  bool too_much_output = false;
  std::string out;
  std::string err;

  // Exited by itself with status 0, within the limits.
  bool ok() const;
  // "exited with status 3", "killed after the timeout of 60 s", "printed more than N bytes"...
  std::string Describe(const CaptureOptions& options) const;
};

// Runs `argv` (not empty). An error only when it cannot be started (naming argv[0]).
absl::StatusOr<CapturedRun> RunCaptured(const std::vector<std::string>& argv,
                                        const CaptureOptions& options);

}  // namespace harness::launch
