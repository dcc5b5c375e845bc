// The credentials of agents the controller launches (agent.launcher: process), against real
// processes: with tokens and mTLS on the controller's port, launched agentd workers connect and
// finish their items (the agent token in their environment, the TLS files as paths, nothing
// on argv); the controller's own tokens do not reach them; and the item's command sees no
// credential, neither in its environment nor in agentd's (/proc/<agentd>/environ).
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "gtest/gtest.h"
#include "launch/pid_file.h"
#include "launch/proc_stat.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

constexpr char kAdmin[] = "admin-s3cret-token";
constexpr char kRead[] = "read-s3cret-token";
constexpr char kAgent[] = "agent-s3cret-token";

class LaunchedCredentials : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = tmp_.Sub("certs");
    MakeCerts(certs_);
    WriteTokenFile(tmp_.Sub("agent.token"), kAgent);
    config_.state_dir = tmp_.Sub("state");
    config_.launcher = "process";
    config_.parallel_agents = 2;
    config_.lease_ttl = 30;
    config_.heartbeat_interval = 0.2;
    config_.heartbeat_timeout = 5;
    config_.extra_yaml = "  agent_startup_stagger: 0.2\n  agent_restart_delay: 0.2\n";
    config_.agent_token_file = tmp_.Sub("agent.token");
    config_.tls_cert = certs_ + "/server.pem";
    config_.tls_key = certs_ + "/server.key";
    config_.tls_client_ca = certs_ + "/ca.pem";
    config_.client_tls = ClientTlsFrom(certs_, "admin");
    config_.agent_yaml = absl::StrCat("    tls_ca: ", certs_, "/ca.pem\n    tls_cert: ", certs_,
                                      "/agent.pem\n    tls_key: ", certs_, "/agent.key\n");
    // The command writes its environment and its parent's (agentd's, as the kernel shows it).
    out_ = tmp_.Sub("out");
    ASSERT_TRUE(MakeDirs(out_).ok());
    const std::string script = tmp_.Sub("agent.sh");
    std::ofstream s(script);
    s << "#!/bin/sh\n"
      << "env > " << out_ << "/$HARNESS_ITEM_ID.env\n"
      << "tr '\\0' '\\n' < /proc/$PPID/environ > " << out_ << "/$HARNESS_ITEM_ID.agentd-env\n"
      << "echo $PPID > " << out_ << "/$HARNESS_ITEM_ID.agentd-pid\n";
    s.close();
    chmod(script.c_str(), 0755);
    config_.command = {"/bin/sh", script};
  }
  void TearDown() override {
    controller_.reset();
    // Launched agents outlive a controller on purpose: end them by the pids their files name.
    StatePaths paths(config_.state_dir);
    for (int slot = 1; slot <= 4; ++slot) {
      const std::string agent = absl::StrCat("agent-", slot);
      absl::StatusOr<std::string> text = ReadFile(paths.AgentPidFile(agent));
      if (!text.ok()) continue;
      absl::StatusOr<launch::PidRecord> r = launch::ParsePidRecord(*text, agent);
      if (!r.ok()) continue;
      for (pid_t p : launch::ProcessesInSession(static_cast<pid_t>(r->pid))) ::kill(p, SIGKILL);
    }
  }
  // The controller, with the admin and read tokens in its own environment (as an operator
  // would export them): they must not reach the agents it launches.
  void StartController() {
    setenv("HARNESS_ADMIN_TOKEN", kAdmin, 1);
    setenv("HARNESS_READ_TOKEN", kRead, 1);
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    unsetenv("HARNESS_ADMIN_TOKEN");
    unsetenv("HARNESS_READ_TOKEN");
    ASSERT_NE(controller_, nullptr);
  }
  v1::StatusSnapshot Status() {
    v1::StatusSnapshot s;
    grpc::Status st = controller_->control().Status(TokenCtx(kRead).get(), {}, &s);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return s;
  }
  std::string ControllerLog() {
    absl::StatusOr<std::string> s = ReadFile(controller_->log_file());
    return s.ok() ? *s : "";
  }
  std::string AgentLog(const std::string& agent) {
    absl::StatusOr<std::string> s = ReadFile(StatePaths(config_.state_dir).AgentLogFile(agent));
    return s.ok() ? *s : "";
  }
  std::string Out(const std::string& name) {
    absl::StatusOr<std::string> s = ReadFile(absl::StrCat(out_, "/", name));
    return s.ok() ? *s : "<missing " + name + ">";
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
  std::string certs_;
  std::string out_;
};

TEST_F(LaunchedCredentials, LaunchedAgentsConnectOverMtlsWithTheAgentTokenAndFinishTheirItems) {
  StartController();
  ASSERT_TRUE(WaitFor([&] { return Status().agents_size() == 2; }, absl::Seconds(30)))
      << ControllerLog() << AgentLog("agent-1");
  v1::SubmitRequest req;
  for (int i = 0; i < 4; ++i) *req.add_items() = MakeItem(absl::StrCat("c-", i), "p");
  v1::SubmitResponse resp;
  grpc::Status st = controller_->control().Submit(TokenCtx(kAdmin).get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitFor([&] { return Status().queue().done() == 4; }, absl::Seconds(60)))
      << Status().DebugString() << AgentLog("agent-1");

  // The agents got their token and TLS files through the environment, not argv.
  StatePaths paths(config_.state_dir);
  for (const char* agent : {"agent-1", "agent-2"}) {
    absl::StatusOr<launch::PidRecord> r =
        launch::ParsePidRecord(*ReadFile(paths.AgentPidFile(agent)), agent);
    ASSERT_TRUE(r.ok()) << r.status();
    absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", r->pid, "/cmdline"));
    ASSERT_TRUE(cmdline.ok()) << cmdline.status();
    EXPECT_FALSE(absl::StrContains(*cmdline, kAgent)) << agent;
    EXPECT_FALSE(absl::StrContains(*cmdline, "--token")) << agent;
  }
}

TEST_F(LaunchedCredentials, TheItemsCommandSeesNoTokenNorKeyInItsOrItsAgentsEnvironment) {
  StartController();
  v1::SubmitRequest req;
  *req.add_items() = MakeItem("env-1", "p");
  v1::SubmitResponse resp;
  grpc::Status st = controller_->control().Submit(TokenCtx(kAdmin).get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(WaitFor([&] { return Status().queue().done() == 1; }, absl::Seconds(60)))
      << ControllerLog() << AgentLog("agent-1");

  const std::string env = Out("env-1.env");
  const std::string agentd_env = Out("env-1.agentd-env");
  ASSERT_TRUE(absl::StrContains(env, "HARNESS_ITEM_ID=env-1")) << env;
  // agentd did get the launcher's TLS paths (so the parent environment is the right one).
  ASSERT_TRUE(absl::StrContains(agentd_env, absl::StrCat("HARNESS_CA=", certs_, "/ca.pem")))
      << agentd_env;
  for (const std::string& text : {env, agentd_env}) {
    for (const char* secret : {kAgent, kAdmin, kRead}) {
      EXPECT_FALSE(absl::StrContains(text, secret)) << secret << " in:\n" << text;
    }
  }
  EXPECT_FALSE(absl::StrContains(env, "HARNESS_KEY=")) << env;
  EXPECT_FALSE(absl::StrContains(env, "HARNESS_TOKEN=")) << env;
}

}  // namespace
}  // namespace harness::testing
