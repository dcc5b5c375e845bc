// LaunchedAgentCredentials: the agent.tls_* keys are checked against what the controller's port
// asks for, so that launched agents can always connect and no key is accepted that does nothing.
// (The files themselves, and launched agents using them, are tested in
// tests/integration/launched_credentials_test.cc.)
#include "controller/agent_credentials.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

using ::testing::HasSubstr;

ServerSecurity Tls(bool mtls) {
  ServerSecurity s;
  s.cert = "/certs/server.pem";
  s.key = "/certs/server.key";
  if (mtls) s.client_ca = "/certs/ca.pem";
  return s;
}

std::string Refusal(const Config& c, const ServerSecurity& s) {
  absl::StatusOr<launch::AgentCredentials> r = LaunchedAgentCredentials(c, s);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  return std::string(r.status().message());
}

TEST(LaunchedAgentCredentials, WithoutTlsTheLaunchedAgentsGetTheAgentTokenOnly) {
  Config c;
  ServerSecurity s;
  s.tokens.agent = "agent-t";
  s.tokens.admin = "admin-t";
  absl::StatusOr<launch::AgentCredentials> r = LaunchedAgentCredentials(c, s);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (launch::AgentCredentials{"agent-t", "", "", ""}));
}

TEST(LaunchedAgentCredentials, TlsWithoutAnAgentCaIsRefusedSayingWhatToSet) {
  Config c;  // launcher: process
  EXPECT_THAT(Refusal(c, Tls(false)), HasSubstr("set harness.agent.tls_ca"));
  c.agent.launcher = "docker";
  EXPECT_THAT(Refusal(c, Tls(false)), HasSubstr("agent.launcher: docker"));
}

TEST(LaunchedAgentCredentials, MtlsWithoutAnAgentCertificateIsRefusedSayingWhatToSet) {
  Config c;
  c.agent.tls_ca = "/certs/ca.pem";
  EXPECT_THAT(Refusal(c, Tls(true)),
              HasSubstr("set harness.agent.tls_cert and harness.agent.tls_key"));
}

TEST(LaunchedAgentCredentials, KeysThatWouldDoNothingAreRefused) {
  Config c;
  c.agent.tls_ca = "/certs/ca.pem";
  EXPECT_THAT(Refusal(c, ServerSecurity{}), HasSubstr("needs TLS on the controller's port"));
  c.agent.tls_cert = "/certs/agent.pem";
  c.agent.tls_key = "/certs/agent.key";
  EXPECT_THAT(Refusal(c, Tls(false)), HasSubstr("set harness.tls.client_ca"));
  c.agent.launcher = "none";
  EXPECT_THAT(Refusal(c, Tls(true)), HasSubstr("harness.agent.launcher is \"none\""));
}

TEST(LaunchedAgentCredentials, AnUnreadableFileIsRefusedNamingTheKey) {
  Config c;
  c.agent.tls_ca = "/nonexistent/ca.pem";
  EXPECT_THAT(Refusal(c, Tls(false)),
              HasSubstr("harness.agent.tls_ca: cannot read /nonexistent/ca.pem"));
}

}  // namespace
}  // namespace harness
