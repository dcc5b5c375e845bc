// harnessctl's rendering (client/render.h): the human `status` is exactly CONTRACT.md's layout
// for the same data; `status --json` and `show --json` carry the contract's fields with
// lower-case state names; the tables and the item block say what an operator needs.
#include "client/render.h"

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The data of CONTRACT.md's `status` example.
v1::StatusSnapshot ContractSnapshot() {
  v1::StatusSnapshot s;
  s.mutable_controller()->set_pid(12345);
  s.mutable_controller()->set_uptime_s(3600);
  s.mutable_controller()->set_address("127.0.0.1:7070");
  s.mutable_controller()->set_version("0.1.0");
  struct Row {
    const char* id;
    v1::AgentState state;
    const char* item;
    v1::Health health;
  };
  for (const Row& r : {Row{"agent-1", v1::AGENT_STATE_WORKING, "item-123", v1::HEALTH_HEALTHY},
                       Row{"agent-2", v1::AGENT_STATE_IDLE, "", v1::HEALTH_HEALTHY},
                       Row{"agent-3", v1::AGENT_STATE_WORKING, "item-456", v1::HEALTH_SUSPECT}}) {
    v1::AgentInfo* a = s.add_agents();
    a->set_id(r.id);
    a->set_state(r.state);
    a->set_item(r.item);
    a->set_health(r.health);
    a->set_last_heartbeat_ms_ago(120);
    a->set_pid(2);
    a->set_host("h");
    a->set_version("0.1.0");
  }
  v1::QueueCounts* q = s.mutable_queue();
  q->set_total(15);
  q->set_pending(12);
  q->set_leased(3);
  q->set_done(40);
  q->set_failed(1);
  q->set_parked(0);
  q->set_cancelled(0);
  s.mutable_pool()->set_target(3);
  s.mutable_pool()->set_active(3);
  s.mutable_pool()->set_launcher("process");
  for (int i = 1; i <= 3; ++i) {
    v1::PoolSlot* slot = s.mutable_pool()->add_slots();
    slot->set_slot(i);
    slot->set_agent(absl::StrCat("agent-", i));
    slot->set_state("running");
  }
  s.mutable_metrics()->set_items_per_hour(4.2);
  s.mutable_metrics()->set_avg_item_s(30);
  s.mutable_metrics()->set_success_rate(0.97);
  return s;
}

std::set<std::string> Keys(const YAML::Node& object) {
  std::set<std::string> keys;
  for (const auto& kv : object) keys.insert(kv.first.as<std::string>());
  return keys;
}

// A done item with one failed attempt and one that produced `commit`.
v1::Item DoneItem(const std::string& commit) {
  v1::Item item;
  item.set_id("fix-login");
  item.set_title("Fix the login");
  item.set_prompt("Make the login button work.\nAdd a test.");
  item.set_priority(5);
  item.set_max_attempts(3);
  item.set_timeout_s(1800);
  (*item.mutable_labels())["team"] = "web";
  item.set_state(v1::ITEM_STATE_DONE);
  item.set_submitted_at_unix_ms(1714564800250);
  item.set_updated_at_unix_ms(1714564900000);
  v1::Attempt* a1 = item.add_attempts();
  a1->set_number(1);
  a1->set_agent("agent-1");
  a1->set_lease_token(7);
  a1->set_started_at_unix_ms(1714564801000);
  a1->set_ended_at_unix_ms(1714564811500);
  a1->mutable_exit_code()->set_value(1);
  a1->set_outcome(v1::ATTEMPT_OUTCOME_FAILED);
  a1->set_error("agent command exited with status 1");
  a1->set_base_commit(std::string(40, 'b'));
  v1::Attempt* a2 = item.add_attempts();
  a2->set_number(2);
  a2->set_agent("agent-2");
  a2->set_lease_token(18446744073709551615ull);
  a2->set_started_at_unix_ms(1714564820000);
  a2->set_ended_at_unix_ms(1714564900000);
  a2->mutable_exit_code()->set_value(0);
  a2->set_outcome(v1::ATTEMPT_OUTCOME_DONE);
  a2->set_base_commit(std::string(40, 'b'));
  a2->set_commit(commit);
  item.mutable_result()->set_branch(commit.empty() ? "" : "harness/fix-login");
  item.mutable_result()->set_commit(commit);
  item.mutable_result()->set_base(std::string(40, 'b'));
  item.set_log_tail("ok\n");
  return item;
}

TEST(Render, StatusTextIsExactlyTheContractsExample) {
  EXPECT_EQ(RenderStatusText(ContractSnapshot()),
            "Controller: pid 12345 | uptime 3600s | 127.0.0.1:7070\n"
            "Agents (3/3):\n"
            "  agent-1  working  item-123  healthy\n"
            "  agent-2  idle     -         healthy\n"
            "  agent-3  working  item-456  suspect\n"
            "Queue: 15 total | 12 pending | 3 leased | 40 done | 1 failed | 0 parked\n"
            "Metrics: 3 active | 2 working | 4.2 items/h | success 97%\n");
}

TEST(Render, StatusTextShowsTheSlotsThatAreNotSimplyRunning) {
  v1::StatusSnapshot s = ContractSnapshot();
  s.mutable_pool()->mutable_slots(1)->set_state("failed");
  s.mutable_pool()->mutable_slots(1)->set_failures(4);
  s.mutable_pool()->mutable_slots(1)->set_reason("exited with status 1");
  s.mutable_pool()->mutable_slots(2)->set_state("restarting");
  s.mutable_pool()->mutable_slots(2)->set_failures(1);
  s.mutable_pool()->mutable_slots(2)->set_reason("killed by signal 9");
  EXPECT_THAT(RenderStatusText(s),
              HasSubstr("Pool (process):\n"
                        "  slot 2 (agent-2): failed, 4 failures, last: exited with status 1\n"
                        "  slot 3 (agent-3): restarting, 1 failures, last: killed by signal 9\n"
                        "Queue:"));
}

TEST(Render, StatusSaysWhyTheLauncherCannotActBeforeTheSlots) {
  v1::StatusSnapshot s = ContractSnapshot();
  s.mutable_pool()->set_launcher("docker");
  s.mutable_pool()->set_launcher_error(
      "docker daemon at unix:///x.sock is not reachable: connect: No such file or directory");
  s.mutable_pool()->mutable_slots(2)->set_state("starting");
  EXPECT_THAT(RenderStatusText(s),
              HasSubstr("Pool (docker): docker daemon at unix:///x.sock is not reachable: "
                        "connect: No such file or directory\n"
                        "  slot 3 (agent-3): starting\n"
                        "Queue:"));
  YAML::Node doc = YAML::Load(RenderStatusJson(s, /*pretty=*/true));
  EXPECT_EQ(doc["pool"]["launcher_error"].as<std::string>(),
            "docker daemon at unix:///x.sock is not reachable: connect: No such file or directory");
}

TEST(Render, StatusTextWithoutAgentsHasNoRows) {
  v1::StatusSnapshot s = ContractSnapshot();
  s.clear_agents();
  s.mutable_pool()->set_active(0);
  std::string text = RenderStatusText(s);
  EXPECT_THAT(text, HasSubstr("Agents (0/3):\nQueue: "));
  EXPECT_THAT(text, HasSubstr("Metrics: 0 active | 0 working |"));
}

TEST(Render, StatusTextCountsOnlyLiveWorkingAgentsAndRoundsSuccess) {
  v1::StatusSnapshot s = ContractSnapshot();
  s.mutable_agents(2)->set_health(v1::HEALTH_DEAD);
  s.mutable_metrics()->set_success_rate(1.0);
  s.mutable_metrics()->set_items_per_hour(0);
  EXPECT_THAT(RenderStatusText(s),
              HasSubstr("Metrics: 3 active | 1 working | 0.0 items/h | success 100%\n"));
  s.mutable_metrics()->set_success_rate(0.975);
  EXPECT_THAT(RenderStatusText(s), HasSubstr("success 98%"));
}

TEST(Render, StatusSaysWhenTheStoreIsFailingInTextAndJson) {
  v1::StatusSnapshot s = ContractSnapshot();
  EXPECT_THAT(RenderStatusText(s), Not(HasSubstr("Store:")));
  s.mutable_controller()->set_store_error(
      "state dir /s cannot take writes (write failed for /s/journal/3.wal: No space left on "
      "device)");
  s.mutable_controller()->set_store_failing_since_unix_ms(1'700'000'000'000);
  std::string text = RenderStatusText(s);
  EXPECT_THAT(text, HasSubstr("\nStore: FAILING since "));
  EXPECT_THAT(text, HasSubstr("changes are refused: state dir /s cannot take writes"));
  EXPECT_THAT(text, HasSubstr("No space left on device"));
  YAML::Node doc = YAML::Load(RenderStatusJson(s, /*pretty=*/false));
  EXPECT_FALSE(doc["controller"]["store_ok"].as<bool>());
  EXPECT_THAT(doc["controller"]["store_error"].as<std::string>(),
              HasSubstr("No space left on device"));
  EXPECT_EQ(doc["controller"]["store_failing_since_unix_ms"].as<int64_t>(), 1'700'000'000'000);
}

TEST(Render, StatusJsonHasExactlyTheContractsFields) {
  v1::StatusSnapshot snapshot = ContractSnapshot();
  v1::PoolSlot* restarting = snapshot.mutable_pool()->mutable_slots(2);
  restarting->set_state("restarting");
  restarting->set_failures(1);
  restarting->set_reason("killed by signal 9");
  std::string json = RenderStatusJson(snapshot, /*pretty=*/true);
  ASSERT_EQ(json.back(), '\n');
  YAML::Node doc = YAML::Load(json);
  EXPECT_EQ(Keys(doc), (std::set<std::string>{"controller", "agents", "queue", "pool", "metrics"}));
  EXPECT_EQ(Keys(doc["controller"]),
            (std::set<std::string>{"pid", "uptime_s", "address", "version", "store_ok",
                                   "store_error", "store_failing_since_unix_ms",
                                   "recovery_repairs"}));
  EXPECT_TRUE(doc["controller"]["store_ok"].as<bool>());
  EXPECT_EQ(doc["controller"]["store_error"].as<std::string>(), "");
  EXPECT_EQ(doc["controller"]["pid"].as<int>(), 12345);
  EXPECT_EQ(doc["controller"]["uptime_s"].as<int>(), 3600);
  EXPECT_EQ(doc["controller"]["address"].as<std::string>(), "127.0.0.1:7070");
  ASSERT_EQ(doc["agents"].size(), 3u);
  EXPECT_EQ(Keys(doc["agents"][0]),
            (std::set<std::string>{"id", "state", "health", "item", "item_elapsed_ms",
                                   "last_output_line", "last_heartbeat_ms_ago", "pid", "host"}));
  EXPECT_EQ(doc["agents"][0]["state"].as<std::string>(), "working");
  EXPECT_EQ(doc["agents"][0]["health"].as<std::string>(), "healthy");
  EXPECT_EQ(doc["agents"][0]["item"].as<std::string>(), "item-123");
  EXPECT_EQ(doc["agents"][0]["last_heartbeat_ms_ago"].as<int>(), 120);
  EXPECT_EQ(doc["agents"][1]["state"].as<std::string>(), "idle");
  EXPECT_TRUE(doc["agents"][1]["item"].IsNull());
  EXPECT_EQ(doc["agents"][2]["health"].as<std::string>(), "suspect");
  EXPECT_EQ(Keys(doc["queue"]), (std::set<std::string>{"total", "pending", "leased", "done",
                                                       "failed", "parked", "cancelled"}));
  EXPECT_EQ(doc["queue"]["done"].as<int>(), 40);
  EXPECT_EQ(Keys(doc["pool"]),
            (std::set<std::string>{"target", "active", "launcher", "launcher_error", "slots"}));
  EXPECT_TRUE(doc["pool"]["launcher_error"].IsNull());
  ASSERT_EQ(doc["pool"]["slots"].size(), 3u);
  EXPECT_EQ(Keys(doc["pool"]["slots"][2]),
            (std::set<std::string>{"slot", "agent", "state", "failures", "reason"}));
  EXPECT_EQ(doc["pool"]["slots"][2]["slot"].as<int>(), 3);
  EXPECT_EQ(doc["pool"]["slots"][2]["agent"].as<std::string>(), "agent-3");
  EXPECT_EQ(doc["pool"]["slots"][2]["state"].as<std::string>(), "restarting");
  EXPECT_EQ(doc["pool"]["slots"][2]["failures"].as<int>(), 1);
  EXPECT_EQ(doc["pool"]["slots"][2]["reason"].as<std::string>(), "killed by signal 9");
  EXPECT_EQ(Keys(doc["metrics"]),
            (std::set<std::string>{"items_per_hour", "avg_item_s", "success_rate"}));
  EXPECT_DOUBLE_EQ(doc["metrics"]["items_per_hour"].as<double>(), 4.2);
  EXPECT_DOUBLE_EQ(doc["metrics"]["success_rate"].as<double>(), 0.97);
  EXPECT_THAT(json, HasSubstr("\"avg_item_s\": 30.0"));  // a float, not 30
}

TEST(Render, CompactStatusJsonIsOneLine) {
  std::string json = RenderStatusJson(ContractSnapshot(), /*pretty=*/false);
  EXPECT_EQ(json.find('\n'), json.size() - 1);
  EXPECT_EQ(json.rfind("{\"controller\": {\"pid\": 12345, ", 0), 0u);
}

TEST(Render, StateNamesAreLowerCaseWithoutPrefix) {
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_PENDING), "pending");
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_LEASED), "leased");
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_DONE), "done");
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_FAILED), "failed");
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_PARKED), "parked");
  EXPECT_EQ(ItemStateName(v1::ITEM_STATE_CANCELLED), "cancelled");
  EXPECT_EQ(AgentStateName(v1::AGENT_STATE_STARTING), "starting");
  EXPECT_EQ(AgentStateName(v1::AGENT_STATE_DRAINING), "draining");
  EXPECT_EQ(AgentStateName(v1::AGENT_STATE_STOPPED), "stopped");
  EXPECT_EQ(HealthName(v1::HEALTH_DEAD), "dead");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_RUNNING), "running");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_TIMEOUT), "timeout");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_EXPIRED), "expired");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_RELEASED), "released");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_CANCELLED), "cancelled");
  EXPECT_EQ(OutcomeName(v1::ATTEMPT_OUTCOME_STALLED), "stalled");
  EXPECT_EQ(ItemStateName(static_cast<v1::ItemState>(99)), "unknown(99)");
}

TEST(Render, ParsesItemStateNames) {
  v1::ItemState s;
  ASSERT_TRUE(ParseItemState("parked", &s));
  EXPECT_EQ(s, v1::ITEM_STATE_PARKED);
  ASSERT_TRUE(ParseItemState("Cancelled", &s));
  EXPECT_EQ(s, v1::ITEM_STATE_CANCELLED);
  EXPECT_FALSE(ParseItemState("unspecified", &s));
  EXPECT_FALSE(ParseItemState("working", &s));
  EXPECT_FALSE(ParseItemState("", &s));
}

TEST(Render, FormatsTimesAsRfc3339Utc) {
  EXPECT_EQ(FormatUnixMs(1714564800250), "2024-05-01T12:00:00.250Z");
  EXPECT_EQ(FormatUnixMs(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatUnixMs(0), "");
}

TEST(Render, ShowJsonHasTheContractsFields) {
  YAML::Node doc = YAML::Load(RenderItemJson(DoneItem(std::string(40, 'c')), /*pretty=*/true));
  for (const char* key : {"id", "title", "state", "priority", "prompt", "labels", "max_attempts",
                          "timeout_s", "attempts", "result", "error", "log_tail"}) {
    EXPECT_TRUE(doc[key].IsDefined()) << key;
  }
  EXPECT_EQ(doc["id"].as<std::string>(), "fix-login");
  EXPECT_EQ(doc["state"].as<std::string>(), "done");
  EXPECT_EQ(doc["priority"].as<int>(), 5);
  EXPECT_EQ(doc["prompt"].as<std::string>(), "Make the login button work.\nAdd a test.");
  EXPECT_EQ(doc["labels"]["team"].as<std::string>(), "web");
  EXPECT_EQ(doc["max_attempts"].as<int>(), 3);
  EXPECT_DOUBLE_EQ(doc["timeout_s"].as<double>(), 1800);
  EXPECT_EQ(doc["submitted_at"].as<std::string>(), "2024-05-01T12:00:00.250Z");
  EXPECT_EQ(doc["submitted_at_unix_ms"].as<int64_t>(), 1714564800250);
  EXPECT_TRUE(doc["error"].IsNull());
  EXPECT_EQ(doc["log_tail"].as<std::string>(), "ok\n");

  ASSERT_EQ(doc["attempts"].size(), 2u);
  YAML::Node a1 = doc["attempts"][0];
  for (const char* key : {"number", "agent", "lease_token", "started_at", "ended_at", "exit_code",
                          "outcome", "error", "commit", "base"}) {
    EXPECT_TRUE(a1[key].IsDefined()) << key;
  }
  EXPECT_EQ(a1["number"].as<int>(), 1);
  EXPECT_EQ(a1["agent"].as<std::string>(), "agent-1");
  EXPECT_EQ(a1["lease_token"].as<int>(), 7);
  EXPECT_EQ(a1["started_at"].as<std::string>(), "2024-05-01T12:00:01.000Z");
  EXPECT_EQ(a1["ended_at_unix_ms"].as<int64_t>(), 1714564811500);
  EXPECT_EQ(a1["exit_code"].as<int>(), 1);
  EXPECT_EQ(a1["outcome"].as<std::string>(), "failed");
  EXPECT_EQ(a1["error"].as<std::string>(), "agent command exited with status 1");
  EXPECT_TRUE(a1["commit"].IsNull());
  EXPECT_EQ(a1["base"].as<std::string>(), std::string(40, 'b'));
  YAML::Node a2 = doc["attempts"][1];
  EXPECT_EQ(a2["outcome"].as<std::string>(), "done");
  EXPECT_EQ(a2["lease_token"].as<uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(a2["error"].IsNull());

  EXPECT_EQ(Keys(doc["result"]), (std::set<std::string>{"branch", "commit", "base"}));
  EXPECT_EQ(doc["result"]["branch"].as<std::string>(), "harness/fix-login");
  EXPECT_EQ(doc["result"]["commit"].as<std::string>(), std::string(40, 'c'));
}

TEST(Render, ShowJsonOfAParkedItemHasErrorAndNoResult) {
  v1::Item item = DoneItem("");
  item.set_state(v1::ITEM_STATE_PARKED);
  item.clear_result();
  item.set_error("agent command exited with status 1");
  v1::Attempt* running = item.add_attempts();
  running->set_number(3);
  running->set_outcome(v1::ATTEMPT_OUTCOME_RUNNING);
  running->set_started_at_unix_ms(1714565000000);
  YAML::Node doc = YAML::Load(RenderItemJson(item, /*pretty=*/false));
  EXPECT_EQ(doc["state"].as<std::string>(), "parked");
  EXPECT_TRUE(doc["result"].IsNull());
  EXPECT_EQ(doc["error"].as<std::string>(), "agent command exited with status 1");
  YAML::Node a3 = doc["attempts"][2];
  EXPECT_EQ(a3["outcome"].as<std::string>(), "running");
  EXPECT_TRUE(a3["ended_at"].IsNull());
  EXPECT_EQ(a3["ended_at_unix_ms"].as<int64_t>(), 0);
  EXPECT_TRUE(a3["exit_code"].IsNull());
}

TEST(Render, ShowTextSaysNoChangesForADoneItemWithoutCommit) {
  std::string text = RenderItemText(DoneItem(""));
  EXPECT_THAT(text, HasSubstr("State:        done\n"));
  EXPECT_THAT(text, HasSubstr("Result:       no changes (base bbbbbbbbbbbb)\n"));
}

TEST(Render, ShowTextHasResultAttemptsPromptAndLog) {
  std::string commit(40, 'c');
  std::string text = RenderItemText(DoneItem(commit));
  EXPECT_THAT(text, HasSubstr("ID:           fix-login\n"));
  EXPECT_THAT(text, HasSubstr("Title:        Fix the login\n"));
  EXPECT_THAT(text, HasSubstr("Labels:       team=web\n"));
  EXPECT_THAT(text, HasSubstr("Timeout:      1800s\n"));
  EXPECT_THAT(text, HasSubstr("Result:       harness/fix-login at " + commit));
  EXPECT_THAT(text, Not(HasSubstr("no changes")));
  EXPECT_THAT(text, HasSubstr("Attempts (2):\n"));
  EXPECT_THAT(text, HasSubstr("  1  agent-1  failed   1     2024-05-01T12:00:01.000Z  10.5s"));
  EXPECT_THAT(text, HasSubstr("     error: agent command exited with status 1\n"));
  EXPECT_THAT(text, HasSubstr("\nPrompt:\n  Make the login button work.\n  Add a test.\n"));
  EXPECT_THAT(text, HasSubstr("\nLog tail:\n  ok\n"));
}

TEST(Render, ShowTextPrintsFractionalTimeoutsAndTheAgentOfALeasedItem) {
  v1::Item item = DoneItem("");
  item.set_state(v1::ITEM_STATE_LEASED);
  item.set_agent("agent-2");
  item.set_timeout_s(90.5);
  std::string text = RenderItemText(item);
  EXPECT_THAT(text, HasSubstr("Timeout:      90.5s\n"));
  EXPECT_THAT(text, HasSubstr("Agent:        agent-2\n"));
  EXPECT_THAT(text, Not(HasSubstr("Result:")));
}

TEST(Render, ItemsTableHasOneRowPerItem) {
  google::protobuf::RepeatedPtrField<v1::ItemSummary> items;
  v1::ItemSummary* a = items.Add();
  a->set_id("fix-login");
  a->set_title("Fix the login");
  a->set_state(v1::ITEM_STATE_LEASED);
  a->set_priority(5);
  a->set_attempt_count(1);
  a->set_max_attempts(3);
  a->set_agent("agent-1");
  v1::ItemSummary* b = items.Add();
  b->set_id("x");
  b->set_title("Two\nlines \x1b[31mred");
  b->set_state(v1::ITEM_STATE_PENDING);
  b->set_priority(-1);
  b->set_max_attempts(3);
  EXPECT_EQ(RenderItemsText(items),
            "ID         STATE    PRIORITY  ATTEMPTS  AGENT    TITLE\n"
            "fix-login  leased   5         1/3       agent-1  Fix the login\n"
            "x          pending  -1        0/3       -        Two lines \\x1b[31mred\n");
  EXPECT_EQ(RenderItemsText({}), "no items\n");

  YAML::Node doc = YAML::Load(RenderItemsJson(items, /*pretty=*/true));
  ASSERT_EQ(doc["items"].size(), 2u);
  EXPECT_EQ(doc["items"][0]["state"].as<std::string>(), "leased");
  EXPECT_EQ(doc["items"][1]["title"].as<std::string>(), "Two\nlines \x1b[31mred");
  EXPECT_TRUE(doc["items"][1]["agent"].IsNull());
}

TEST(Render, AgentsTableAndJson) {
  v1::StatusSnapshot s = ContractSnapshot();
  std::string text = RenderAgentsText(s.agents());
  EXPECT_THAT(text,
              HasSubstr("ID       STATE    HEALTH   ITEM      LAST-SEEN  PID  HOST  VERSION\n"));
  EXPECT_THAT(text,
              HasSubstr("agent-2  idle     healthy  -         120ms ago  2    h     0.1.0\n"));
  YAML::Node doc = YAML::Load(RenderAgentsJson(s.agents(), /*pretty=*/true));
  ASSERT_EQ(doc["agents"].size(), 3u);
  EXPECT_EQ(doc["agents"][2]["health"].as<std::string>(), "suspect");
  EXPECT_EQ(doc["agents"][2]["version"].as<std::string>(), "0.1.0");
  EXPECT_EQ(RenderAgentsText({}), "no agents\n");
}

TEST(Render, SanitizesControllerTextForTheTerminal) {
  EXPECT_EQ(SanitizeForTerminal("a\x1b[2Jb", false), "a\\x1b[2Jb");
  EXPECT_EQ(SanitizeForTerminal("line1\nline2\tx", false), "line1\nline2\tx");
  EXPECT_EQ(SanitizeForTerminal("line1\nline2\tx", true), "line1 line2 x");
  EXPECT_EQ(SanitizeForTerminal("caf\xC3\xA9", true), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeForTerminal("\xC2\x9B"
                                "1m",
                                true),
            "\\xc2\\x9b1m");  // 8-bit CSI
  EXPECT_EQ(SanitizeForTerminal("\xFF", true), "\\xff");
}

TEST(RenderStatus, WatchRowsAddElapsedTimeAndTheLastOutputLineCutToTheWidth) {
  v1::StatusSnapshot s = ContractSnapshot();
  s.mutable_agents(0)->set_item_elapsed_ms(185'000);
  s.mutable_agents(0)->set_last_output_line("Running tests: 41/120 passed \x1b[2J");
  s.mutable_agents(2)->set_item_elapsed_ms(2'500);
  const std::string text = RenderStatusText(s, /*progress=*/true);
  EXPECT_THAT(text, HasSubstr("  agent-1  working  item-123  healthy  3m05s  "
                              "Running tests: 41/120 passed \\x1b[2J\n"));
  EXPECT_THAT(text, HasSubstr("  agent-2  idle     -         healthy\n"));
  EXPECT_THAT(text, HasSubstr("  agent-3  working  item-456  suspect  2.5s\n"));
  const std::string narrow = RenderStatusText(s, /*progress=*/true, /*width=*/52);
  EXPECT_THAT(narrow, HasSubstr("  agent-1  working  item-123  healthy  3m05s  Run...\n"));
  EXPECT_EQ(RenderStatusText(s), RenderStatusText(s, false, 50));  // plain status: unchanged
}

TEST(RenderStatus, AWatchFrameIsDrawnOverThePreviousOneWithoutClearingTheScreen) {
  EXPECT_EQ(RedrawInPlace("a\nbb\n"), "\x1b[Ha\x1b[K\nbb\x1b[K\n\x1b[J");
  EXPECT_EQ(FitColumns("caf\xC3\xA9 au lait", 6), "caf...");
  EXPECT_EQ(FitColumns("short", 6), "short");
}

}  // namespace
}  // namespace harness::client
