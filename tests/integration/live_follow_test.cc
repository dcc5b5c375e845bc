// harnessctl logs -f and events -f, and /api/v1/events, against a real controller and agentd:
// a follower sees a running command's first line while the command still runs (it waits on a
// gate file the test creates only afterwards), the event feed shows a run's submit, lease and
// done in order with one lease token, the same feed arrives as Server-Sent Events over HTTP,
// and the new RPCs and the HTTP stream need the read token when tokens are on.
#include <curl/curl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using json = nlohmann::json;

constexpr char kRead[] = "read-token-for-follow-tests";
constexpr char kAdmin[] = "admin-token-for-follow-tests";
constexpr char kAgent[] = "agent-token-for-follow-tests";

// GET `url` until `done(body so far)` holds or `timeout` passes (for a stream that never
// ends by itself); returns the HTTP status and the body read.
long StreamUntil(const std::string& url, const std::vector<std::string>& headers,
                 const std::function<bool(const std::string&)>& done, absl::Duration timeout,
                 std::string* body) {
  struct Sink {
    std::string* body;
    const std::function<bool(const std::string&)>* done;
  } sink{body, &done};
  CURL* curl = curl_easy_init();
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
        auto* s = static_cast<Sink*>(user);
        s->body->append(data, size * n);
        return (*s->done)(*s->body) ? 0 : size * n;  // 0 ends the transfer
      });
  curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return status;
}

class LiveFollow : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.extra_yaml = "  http:\n    listen: 127.0.0.1:0\n";
    gate_ = tmp_.Sub("gate");
    script_ = tmp_.Sub("agent.sh");
    // Prints a line, waits for the test's gate, prints another.
    std::ofstream(script_) << "#!/bin/sh\necho \"first line of $HARNESS_ITEM_ID\"\n"
                           << "while [ ! -e " << gate_ << " ]; do sleep 0.05; done\n"
                           << "echo \"last line of $HARNESS_ITEM_ID\"\n";
    chmod(script_.c_str(), 0755);
  }
  void UseTokens() {
    WriteTokenFile(tmp_.Sub("admin.token"), kAdmin);
    WriteTokenFile(tmp_.Sub("read.token"), kRead);
    WriteTokenFile(tmp_.Sub("agent.token"), kAgent);
    config_.admin_token_file = tmp_.Sub("admin.token");
    config_.read_token_file = tmp_.Sub("read.token");
    config_.agent_token_file = tmp_.Sub("agent.token");
  }
  void Start() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
    absl::StatusOr<std::string> addr = ReadFile(config_.state_dir + "/http.addr");
    ASSERT_TRUE(addr.ok()) << addr.status();
    http_ = absl::StrCat("http://", absl::StripTrailingAsciiWhitespace(*addr));
  }
  void StartAgent1() {
    agent_ = StartAgent("agent-1", controller_->address(), tmp_.Sub("work"), "/bin/sh " + script_,
                        tmp_.Sub("agent-1.log"));
  }
  // harnessctl --controller ADDR ARGS..., running, stdout to `out`.
  std::unique_ptr<ChildProcess> Harnessctl(const std::vector<std::string>& args,
                                           const std::string& out) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(ChildProcess::Spawn(argv, out, out + ".err"));
  }
  std::string FileText(const std::string& path) { return ReadFile(path).value_or(""); }
  v1::ItemState StateOf(const std::string& id) { return GetItem(controller_->control(), id).state(); }

  TempDir tmp_;
  ControllerConfig config_;
  std::string script_, gate_, http_;
  std::unique_ptr<ControllerProcess> controller_;
  std::unique_ptr<ChildProcess> agent_;
};

TEST_F(LiveFollow, LogsFollowPrintsTheFirstLineWhileTheCommandRunsThenTheRestAndExitsZero) {
  Start();
  Submit(controller_->control(), {MakeItem("slow-1", "p")});
  // Started before the item runs: it waits for the attempt.
  const std::string out = tmp_.Sub("logs.out");
  std::unique_ptr<ChildProcess> logs = Harnessctl({"logs", "slow-1", "-f"}, out);
  StartAgent1();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(FileText(out), "first line of slow-1"); },
                      absl::Seconds(30)))
      << FileText(out) << FileText(out + ".err");
  // The command cannot have ended: it waits for the gate, which does not exist yet.
  EXPECT_EQ(StateOf("slow-1"), v1::ITEM_STATE_LEASED);
  EXPECT_FALSE(absl::StrContains(FileText(out), "last line"));
  std::ofstream(gate_) << "go\n";
  int status = logs->Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << FileText(out + ".err");
  const std::string text = FileText(out);
  EXPECT_LT(text.find("first line of slow-1"), text.find("last line of slow-1")) << text;
  EXPECT_EQ(StateOf("slow-1"), v1::ITEM_STATE_DONE);

  // Without -f, after the end: what is kept, then exit 0.
  std::string again;
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "logs", "slow-1",
                        "--attempt", "1"},
                       &again),
            0)
      << again;
  EXPECT_TRUE(absl::StrContains(again, "first line of slow-1")) << again;
  EXPECT_TRUE(absl::StrContains(again, "last line of slow-1")) << again;
  // An attempt that does not exist.
  std::string none;
  const int rc = RunCommand(
      {HarnessctlBin(), "--controller", controller_->address(), "logs", "slow-1", "--attempt", "5"},
      &none);
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 1) << none;
  EXPECT_TRUE(absl::StrContains(none, "has no attempt 5")) << none;
}

TEST_F(LiveFollow, EventsFollowJsonShowsSubmitLeaseAndDoneOfARunInOrderWithOneToken) {
  Start();
  const std::string out = tmp_.Sub("events.out");
  std::unique_ptr<ChildProcess> events = Harnessctl({"events", "-f", "--json"}, out);
  std::ofstream(gate_) << "go\n";  // the command runs straight through
  // The follower is connected once it could see the agent register; submit after that.
  StartAgent1();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(FileText(out), "\"agent_registered\""); },
                      absl::Seconds(30)))
      << FileText(out) << FileText(out + ".err");
  Submit(controller_->control(), {MakeItem("ev-1", "p")});
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(FileText(out), "\"item_done\""); },
                      absl::Seconds(30)))
      << FileText(out);
  events->Signal(SIGINT);
  int status = events->Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << FileText(out + ".err");

  std::vector<json> item_events;
  uint64_t last_seq = 0;
  for (absl::string_view line : absl::StrSplit(FileText(out), '\n', absl::SkipEmpty())) {
    json e = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(e.is_object()) << line;
    for (const char* key : {"seq", "at_unix_ms", "kind", "item", "agent", "lease_token",
                            "attempt", "state", "outcome", "message"}) {
      EXPECT_TRUE(e.contains(key)) << key << " missing in " << line;
    }
    EXPECT_GT(e["seq"].get<uint64_t>(), last_seq) << line;
    last_seq = e["seq"].get<uint64_t>();
    if (e["item"] == "ev-1") item_events.push_back(e);
  }
  ASSERT_EQ(item_events.size(), 3u) << FileText(out);
  EXPECT_EQ(item_events[0]["kind"], "item_submitted");
  EXPECT_EQ(item_events[1]["kind"], "item_leased");
  EXPECT_EQ(item_events[1]["agent"], "agent-1");
  EXPECT_EQ(item_events[1]["attempt"], 1);
  EXPECT_EQ(item_events[2]["kind"], "item_done");
  EXPECT_EQ(item_events[2]["outcome"], "done");
  EXPECT_EQ(item_events[2]["state"], "done");
  EXPECT_GT(item_events[1]["lease_token"].get<uint64_t>(), 0u);
  EXPECT_EQ(item_events[1]["lease_token"], item_events[2]["lease_token"]);

  // Without -f: the recent events, then exit 0.
  std::string recent;
  ASSERT_EQ(RunCommand({HarnessctlBin(), "--controller", controller_->address(), "events"}, &recent),
            0)
      << recent;
  EXPECT_TRUE(absl::StrContains(recent, "item_done item=ev-1 agent=agent-1")) << recent;
}

TEST_F(LiveFollow, ServerSentEventsCarryTheSameFeedOverHttp) {
  Start();
  std::ofstream(gate_) << "go\n";
  Submit(controller_->control(), {MakeItem("sse-1", "p")});
  std::string body;
  std::thread run([&] {
    // After the stream is open (the submit is among the recent events already).
    StartAgent1();
  });
  long status = StreamUntil(
      http_ + "/api/v1/events", {},
      [](const std::string& b) { return absl::StrContains(b, "\"kind\": \"item_done\""); },
      absl::Seconds(30), &body);
  run.join();
  EXPECT_EQ(status, 200);
  // Frames: "id: N" then "data: {json}", a blank line between.
  std::vector<json> frames;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::ConsumePrefix(&line, "data: ")) {
      frames.push_back(json::parse(line, nullptr, false));
      ASSERT_TRUE(frames.back().is_object()) << line;
    }
  }
  std::vector<std::string> kinds;
  for (const json& f : frames) {
    if (f["item"] == "sse-1") kinds.push_back(f["kind"]);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"item_submitted", "item_leased", "item_done"}))
      << body;
  EXPECT_TRUE(absl::StrContains(body, "\nid: ")) << body;
}

TEST_F(LiveFollow, FollowLogWatchEventsAndTheEventStreamNeedTheReadToken) {
  UseTokens();
  Start();
  auto refused = [&](grpc::StatusCode want, std::unique_ptr<grpc::ClientContext> ctx, bool logs) {
    grpc::Status s;
    if (logs) {
      v1::FollowLogRequest req;
      req.set_id("nothing");
      auto reader = controller_->control().FollowLog(ctx.get(), req);
      v1::LogChunk c;
      while (reader->Read(&c)) {
      }
      s = reader->Finish();
    } else {
      v1::WatchEventsRequest req;
      auto reader = controller_->control().WatchEvents(ctx.get(), req);
      v1::Event e;
      while (reader->Read(&e)) {
      }
      s = reader->Finish();
    }
    return s.error_code() == want ? ::testing::AssertionSuccess()
                                  : ::testing::AssertionFailure()
                                        << s.error_code() << " " << s.error_message();
  };
  for (bool logs : {true, false}) {
    EXPECT_TRUE(refused(grpc::StatusCode::UNAUTHENTICATED, Ctx(), logs)) << logs;
    EXPECT_TRUE(refused(grpc::StatusCode::PERMISSION_DENIED, TokenCtx(kAgent), logs)) << logs;
  }
  // The read token may: FollowLog of an unknown item is NOT_FOUND, WatchEvents ends OK.
  EXPECT_TRUE(refused(grpc::StatusCode::NOT_FOUND, TokenCtx(kRead), true));
  EXPECT_TRUE(refused(grpc::StatusCode::OK, TokenCtx(kRead), false));
  EXPECT_TRUE(refused(grpc::StatusCode::OK, TokenCtx(kAdmin), false));

  std::string body;
  EXPECT_EQ(StreamUntil(http_ + "/api/v1/events", {}, [](const std::string&) { return true; },
                        absl::Seconds(10), &body),
            401)
      << body;
  body.clear();
  EXPECT_EQ(StreamUntil(http_ + "/api/v1/events", {absl::StrCat("Authorization: Bearer ", kRead)},
                        [](const std::string& b) { return absl::StrContains(b, "retry:"); },
                        absl::Seconds(10), &body),
            200)
      << body;
}

}  // namespace
}  // namespace harness::testing
