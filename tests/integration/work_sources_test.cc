// Work sources end to end (docs/SOURCES.md): a real controller polls a fake `bd` (a shell
// script the test writes) beside a source that prints garbage and one that exits non-zero;
// real agentd workers run what bd lists to done, later polls never add a done item again, a
// new issue is picked up by a later poll, the bad sources are logged every run while the good
// one keeps working, and queue.on_done closes each finished issue with `bd close {id}` (and
// leaves a submitted item alone).
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

void WriteScript(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
  ::chmod(path.c_str(), 0755);
}

// Replaces `path` at once (the fake bd may be reading it).
void WriteAtomically(const std::string& path, const std::string& text) {
  ASSERT_TRUE(WriteFileAtomically(path, text).ok()) << path;
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : "";
}

int Lines(const std::string& path) {
  std::string text = Read(path);
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class WorkSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    issues_ = tmp_.Sub("issues.json");
    calls_ = tmp_.Sub("bd-calls");
    closed_ = tmp_.Sub("bd-closed");
    bd_ = tmp_.Sub("bd");
    // `bd ready --json` prints issues.json (and counts its calls); `bd close ID` records ID.
    WriteScript(bd_, absl::StrCat("#!/bin/sh\n",
                                  "case \"$1\" in\n",
                                  "  ready) echo ready >> ", calls_, "; echo 'bd: 1 warning' >&2; ",
                                  "cat ", issues_, " ;;\n",
                                  "  close) echo \"$2\" >> ", closed_, " ;;\n",
                                  "  *) echo \"bd: unknown command $1\" >&2; exit 2 ;;\n",
                                  "esac\n"));
    WriteAtomically(issues_, R"([
      {"id": "bd-a1", "title": "Fix the login", "description": "ok", "status": "open",
       "priority": 1, "issue_type": "bug", "labels": ["backend"]},
      {"id": "bd-b2", "title": "Write docs", "description": "ok", "status": "open",
       "priority": 3, "issue_type": "task"},
      {"id": "bd-old", "title": "Closed already", "status": "closed", "priority": 0},
      {"id": "Team/bd-9", "title": "Not a valid item id", "status": "open", "priority": 2}
    ])");
    script_ = tmp_.Sub("agent.sh");
    WriteScript(script_, "#!/bin/sh\necho \"did $HARNESS_ITEM_ID\"\n");
    config_.state_dir = tmp_.Sub("state");
    config_.extra_yaml = absl::StrCat(
        "  queue:\n"
        "    sources:\n"
        "      - {name: bd, command: [\"", bd_, "\", ready, --json], interval: 0.2}\n"
        "      - {name: junk, command: [sh, -c, \"echo this is not json\"], interval: 0.2}\n"
        "      - {name: broken, command: [sh, -c, \"echo no database >&2; exit 3\"], "
        "interval: 0.2}\n"
        "    on_done: [\"", bd_, "\", close, \"{id}\"]\n");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }

  void StartAgents(int n) {
    for (int i = 1; i <= n; ++i) {
      std::string id = absl::StrCat("agent-", i);
      agents_[id] = StartAgent(id, controller_->address(), tmp_.Sub("work-" + id),
                               "/bin/sh " + script_, tmp_.Sub(id + ".log"));
    }
  }

  v1::ItemState StateOf(const std::string& id) {
    v1::Item item;
    if (!CallGet(controller_->control(), id, &item).ok()) return v1::ITEM_STATE_UNSPECIFIED;
    return item.state();
  }
  std::string ControllerLog() { return Read(controller_->log_file()); }
  int CountInLog(const std::string& text) {
    std::string log = ControllerLog();
    int n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::map<std::string, std::unique_ptr<ChildProcess>> agents_;
  std::string issues_, calls_, closed_, bd_, script_;
};

TEST_F(WorkSourcesTest, BdIssuesRunToDoneOnceAndBadSourcesAreLoggedWhileOthersWork) {
  // Polled before any agent exists: the items wait, pending, marked with their source.
  ASSERT_TRUE(WaitFor([&] { return StateOf("bd-b2") == v1::ITEM_STATE_PENDING; },
                      absl::Seconds(20)));
  v1::Item a1 = GetItem(controller_->control(), "bd-a1");
  EXPECT_EQ(a1.labels().at("source"), "bd");
  EXPECT_EQ(a1.labels().count("backend"), 1u);
  EXPECT_EQ(a1.priority(), 3);  // bd 1 -> 4 - 1
  EXPECT_EQ(a1.prompt(), "ok");
  EXPECT_EQ(StateOf("bd-old"), v1::ITEM_STATE_UNSPECIFIED);  // closed in bd: not added

  // A submitted item beside them: not from a source, so on_done leaves it alone.
  Submit(controller_->control(), {MakeItem("plain-1", "ok")});

  StartAgents(2);
  ASSERT_TRUE(WaitFor([&] {
    return StateOf("bd-a1") == v1::ITEM_STATE_DONE && StateOf("bd-b2") == v1::ITEM_STATE_DONE &&
           StateOf("plain-1") == v1::ITEM_STATE_DONE;
  }, absl::Seconds(60)));

  // bd still lists both (the fake never forgets): more polls come and add nothing.
  int calls = Lines(calls_);
  ASSERT_TRUE(WaitFor([&] { return Lines(calls_) >= calls + 3; }, absl::Seconds(20)));
  v1::StatusSnapshot s = GetStatus(controller_->control());
  EXPECT_EQ(s.queue().total(), 3);
  EXPECT_EQ(s.queue().done(), 3);
  EXPECT_EQ(GetItem(controller_->control(), "bd-a1").attempts_size(), 1);
  EXPECT_EQ(GetItem(controller_->control(), "bd-b2").attempts_size(), 1);

  // A new issue is picked up by a later poll and run too.
  WriteAtomically(issues_, R"([
    {"id": "bd-a1", "title": "Fix the login", "description": "ok", "status": "open", "priority": 1},
    {"id": "bd-b2", "title": "Write docs", "description": "ok", "status": "open", "priority": 3},
    {"id": "bd-c3", "title": "Later work", "description": "ok", "status": "open", "priority": 2}
  ])");
  ASSERT_TRUE(WaitFor([&] { return StateOf("bd-c3") == v1::ITEM_STATE_DONE; },
                      absl::Seconds(60)));
  EXPECT_EQ(GetStatus(controller_->control()).queue().total(), 4);

  // on_done closed each finished issue once, and nothing else.
  ASSERT_TRUE(WaitFor([&] { return Lines(closed_) == 3; }, absl::Seconds(20))) << Read(closed_);
  std::vector<std::string> closed = absl::StrSplit(Read(closed_), '\n', absl::SkipEmpty());
  std::sort(closed.begin(), closed.end());
  EXPECT_EQ(closed, (std::vector<std::string>{"bd-a1", "bd-b2", "bd-c3"}));

  // The bad sources: one clear error per run, every run; the bad id once; bd's stderr logged.
  std::string log = ControllerLog();
  EXPECT_GE(CountInLog("work source junk: expected a JSON array of items, got the string "
                       "\"this is not json\"; nothing added this run"),
            3)
      << log;
  EXPECT_GE(CountInLog("work source broken: sh exited with status 3; nothing added this run"), 3)
      << log;
  EXPECT_GE(CountInLog("work source broken: stderr: no database"), 3) << log;
  EXPECT_GE(CountInLog("work source bd: stderr: bd: 1 warning"), 3) << log;
  EXPECT_EQ(CountInLog("item #4 (\"Team/bd-9\"): the bd id is not a valid harness item id"), 1)
      << log;
  EXPECT_EQ(StateOf("Team/bd-9"), v1::ITEM_STATE_UNSPECIFIED);
}

}  // namespace
}  // namespace harness::testing
