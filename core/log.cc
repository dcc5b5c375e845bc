// Logging (see log.h): the line format and the writer thread.
#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/output_line.h"
#include "core/thread_name.h"

namespace harness {
namespace {

// Lines queued beyond this (stderr blocked: a full pipe) are dropped and counted, not kept.
constexpr size_t kMaxQueuedBytes = 8 << 20;
// Once a line is queued the writer lingers this long (or until this many bytes are queued, or a
// flush is asked for), so that the lines of a busy moment share one write and one wake-up of
// the writer instead of one each (a controller at thousands of items a second logs two lines
// per item).
constexpr absl::Duration kLinger = absl::Milliseconds(2);
constexpr size_t kLingerBytes = 64 << 10;

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

// The queue between the logging threads and the writer thread.
struct LogState {
  absl::Mutex mu;
  LogSink sink ABSL_GUARDED_BY(mu);
  std::string queued ABSL_GUARDED_BY(mu);  // whole lines, each ending in '\n'
  uint64_t dropped ABSL_GUARDED_BY(mu) = 0;
  bool writing ABSL_GUARDED_BY(mu) = false;  // the writer holds lines not yet written
  bool writer_started ABSL_GUARDED_BY(mu) = false;
  int flushers ABSL_GUARDED_BY(mu) = 0;  // threads in FlushLog: no lingering
};
LogState& State() {
  static LogState* state = new LogState;  // never destroyed: threads log until the very end
  return *state;
}

void WriteAll(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

// Writes what is queued, outside the lock; the two buffers swap so neither reallocates.
void WriterLoop() {
  NameThisThread("log-writer");
  LogState& st = State();
  std::string batch;
  for (;;) {
    uint64_t dropped = 0;
    {
      absl::MutexLock l(&st.mu);
      st.writing = false;
      st.mu.Await(absl::Condition(
          +[](std::string* q) { return !q->empty(); }, &st.queued));
      st.mu.AwaitWithTimeout(absl::Condition(
                                 +[](LogState* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                   return s->queued.size() >= kLingerBytes || s->flushers > 0;
                                 },
                                 &st),
                             kLinger);
      batch.swap(st.queued);
      st.queued.clear();
      dropped = st.dropped;
      st.dropped = 0;
      st.writing = true;
    }
    WriteAll(batch);
    if (dropped > 0) {
      // Said in the format of the day so that a JSON reader can parse it too.
      const std::string n = absl::StrCat(dropped);
      WriteAll(absl::StrCat(
          FormatLogLine(static_cast<LogFormat>(g_format.load(std::memory_order_relaxed)),
                        LogLevel::kWarning, absl::Now(), "log lines dropped: stderr was blocked",
                        {{"dropped", dropped}}),
          "\n"));
    }
    batch.clear();
  }
}

void StartWriterLocked(LogState& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st.mu) {
  if (st.writer_started) return;
  st.writer_started = true;
  std::thread(WriterLoop).detach();
  std::atexit(FlushLog);
}

void AppendJsonString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out->append("\\\""); ++i; continue;
      case '\\': out->append("\\\\"); ++i; continue;
      case '\n': out->append("\\n"); ++i; continue;
      case '\r': out->append("\\r"); ++i; continue;
      case '\t': out->append("\\t"); ++i; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xF]);
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out->append("\\ufffd");  // not UTF-8: one replacement per bad byte
      ++i;
      continue;
    }
    out->append(s.data() + i, n);
    i += n;
  }
  out->push_back('"');
}

bool NeedsQuotes(absl::string_view v) {
  if (v.empty()) return true;
  for (char ch : v) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7F) return true;
  }
  return false;
}

const char* LevelLetter(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "D";
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

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

const char* LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarning, LogLevel::kError}) {
    if (name == LogLevelName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "log level \"", absl::CHexEscape(name), "\" is not one of debug, info, warning, error"));
}

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("log format \"", absl::CHexEscape(name), "\" is not one of text, json"));
}

void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format), std::memory_order_relaxed);
}
void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
LogFormat CurrentLogFormat() {
  return static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
}
LogLevel CurrentLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }
bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

// "2026-11-30T16:25:07.123Z". The part up to the second is formatted once a second per thread
// (absl::FormatTime goes through the time zone library: a busy controller logs thousands of
// lines a second, on the threads that answer agents).
static std::string FormatLogTime(absl::Time at) {
  thread_local int64_t cached_second = INT64_MIN;
  thread_local std::string cached_prefix;  // "2026-11-30T16:25:07"
  const int64_t ms = absl::ToUnixMillis(at);
  const int64_t second = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  if (second != cached_second) {
    cached_prefix =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
    cached_second = second;
  }
  const int milli = static_cast<int>(ms - second * 1000);
  std::string out = cached_prefix;
  out.push_back('.');
  out.push_back(static_cast<char>('0' + milli / 100));
  out.push_back(static_cast<char>('0' + milli / 10 % 10));
  out.push_back(static_cast<char>('0' + milli % 10));
  out.push_back('Z');
  return out;
}

std::string FormatLogLine(LogFormat format, LogLevel level, absl::Time at,
                          absl::string_view message, LogFields fields) {
  const std::string time = FormatLogTime(at);
  std::string line;
  line.reserve(64 + message.size() + fields.size() * 24);
  if (format == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"time\":\"", time, "\",\"level\":\"", LogLevelName(level),
                    "\",\"message\":");
    AppendJsonString(&line, message);
    for (const LogField& f : fields) {
      line.push_back(',');
      AppendJsonString(&line, f.key());
      line.push_back(':');
      if (f.number()) {
        line.append(f.value().data(), f.value().size());
      } else {
        AppendJsonString(&line, f.value());
      }
    }
    line.push_back('}');
    return line;
  }
  absl::StrAppend(&line, LevelLetter(level), " ", time, " ", message);
  for (const LogField& f : fields) {
    absl::StrAppend(&line, " ", f.key(), "=");
    if (!f.number() && NeedsQuotes(f.value())) {
      absl::StrAppend(&line, "\"", absl::CHexEscape(f.value()), "\"");
    } else {
      line.append(f.value().data(), f.value().size());
    }
  }
  return line;
}

void Log(LogLevel level, absl::string_view message, LogFields fields) {
  if (!LogEnabled(level)) return;
  std::string line = FormatLogLine(CurrentLogFormat(), level, absl::Now(), message, fields);
  LogState& st = State();
  absl::MutexLock l(&st.mu);
  if (st.sink) {
    st.sink(level, line);
    return;
  }
  if (st.queued.size() + line.size() >= kMaxQueuedBytes) {
    ++st.dropped;
    return;
  }
  StartWriterLocked(st);
  st.queued.append(line);
  st.queued.push_back('\n');
}

void FlushLog() {
  LogState& st = State();
  absl::MutexLock l(&st.mu);
  if (!st.writer_started) return;
  ++st.flushers;
  st.mu.Await(absl::Condition(
      +[](LogState* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->queued.empty() && !s->writing; },
      &st));
  --st.flushers;
}

LogSink SetLogSink(LogSink sink) {
  LogState& st = State();
  absl::MutexLock l(&st.mu);
  LogSink old = std::move(st.sink);
  st.sink = std::move(sink);
  return old;
}

}  // namespace harness
