// The log line formats (core/log.h): JSON lines that any JSON reader parses, whatever the
// message and fields hold; text lines with fields; severity filtering.
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/log.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace harness {
namespace {

const absl::Time kAt = absl::FromUnixMillis(1714564800123);  // 2024-05-01T12:00:00.123Z

nlohmann::json ParseOneLine(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  return nlohmann::json::parse(line);  // throws on invalid JSON or invalid UTF-8
}

// The time is formatted from a per-second cache: it must read as absl::FormatTime would, for
// times in and across seconds, in any order (a cache that went stale would repeat a second).
TEST(LogFormat, TheTimeReadsAsFormatTimeAcrossSecondsAndInAnyOrder) {
  const int64_t base = 1714564799000;  // 2024-05-01T11:59:59.000Z
  for (int64_t ms : {base, base + 1, base + 9, base + 10, base + 99, base + 999, base + 1000,
                     base + 1001, base + 999, base + 61000, int64_t{0}, int64_t{-1}, int64_t{-1000},
                     int64_t{-1001}, base + 5, int64_t{4102444799999}}) {
    const absl::Time at = absl::FromUnixMillis(ms);
    const std::string want =
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
    const std::string line = FormatLogLine(LogFormat::kText, LogLevel::kInfo, at, "m", {});
    EXPECT_EQ(line, "I " + want + " m") << ms;
  }
}

TEST(LogFormat, AJsonLineHoldsTimeLevelMessageAndFields) {
  std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kInfo, kAt, "item done",
                                   {{"item", "a"}, {"lease_token", uint64_t{7}}, {"attempt", 2}});
  nlohmann::json j = ParseOneLine(line);
  EXPECT_EQ(j["time"], "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["message"], "item done");
  EXPECT_EQ(j["item"], "a");
  EXPECT_EQ(j["lease_token"], 7);  // a number, not a string
  EXPECT_EQ(j["attempt"], 2);
}

TEST(LogFormat, QuotesBackslashesNewlinesAndControlCharactersAreEscapedInJson) {
  const std::string nasty = "say \"hi\"\\\nnext line\r\t\x01\x1f\x7f end";
  std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kWarning, kAt, nasty,
                                   {{"reason", nasty}, {"we\"ird key", "v"}});
  nlohmann::json j = ParseOneLine(line);
  EXPECT_EQ(j["message"], nasty);
  EXPECT_EQ(j["reason"], nasty);
  EXPECT_EQ(j["we\"ird key"], "v");
  EXPECT_EQ(j["level"], "warning");
}

TEST(LogFormat, BytesThatAreNotUtf8BecomeReplacementCharactersInJson) {
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, and valid
  // multi-byte text that must pass unchanged.
  const std::string bad = std::string("a\x80") + "b\xE2\x82" + "c\xC0\xAF" + "d\xED\xA0\x80" +
                          "e caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  std::string line = FormatLogLine(LogFormat::kJson, LogLevel::kError, kAt, bad, {{"f", bad}});
  nlohmann::json j = ParseOneLine(line);
  const std::string want = "a\uFFFDb\uFFFD\uFFFDc\uFFFD\uFFFDd\uFFFD\uFFFD\uFFFDe caf\u00E9 \u20AC \U0001F600";
  EXPECT_EQ(j["message"], want);
  EXPECT_EQ(j["f"], want);
}

TEST(LogFormat, ATextLineKeepsItsShapeAndQuotesFieldValuesThatNeedIt) {
  std::string line = FormatLogLine(LogFormat::kText, LogLevel::kInfo, kAt, "item done",
                                   {{"item", "a"}, {"lease_token", 7}, {"reason", "took 3s"},
                                    {"empty", ""}, {"nl", "x\ny"}});
  EXPECT_EQ(line,
            "I 2024-05-01T12:00:00.123Z item done item=a lease_token=7 reason=\"took 3s\" "
            "empty=\"\" nl=\"x\\ny\"");
}

TEST(LogFormat, LevelsAndFormatsParseFromTheirNamesAndRefuseOthers) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogLevel("verbose").status().message(),
            "log level \"verbose\" is not one of debug, info, warning, error");
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

TEST(Log, LinesBelowTheLevelAreNotWrittenAndTheRestUseTheFormat) {
  std::vector<std::string> lines;
  LogSink old = SetLogSink([&](LogLevel, absl::string_view l) { lines.emplace_back(l); });
  const LogLevel old_level = CurrentLogLevel();
  const LogFormat old_format = CurrentLogFormat();
  SetLogLevel(LogLevel::kWarning);
  SetLogFormat(LogFormat::kJson);
  LogDebug("d");
  LogInfo("i", {{"item", "x"}});
  LogWarning("w", {{"item", "x"}});
  LogError("e");
  SetLogLevel(LogLevel::kDebug);
  LogDebug("d2");
  SetLogLevel(old_level);
  SetLogFormat(old_format);
  SetLogSink(std::move(old));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(ParseOneLine(lines[0])["message"], "w");
  EXPECT_EQ(ParseOneLine(lines[0])["item"], "x");
  EXPECT_EQ(ParseOneLine(lines[1])["level"], "error");
  EXPECT_EQ(ParseOneLine(lines[2])["level"], "debug");
}

}  // namespace
}  // namespace harness
