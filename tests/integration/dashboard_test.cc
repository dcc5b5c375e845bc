// The web dashboard on the controller's HTTP listener, against a real controller with launched
// agents: the pages come from the binary without a token; /api/v1/status/stream pushes status
// snapshots as Server-Sent Events and refuses streams past its cap; the admin actions act only
// for the admin token; /api/v1/series counts the items that ended; and Debian's headless
// chromium, driven over the DevTools protocol, shows the live agents and items and their
// updates (its screenshot is kept in <build>/test-artifacts/).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/chromium.h"
#include "tests/support/cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using nlohmann::json;

constexpr char kAdmin[] = "admin-t0ken";
constexpr char kRead[] = "read-t0ken";
constexpr char kAgentToken[] = "agent-t0ken";

// An open HTTP connection read as a stream (Server-Sent Events), on a raw socket.
class RawStream {
 public:
  RawStream(int port, const std::string& path, const std::string& auth) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                   auth.empty() ? "" : absl::StrCat("Authorization: Bearer ", auth, "\r\n"),
                                   "Accept: text/event-stream\r\n\r\n");
    (void)::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
  }
  ~RawStream() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Reads until what was read since the last call contains `needle` (true) or `timeout` passes.
  bool ReadUntil(const std::string& needle, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    while (!absl::StrContains(data_, needle)) {
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return absl::StrContains(data_, needle);
      data_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  void Forget() { data_.clear(); }
  const std::string& data() const { return data_; }

 private:
  int fd_ = -1;
  std::string data_;
};

// Outside CI a machine without chromium skips the browser tests; in CI (CI=true) it fails them:
// scripts/install-deps.sh installs it, and a silent skip would hide a missing install.
#define SkipWithoutChromium()                                                                  \
  do {                                                                                         \
    const char* ci = std::getenv("CI");                                                        \
    if (ci != nullptr && std::string(ci) == "true") FAIL() << "chromium is not installed";     \
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh)";                     \
  } while (false)

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.extra_yaml = "  http:\n    listen: 127.0.0.1:0\n";
    gate_ = tmp_.Sub("gate");
    // Each item prints a line and then waits for the test to open the gate: agents are seen
    // working for as long as the test wants, with no sleep in the test.
    script_ = tmp_.Sub("agent.sh");
    std::ofstream(script_) << "#!/bin/sh\necho \"started $HARNESS_ITEM_ID\"\n"
                           << "while [ ! -e " << gate_ << " ]; do sleep 0.05; done\n"
                           << "echo \"finished $HARNESS_ITEM_ID\"\n";
    chmod(script_.c_str(), 0755);
    config_.command = {script_};
  }
  // With a pool, a clean stop: the controller stops the agents it launched (they would outlive
  // the SIGKILL that ends the controller otherwise, and dial its port for ever).
  void TearDown() override {
    if (controller_ == nullptr || config_.launcher != "process") return;
    controller_->Signal(SIGTERM);
    controller_->Wait();
  }
  void UseTokens() {
    WriteTokenFile(tmp_.Sub("admin.token"), kAdmin);
    WriteTokenFile(tmp_.Sub("read.token"), kRead);
    WriteTokenFile(tmp_.Sub("agent.token"), kAgentToken);
    config_.admin_token_file = tmp_.Sub("admin.token");
    config_.read_token_file = tmp_.Sub("read.token");
    config_.agent_token_file = tmp_.Sub("agent.token");
  }
  void UsePool(int agents) {
    config_.launcher = "process";
    config_.parallel_agents = agents;
  }
  void Start() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
    absl::StatusOr<std::string> addr = ReadFile(config_.state_dir + "/http.addr");
    ASSERT_TRUE(addr.ok()) << addr.status();
    host_port_ = std::string(absl::StripTrailingAsciiWhitespace(*addr));
    base_ = "http://" + host_port_;
    ASSERT_TRUE(absl::SimpleAtoi(host_port_.substr(host_port_.rfind(':') + 1), &port_));
  }
  HttpResult Post(const std::string& path, const std::string& token = "") {
    std::vector<std::string> h = {"Content-Length: 0"};
    if (!token.empty()) h.push_back(absl::StrCat("Authorization: Bearer ", token));
    return HttpFetch(base_ + path, h, "POST");
  }
  HttpResult Get(const std::string& path, const std::string& token = "") {
    std::vector<std::string> h;
    if (!token.empty()) h.push_back(absl::StrCat("Authorization: Bearer ", token));
    return HttpFetch(base_ + path, h);
  }
  void SubmitItems(int n, const std::string& prefix = "task-") {
    std::vector<v1::ItemSpec> items;
    for (int i = 1; i <= n; ++i) {
      v1::ItemSpec s = MakeItem(absl::StrCat(prefix, i), absl::StrCat("Fix bug ", i));
      s.set_title(absl::StrCat("Fix bug number ", i));
      items.push_back(s);
    }
    if (config_.admin_token_file.empty()) {
      Submit(controller_->control(), items);
      return;
    }
    v1::SubmitRequest req;
    for (const auto& s : items) *req.add_items() = s;
    v1::SubmitResponse resp;
    grpc::Status st = controller_->control().Submit(TokenCtx(kAdmin).get(), req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  v1::StatusSnapshot Status() {
    if (config_.admin_token_file.empty()) return GetStatus(controller_->control());
    v1::StatusSnapshot s;
    grpc::Status st =
        controller_->control().Status(TokenCtx(kAdmin).get(), v1::StatusRequest(), &s);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return s;
  }
  // The item's state as the API shows it ("" if it cannot be read).
  std::string GetItemState(const std::string& id) {
    HttpResult r = Get("/api/v1/items/" + id, config_.admin_token_file.empty() ? "" : kAdmin);
    if (r.status != 200) return "";
    return json::parse(r.body)["state"].get<std::string>();
  }
  void OpenGate() { std::ofstream(gate_) << "open\n"; }
  // Where screenshots are kept after the test (the build tree).
  static std::string ArtifactDir() {
    std::filesystem::create_directories(HARNESS_ARTIFACT_DIR);
    return HARNESS_ARTIFACT_DIR;
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::string script_, gate_;
  std::unique_ptr<ControllerProcess> controller_;
  std::string host_port_, base_;
  int port_ = 0;
};

TEST_F(DashboardTest, ThePagesComeFromTheBinaryWithoutAToken) {
  UseTokens();
  Start();
  HttpResult page = Get("/");
  ASSERT_EQ(page.status, 200) << page.body << page.curl_error;
  EXPECT_TRUE(absl::StartsWith(page.content_type, "text/html")) << page.content_type;
  EXPECT_TRUE(absl::StrContains(page.body, "/ui/app.js")) << page.body;
  HttpResult js = Get("/ui/app.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_TRUE(absl::StartsWith(js.content_type, "text/javascript")) << js.content_type;
  EXPECT_TRUE(absl::StrContains(js.body, "EventSource"));
  EXPECT_EQ(Get("/ui/app.css").status, 200);
  EXPECT_EQ(Get("/ui/nope.js").status, 404);
  // Nothing in them comes from elsewhere: no URL with a host.
  for (const std::string& body : {page.body, js.body, Get("/ui/app.css").body}) {
    EXPECT_FALSE(absl::StrContains(body, "http://")) << body.substr(0, 200);
    EXPECT_FALSE(absl::StrContains(body, "https://")) << body.substr(0, 200);
  }
  // The data still needs a token.
  EXPECT_EQ(Get("/api/v1/status").status, 401);
  // Every answer, pages, API and errors alike, carries the strict headers: the pages run only
  // their own script and style sheet from this origin, are never framed, send no Referer.
  for (const HttpResult& r : {page, js, Get("/api/v1/status"), Get("/ui/nope.js")}) {
    const std::string csp = HeaderValue(r, "Content-Security-Policy");
    EXPECT_TRUE(absl::StartsWith(csp, "default-src 'self';")) << r.headers;
    EXPECT_TRUE(absl::StrContains(csp, "script-src 'self';")) << csp;
    EXPECT_TRUE(absl::StrContains(csp, "style-src 'self';")) << csp;
    EXPECT_TRUE(absl::StrContains(csp, "frame-ancestors 'none'")) << csp;
    EXPECT_FALSE(absl::StrContains(csp, "unsafe")) << csp;
    EXPECT_EQ(HeaderValue(r, "X-Content-Type-Options"), "nosniff") << r.headers;
    EXPECT_EQ(HeaderValue(r, "Referrer-Policy"), "no-referrer") << r.headers;
  }
  HttpResult who = Get("/api/v1/whoami", kRead);
  ASSERT_EQ(who.status, 200);
  EXPECT_EQ(json::parse(who.body)["role"], "read");
  EXPECT_EQ(json::parse(Get("/api/v1/whoami", kAdmin).body)["role"], "admin");
  EXPECT_EQ(json::parse(Get("/api/v1/whoami").body)["role"], "none");
}

TEST_F(DashboardTest, TheStatusStreamPushesASnapshotWhenTheQueueChanges) {
  UseTokens();
  Start();
  RawStream refused(port_, "/api/v1/status/stream", "");
  ASSERT_TRUE(refused.ReadUntil("\r\n\r\n", absl::Seconds(10)));
  EXPECT_TRUE(absl::StartsWith(refused.data(), "HTTP/1.1 401")) << refused.data();

  RawStream s(port_, "/api/v1/status/stream", kRead);
  ASSERT_TRUE(s.ReadUntil("event: status", absl::Seconds(10))) << s.data();
  EXPECT_TRUE(absl::StartsWith(s.data(), "HTTP/1.1 200")) << s.data();
  EXPECT_TRUE(absl::StrContains(s.data(), "text/event-stream")) << s.data();
  ASSERT_TRUE(s.ReadUntil("\"pending\": 0", absl::Seconds(10))) << s.data();
  s.Forget();
  SubmitItems(3);
  // Pushed by the controller when the queue changed: the test asks for nothing more.
  EXPECT_TRUE(s.ReadUntil("\"pending\": 3", absl::Seconds(10))) << s.data();
}

TEST_F(DashboardTest, StatusStreamsPastTheCapAreRefusedWith503) {
  Start();
  std::vector<std::unique_ptr<RawStream>> open;
  for (int i = 0; i < 16; ++i) {
    open.push_back(std::make_unique<RawStream>(port_, "/api/v1/status/stream", ""));
    ASSERT_TRUE(open.back()->ReadUntil("event: status", absl::Seconds(10))) << i;
  }
  RawStream extra(port_, "/api/v1/status/stream", "");
  ASSERT_TRUE(extra.ReadUntil("\r\n\r\n", absl::Seconds(10))) << extra.data();
  EXPECT_TRUE(absl::StartsWith(extra.data(), "HTTP/1.1 503")) << extra.data();
  // The JSON API still answers while every stream slot is taken.
  EXPECT_EQ(Get("/api/v1/status").status, 200);
  // A client that goes away frees its slot (noticed at the next keep-alive write).
  open[0]->Close();
  EXPECT_TRUE(WaitFor(
      [&] {
        RawStream again(port_, "/api/v1/status/stream", "");
        return again.ReadUntil("event: status", absl::Seconds(2));
      },
      absl::Seconds(30)));
}

TEST_F(DashboardTest, AdminActionsActOnlyForTheAdminToken) {
  UseTokens();
  Start();
  SubmitItems(2);
  EXPECT_EQ(Post("/api/v1/items/task-1/cancel").status, 401);
  HttpResult read = Post("/api/v1/items/task-1/cancel", kRead);
  EXPECT_EQ(read.status, 403) << read.body;
  EXPECT_EQ(Post("/api/v1/items/task-1/cancel", kAgentToken).status, 403);
  EXPECT_EQ(Get("/api/v1/items/task-1/cancel", kAdmin).status, 405);
  EXPECT_EQ(GetItemState("task-1"), "pending");

  HttpResult cancel = Post("/api/v1/items/task-1/cancel?reason=not%20needed", kAdmin);
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(json::parse(cancel.body)["previous_state"], "pending");
  EXPECT_EQ(GetItemState("task-1"), "cancelled");
  // Retry takes failed and parked items only: a cancelled one is a conflict, and stays.
  HttpResult retry = Post("/api/v1/items/task-1/retry", kAdmin);
  EXPECT_EQ(retry.status, 409) << retry.body;
  EXPECT_TRUE(absl::StrContains(retry.body, "only failed or parked")) << retry.body;
  EXPECT_EQ(GetItemState("task-1"), "cancelled");
  EXPECT_EQ(Post("/api/v1/items/nope/cancel", kAdmin).status, 404);

  EXPECT_EQ(Post("/api/v1/pool/scale?target=-1", kAdmin).status, 400);
  EXPECT_EQ(Post("/api/v1/pool/scale", kAdmin).status, 400);
  HttpResult scale = Post("/api/v1/pool/scale?target=0", kAdmin);
  ASSERT_EQ(scale.status, 200) << scale.body;
  EXPECT_EQ(json::parse(scale.body)["new_target"], 0);
  EXPECT_EQ(Post("/api/v1/agents/nobody/drain", kAdmin).status, 404);
}

TEST_F(DashboardTest, AdminActionsAreRefusedWhenTokensAreOff) {
  Start();
  SubmitItems(1);
  HttpResult r = Post("/api/v1/items/task-1/cancel");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "admin_token_file")) << r.body;
  EXPECT_EQ(GetStatus(controller_->control()).queue().pending(), 1);
}

TEST_F(DashboardTest, TheSeriesCountsTheItemsThatEndedThisMinute) {
  UsePool(2);
  OpenGate();
  Start();
  SubmitItems(4);
  ASSERT_TRUE(WaitFor([&] { return Status().queue().done() == 4; }, absl::Seconds(60)));
  // The series is told of an ended item right after the change is durable, which can be a
  // moment after the status counts it: wait for it.
  std::string last;
  EXPECT_TRUE(WaitFor(
      [&] {
        HttpResult r = Get("/api/v1/series");
        if (r.status != 200) return false;
        last = r.body;
        json doc = json::parse(r.body);
        if (doc["points"].size() != 60u) return false;
        int64_t done = 0;
        for (const json& p : doc["points"]) done += p["done"].get<int64_t>();
        return done == 4;
      },
      absl::Seconds(20)))
      << last;
  // The depth is sampled every few seconds: the latest minutes have one.
  EXPECT_TRUE(WaitFor(
      [&] {
        json d = json::parse(Get("/api/v1/series").body);
        return !d["points"][59]["pending"].is_null() || !d["points"][58]["pending"].is_null();
      },
      absl::Seconds(20)));
}

// An item parked after its last attempt failed is a failure of its minute, as a failed one is.
TEST_F(DashboardTest, TheSeriesCountsAParkedItemAsFailed) {
  UsePool(1);
  config_.command = {"/bin/sh", "-c", "echo broken; exit 3"};
  Start();
  v1::ItemSpec s = MakeItem("doomed", "fails every time");
  s.set_max_attempts(1);
  Submit(controller_->control(), {s});
  ASSERT_TRUE(WaitFor([&] { return Status().queue().parked() == 1; }, absl::Seconds(60)));
  std::string last;
  EXPECT_TRUE(WaitFor(
      [&] {
        HttpResult r = Get("/api/v1/series");
        if (r.status != 200) return false;
        last = r.body;
        int64_t failed = 0, done = 0;
        const json doc = json::parse(r.body);
        for (const json& p : doc["points"]) {
          failed += p["failed"].get<int64_t>();
          done += p["done"].get<int64_t>();
        }
        return failed == 1 && done == 0;
      },
      absl::Seconds(20)))
      << last << "\n" << Get("/api/v1/items/doomed").body;
}

// Drives the page like a person: it must show the agents working on items, then the items done,
// without a reload (the status stream pushes; the page refetches what changed).
TEST_F(DashboardTest, ChromiumShowsLiveAgentsAndItemsAndTheirUpdates) {
  if (ChromiumBin().empty()) SkipWithoutChromium();
  UsePool(2);
  Start();
  SubmitItems(5);
  absl::StatusOr<std::unique_ptr<Chromium>> browser =
      Chromium::Start(tmp_.Sub("profile"), 1400, 1000, tmp_.Sub("chromium.log"));
  ASSERT_TRUE(browser.ok()) << browser.status();
  Chromium& b = **browser;
  // Whatever the Content-Security-Policy blocks (an inline style or script) is recorded.
  ASSERT_TRUE(b.Call("Page.addScriptToEvaluateOnNewDocument",
                     {{"source",
                       "window.cspViolations = []; document.addEventListener("
                       "'securitypolicyviolation', e => window.cspViolations.push("
                       "e.violatedDirective + ' ' + (e.blockedURI || e.sample)));"}})
                  .ok());
  ASSERT_TRUE(b.Navigate(base_ + "/").ok());
  // Both agents appear, working on items, with the queue's counts.
  EXPECT_TRUE(b.WaitUntil(
      "document.querySelectorAll('#agents tr[data-agent] td.item a').length === 2",
      absl::Seconds(60)))
      << b.Eval("document.body.innerText").value_or(json()).dump();
  EXPECT_TRUE(b.WaitUntil("document.querySelector('#conn').textContent === 'live'",
                          absl::Seconds(10)));
  // Each shows the last line its item's command printed (streamed by agentd) and how long the
  // item has run (from the snapshot itself: nothing else is fetched for it).
  EXPECT_TRUE(b.WaitUntil(
      "[...document.querySelectorAll('#agents tr[data-agent]')].every(r => "
      "r.querySelector('td.output').textContent === "
      "'started ' + r.querySelector('td.item a').textContent && "
      "/^[0-9]+s$/.test(r.querySelector('td.elapsed').textContent))",
      absl::Seconds(30)))
      << b.Eval("document.querySelector('#agents').innerText").value_or(json()).dump();
  EXPECT_TRUE(b.WaitUntil(
      "document.querySelector('#count-pending b').textContent === '3' && "
      "document.querySelector('#count-leased b').textContent === '2'",
      absl::Seconds(30)))
      << b.Eval("document.querySelector('#queue').innerText").value_or(json()).dump();
  EXPECT_TRUE(b.WaitUntil("document.querySelectorAll('#pending tr[data-item]').length === 3",
                          absl::Seconds(30)));
  EXPECT_TRUE(b.WaitUntil("document.querySelectorAll('#pool tr[data-slot]').length === 2",
                          absl::Seconds(30)));
  // Read-only without an admin token: no action buttons.
  EXPECT_EQ(b.Eval("document.querySelectorAll('button[data-drain], #scale').length").value_or(-1),
            0);
  ASSERT_TRUE(b.Screenshot(ArtifactDir() + "/dashboard-working.png").ok());

  // The items finish: the page updates by itself.
  OpenGate();
  EXPECT_TRUE(b.WaitUntil("document.querySelector('#count-done b').textContent === '5'",
                          absl::Seconds(60)))
      << b.Eval("document.querySelector('#queue').innerText").value_or(json()).dump();
  EXPECT_TRUE(b.WaitUntil(
      "document.querySelectorAll('#agents tr[data-agent] td.item a').length === 0",
      absl::Seconds(30)));
  EXPECT_TRUE(b.WaitUntil(
      "[...document.querySelectorAll('.chart rect')].length > 0", absl::Seconds(30)));
  ASSERT_TRUE(b.Screenshot(ArtifactDir() + "/dashboard.png").ok());

  // The items view lists them done; the search narrows to one; the item view has its attempt.
  ASSERT_TRUE(b.Eval("location.hash = '#/items?state=done'; true").ok());
  EXPECT_TRUE(b.WaitUntil(
      "document.querySelectorAll('#items tr[data-state=\"done\"]').length === 5",
      absl::Seconds(30)));
  ASSERT_TRUE(b.Eval("location.hash = '#/items?q=number%203'; true").ok());
  EXPECT_TRUE(b.WaitUntil(
      "document.querySelectorAll('#items tr[data-item]').length === 1 && "
      "document.querySelector('#items tr[data-item]').dataset.item === 'task-3'",
      absl::Seconds(30)));
  ASSERT_TRUE(b.Eval("location.hash = '#/item/task-3'; true").ok());
  EXPECT_TRUE(b.WaitUntil(
      "!!document.querySelector('#item-detail section[data-state=\"done\"]') && "
      "document.querySelectorAll('#item-detail tr[data-attempt]').length === 1 && "
      "document.querySelector('#log').textContent.includes('finished task-3')",
      absl::Seconds(30)))
      << b.Eval("document.querySelector('#item-detail').innerText").value_or(json()).dump();
  ASSERT_TRUE(b.Screenshot(ArtifactDir() + "/dashboard-item.png").ok());
  // Every view drew under the strict policy: nothing was blocked.
  EXPECT_EQ(b.Eval("window.cspViolations.join('; ')").value_or(json()), json(""));
}

// With tokens on, the page reads the stream through fetch() with the pasted token, and shows the
// admin's buttons only for the admin token; its Cancel cancels.
TEST_F(DashboardTest, ChromiumShowsActionsOnlyForThePastedAdminToken) {
  if (ChromiumBin().empty()) SkipWithoutChromium();
  UseTokens();
  Start();
  SubmitItems(2);
  absl::StatusOr<std::unique_ptr<Chromium>> browser =
      Chromium::Start(tmp_.Sub("profile"), 1200, 900, tmp_.Sub("chromium.log"));
  ASSERT_TRUE(browser.ok()) << browser.status();
  Chromium& b = **browser;
  ASSERT_TRUE(b.Navigate(base_ + "/#/item/task-2").ok());
  EXPECT_TRUE(b.WaitUntil("document.querySelector('#role').dataset.role === 'none'",
                          absl::Seconds(30)));
  auto paste = [&](const std::string& token) {
    return b.Eval(absl::StrCat("document.querySelector('#token').value = '", token,
                               "'; document.querySelector('#tokenform').requestSubmit(); true"));
  };
  ASSERT_TRUE(paste(kRead).ok());
  EXPECT_TRUE(b.WaitUntil("document.querySelector('#role').dataset.role === 'read' && "
                          "!!document.querySelector('#item-detail section[data-state=\"pending\"]')",
                          absl::Seconds(30)));
  EXPECT_TRUE(b.WaitUntil("document.querySelector('#conn').textContent === 'live'",
                          absl::Seconds(30)));
  EXPECT_EQ(b.Eval("!!document.querySelector('#cancel')").value_or(json()), false);
  ASSERT_TRUE(paste(kAdmin).ok());
  ASSERT_TRUE(b.WaitUntil("!!document.querySelector('#cancel')", absl::Seconds(30)));
  // The token is kept for this tab only, never in a cookie.
  EXPECT_EQ(b.Eval("sessionStorage.getItem('harness.token')").value_or(json()), kAdmin);
  EXPECT_EQ(b.Eval("document.cookie").value_or(json()), "");
  ASSERT_TRUE(
      b.Eval("window.confirm = () => true; document.querySelector('#cancel').click(); true").ok());
  EXPECT_TRUE(WaitFor([&] { return GetItemState("task-2") == "cancelled"; }, absl::Seconds(30)));
  EXPECT_TRUE(b.WaitUntil(
      "!!document.querySelector('#item-detail section[data-state=\"cancelled\"]') && "
      "!document.querySelector('#cancel')",
      absl::Seconds(30)));
}

}  // namespace
}  // namespace harness::testing
