// queue.sources and queue.on_done in harness.yaml (docs/SOURCES.md): a list of sources, each a
// map of name, command, interval (and timeout, max_output_mb); names are safe ids and unique,
// commands argv lists, durations positive; unknown keys and wrong shapes are refused with the
// file's line, as everywhere in the config.
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::Msg;
using ::harness::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

class SourceConfigTest : public ::testing::Test {
 protected:
  // Loads a harness.yaml whose queue section is `queue` (indented by 4 spaces).
  absl::StatusOr<Config> Load(const std::string& queue) {
    std::string path = dir_.Sub("harness.yaml");
    std::ofstream(path, std::ios::trunc) << "harness:\n  queue:\n" << queue;
    return LoadConfigFile(path);
  }
  std::string Error(const std::string& queue) {
    absl::StatusOr<Config> c = Load(queue);
    EXPECT_FALSE(c.ok()) << "loaded:\n" << queue;
    return c.ok() ? "" : Msg(c.status());
  }
  std::string At(int line) { return absl::StrCat(dir_.Sub("harness.yaml"), ":", line, ": "); }

  TempDir dir_;
};

TEST_F(SourceConfigTest, NoSourcesAndNoHookByDefault) {
  Config c;
  EXPECT_THAT(c.queue.sources, IsEmpty());
  EXPECT_THAT(c.queue.on_done, IsEmpty());
}

TEST_F(SourceConfigTest, SourcesAreReadWithTheirDefaults) {
  absl::StatusOr<Config> c = Load(
      "    sources:\n"
      "      - {name: bd, command: [bd, ready, --json], interval: 60}\n"
      "      - name: inbox.v2\n"
      "        command: [\"/usr/local/bin/inbox\", \"--json\"]\n"
      "        interval: 0.5\n"
      "        timeout: 5\n"
      "        max_output_mb: 1\n"
      "    on_done: [bd, close, \"{id}\"]\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->queue.sources.size(), 2u);
  const harness::SourceConfig& bd = c->queue.sources[0];
  EXPECT_EQ(bd.name, "bd");
  EXPECT_THAT(bd.command, ElementsAre("bd", "ready", "--json"));
  EXPECT_EQ(bd.interval, 60);
  EXPECT_EQ(bd.timeout, 60);
  EXPECT_EQ(bd.max_output_mb, 16);
  const harness::SourceConfig& inbox = c->queue.sources[1];
  EXPECT_EQ(inbox.name, "inbox.v2");
  EXPECT_EQ(inbox.Interval(), absl::Milliseconds(500));
  EXPECT_EQ(inbox.Timeout(), absl::Seconds(5));
  EXPECT_EQ(inbox.max_output_mb, 1);
  EXPECT_THAT(c->queue.on_done, ElementsAre("bd", "close", "{id}"));
}

TEST_F(SourceConfigTest, DescribeConfigReadsBackTheSources) {
  Config c;
  c.queue.sources = {{"bd", {"bd", "ready", "--json"}, 30, 7.5, 3},
                     {"other", {"x y", "{id}"}, 1, 1, 1}};
  c.queue.on_done = {"bd", "close", "{id}"};
  std::string path = dir_.Sub("described.yaml");
  std::ofstream(path) << DescribeConfig(c);
  absl::StatusOr<Config> back = LoadConfigFile(path);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << DescribeConfig(c);
  EXPECT_TRUE(*back == c) << DescribeConfig(*back);
}

TEST_F(SourceConfigTest, AnUnknownKeyInASourceIsNamedWithItsLine) {
  EXPECT_EQ(Error("    sources:\n"
                  "      - name: bd\n"
                  "        command: [bd]\n"
                  "        intervall: 5\n"),
            absl::StrCat(At(6), "unknown key \"intervall\" in harness.queue.sources[0] ",
                         "(did you mean \"interval\"?)"));
}

TEST_F(SourceConfigTest, ANameThatIsNotASafeIdIsRefused) {
  EXPECT_EQ(Error("    sources:\n      - {name: \"../bd\", command: [bd]}\n"),
            absl::StrCat(At(4), "harness.queue.sources[0].name must match ",
                         "[A-Za-z0-9][A-Za-z0-9._-]{0,63}, got \"../bd\""));
}

TEST_F(SourceConfigTest, AMissingNameIsRefusedAtItsSource) {
  EXPECT_THAT(Error("    sources:\n      - {command: [bd]}\n"),
              StartsWith(absl::StrCat(At(4), "harness.queue.sources[0].name must match")));
}

TEST_F(SourceConfigTest, TwoSourcesWithOneNameAreRefused) {
  EXPECT_EQ(Error("    sources:\n"
                  "      - {name: bd, command: [bd]}\n"
                  "      - {name: bd, command: [other]}\n"),
            absl::StrCat(At(5), "harness.queue.sources[1].name \"bd\" is also the name of ",
                         "harness.queue.sources[0]"));
}

TEST_F(SourceConfigTest, AMissingOrEmptyCommandIsRefused) {
  EXPECT_THAT(Error("    sources:\n      - {name: bd}\n"),
              StartsWith(absl::StrCat(At(4), "harness.queue.sources[0].command must name a "
                                             "program")));
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: []}\n"),
              HasSubstr("harness.queue.sources[0].command must name a program"));
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: [\"\"]}\n"),
              HasSubstr("harness.queue.sources[0].command[0] (the program) must not be empty"));
}

TEST_F(SourceConfigTest, ACommandWrittenAsOneStringIsRefused) {
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: bd ready --json}\n"),
              HasSubstr("harness.queue.sources[0].command must be a list of strings"));
}

TEST_F(SourceConfigTest, AnIntervalOrTimeoutThatIsNotPositiveIsRefused) {
  EXPECT_EQ(Error("    sources:\n      - {name: bd, command: [bd], interval: 0}\n"),
            absl::StrCat(At(4), "harness.queue.sources[0].interval must be more than 0 seconds, ",
                         "got 0"));
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: [bd], interval: -1}\n"),
              HasSubstr("harness.queue.sources[0].interval must be more than 0 seconds"));
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: [bd], timeout: 0}\n"),
              HasSubstr("harness.queue.sources[0].timeout must be more than 0 seconds"));
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: [bd], interval: soon}\n"),
              HasSubstr("harness.queue.sources[0].interval must be a number of seconds"));
}

TEST_F(SourceConfigTest, AnOutputCapOutOfRangeIsRefused) {
  EXPECT_THAT(Error("    sources:\n      - {name: bd, command: [bd], max_output_mb: 0}\n"),
              HasSubstr("harness.queue.sources[0].max_output_mb must be between 1 and 1024, "
                        "got 0"));
}

TEST_F(SourceConfigTest, SourcesThatAreNotAListOfMapsAreRefused) {
  EXPECT_THAT(Error("    sources: {name: bd, command: [bd]}\n"),
              StartsWith(absl::StrCat(At(3), "harness.queue.sources must be a list of sources")));
  EXPECT_THAT(Error("    sources: [bd]\n"),
              HasSubstr("harness.queue.sources[0] must be a map with name, command and interval"));
}

TEST_F(SourceConfigTest, AnOnDoneHookThatIsNotAnArgvIsRefused) {
  EXPECT_THAT(Error("    on_done: bd close\n"),
              HasSubstr("harness.queue.on_done must be a list of strings"));
  EXPECT_THAT(Error("    on_done: [\"\", x]\n"),
              HasSubstr("harness.queue.on_done[0] (the program) must not be empty"));
}

TEST_F(SourceConfigTest, ValidateConfigChecksSourcesSetInCode) {
  Config c;
  c.queue.sources = {{"bd", {"bd"}, 60, 60, 16}};
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.queue.sources[0].interval = 0;
  EXPECT_THAT(Msg(ValidateConfig(c)), HasSubstr("harness.queue.sources[0].interval"));
}

}  // namespace
}  // namespace harness
