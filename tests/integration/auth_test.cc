// Authentication and transport against real processes: tokens on plaintext loopback, TLS, mTLS,
// the loopback default, the listen policy, certificate reload on SIGHUP, and agentd and
// harnessctl end to end over mTLS with tokens. Certificates come from scripts/make-certs.sh,
// generated into the test's temp dir. Everything listens on 127.0.0.1.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

constexpr char kAdmin[] = "admin-t0ken";
constexpr char kRead[] = "read-t0ken";
constexpr char kAgent[] = "agent-t0ken";

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    certs_ = tmp_.Sub("certs");
  }
  void UseTokens() {
    WriteTokenFile(tmp_.Sub("admin.token"), kAdmin);
    WriteTokenFile(tmp_.Sub("read.token"), kRead);
    WriteTokenFile(tmp_.Sub("agent.token"), kAgent);
    config_.admin_token_file = tmp_.Sub("admin.token");
    config_.read_token_file = tmp_.Sub("read.token");
    config_.agent_token_file = tmp_.Sub("agent.token");
  }
  void UseTls(bool mtls, const std::vector<std::string>& cert_flags = {}) {
    MakeCerts(certs_, cert_flags);
    config_.tls_cert = certs_ + "/server.pem";
    config_.tls_key = certs_ + "/server.key";
    if (mtls) config_.tls_client_ca = certs_ + "/ca.pem";
    config_.client_tls = ClientTlsFrom(certs_, mtls ? "admin" : "");
  }
  void Start() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  grpc::Status SubmitWith(const std::string& token, const std::string& id) {
    v1::SubmitRequest req;
    *req.add_items() = MakeItem(id, "p");
    v1::SubmitResponse resp;
    return controller_->control().Submit(TokenCtx(token).get(), req, &resp);
  }
  grpc::Status StatusWith(const std::string& token, v1::StatusSnapshot* out = nullptr) {
    v1::StatusSnapshot s;
    grpc::Status st = controller_->control().Status(TokenCtx(token).get(), {}, &s);
    if (out != nullptr) *out = s;
    return st;
  }
  grpc::Status RegisterWith(const std::string& token, const std::string& agent) {
    v1::RegisterRequest req;
    req.set_agent_id(agent);
    req.set_pid(1);
    v1::RegisterResponse resp;
    return controller_->agent().Register(TokenCtx(token).get(), req, &resp);
  }
  int64_t Total() {
    v1::StatusSnapshot s;
    EXPECT_TRUE(StatusWith(kAdmin, &s).ok());
    return s.queue().total();
  }
  // harnessctl with `args`, over the test's TLS files as `cert` (admin/agent/none).
  int Harnessctl(const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, out);
  }

  TempDir tmp_;
  std::string certs_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(AuthTest, TheLoopbackDefaultNeedsNoTokenAndNoTls) {
  Start();
  EXPECT_TRUE(SubmitWith("", "open").ok());
  EXPECT_TRUE(StatusWith("").ok());
  EXPECT_TRUE(RegisterWith("", "a1").ok());
  // A token sent to a controller that asks for none is ignored.
  EXPECT_TRUE(SubmitWith("anything", "open2").ok());
}

TEST_F(AuthTest, WithTokensTheControlServiceRefusesMissingWrongAndWrongKindTokens) {
  UseTokens();
  Start();
  struct Case {
    std::string token;
    grpc::StatusCode code;
  };
  for (const Case& c : {Case{"", grpc::StatusCode::UNAUTHENTICATED},
                        Case{"wrong", grpc::StatusCode::UNAUTHENTICATED},
                        Case{kAgent, grpc::StatusCode::PERMISSION_DENIED},
                        Case{kRead, grpc::StatusCode::PERMISSION_DENIED}}) {
    grpc::Status st = SubmitWith(c.token, "refused");
    EXPECT_EQ(st.error_code(), c.code) << "submit with \"" << c.token << "\": " << st.error_message();
    EXPECT_FALSE(absl::StrContains(st.error_message(), c.token.empty() ? "@@" : c.token));
  }
  EXPECT_EQ(StatusWith("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(StatusWith(kAgent).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Total(), 0) << "a refused submit must change nothing";
  EXPECT_TRUE(SubmitWith(kAdmin, "accepted").ok());
  EXPECT_TRUE(StatusWith(kRead).ok());
  EXPECT_EQ(Total(), 1);
  // The streaming read (WatchStatus) is checked too.
  v1::WatchStatusRequest w;
  auto ctx = TokenCtx("");
  auto reader = controller_->control().WatchStatus(ctx.get(), w);
  v1::StatusSnapshot snap;
  EXPECT_FALSE(reader->Read(&snap));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Cancel with the read token: refused, the item stays.
  v1::CancelRequest cancel;
  cancel.set_id("accepted");
  v1::CancelResponse cr;
  EXPECT_EQ(controller_->control().Cancel(TokenCtx(kRead).get(), cancel, &cr).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::GetRequest get;
  get.set_id("accepted");
  v1::GetResponse item;
  ASSERT_TRUE(controller_->control().Get(TokenCtx(kRead).get(), get, &item).ok());
  EXPECT_EQ(item.item().state(), v1::ITEM_STATE_PENDING);
}

TEST_F(AuthTest, WithTokensTheAgentServiceTakesOnlyTheAgentToken) {
  UseTokens();
  Start();
  EXPECT_EQ(RegisterWith("", "a1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RegisterWith("wrong", "a1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(RegisterWith(kAdmin, "a1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(RegisterWith(kRead, "a1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(controller_->control().ListAgents(TokenCtx(kRead).get(), {}, &agents).ok());
  EXPECT_EQ(agents.agents_size(), 0) << "a refused register must not register";
  // The Session stream without a token ends UNAUTHENTICATED.
  auto ctx = TokenCtx("");
  auto stream = controller_->agent().Session(ctx.get());
  v1::AgentMessage hello;
  hello.mutable_hello()->set_agent_id("a1");
  stream->Write(hello);
  stream->WritesDone();
  v1::ControllerMessage m;
  while (stream->Read(&m)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(RegisterWith(kAgent, "a1").ok());
}

TEST_F(AuthTest, OverTlsAPlaintextClientCannotConnectAndTokensAreStillChecked) {
  UseTokens();
  UseTls(/*mtls=*/false);
  Start();
  EXPECT_TRUE(StatusWith(kRead).ok());
  EXPECT_EQ(StatusWith("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  auto plain = v1::ControlService::NewStub(MakeControllerChannel(controller_->address()));
  v1::StatusSnapshot s;
  grpc::Status st = plain->Status(TokenCtx(kRead).get(), {}, &s);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
}

TEST_F(AuthTest, WithMtlsAClientWithoutACertificateIsRefused) {
  UseTokens();
  UseTls(/*mtls=*/true);
  Start();
  EXPECT_TRUE(StatusWith(kRead).ok());  // the test's stub presents admin.pem
  ChannelOptions no_cert;
  no_cert.tls = ClientTlsFrom(certs_);
  auto stub = v1::AgentService::NewStub(MakeControllerChannel(controller_->address(), no_cert));
  v1::RegisterRequest req;
  req.set_agent_id("a1");
  v1::RegisterResponse resp;
  grpc::Status st = stub->Register(TokenCtx(kAgent).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  // A certificate from another CA is refused as well.
  MakeCerts(tmp_.Sub("other"));
  ChannelOptions foreign;
  foreign.tls = ClientTlsFrom(tmp_.Sub("other"), "agent");
  foreign.tls.ca_pem = ClientTlsFrom(certs_).ca_pem;
  stub = v1::AgentService::NewStub(MakeControllerChannel(controller_->address(), foreign));
  st = stub->Register(TokenCtx(kAgent).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(controller_->control().ListAgents(TokenCtx(kRead).get(), {}, &agents).ok());
  EXPECT_EQ(agents.agents_size(), 0);
}

TEST_F(AuthTest, AgentdAndHarnessctlWorkEndToEndOverMtlsWithTokens) {
  UseTokens();
  UseTls(/*mtls=*/true);
  Start();
  std::string out;
  const std::vector<std::string> admin = {"--ca", certs_ + "/ca.pem", "--cert",
                                          certs_ + "/admin.pem", "--key", certs_ + "/admin.key",
                                          "--token-file", tmp_.Sub("admin.token")};
  std::vector<std::string> args = admin;
  for (const char* a : {"submit", "--id", "tls-item", "--title", "t", "--prompt", "p"}) {
    args.push_back(a);
  }
  int rc = Harnessctl(args, &out);
  ASSERT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out;
  // Without a token harnessctl is told what to add.
  rc = Harnessctl({"--ca", certs_ + "/ca.pem", "--cert", certs_ + "/admin.pem", "--key",
                   certs_ + "/admin.key", "status"},
                  &out);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "--token")) << out;

  std::unique_ptr<ChildProcess> agent = StartAgent(
      "tls-agent", controller_->address(), tmp_.Sub("work"), "/bin/true", tmp_.Sub("agent.log"),
      {"--ca", certs_ + "/ca.pem", "--cert", certs_ + "/agent.pem", "--key",
       certs_ + "/agent.key", "--token-file", tmp_.Sub("agent.token")});
  bool done = WaitFor(
      [&] {
        v1::GetRequest get;
        get.set_id("tls-item");
        v1::GetResponse r;
        return controller_->control().Get(TokenCtx(kRead).get(), get, &r).ok() &&
               r.item().state() == v1::ITEM_STATE_DONE;
      },
      absl::Seconds(30));
  absl::StatusOr<std::string> log = ReadFile(tmp_.Sub("agent.log"));
  ASSERT_TRUE(done) << (log.ok() ? *log : "");
  args = admin;
  args.insert(args.end(), {"show", "tls-item"});
  rc = Harnessctl(args, &out);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "tls-agent")) << out;
  EXPECT_FALSE(absl::StrContains(*log, kAgent)) << "agentd must not log its token";
  absl::StatusOr<std::string> clog = ReadFile(controller_->log_file());
  ASSERT_TRUE(clog.ok());
  for (const char* t : {kAdmin, kRead, kAgent}) EXPECT_FALSE(absl::StrContains(*clog, t));
}

TEST_F(AuthTest, ReplacedCertificatesAreUsedAfterSighupWhileOpenSessionsGoOn) {
  UseTokens();
  UseTls(/*mtls=*/false, {"--server-cn", "controller-v1"});
  Start();
  auto peer_cn = [&] {
    ChannelOptions o;
    o.tls = ClientTlsFrom(certs_);
    auto stub = v1::ControlService::NewStub(MakeControllerChannel(controller_->address(), o));
    auto ctx = TokenCtx(kRead);
    v1::StatusSnapshot s;
    if (!stub->Status(ctx.get(), {}, &s).ok()) return std::string("(call failed)");
    std::vector<grpc::string_ref> cn = ctx->auth_context()->FindPropertyValues("x509_common_name");
    return cn.empty() ? std::string() : std::string(cn[0].data(), cn[0].size());
  };
  EXPECT_EQ(peer_cn(), "controller-v1");
  std::unique_ptr<ChildProcess> agent = StartAgent(
      "steady", controller_->address(), tmp_.Sub("work"), "/bin/true", tmp_.Sub("agent.log"),
      {"--ca", certs_ + "/ca.pem", "--token-file", tmp_.Sub("agent.token")});
  auto connected = [&] {
    v1::ListAgentsResponse r;
    return controller_->control().ListAgents(TokenCtx(kRead).get(), {}, &r).ok() &&
           r.agents_size() == 1 && r.agents(0).health() == v1::HEALTH_HEALTHY;
  };
  ASSERT_TRUE(WaitFor(connected, absl::Seconds(20)));

  MakeCerts(certs_, {"--server-cn", "controller-v2"});  // same CA, new server certificate
  controller_->Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] { return peer_cn() == "controller-v2"; }, absl::Seconds(20)))
      << peer_cn();
  // The agent's session stream stayed open across the reload, and it still takes work.
  EXPECT_TRUE(connected());
  ASSERT_TRUE(SubmitWith(kAdmin, "after-reload").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        v1::GetRequest get;
        get.set_id("after-reload");
        v1::GetResponse r;
        return controller_->control().Get(TokenCtx(kRead).get(), get, &r).ok() &&
               r.item().state() == v1::ITEM_STATE_DONE;
      },
      absl::Seconds(30)));
  absl::StatusOr<std::string> log = ReadFile(tmp_.Sub("agent.log"));
  ASSERT_TRUE(log.ok());
  size_t opens = 0;
  for (size_t p = log->find("session stream to"); p != std::string::npos;
       p = log->find("session stream to", p + 1)) {
    if (log->compare(log->find('\n', p) - 5, 5, " open") == 0) ++opens;
  }
  EXPECT_EQ(opens, 1u) << *log;
  absl::StatusOr<std::string> clog = ReadFile(controller_->log_file());
  EXPECT_TRUE(clog.ok() && absl::StrContains(*clog, "SIGHUP: the TLS files are valid"));
}

// The controller exits before it binds: 0.0.0.0 is never served here.
TEST_F(AuthTest, ANonLoopbackAddressWithoutTlsAndTokensIsRefusedWithWhatToAdd) {
  std::string out;
  int rc = RunCommand(
      {ControllerBin(), "--listen", "0.0.0.0:0", "--state-dir", tmp_.Sub("state")}, &out);
  ASSERT_TRUE(WIFEXITED(rc)) << out;
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_TRUE(absl::StrContains(out, "harness.tls.cert")) << out;
  EXPECT_TRUE(absl::StrContains(out, "--insecure")) << out;
}

// With --insecure, a non-loopback address is served, with a warning in the log. The address is
// on one end of a veth pair in a network namespace the test makes (and removes); harnessctl reaches
// it from inside that namespace.
TEST_F(AuthTest, InsecureServesANonLoopbackAddressAndWarnsThatAnyoneCanReachIt) {
  const std::string ns = absl::StrCat("harness-auth-", ::getpid());
  const std::string ip = "/usr/sbin/ip";
  std::string out;
  if (RunCommand({ip, "netns", "add", ns}, &out) != 0) GTEST_SKIP() << "no netns: " << out;
  absl::Cleanup remove_ns = [&] {
    controller_.reset();
    std::string ignored;
    RunCommand({ip, "netns", "del", ns}, &ignored);
  };
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
           {"addr", "add", "10.232.7.1/24", "dev", "v0"},
           {"link", "set", "v0", "up"},
           {"link", "set", "v1", "up"},
           {"link", "set", "lo", "up"}}) {
    args.insert(args.begin(), {ip, "-n", ns});
    ASSERT_EQ(RunCommand(args, &out), 0) << out;
  }
  const std::string enter = absl::StrCat("--net=/var/run/netns/", ns);
  config_.listen = "10.232.7.1:0";
  config_.wrapper = {"/usr/bin/nsenter", enter};
  config_.extra_args = {"--insecure"};
  Start();
  ASSERT_TRUE(absl::StartsWith(controller_->address(), "10.232.7.1:")) << controller_->address();
  ASSERT_EQ(RunCommand({"/usr/bin/nsenter", enter, HarnessctlBin(), "--controller",
                        controller_->address(), "submit", "--title", "t", "--prompt", "p",
                        "--id", "over-insecure"},
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand({"/usr/bin/nsenter", enter, HarnessctlBin(), "--controller",
                        controller_->address(), "show", "over-insecure"},
                       &out),
            0)
      << out;
  EXPECT_TRUE(absl::StrContains(out, "over-insecure")) << out;
  absl::StatusOr<std::string> log = ReadFile(controller_->log_file());
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(absl::StrContains(*log, "--insecure: serving 10.232.7.1:")) << *log;
  EXPECT_TRUE(absl::StrContains(*log, "anyone who can reach this port")) << *log;
}

TEST_F(AuthTest, AnEmptyTokenFileStopsTheControllerNamingTheFile) {
  std::ofstream(tmp_.Sub("empty.token")) << "\n";
  config_.agent_token_file = tmp_.Sub("empty.token");
  config_.config_file = "";
  std::string cfg = tmp_.Sub("h.yaml");
  std::ofstream(cfg) << "harness:\n  listen: 127.0.0.1:0\n  state_dir: " << config_.state_dir
                     << "\n  auth:\n    agent_token_file: " << tmp_.Sub("empty.token") << "\n";
  std::string out;
  int rc = RunCommand({ControllerBin(), "--config", cfg}, &out);
  ASSERT_TRUE(WIFEXITED(rc)) << out;
  EXPECT_EQ(WEXITSTATUS(rc), 2) << out;
  EXPECT_TRUE(absl::StrContains(out, tmp_.Sub("empty.token"))) << out;
}

}  // namespace
}  // namespace harness::testing
