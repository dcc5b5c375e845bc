// The controller's HTTP listener (http.listen) with a real controller and agent: /metrics passes
// `promtool check metrics` and its counters move when an item runs; the JSON API serves the very
// documents harnessctl prints with --json; bad paths, methods and parameters are refused; the
// read token guards every path; the gRPC listen policy and TLS apply to the HTTP port too.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using nlohmann::json;

constexpr char kAdmin[] = "admin-t0ken";
constexpr char kRead[] = "read-t0ken";
constexpr char kAgent[] = "agent-t0ken";

// The value of the sample `key` (name and labels exactly as written) in a scrape; -1 if absent.
double SampleValue(const std::string& scrape, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::StartsWith(line, key + " ")) {
      double v = -1;
      if (absl::SimpleAtod(line.substr(key.size() + 1), &v)) return v;
    }
  }
  return -1;
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.extra_yaml = "  http:\n    listen: 127.0.0.1:0\n";
    script_ = tmp_.Sub("agent.sh");
    std::ofstream(script_) << "#!/bin/sh\necho \"did $HARNESS_ITEM_ID\"\n";
    chmod(script_.c_str(), 0755);
  }
  void Start() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
    // Written before the controller prints its gRPC address, so it is there now.
    absl::StatusOr<std::string> addr = ReadFile(config_.state_dir + "/http.addr");
    ASSERT_TRUE(addr.ok()) << addr.status();
    base_ = absl::StrCat(scheme_, "://", absl::StripTrailingAsciiWhitespace(*addr));
  }
  void UseTokens() {
    WriteTokenFile(tmp_.Sub("admin.token"), kAdmin);
    WriteTokenFile(tmp_.Sub("read.token"), kRead);
    WriteTokenFile(tmp_.Sub("agent.token"), kAgent);
    config_.admin_token_file = tmp_.Sub("admin.token");
    config_.read_token_file = tmp_.Sub("read.token");
    config_.agent_token_file = tmp_.Sub("agent.token");
  }
  HttpResult Get(const std::string& path, const std::vector<std::string>& headers = {}) {
    return HttpFetch(base_ + path, headers, "GET", ca_file_);
  }
  // `promtool check metrics` on the text; its exit status (0: valid) and output in *out.
  int Promtool(const std::string& scrape, std::string* out) {
    std::string file = tmp_.Sub(absl::StrCat("scrape-", scrapes_++, ".txt"));
    std::ofstream(file) << scrape;
    return RunCommand({"/bin/sh", "-c", absl::StrCat("promtool check metrics < ", file)}, out);
  }
  // harnessctl ARGS --json, parsed.
  json Harnessctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--json");
    std::string out;
    int rc = RunCommand(argv, &out);
    EXPECT_EQ(rc, 0) << out;
    return json::parse(out, nullptr, /*allow_exceptions=*/false);
  }
  // Submits item `id` and runs it to done with one agent.
  void RunOneItem(const std::string& id) {
    Submit(controller_->control(), {MakeItem(id, "p")});
    agent_ = StartAgent("agent-1", controller_->address(), tmp_.Sub("work"), "/bin/sh " + script_,
                        tmp_.Sub("agent-1.log"));
    ASSERT_TRUE(WaitFor(
        [&] { return GetStatus(controller_->control()).queue().done() == 1; },
        absl::Seconds(30)));
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::string script_;
  std::string scheme_ = "http";
  std::string ca_file_;
  std::unique_ptr<ControllerProcess> controller_;
  std::unique_ptr<ChildProcess> agent_;
  std::string base_;
  int scrapes_ = 0;
};

TEST_F(HttpTest, MetricsPassPromtoolAndCountTheLeaseAndAttemptOfARunItem) {
  Start();
  HttpResult before = Get("/metrics");
  ASSERT_EQ(before.status, 200) << before.curl_error << before.body;
  EXPECT_TRUE(absl::StartsWith(before.content_type, "text/plain; version=0.0.4"))
      << before.content_type;
  std::string promtool_out;
  ASSERT_EQ(Promtool(before.body, &promtool_out), 0)
      << "promtool check metrics (Debian package prometheus; scripts/install-deps.sh): "
      << promtool_out;
  EXPECT_EQ(SampleValue(before.body, "harness_leases_granted_total"), 0);
  EXPECT_EQ(SampleValue(before.body, "harness_queue_items{state=\"done\"}"), 0);

  RunOneItem("item-1");
  // The attempt is counted by the effects that follow the item's commit, a moment after the
  // queue shows it done: wait for the count.
  HttpResult after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Get("/metrics");
        return after.status == 200 &&
               SampleValue(after.body, "harness_attempts_total{outcome=\"done\"}") >= 1;
      },
      absl::Seconds(30)))
      << after.curl_error << after.body;
  ASSERT_EQ(Promtool(after.body, &promtool_out), 0) << promtool_out << "\n" << after.body;
  EXPECT_EQ(SampleValue(after.body, "harness_leases_granted_total"), 1) << after.body;
  EXPECT_EQ(SampleValue(after.body, "harness_attempts_total{outcome=\"done\"}"), 1);
  EXPECT_EQ(SampleValue(after.body, "harness_item_duration_seconds_count"), 1);
  EXPECT_EQ(SampleValue(after.body, "harness_queue_items{state=\"done\"}"), 1);
  EXPECT_EQ(SampleValue(after.body, "harness_agents{health=\"healthy\"}"), 1);
  EXPECT_GE(SampleValue(after.body, "harness_agent_heartbeat_age_seconds{agent=\"agent-1\"}"), 0);
  EXPECT_GT(SampleValue(after.body, "harness_store_commit_rounds_total"), 0);
  EXPECT_GT(SampleValue(after.body, "harness_store_sync_duration_seconds_count"), 0);
  EXPECT_EQ(SampleValue(after.body, "harness_rpc_calls_total{method=\"/harness.v1.ControlService/"
                                    "Submit\",code=\"OK\"}"),
            1);
  EXPECT_GE(SampleValue(after.body, "harness_rpc_calls_total{method=\"/harness.v1.AgentService/"
                                    "Register\",code=\"OK\"}"),
            1);
  EXPECT_EQ(SampleValue(after.body, "harness_leases_fenced_total"), 0);
}

// The Session stream has no interceptor (it counts its own end): a stream that ends is still
// counted, once, under its method with its code and duration.
TEST_F(HttpTest, AnAgentsSessionStreamIsCountedWhenItEnds) {
  Start();
  const std::string calls =
      "harness_rpc_calls_total{method=\"/harness.v1.AgentService/Session\",code=\"OK\"}";
  const std::string durations =
      "harness_rpc_duration_seconds_count{method=\"/harness.v1.AgentService/Session\"}";
  HttpResult before = Get("/metrics");
  ASSERT_EQ(before.status, 200) << before.curl_error << before.body;
  EXPECT_EQ(SampleValue(before.body, calls), 0) << before.body;
  RunOneItem("item-1");
  agent_->Signal(SIGTERM);  // a clean stop: the agent half-closes its stream
  ASSERT_EQ(agent_->Wait(), 0);
  HttpResult after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Get("/metrics");
        return after.status == 200 && SampleValue(after.body, calls) >= 1;
      },
      absl::Seconds(30)))
      << after.curl_error << after.body;
  EXPECT_EQ(SampleValue(after.body, calls), 1) << after.body;
  EXPECT_EQ(SampleValue(after.body, durations), 1) << after.body;
}

TEST_F(HttpTest, TheJsonApiServesTheDocumentsOfHarnessctlJson) {
  Start();
  RunOneItem("item-1");
  HttpResult item = Get("/api/v1/items/item-1");
  ASSERT_EQ(item.status, 200) << item.curl_error << item.body;
  EXPECT_EQ(item.content_type, "application/json");
  EXPECT_EQ(json::parse(item.body), Harnessctl({"show", "item-1"}));

  HttpResult items = Get("/api/v1/items");
  ASSERT_EQ(items.status, 200) << items.body;
  EXPECT_EQ(json::parse(items.body), Harnessctl({"items"}));

  // Heartbeat ages and uptime move between two reads: the same members, the same agents.
  HttpResult agents = Get("/api/v1/agents");
  ASSERT_EQ(agents.status, 200) << agents.body;
  json a = json::parse(agents.body), b = Harnessctl({"agents"});
  ASSERT_EQ(a["agents"].size(), 1u) << a;
  ASSERT_EQ(b["agents"].size(), 1u) << b;
  EXPECT_EQ(a["agents"][0]["id"], "agent-1");
  EXPECT_EQ(a["agents"][0]["id"], b["agents"][0]["id"]);
  for (const auto& [key, value] : b["agents"][0].items()) {
    EXPECT_TRUE(a["agents"][0].contains(key)) << key;
  }

  HttpResult status = Get("/api/v1/status");
  ASSERT_EQ(status.status, 200) << status.body;
  json s = json::parse(status.body), t = Harnessctl({"status"});
  EXPECT_EQ(s["queue"], t["queue"]);
  EXPECT_EQ(s["controller"]["address"], controller_->address());
  for (const auto& [key, value] : t.items()) EXPECT_TRUE(s.contains(key)) << key;
}

TEST_F(HttpTest, ItemsFilterByStateAndComeInPages) {
  Start();
  Submit(controller_->control(),
         {MakeItem("a", "p"), MakeItem("b", "p"), MakeItem("c", "p")});
  HttpResult first = Get("/api/v1/items?state=pending,leased&page_size=2");
  ASSERT_EQ(first.status, 200) << first.body;
  json page1 = json::parse(first.body);
  ASSERT_EQ(page1["items"].size(), 2u) << page1;
  EXPECT_EQ(page1["items"][0]["id"], "a");
  ASSERT_TRUE(page1.contains("next_page_token")) << page1;

  HttpResult second = Get(absl::StrCat("/api/v1/items?state=pending&page_size=2&page_token=",
                                       page1["next_page_token"].get<std::string>()));
  ASSERT_EQ(second.status, 200) << second.body;
  json page2 = json::parse(second.body);
  ASSERT_EQ(page2["items"].size(), 1u) << page2;
  EXPECT_EQ(page2["items"][0]["id"], "c");
  EXPECT_FALSE(page2.contains("next_page_token")) << page2;

  EXPECT_EQ(json::parse(Get("/api/v1/items?state=done").body)["items"].size(), 0u);
  HttpResult bad_state = Get("/api/v1/items?state=finished");
  EXPECT_EQ(bad_state.status, 400);
  EXPECT_TRUE(absl::StrContains(bad_state.body, "finished")) << bad_state.body;
  EXPECT_EQ(Get("/api/v1/items?page_size=0").status, 400);
  EXPECT_EQ(Get("/api/v1/items?page_token=x").status, 400);
  EXPECT_EQ(Get("/api/v1/items?colour=red").status, 400);
}

TEST_F(HttpTest, UnknownPathsAre404AndOtherMethods405) {
  Start();
  for (const char* path : {"/api", "/api/v1", "/api/v1/nope", "/api/v1/items/",
                           "/metrics/extra", "/api/v2/status"}) {
    HttpResult r = Get(path);
    EXPECT_EQ(r.status, 404) << path << ": " << r.body << r.curl_error;
  }
  HttpResult missing = Get("/api/v1/items/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"], "item \"nope\" does not exist");
  HttpResult post = HttpFetch(base_ + "/api/v1/status", {"Content-Length: 0"}, "POST");
  EXPECT_EQ(post.status, 405) << post.body;
  HttpResult del = HttpFetch(base_ + "/api/v1/items/a", {}, "DELETE");
  EXPECT_EQ(del.status, 405) << del.body;
}

TEST_F(HttpTest, EveryPathNeedsTheReadOrAdminTokenWhenTokensAreOn) {
  UseTokens();
  Start();
  for (const char* path : {"/metrics", "/api/v1/status", "/api/v1/items", "/api/v1/agents"}) {
    EXPECT_EQ(Get(path).status, 401) << path;
    EXPECT_EQ(Get(path, {"Authorization: Bearer wrong"}).status, 401) << path;
    EXPECT_EQ(Get(path, {absl::StrCat("Authorization: Basic ", kRead)}).status, 401) << path;
    HttpResult agent = Get(path, {absl::StrCat("Authorization: Bearer ", kAgent)});
    EXPECT_EQ(agent.status, 403) << path;
    EXPECT_TRUE(absl::StrContains(agent.body, "read or admin")) << agent.body;
    EXPECT_EQ(Get(path, {absl::StrCat("Authorization: Bearer ", kRead)}).status, 200) << path;
    EXPECT_EQ(Get(path, {absl::StrCat("Authorization: Bearer ", kAdmin)}).status, 200) << path;
  }
  // A refusal does not say whether the item exists.
  EXPECT_EQ(Get("/api/v1/items/x").status, 401);
}

TEST_F(HttpTest, WithTlsTheHttpPortSpeaksHttpsOnly) {
  MakeCerts(tmp_.Sub("certs"));
  config_.tls_cert = tmp_.Sub("certs/server.pem");
  config_.tls_key = tmp_.Sub("certs/server.key");
  config_.client_tls = ClientTlsFrom(tmp_.Sub("certs"));
  scheme_ = "https";
  ca_file_ = tmp_.Sub("certs/ca.pem");
  Start();
  HttpResult r = Get("/api/v1/status");
  EXPECT_EQ(r.status, 200) << r.curl_error << r.body;
  std::string plain = base_;
  plain.replace(0, 5, "http");
  HttpResult refused = HttpFetch(plain + "/api/v1/status");
  EXPECT_NE(refused.status, 200) << refused.body;
}

// The controller exits before it binds anything: 0.0.0.0 is never served here.
TEST_F(HttpTest, ANonLoopbackHttpAddressWithoutTlsAndTokensIsRefused) {
  std::string cfg = tmp_.Sub("h.yaml");
  std::ofstream(cfg) << "harness:\n  listen: 127.0.0.1:0\n  state_dir: " << config_.state_dir
                     << "\n  agent:\n    launcher: none\n  http:\n    listen: 0.0.0.0:0\n";
  std::string out;
  int rc = RunCommand({ControllerBin(), "--config", cfg}, &out);
  ASSERT_TRUE(WIFEXITED(rc)) << out;
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_TRUE(absl::StrContains(out, "harness.http.listen")) << out;
  EXPECT_TRUE(absl::StrContains(out, "--insecure")) << out;
}

TEST_F(HttpTest, TheAddressFileGoesAwayWhenTheControllerStops) {
  Start();
  const std::string file = config_.state_dir + "/http.addr";
  ASSERT_EQ(::access(file.c_str(), F_OK), 0);
  controller_->Signal(SIGTERM);
  int status = controller_->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(::access(file.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace harness::testing
