// Logging (see log.h).
#include "core/log.h"

#include <cstdio>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace harness {
namespace {
// Every thread logs; the sink and the stderr line are written under one lock.
struct LogState {
  absl::Mutex mu;
  LogSink sink ABSL_GUARDED_BY(mu);
};
LogState& State() {
  static LogState* state = new LogState;
  return *state;
}
const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kInfo:
      return "I";
    case LogLevel::kWarning:
      return "W";
    case LogLevel::kError:
      return "E";
  }
  return "?";
}
}  // namespace

void Log(LogLevel level, absl::string_view message) {
  LogState& st = State();
  absl::MutexLock l(&st.mu);
  if (st.sink) {
    st.sink(level, message);
    return;
  }
  std::string line =
      absl::StrCat(LevelName(level), " ",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

LogSink SetLogSink(LogSink sink) {
  LogState& st = State();
  absl::MutexLock l(&st.mu);
  LogSink old = std::move(st.sink);
  st.sink = std::move(sink);
  return old;
}

}  // namespace harness
