// `harnessctl submit --file` (items/item_file.h): JSON arrays and YAML lists of items load into
// ItemSpecs; prompt_file is relative to the file; a bad file (unknown field, wrong type, bad id,
// empty list...) is refused as a whole with one message naming the item and the field.
#include "items/item_file.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness::client {
namespace {

using ::harness::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

absl::StatusOr<std::vector<v1::ItemSpec>> Parse(const std::string& text,
                                                const std::string& base_dir = "/nonexistent") {
  return ParseItemFile(text, "items.yaml", base_dir);
}

// The error message of parsing `text`, which must fail with INVALID_ARGUMENT.
std::string ErrorOf(const std::string& text, const std::string& base_dir = "/nonexistent") {
  absl::StatusOr<std::vector<v1::ItemSpec>> r = Parse(text, base_dir);
  EXPECT_FALSE(r.ok()) << "parsed: " << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

TEST(ItemFile, LoadsAJsonArrayWithEveryField) {
  TempDir dir;
  WriteText(dir.Sub("items.json"), R"([
    {"id": "fix-login", "title": "Fix the login", "prompt": "Make it work",
     "priority": -3, "max_attempts": 5, "timeout_s": 90.5,
     "labels": {"team": "web", "size": "s"}},
    {"title": "Second", "prompt": "caf\u00e9 \ud83d\ude00 \"q\"\n"}
  ])");
  absl::StatusOr<std::vector<v1::ItemSpec>> r = LoadItemFile(dir.Sub("items.json"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  const v1::ItemSpec& a = (*r)[0];
  EXPECT_EQ(a.id(), "fix-login");
  EXPECT_EQ(a.title(), "Fix the login");
  EXPECT_EQ(a.prompt(), "Make it work");
  EXPECT_EQ(a.priority(), -3);
  EXPECT_EQ(a.max_attempts(), 5);
  EXPECT_DOUBLE_EQ(a.timeout_s(), 90.5);
  ASSERT_EQ(a.labels().size(), 2u);
  EXPECT_EQ(a.labels().at("team"), "web");
  const v1::ItemSpec& b = (*r)[1];
  EXPECT_EQ(b.id(), "");
  EXPECT_EQ(b.prompt(), "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\"\n");  // surrogate pair decoded
  EXPECT_EQ(b.priority(), 0);
  EXPECT_EQ(b.max_attempts(), 0);  // the controller's default
  EXPECT_EQ(b.timeout_s(), 0);
}

TEST(ItemFile, LoadsAYamlList) {
  absl::StatusOr<std::vector<v1::ItemSpec>> r = Parse(R"(
# two items
- id: fix-login
  title: Fix the login
  prompt: |
    Line one.
    Line two.
  priority: 10
  timeout_s: 600
  labels:
    team: web
- title: "2024"
  prompt: 'single quoted'
  max_attempts: 1
  id: ~
)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].prompt(), "Line one.\nLine two.\n");
  EXPECT_EQ((*r)[0].priority(), 10);
  EXPECT_DOUBLE_EQ((*r)[0].timeout_s(), 600);
  EXPECT_EQ((*r)[0].labels().at("team"), "web");
  EXPECT_EQ((*r)[1].title(), "2024");
  EXPECT_EQ((*r)[1].prompt(), "single quoted");
  EXPECT_EQ((*r)[1].id(), "");  // null: as if absent
}

TEST(ItemFile, ReadsPromptFileRelativeToTheFile) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.Sub("batch").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.Sub("batch/prompts").c_str(), 0755), 0);
  WriteText(dir.Sub("batch/prompts/a.md"), "Prompt A\n");
  WriteText(dir.Sub("abs.md"), "Prompt B");
  WriteText(dir.Sub("batch/items.yaml"),
            "- {title: A, prompt_file: prompts/a.md}\n- {title: B, prompt_file: " +
                dir.Sub("abs.md") + "}\n");
  absl::StatusOr<std::vector<v1::ItemSpec>> r = LoadItemFile(dir.Sub("batch/items.yaml"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].prompt(), "Prompt A\n");
  EXPECT_EQ((*r)[1].prompt(), "Prompt B");
}

TEST(ItemFile, MissingPromptFileNamesTheItemAndPath) {
  TempDir dir;
  std::string msg = ErrorOf("- {id: a1, title: A, prompt_file: nope.md}\n", dir.path());
  EXPECT_THAT(msg, StartsWith("items.yaml:1: item #1 (\"a1\"): prompt_file \"nope.md\": "));
  EXPECT_THAT(msg, HasSubstr("No such file"));
}

TEST(ItemFile, UnknownFieldIsNamedWithTheItem) {
  std::string msg = ErrorOf(R"([
  {"title": "ok", "prompt": "p"},
  {"id": "fix-login", "title": "t", "promt": "typo"}
])");
  EXPECT_THAT(msg, StartsWith("items.yaml:3: item #2 (\"fix-login\"): unknown field \"promt\""));
  EXPECT_THAT(msg, HasSubstr("known: id, title, prompt, prompt_file"));
}

TEST(ItemFile, UnknownFieldBeforeTheIdStillNamesTheId) {
  std::string msg = ErrorOf("- colour: red\n  id: paint\n  title: t\n  prompt: p\n");
  EXPECT_THAT(msg, StartsWith("items.yaml:1: item #1 (\"paint\"): unknown field \"colour\""));
}

TEST(ItemFile, UnknownFieldOfAnItemWithoutIdIsNamedByIndex) {
  std::string msg =
      ErrorOf("- {title: a, prompt: p}\n- {title: b, prompt: p}\n- {title: c, x: 1}\n");
  EXPECT_THAT(msg, StartsWith("items.yaml:3: item #3: unknown field \"x\""));
}

TEST(ItemFile, WrongTypesAreRefused) {
  EXPECT_THAT(ErrorOf(R"([{"id": "a", "title": 5, "prompt": "p"}])"),
              HasSubstr("item #1 (\"a\"): title must be a string, got the number 5"));
  EXPECT_THAT(ErrorOf("- {title: true, prompt: p}"),
              HasSubstr("title must be a string, got true (in YAML, quote it"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": ["a"]}])"),
              HasSubstr("prompt must be a string, got a list"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "priority": "5"}])"),
              HasSubstr("priority must be an integer, got the string \"5\""));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "priority": 1.5}])"),
              HasSubstr("priority must be an integer, got the number 1.5"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "max_attempts": 0}])"),
              HasSubstr("max_attempts must be between 1 and"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "timeout_s": -1}])"),
              HasSubstr("timeout_s must be a positive number of seconds, got -1"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "timeout_s": "fast"}])"),
              HasSubstr("timeout_s must be a number of seconds, got the string \"fast\""));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "labels": ["a"]}])"),
              HasSubstr("labels must be an object of strings, got a list"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "labels": {"urgent": true}}])"),
              HasSubstr("labels.urgent must be a string, got true"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "priority": 99999999999999999999}])"),
              HasSubstr("priority must be between"));
}

TEST(ItemFile, BadIdIsRefusedWithTheReason) {
  std::string msg = ErrorOf(R"([{"id": "../etc", "title": "t", "prompt": "p"}])");
  EXPECT_THAT(msg, StartsWith("items.yaml:1: item #1: item id \"../etc\" is invalid"));
  EXPECT_THAT(ErrorOf("- {id: x.lock, title: t, prompt: p}"), HasSubstr("\".lock\""));
  EXPECT_THAT(ErrorOf("- {id: 'a b', title: t, prompt: p}"), HasSubstr("only letters, digits"));
}

TEST(ItemFile, DuplicateIdsInTheFileAreRefused) {
  std::string msg = ErrorOf("- {id: a, title: t, prompt: p}\n- {id: a, title: u, prompt: q}\n");
  EXPECT_THAT(msg, StartsWith("items.yaml:2: item #2 (\"a\"): this id is used by an earlier item"));
}

TEST(ItemFile, DuplicateFieldIsRefused) {
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "p", "title": "u"}])"),
              HasSubstr("item #1: field \"title\" is given twice"));
}

TEST(ItemFile, RequiredFieldsAreChecked) {
  EXPECT_THAT(ErrorOf("- {id: a, prompt: p}"), HasSubstr("item #1 (\"a\"): title is required"));
  EXPECT_THAT(ErrorOf("- {id: a, title: t}"),
              HasSubstr("item #1 (\"a\"): prompt (or prompt_file) is required"));
  EXPECT_THAT(ErrorOf("- {id: a, title: t, prompt: ''}"), HasSubstr("prompt is empty"));
  EXPECT_THAT(ErrorOf("- {title: t, prompt: p, prompt_file: f.md}"),
              HasSubstr("give prompt or prompt_file, not both"));
}

TEST(ItemFile, OversizedPromptIsRefused) {
  std::string big(kMaxPromptBytes + 1, 'x');
  EXPECT_THAT(ErrorOf("- {title: t, prompt: " + big + "}"), HasSubstr("prompt is too large"));
  TempDir dir;
  WriteText(dir.Sub("big.md"), big);
  EXPECT_THAT(ErrorOf("- {title: t, prompt_file: big.md}", dir.path()),
              HasSubstr("the prompt is too large"));
}

TEST(ItemFile, EmptyListIsRefused) {
  EXPECT_THAT(ErrorOf("[]"), HasSubstr("items.yaml: the list of items is empty"));
  EXPECT_THAT(ErrorOf(""), HasSubstr("the file is empty"));
  EXPECT_THAT(ErrorOf("# only a comment\n"), HasSubstr("the file is empty"));
}

TEST(ItemFile, WrongShapesAreRefused) {
  EXPECT_THAT(ErrorOf(R"({"title": "t", "prompt": "p"})"),
              HasSubstr("expected a list of items, got an object"));
  EXPECT_THAT(ErrorOf("- just a string\n"), HasSubstr("item #1: expected an object"));
  EXPECT_THAT(ErrorOf("- {title: a, prompt: p}\n---\n- {title: b, prompt: p}\n"),
              HasSubstr("2 YAML documents"));
}

TEST(ItemFile, SyntaxErrorsGiveTheLine) {
  std::string msg = ErrorOf("[\n  {\"title\": \"t\",\n  \"prompt\": \"p\"\n");
  EXPECT_THAT(msg, StartsWith("items.yaml:"));
  EXPECT_THAT(msg, HasSubstr("not valid JSON or YAML"));
  EXPECT_THAT(ErrorOf(R"([{"title": "t", "prompt": "\ud83d"}])"),
              HasSubstr("not valid JSON or YAML"));
}

TEST(ItemFile, UnreadableFileIsAnError) {
  TempDir dir;
  absl::StatusOr<std::vector<v1::ItemSpec>> r = LoadItemFile(dir.Sub("missing.yaml"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("missing.yaml"));
}

// yaml-cpp 0.7's LoadAll loops forever (allocating) on these; found by fuzz/item_file_fuzz.
TEST(ItemFile, AStrayCommaOrFlowEndIsRefusedInsteadOfLoopingForever) {
  for (const char* text : {",", ",}", ", p]", "  ,\n- {title: t, prompt: p}\n"}) {
    EXPECT_THAT(ErrorOf(text),
                AllOf(StartsWith("items.yaml:1:"), HasSubstr("not valid JSON or YAML")))
        << text;
  }
}

// ItemSpec's strings are proto3 strings: harnessctl sent bytes the controller cannot parse.
// Found by fuzz/item_file_fuzz.
TEST(ItemFile, TextThatIsNotUtf8IsRefusedWithItsField) {
  EXPECT_THAT(ErrorOf("- {title: \"t\xff\", prompt: p}\n"),
              HasSubstr("item #1: title is not valid UTF-8"));
  EXPECT_THAT(ErrorOf("- {title: t, prompt: p, labels: {\"k\xc3\": v}}\n"),
              HasSubstr("labels: a key must be a non-empty UTF-8 string"));
  TempDir dir;
  WriteText(dir.Sub("binary.md"), std::string("\x89PNG\r\n\x1a\n\0\0", 10));
  EXPECT_THAT(ErrorOf("- {title: t, prompt_file: binary.md}\n", dir.path()),
              HasSubstr("prompt_file \"binary.md\" is not UTF-8 text"));
}

}  // namespace
}  // namespace harness::client
