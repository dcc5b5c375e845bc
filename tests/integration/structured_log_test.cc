// log.format: json end to end: a real controller and agentd write one JSON object per line, and
// every state change of an item or agent is one line, with its ids and lease token as fields.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using nlohmann::json;

// Every line of a log, parsed; a line that is not a JSON object fails the test.
std::vector<json> JsonLines(const std::string& path) {
  std::vector<json> out;
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return out;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << path << ": not a JSON object: " << line;
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// The lines whose message is `message` and whose `key` field is `value`.
std::vector<json> Lines(const std::vector<json>& lines, const std::string& message,
                        const std::string& key, const std::string& value) {
  std::vector<json> out;
  for (const json& j : lines) {
    if (j.value("message", "") == message && j.contains(key) && j[key] == value) out.push_back(j);
  }
  return out;
}

TEST(StructuredLog, EveryStateChangeOfARunIsOneJsonLineWithItsIdsAndLeaseToken) {
  TempDir tmp;
  const std::string script = tmp.Sub("agent.sh");
  {
    std::ofstream s(script);
    s << "#!/bin/sh\necho \"working on $HARNESS_ITEM_ID\"\n"
      << "if [ \"$(cat \"$HARNESS_PROMPT_FILE\")\" = fail ]; then exit 3; fi\n";
  }
  chmod(script.c_str(), 0755);
  ControllerConfig config;
  config.state_dir = tmp.Sub("state");
  config.extra_yaml = "  log:\n    format: json\n    level: info\n";
  std::unique_ptr<ControllerProcess> c = ControllerProcess::Start(config, tmp.path());
  ASSERT_NE(c, nullptr);
  v1::ItemSpec b = MakeItem("b", "fail");
  b.set_max_attempts(1);
  Submit(c->control(), {MakeItem("a", "ok"), b});
  std::unique_ptr<ChildProcess> agent =
      StartAgent("agent-1", c->address(), tmp.Sub("work"), "/bin/sh " + script,
                 tmp.Sub("agent.log"), {"--log-format", "json"});
  ASSERT_TRUE(WaitFor(
      [&] {
        return GetItem(c->control(), "a").state() == v1::ITEM_STATE_DONE &&
               GetItem(c->control(), "b").state() == v1::ITEM_STATE_PARKED;
      },
      absl::Seconds(30)))
      << ReadFile(c->log_file()).value_or("") << ReadFile(tmp.Sub("agent.log")).value_or("");
  agent->Signal(SIGTERM);
  agent->Wait();
  {
    auto ctx = Ctx();
    v1::RetryRequest req;
    req.set_id("b");
    v1::RetryResponse resp;
    ASSERT_TRUE(c->control().Retry(ctx.get(), req, &resp).ok());
  }
  {
    auto ctx = Ctx();
    v1::CancelRequest req;
    req.set_id("b");
    v1::CancelResponse resp;
    ASSERT_TRUE(c->control().Cancel(ctx.get(), req, &resp).ok());
  }
  const v1::Item a = GetItem(c->control(), "a");
  const v1::Item failed = GetItem(c->control(), "b");
  ASSERT_EQ(a.attempts_size(), 1);
  ASSERT_EQ(failed.attempts_size(), 1);
  const uint64_t token_a = a.attempts(0).lease_token();
  const uint64_t token_b = failed.attempts(0).lease_token();

  // The last change (the agent's stop, judged by the ticker) is logged within a tick.
  std::vector<json> log;
  ASSERT_TRUE(WaitFor(
      [&] {
        log = JsonLines(c->log_file());
        return Lines(log, "agent stopped", "agent", "agent-1").size() == 1 &&
               Lines(log, "item cancelled", "item", "b").size() == 1;
      },
      absl::Seconds(15)))
      << "controller log:\n" << ReadFile(c->log_file()).value_or("");
  for (const json& j : log) {
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << j;
  }

  auto one = [&](const std::string& message, const std::string& item) {
    std::vector<json> found = Lines(log, message, "item", item);
    EXPECT_EQ(found.size(), 1u) << message << " " << item;
    return found.empty() ? json::object() : found[0];
  };
  json j = one("item submitted", "a");
  EXPECT_EQ(j["item_state"], "pending");
  one("item submitted", "b");
  j = one("item granted", "a");
  EXPECT_EQ(j["agent"], "agent-1");
  EXPECT_EQ(j["lease_token"], token_a);
  EXPECT_EQ(j["attempt"], 1);
  j = one("item done", "a");
  EXPECT_EQ(j["agent"], "agent-1");
  EXPECT_EQ(j["lease_token"], token_a);
  EXPECT_EQ(j["attempt"], 1);
  EXPECT_EQ(j["outcome"], "done");
  EXPECT_EQ(j["item_state"], "done");
  j = one("item granted", "b");
  EXPECT_EQ(j["lease_token"], token_b);
  j = one("item failed", "b");
  EXPECT_EQ(j["lease_token"], token_b);
  EXPECT_EQ(j["outcome"], "failed");
  EXPECT_EQ(j["item_state"], "parked");  // out of attempts
  EXPECT_EQ(j["level"], "warning");
  j = one("item retried", "b");
  EXPECT_EQ(j["item_state"], "pending");
  j = one("item cancelled", "b");
  EXPECT_FALSE(j.contains("lease_token"));  // it was pending: no lease ended
  EXPECT_EQ(Lines(log, "agent registered", "agent", "agent-1").size(), 1u);
  EXPECT_EQ(Lines(log, "agent stopped", "agent", "agent-1").size(), 1u);
  EXPECT_EQ(Lines(log, "agent dead", "agent", "agent-1").size(), 0u);  // it stopped, not died

  // agentd --log-format json: its own lines are JSON too.
  std::vector<json> agent_log = JsonLines(tmp.Sub("agent.log"));
  EXPECT_FALSE(agent_log.empty());
}

}  // namespace
}  // namespace harness::testing
