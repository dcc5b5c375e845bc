// The `agentd --command` splitter: shell-like words with quotes and escapes but no expansion,
// the JSON array form, and one clear error for each malformed input.
#include "agentd/command_split.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness::agentd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Split(const std::string& s) {
  absl::StatusOr<std::vector<std::string>> r = SplitCommand(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status();
  return r.ok() ? *r : std::vector<std::string>{"<error>"};
}

std::string SplitError(const std::string& s) {
  absl::StatusOr<std::vector<std::string>> r = SplitCommand(s);
  EXPECT_FALSE(r.ok()) << s;
  EXPECT_TRUE(r.ok() || absl::IsInvalidArgument(r.status())) << r.status();
  return r.ok() ? "<ok>" : std::string(r.status().message());
}

TEST(SplitCommand, SplitsWordsOnAnyRunOfBlanks) {
  EXPECT_THAT(Split("claude -p {prompt} --output-format stream-json"),
              ElementsAre("claude", "-p", "{prompt}", "--output-format", "stream-json"));
  EXPECT_THAT(Split("  a \t b\n\nc  "), ElementsAre("a", "b", "c"));
}

TEST(SplitCommand, SingleQuotesKeepEverythingLiterally) {
  EXPECT_THAT(Split("sh -c 'echo \"$HOME\" && ls * \\n'"),
              ElementsAre("sh", "-c", "echo \"$HOME\" && ls * \\n"));
}

TEST(SplitCommand, DoubleQuotesLetABackslashEscapeOnlyTheShellsFour) {
  EXPECT_THAT(Split(R"(say "a \"b\" \\ \$x \`y\` \n {title}")"),
              ElementsAre("say", R"(a "b" \ $x `y` \n {title})"));
}

TEST(SplitCommand, BackslashOutsideQuotesKeepsTheNextCharacter) {
  EXPECT_THAT(Split(R"(a\ b c\"d \\ \'e)"), ElementsAre("a b", "c\"d", "\\", "'e"));
  EXPECT_THAT(Split("one \\\n two"), ElementsAre("one", "two"));  // line continuation
}

TEST(SplitCommand, AdjacentQuotedPartsFormOneWord) {
  EXPECT_THAT(Split(R"(--flag="a b"'c d'e)"), ElementsAre("--flag=a bc de"));
}

TEST(SplitCommand, EmptyQuotesAreEmptyArguments) {
  EXPECT_THAT(Split("a '' \"\" b"), ElementsAre("a", "", "", "b"));
}

TEST(SplitCommand, NothingIsExpanded) {
  EXPECT_THAT(Split("echo $HOME ~ *.txt $(date) `id` a;b c|d >out"),
              ElementsAre("echo", "$HOME", "~", "*.txt", "$(date)", "`id`", "a;b", "c|d", ">out"));
}

TEST(SplitCommand, UnbalancedQuotesAreErrors) {
  EXPECT_THAT(SplitError("claude -p 'oops"), HasSubstr("unbalanced single quote at offset 10"));
  EXPECT_THAT(SplitError("claude -p \"oops"), HasSubstr("unbalanced double quote at offset 10"));
  EXPECT_THAT(SplitError(R"(claude "a \")"), HasSubstr("unbalanced double quote"));
  EXPECT_THAT(SplitError("claude \\"), HasSubstr("lone backslash"));
}

TEST(SplitCommand, EmptyCommandIsAnError) {
  EXPECT_EQ(SplitError(""), "--command is empty");
  EXPECT_EQ(SplitError("  \t "), "--command is empty");
  EXPECT_EQ(SplitError("'' x"), "--command names an empty program");
}

TEST(SplitCommand, JsonArrayOfStrings) {
  EXPECT_THAT(Split(R"(["claude", "-p", "{prompt}", "a b", "q\"uote", "back\\slash"])"),
              ElementsAre("claude", "-p", "{prompt}", "a b", "q\"uote", "back\\slash"));
  EXPECT_THAT(Split(R"(  [ "x" ,"\u00e9\n\t\/", "\ud83d\ude00" ] )"),
              ElementsAre("x", "\xc3\xa9\n\t/", "\xf0\x9f\x98\x80"));
}

TEST(SplitCommand, MalformedJsonIsAnError) {
  EXPECT_THAT(SplitError(R"(["a", 1])"), HasSubstr("element 1 is not a string"));
  EXPECT_THAT(SplitError(R"(["a")"), HasSubstr("expected ',' or ']'"));
  EXPECT_THAT(SplitError(R"(["a)"), HasSubstr("unterminated string"));
  EXPECT_THAT(SplitError(R"(["a"] x)"), HasSubstr("unexpected text after the array"));
  EXPECT_THAT(SplitError(R"(["a\q"])"), HasSubstr("unknown escape \\q"));
  EXPECT_THAT(SplitError(R"(["\ud800"])"), HasSubstr("unpaired UTF-16 surrogate"));
  EXPECT_EQ(SplitError("[]"), "--command is empty");
}

TEST(SplitCommand, BracketNotFirstIsPlainWords) {
  EXPECT_THAT(Split("test [ -f x ]"), ElementsAre("test", "[", "-f", "x", "]"));
}

}  // namespace
}  // namespace harness::agentd
