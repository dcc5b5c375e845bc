// Minimal logging: one line per event to stderr (or a sink a test installs), with a UTC
// timestamp and a severity. Abseil 20220623 has no absl/log yet.
#pragma once

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace harness {

enum class LogLevel { kInfo, kWarning, kError };

void Log(LogLevel level, absl::string_view message);
inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

// Replaces the destination of Log (nullptr restores stderr). Returns the previous sink.
using LogSink = std::function<void(LogLevel, absl::string_view)>;
LogSink SetLogSink(LogSink sink);

}  // namespace harness
