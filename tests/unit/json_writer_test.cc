// JsonWriter (client/json_writer.h): harnessctl's `--json` output must always be one valid
// JSON document: strings escaped (control characters included), valid UTF-8 passed through,
// invalid bytes replaced, numbers in JSON syntax, nesting and separators right.
#include "client/json_writer.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace harness::client {
namespace {

std::string Str(absl::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(JsonWriter, WritesEmptyObjectAndArray) {
  EXPECT_EQ(JsonWriter().BeginObject().EndObject().str(), "{}");
  EXPECT_EQ(JsonWriter().BeginArray().EndArray().str(), "[]");
  EXPECT_EQ(JsonWriter(true).BeginObject().EndObject().str(), "{}");
  EXPECT_EQ(JsonWriter(true).BeginArray().EndArray().str(), "[]");
}

TEST(JsonWriter, EscapesQuotesBackslashesAndNamedControls) {
  EXPECT_EQ(Str("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(Str("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(Str("/"), R"("/")");
  EXPECT_EQ(Str(""), R"("")");
}

TEST(JsonWriter, EscapesOtherControlCharactersAsUnicode) {
  EXPECT_EQ(Str(std::string("\x00", 1)), R"("\u0000")");
  EXPECT_EQ(Str("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(Str("\x1b[31m"), R"("\u001b[31m")");
  EXPECT_EQ(Str("\x7f"), R"("\u007f")");
}

TEST(JsonWriter, PassesValidUtf8Through) {
  EXPECT_EQ(Str("caf\xC3\xA9"), "\"caf\xC3\xA9\"");                            // 2 bytes
  EXPECT_EQ(Str("\xE6\x97\xA5\xE6\x9C\xAC"), "\"\xE6\x97\xA5\xE6\x9C\xAC\"");  // 3 bytes
  EXPECT_EQ(Str("\xF0\x9F\x98\x80"), "\"\xF0\x9F\x98\x80\"");                  // 4 bytes (emoji)
  EXPECT_EQ(Str("\xE2\x80\xA8"), "\"\xE2\x80\xA8\"");  // U+2028 is valid JSON
}

TEST(JsonWriter, ReplacesInvalidUtf8WithReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Str("a\xFF"
                "b"),
            "\"a" + fffd + "b\"");                                              // never valid
  EXPECT_EQ(Str("\xC3"), "\"" + fffd + "\"");                                   // truncated
  EXPECT_EQ(Str("\xC0\x80"), "\"" + fffd + fffd + "\"");                        // overlong NUL
  EXPECT_EQ(Str("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");             // a surrogate
  EXPECT_EQ(Str("\xF4\x90\x80\x80"), "\"" + fffd + fffd + fffd + fffd + "\"");  // > U+10FFFF
  EXPECT_EQ(Str("\xE6\x97x"), "\"" + fffd + fffd + "x\"");  // cut short, then ASCII
}

TEST(JsonWriter, WritesIntegersExactly) {
  JsonWriter w;
  w.BeginArray()
      .Int(0)
      .Int(-42)
      .Int(std::numeric_limits<int64_t>::min())
      .Int(std::numeric_limits<int64_t>::max())
      .Uint(std::numeric_limits<uint64_t>::max())
      .EndArray();
  EXPECT_EQ(w.str(), "[0, -42, -9223372036854775808, 9223372036854775807, 18446744073709551615]");
}

TEST(JsonWriter, WritesDoublesAsJsonNumbers) {
  JsonWriter w;
  w.BeginArray()
      .Double(4.2)
      .Double(1.0)
      .Double(0.0)
      .Double(-2.5)
      .Double(1e300)
      .Double(0.97)
      .Double(std::nan(""))
      .Double(std::numeric_limits<double>::infinity())
      .EndArray();
  EXPECT_EQ(w.str(), "[4.2, 1.0, 0.0, -2.5, 1e+300, 0.97, null, null]");
}

TEST(JsonWriter, WritesBoolsNullsAndStringOrNull) {
  JsonWriter w;
  w.BeginArray().Bool(true).Bool(false).Null().StringOrNull("").StringOrNull("x").EndArray();
  EXPECT_EQ(w.str(), R"([true, false, null, null, "x"])");
}

TEST(JsonWriter, NestsObjectsAndArraysCompactly) {
  JsonWriter w;
  w.BeginObject();
  w.Key("a").Int(1);
  w.Key("b").BeginArray().Bool(true).BeginObject().EndObject().BeginArray().EndArray().EndArray();
  w.Key("c").BeginObject().Key("d").String("e").EndObject();
  w.Key("needs \"escape\"").Null();
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"a": 1, "b": [true, {}, []], "c": {"d": "e"}, "needs \"escape\"": null})");
  EXPECT_TRUE(w.complete());
}

TEST(JsonWriter, IndentsWhenPretty) {
  JsonWriter w(/*pretty=*/true);
  w.BeginObject();
  w.Key("a").Int(1);
  w.Key("list").BeginArray().Int(1).Int(2).EndArray();
  w.Key("empty").BeginArray().EndArray();
  w.Key("obj").BeginObject().Key("x").Null().EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(),
            "{\n"
            "  \"a\": 1,\n"
            "  \"list\": [\n"
            "    1,\n"
            "    2\n"
            "  ],\n"
            "  \"empty\": [],\n"
            "  \"obj\": {\n"
            "    \"x\": null\n"
            "  }\n"
            "}");
}

TEST(JsonWriter, IsCompleteOnlyWhenEverythingIsClosed) {
  JsonWriter w;
  EXPECT_FALSE(w.complete());
  w.BeginObject().Key("a").BeginArray();
  EXPECT_FALSE(w.complete());
  w.EndArray().EndObject();
  EXPECT_TRUE(w.complete());
}

// Every string written reads back (through yaml-cpp, which reads JSON) as the same bytes.
TEST(JsonWriter, StringsRoundTripThroughAJsonReader) {
  const std::string samples[] = {
      "plain",
      "quote \" backslash \\ slash /",
      "line\nbreak\ttab\rcr",
      std::string("nul\x00"
                  "inside",
                  11),
      "\x01\x02\x1f\x7f",
      "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80",
      "ends with backslash \\",
  };
  for (const std::string& s : samples) {
    JsonWriter w;
    w.BeginObject().Key("k").String(s).EndObject();
    YAML::Node doc = YAML::Load(w.str());
    EXPECT_EQ(doc["k"].as<std::string>(), s) << w.str();
  }
}

}  // namespace
}  // namespace harness::client
