// The last output line kept per agent (core/output_line.h) and the agent changes the controller
// logs (AgentRegistry::TakeChanges).
#include <string>
#include <vector>

#include "core/agent_registry.h"
#include "core/output_line.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "core/clock.h"

namespace harness {
namespace {

TEST(OutputLine, TheLastNonBlankLineWinsAcrossChunksThatSplitIt) {
  OutputLine o;
  EXPECT_EQ(o.Last(), "");
  o.Append("first\nsec");
  EXPECT_EQ(o.Last(), "sec");  // a line in progress counts once it has text
  o.Append("ond\n\n   \n");
  EXPECT_EQ(o.Last(), "second");
  o.Append("progress 10%\rprogress 20%\r");
  EXPECT_EQ(o.Last(), "progress 20%");
  o.Clear();
  EXPECT_EQ(o.Last(), "");
}

TEST(OutputLine, EscapeSequencesAndControlCharactersAreRemovedAndBadUtf8Replaced) {
  EXPECT_EQ(SanitizeOutputLine("\x1b[1;31mred\x1b[0m\tand\x07 \x1b]0;title\x07plain\x01!"),
            "red and  plain !");
  EXPECT_EQ(SanitizeOutputLine("caf\xC3\xA9 \xff\xfe end"), "caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD end");
  // A split multi-byte character is not cut in half when the line is bounded.
  std::string line = SanitizeOutputLine(std::string(198, 'a') + "\xE2\x82\xAC\xE2\x82\xAC", 200);
  EXPECT_EQ(line, std::string(197, 'a') + "...");
  EXPECT_LE(SanitizeOutputLine(std::string(10000, 'z')).size(), kMaxOutputLineBytes);
}

class AgentChanges : public ::testing::Test {
 protected:
  FakeClock clock_;
  AgentRegistry agents_{&clock_, absl::Seconds(1), absl::Seconds(10)};
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    for (const AgentChange& c : agents_.TakeChanges()) {
      out.push_back(absl::StrCat(c.agent, " ", c.what, c.reason.empty() ? "" : ": ", c.reason));
    }
    return out;
  }
};

TEST_F(AgentChanges, EachHealthChangeIsReportedOnceAndAStoppedAgentsSilenceIsNot) {
  std::string s1 = agents_.Register("a1", 1, "h", "v");
  EXPECT_TRUE(Take().empty());  // registered, its stream not open yet: not a change
  ASSERT_TRUE(agents_.Attach("a1", s1, nullptr).ok());
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(Take(), std::vector<std::string>{"a1 suspect: no heartbeat for 3s"});
  EXPECT_TRUE(Take().empty());
  clock_.Advance(absl::Seconds(8));
  EXPECT_EQ(Take(), std::vector<std::string>{"a1 dead: no heartbeat for 11s"});
  ASSERT_TRUE(agents_.Heartbeat("a1", s1, AgentState::kIdle).ok());
  EXPECT_EQ(Take(), std::vector<std::string>{"a1 healthy: heard from again"});

  std::string s2 = agents_.Register("a2", 2, "h", "v");
  ASSERT_TRUE(agents_.Drain("a2").ok());
  ASSERT_TRUE(agents_.Heartbeat("a2", s2, AgentState::kStopped).ok());
  ASSERT_TRUE(agents_.Heartbeat("a1", s1, AgentState::kStopped).ok());
  agents_.MarkExited("a2", 2, "exited with status 0");
  EXPECT_EQ(Take(), (std::vector<std::string>{"a1 stopped", "a2 drained"}));
  clock_.Advance(absl::Seconds(60));
  EXPECT_TRUE(Take().empty());  // stopped: its silence is expected

  std::string s3 = agents_.Register("a3", 3, "h", "v");
  agents_.MarkExited("a3", 3, "killed by signal 9");
  EXPECT_EQ(Take(), std::vector<std::string>{"a3 dead: killed by signal 9"});
}

TEST_F(AgentChanges, OutputOfANewLeaseStartsAfresh) {
  agents_.Register("a1", 1, "h", "v");
  agents_.NoteOutput("a1", 5, "old line\n");
  EXPECT_EQ(agents_.Get("a1")->last_output_line, "old line");
  EXPECT_EQ(agents_.Get("a1")->output_token, 5u);
  agents_.NoteOutput("a1", 6, "new");
  EXPECT_EQ(agents_.Get("a1")->last_output_line, "new");
}

}  // namespace
}  // namespace harness
