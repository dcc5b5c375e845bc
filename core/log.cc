// Logging (see log.h).
#include "core/log.h"

#include <cstdio>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace harness {
namespace {
std::mutex& SinkMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
LogSink& Sink() {
  static LogSink* sink = new LogSink;
  return *sink;
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
  std::lock_guard<std::mutex> l(SinkMutex());
  if (Sink()) {
    Sink()(level, message);
    return;
  }
  std::string line =
      absl::StrCat(LevelName(level), " ",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()), " ",
                   message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

LogSink SetLogSink(LogSink sink) {
  std::lock_guard<std::mutex> l(SinkMutex());
  LogSink old = std::move(Sink());
  Sink() = std::move(sink);
  return old;
}

}  // namespace harness
