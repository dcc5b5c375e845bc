// Synchronous handling of SIGINT and SIGTERM for `harnessctl status --watch`, which must end
// cleanly (exit 0) on Ctrl-C while its main thread is blocked reading a gRPC stream. The
// signals are blocked in every thread and taken by one thread with sigtimedwait, so no code
// runs in a signal handler. Not used by the one-shot commands (Ctrl-C simply ends them).
#pragma once

#include "absl/time/time.h"

namespace harness::client {

// Blocks SIGINT and SIGTERM in the calling thread and in every thread started after it. Call
// before anything starts a thread (gRPC does when the first channel is made): a thread started
// earlier would still take the signal with its default action.
void BlockStopSignals();

// Waits up to `timeout` for SIGINT or SIGTERM (blocked by BlockStopSignals). Returns the
// signal number, or 0 if none arrived.
int WaitForStopSignal(absl::Duration timeout);

}  // namespace harness::client
