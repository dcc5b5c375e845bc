// What a work source prints (items/source_items.h): Beads' `bd ready --json` issues map to
// items (description -> prompt, bd priority 0 runs first, labels list -> labels, closed ones
// skipped), harness's own item objects are read as `submit --file` reads them, every item is
// marked with its source, and one bad element is refused alone with a message naming it.
#include "items/source_items.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

SourceOutput Parse(const std::string& text) {
  absl::StatusOr<SourceOutput> out = ParseSourceOutput(text, "bd");
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : SourceOutput{};
}

// A bd issue as `bd ready --json` prints it (Beads 0.x), with fields harness ignores.
constexpr char kBdReady[] = R"([
  {"id": "bd-a1b2", "title": "Fix the login", "description": "Users cannot log in.\nFix it.",
   "status": "open", "priority": 0, "issue_type": "bug", "assignee": "", "labels": ["backend", "p0"],
   "created_at": "2025-10-01T10:00:00Z", "updated_at": "2025-10-01T10:00:00Z",
   "dependency_count": 0, "dependent_count": 1},
  {"id": "bd-c3d4.1", "title": "Write the docs", "status": "in_progress", "priority": 4,
   "issue_type": "task", "created_at": "2025-10-01T10:00:00Z", "updated_at": "x"}
])";

TEST(SourceItems, ABdIssueBecomesAnItemWithItsPromptLabelsAndSource) {
  SourceOutput out = Parse(kBdReady);
  EXPECT_THAT(out.refused, IsEmpty());
  ASSERT_EQ(out.items.size(), 2u);
  const v1::ItemSpec& a = out.items[0];
  EXPECT_EQ(a.id(), "bd-a1b2");
  EXPECT_EQ(a.title(), "Fix the login");
  EXPECT_EQ(a.prompt(), "Users cannot log in.\nFix it.");
  EXPECT_THAT(a.labels(), UnorderedElementsAre(Pair("backend", ""), Pair("p0", ""),
                                               Pair("source", "bd")));
  EXPECT_EQ(a.max_attempts(), 0);  // the controller's default
  EXPECT_EQ(a.timeout_s(), 0);
}

TEST(SourceItems, BdPriorityZeroRunsFirst) {
  SourceOutput out = Parse(kBdReady);
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[0].priority(), 4);  // bd 0 (critical)
  EXPECT_EQ(out.items[1].priority(), 0);  // bd 4 (backlog)
  EXPECT_GT(out.items[0].priority(), out.items[1].priority());
  for (int p = 0; p < 4; ++p) EXPECT_GT(PriorityFromBd(p), PriorityFromBd(p + 1));
}

TEST(SourceItems, ABdIssueWithoutPriorityGetsBdsDefault) {
  SourceOutput out = Parse(R"([{"id": "bd-1", "title": "t", "status": "open"}])");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].priority(), PriorityFromBd(2));
}

TEST(SourceItems, ABdIssueWithoutDescriptionUsesItsTitleAsThePrompt) {
  SourceOutput out = Parse(
      R"([{"id": "bd-1", "title": "Bump the version", "description": "", "status": "open"},
          {"id": "bd-2", "title": "Tidy up", "status": "open", "description": null}])");
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[0].prompt(), "Bump the version");
  EXPECT_EQ(out.items[1].prompt(), "Tidy up");
}

TEST(SourceItems, ClosedOrBlockedBdIssuesAreSkippedNotAdded) {
  SourceOutput out = Parse(R"([
    {"id": "bd-1", "title": "a", "status": "closed"},
    {"id": "bd-2", "title": "b", "status": "blocked"},
    {"id": "bd-3", "title": "c", "status": "open"}])");
  EXPECT_THAT(out.skipped, ElementsAre("bd-1", "bd-2"));
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].id(), "bd-3");
}

TEST(SourceItems, ABdIdThatIsNotAValidItemIdIsRefusedAloneWithAClearMessage) {
  SourceOutput out = Parse(R"([
    {"id": "team/bd-1", "title": "a", "status": "open"},
    {"id": "bd-2", "title": "b", "status": "open"},
    {"id": "bd..3", "title": "c", "status": "open"}])");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].id(), "bd-2");
  ASSERT_EQ(out.refused.size(), 2u);
  EXPECT_THAT(out.refused[0], StartsWith("work source bd:2: item #1 (\"team/bd-1\"): the bd id "
                                         "is not a valid harness item id ("));
  EXPECT_THAT(out.refused[0], HasSubstr("the issue is not added"));
  EXPECT_THAT(out.refused[1], HasSubstr("item #3 (\"bd..3\")"));
}

TEST(SourceItems, BdIssuesWithBadFieldsAreRefusedNamingTheField) {
  SourceOutput out = Parse(R"([
    {"id": "bd-1", "title": "a", "status": "open", "priority": 5},
    {"id": "bd-2", "title": "b", "status": "open", "priority": "high"},
    {"id": "bd-3", "title": "c", "status": "open", "labels": "backend"},
    {"id": "bd-4", "status": "open"},
    {"title": "no id", "status": "open"},
    {"id": "bd-6", "title": "f", "status": "open", "labels": [1]}])");
  EXPECT_EQ(out.items.size(), 0u);
  ASSERT_EQ(out.refused.size(), 6u);
  EXPECT_THAT(out.refused[0], HasSubstr("priority must be between 0 and 4, got 5"));
  EXPECT_THAT(out.refused[1], HasSubstr("priority must be an integer, got the string \"high\""));
  EXPECT_THAT(out.refused[2], HasSubstr("labels must be a list of strings"));
  EXPECT_THAT(out.refused[3], HasSubstr("item #4 (\"bd-4\"): title is required"));
  EXPECT_THAT(out.refused[4], HasSubstr("item #5: bd issue has no id"));
  EXPECT_THAT(out.refused[5], HasSubstr("labels[0] must be a string"));
}

TEST(SourceItems, HarnessItemsAreReadAsSubmitFileReadsThem) {
  SourceOutput out = Parse(R"([
    {"id": "h-1", "title": "T", "prompt": "P", "priority": 9, "max_attempts": 2,
     "timeout_s": 30, "labels": {"team": "web", "source": "spoofed"}}])");
  EXPECT_THAT(out.refused, IsEmpty());
  ASSERT_EQ(out.items.size(), 1u);
  const v1::ItemSpec& h = out.items[0];
  EXPECT_EQ(h.id(), "h-1");
  EXPECT_EQ(h.prompt(), "P");
  EXPECT_EQ(h.priority(), 9);
  EXPECT_EQ(h.max_attempts(), 2);
  EXPECT_EQ(h.timeout_s(), 30);
  // The source label says where it came from, whatever the item said.
  EXPECT_THAT(h.labels(), UnorderedElementsAre(Pair("team", "web"), Pair("source", "bd")));
}

TEST(SourceItems, HarnessItemsWithoutIdOrWithAnUnknownFieldAreRefused) {
  SourceOutput out = Parse(R"([
    {"title": "T", "prompt": "P"},
    {"id": "h-2", "title": "T", "promt": "P"},
    {"id": "h-3", "title": "T", "prompt": "P"}])");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].id(), "h-3");
  ASSERT_EQ(out.refused.size(), 2u);
  EXPECT_THAT(out.refused[0], HasSubstr("item #1: an item from a source needs an id"));
  EXPECT_THAT(out.refused[1], HasSubstr("item #2 (\"h-2\"): unknown field \"promt\""));
}

// A source's output cannot make the controller read a file of its host into a prompt.
TEST(SourceItems, AHarnessItemWithAPromptFileIsRefused) {
  SourceOutput out = Parse(R"([{"id": "a", "title": "t", "prompt_file": "/etc/passwd"},
                               {"id": "b", "title": "t", "prompt": "p"}])");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].id(), "b");
  ASSERT_EQ(out.refused.size(), 1u);
  EXPECT_THAT(out.refused[0], HasSubstr("prompt_file is not read from a source's output"));
}

TEST(SourceItems, BothFormatsMayShareOneRun) {
  SourceOutput out = Parse(R"([{"id": "bd-1", "title": "a", "status": "open"},
                               {"id": "h-1", "title": "b", "prompt": "c"}])");
  ASSERT_EQ(out.items.size(), 2u);
  EXPECT_EQ(out.items[0].id(), "bd-1");
  EXPECT_EQ(out.items[1].id(), "h-1");
}

TEST(SourceItems, AnIdGivenTwiceInOneRunIsRefusedTheSecondTime) {
  SourceOutput out = Parse(R"([{"id": "bd-1", "title": "a", "status": "open"},
                               {"id": "bd-1", "title": "b", "status": "open"}])");
  ASSERT_EQ(out.items.size(), 1u);
  EXPECT_EQ(out.items[0].title(), "a");
  ASSERT_EQ(out.refused.size(), 1u);
  EXPECT_THAT(out.refused[0], HasSubstr("earlier element of the same run"));
}

TEST(SourceItems, EmptyOutputNullAndAnEmptyArrayAreNoItems) {
  for (const char* text : {"", "  \n", "null", "[]"}) {
    SourceOutput out = Parse(text);
    EXPECT_EQ(out.items.size(), 0u) << text;
    EXPECT_THAT(out.refused, IsEmpty()) << text;
  }
}

TEST(SourceItems, OutputThatIsNotAJsonArrayRefusesTheWholeRun) {
  for (const char* text : {"Error: no beads database found", "{\"id\": \"bd-1\"}", "[1, 2",
                            "[]\n---\n[]"}) {
    absl::StatusOr<SourceOutput> out = ParseSourceOutput(text, "bd");
    ASSERT_FALSE(out.ok()) << text;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(out.status().message()), StartsWith("work source bd")) << text;
  }
}

TEST(SourceItems, AnElementThatIsNotAnObjectIsRefusedAlone) {
  SourceOutput out = Parse(R"(["bd-1", {"id": "bd-2", "title": "b", "status": "open"}])");
  ASSERT_EQ(out.items.size(), 1u);
  ASSERT_EQ(out.refused.size(), 1u);
  EXPECT_THAT(out.refused[0], HasSubstr("item #1: expected an object, got the string \"bd-1\""));
}

}  // namespace
}  // namespace harness
