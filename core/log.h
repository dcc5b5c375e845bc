// Logging: one line per event, plain text or one JSON object per line (log.format), filtered by
// severity (log.level). Abseil 20220623 has no absl/log yet.
//
// Log() formats the line on the caller's thread and hands it to a writer thread of its own: it
// never writes to stderr itself, so it may be called under any lock and on threads others wait
// on (the store's committer, gRPC callbacks). A line below the level costs one atomic load.
// Lines still queued when the process exits normally are written by an atexit handler; a crash
// (SIGKILL, abort) can lose the last few milliseconds of lines.
//
// Text:  I 2024-05-01T12:00:00.000Z item done item=a lease_token=7 reason="took 3s"
// JSON:  {"time":"2024-05-01T12:00:00.000Z","level":"info","message":"item done","item":"a",
//         "lease_token":7}
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace harness {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

const char* LogLevelName(LogLevel level);  // "debug", "info", "warning", "error"
const char* LogFormatName(LogFormat format);  // "text", "json"
// InvalidArgument naming the value and the choices.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

// One key=value of a line. Integers stay numbers in JSON; everything else is a string. It
// points at the caller's data: build it in the call (Log(..., {{"item", id}, {"attempt", n}})).
class LogField {
 public:
  LogField(absl::string_view key, absl::string_view value) : key_(key), value_(value) {}
  LogField(absl::string_view key, const std::string& value) : key_(key), value_(value) {}
  LogField(absl::string_view key, const char* value) : key_(key), value_(value) {}
  template <typename T, typename = std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>>
  LogField(absl::string_view key, T value) : key_(key), number_(true) {
    char* end = absl::numbers_internal::FastIntToBuffer(value, digits_);
    value_ = absl::string_view(digits_, static_cast<size_t>(end - digits_));
  }
  LogField(const LogField&) = delete;  // value_ may point into digits_
  LogField& operator=(const LogField&) = delete;

  absl::string_view key() const { return key_; }
  absl::string_view value() const { return value_; }
  bool number() const { return number_; }

 private:
  absl::string_view key_;
  absl::string_view value_;
  bool number_ = false;
  char digits_[absl::numbers_internal::kFastToBufferSize];
};
// A braced list of fields ({{"item", id}, {"attempt", 2}}) or an array of them.
using LogFields = absl::Span<const LogField>;

void Log(LogLevel level, absl::string_view message, LogFields fields = {});
inline void LogDebug(absl::string_view m, LogFields f = {}) { Log(LogLevel::kDebug, m, f); }
inline void LogInfo(absl::string_view m, LogFields f = {}) { Log(LogLevel::kInfo, m, f); }
inline void LogWarning(absl::string_view m, LogFields f = {}) { Log(LogLevel::kWarning, m, f); }
inline void LogError(absl::string_view m, LogFields f = {}) { Log(LogLevel::kError, m, f); }

// Process-wide settings (set once at start, from config or flags; default text and info).
void SetLogFormat(LogFormat format);
void SetLogLevel(LogLevel level);
LogFormat CurrentLogFormat();
LogLevel CurrentLogLevel();
bool LogEnabled(LogLevel level);

// The line Log writes (without its newline). JSON strings escape quotes, backslashes and
// control characters; bytes that are not UTF-8 become U+FFFD. Text keeps the message as it is
// and quotes a field value that holds a space, a quote, '=' or a control character.
std::string FormatLogLine(LogFormat format, LogLevel level, absl::Time at,
                          absl::string_view message, LogFields fields);

// Blocks until every line logged so far is written.
void FlushLog();

// Replaces the destination of Log (nullptr restores stderr); the sink gets each formatted line
// (without its newline) on the logging thread, under the logger's lock. Returns the old sink.
using LogSink = std::function<void(LogLevel, absl::string_view line)>;
LogSink SetLogSink(LogSink sink);

}  // namespace harness
