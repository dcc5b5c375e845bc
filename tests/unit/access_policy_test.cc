// The access rules: the method -> role table, token checks (UNAUTHENTICATED vs
// PERMISSION_DENIED), token files, and the controller's listen policy and security setup.
// In-process; the same rules over real sockets are in tests/integration/auth_test.cc.
#include "rpc/access_policy.h"

#include <fstream>
#include <map>

#include "controller/server_security.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/v1/agent.pb.h"
#include "harness/v1/control.pb.h"
#include "rpc/client_auth.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::testing::HasSubstr;

constexpr char kSubmit[] = "/harness.v1.ControlService/Submit";
constexpr char kStatus[] = "/harness.v1.ControlService/Status";
constexpr char kComplete[] = "/harness.v1.AgentService/Complete";

AccessPolicy ThreeTokens() { return AccessPolicy(AccessTokens{"adm1n", "r3ad", "ag3nt"}); }

TEST(AccessPolicy, EveryMethodOfBothServicesHasARole) {
  for (const google::protobuf::ServiceDescriptor* s :
       {v1::SubmitRequest::descriptor()->file()->FindServiceByName("ControlService"),
        v1::RegisterRequest::descriptor()->file()->FindServiceByName("AgentService")}) {
    ASSERT_NE(s, nullptr);
    for (int i = 0; i < s->method_count(); ++i) {
      std::string name = "/" + s->full_name() + "/" + s->method(i)->name();
      EXPECT_TRUE(RequiredRole(name).has_value()) << name << " is missing from the table";
    }
  }
}

TEST(AccessPolicy, TheAgentServiceNeedsTheAgentTokenAndMutationsTheAdminToken) {
  std::map<std::string, Role> want = {
      {"/harness.v1.AgentService/Register", Role::kAgent},
      {"/harness.v1.AgentService/UploadResult", Role::kAgent},
      {kSubmit, Role::kAdmin},
      {"/harness.v1.ControlService/Cancel", Role::kAdmin},
      {"/harness.v1.ControlService/Retry", Role::kAdmin},
      {"/harness.v1.ControlService/Scale", Role::kAdmin},
      {"/harness.v1.ControlService/Drain", Role::kAdmin},
      {"/harness.v1.ControlService/StopAgent", Role::kAdmin},
      {kStatus, Role::kRead},
      {"/harness.v1.ControlService/List", Role::kRead},
      {"/harness.v1.ControlService/Get", Role::kRead},
      {"/harness.v1.ControlService/WatchStatus", Role::kRead},
      {"/harness.v1.ControlService/ListAgents", Role::kRead},
  };
  for (const auto& [method, role] : want) {
    EXPECT_EQ(RequiredRole(method), role) << method;
  }
}

TEST(AccessPolicy, WithoutTokensEverythingIsAllowed) {
  AccessPolicy open;
  EXPECT_FALSE(open.enabled());
  EXPECT_TRUE(open.Check(kSubmit, std::nullopt).ok());
  EXPECT_TRUE(open.Check("/x.Y/Z", "Bearer whatever").ok());
  EXPECT_FALSE(AccessPolicy(AccessTokens{}).enabled());
}

TEST(AccessPolicy, AMissingOrUnknownTokenIsUnauthenticated) {
  AccessPolicy p = ThreeTokens();
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, std::nullopt)));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "Bearer wrong")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "Bearer adm1n2")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "Bearer ")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "Basic adm1n")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.Check(kStatus, "adm1n")));
}

TEST(AccessPolicy, AValidTokenOfTheWrongKindIsPermissionDenied) {
  AccessPolicy p = ThreeTokens();
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(kSubmit, "Bearer r3ad")));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(kSubmit, "Bearer ag3nt")));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(kStatus, "Bearer ag3nt")));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(kComplete, "Bearer adm1n")));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check(kComplete, "Bearer r3ad")));
  EXPECT_TRUE(absl::IsPermissionDenied(p.Check("/harness.v1.Other/Call", "Bearer adm1n")));
}

TEST(AccessPolicy, EachTokenOpensItsOwnMethodsAndAdminAlsoReads) {
  AccessPolicy p = ThreeTokens();
  EXPECT_TRUE(p.Check(kSubmit, "Bearer adm1n").ok());
  EXPECT_TRUE(p.Check(kStatus, "Bearer adm1n").ok());
  EXPECT_TRUE(p.Check(kStatus, "Bearer r3ad").ok());
  EXPECT_TRUE(p.Check(kComplete, "Bearer ag3nt").ok());
}

TEST(AccessPolicy, CheckRoleAppliesTheSameRulesToARequestThatIsNotAnRpc) {
  AccessPolicy p = ThreeTokens();
  EXPECT_TRUE(absl::IsUnauthenticated(p.CheckRole("GET /metrics", Role::kRead, std::nullopt)));
  EXPECT_TRUE(absl::IsUnauthenticated(p.CheckRole("GET /metrics", Role::kRead, "Bearer nope")));
  EXPECT_TRUE(absl::IsUnauthenticated(p.CheckRole("GET /metrics", Role::kRead, "r3ad")));
  absl::Status agent = p.CheckRole("GET /metrics", Role::kRead, "Bearer ag3nt");
  EXPECT_TRUE(absl::IsPermissionDenied(agent));
  EXPECT_THAT(std::string(agent.message()), HasSubstr("GET /metrics needs the read or admin"));
  EXPECT_TRUE(p.CheckRole("GET /metrics", Role::kRead, "Bearer r3ad").ok());
  EXPECT_TRUE(p.CheckRole("GET /metrics", Role::kRead, "Bearer adm1n").ok());
  EXPECT_TRUE(AccessPolicy().CheckRole("GET /metrics", Role::kRead, std::nullopt).ok());
}

TEST(AccessPolicy, MessagesNeverContainATokenPresentedOrKnown) {
  AccessPolicy p = ThreeTokens();
  for (const char* presented : {"Bearer wrong-s3cret", "Bearer r3ad", "Bearer ag3nt"}) {
    std::string m(p.Check(kSubmit, presented).message());
    for (const char* t : {"wrong-s3cret", "r3ad", "ag3nt", "adm1n"}) {
      EXPECT_THAT(m, ::testing::Not(HasSubstr(t))) << presented;
    }
  }
}

class SecuritySetup : public ::testing::Test {
 protected:
  std::string File(const std::string& name, const std::string& content) {
    std::string path = dir_.Sub(name);
    std::ofstream(path) << content;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(SecuritySetup, TokenFilesAreTrimmedOfTheirLineBreak) {
  absl::StatusOr<std::string> t = ReadTokenFile(File("t", "s3cret\n"), "x");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "s3cret");
}

TEST_F(SecuritySetup, AnEmptyOrMissingTokenFileIsAnErrorNamingIt) {
  Config c;
  c.auth.agent_token_file = File("empty", "\n");
  absl::StatusOr<ServerSecurity> s = LoadServerSecurity(c, [](const char*) { return nullptr; });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("harness.auth.agent_token_file"));
  EXPECT_THAT(s.status().message(), HasSubstr(c.auth.agent_token_file));
  c.auth.agent_token_file = dir_.Sub("missing");
  s = LoadServerSecurity(c, [](const char*) { return nullptr; });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(c.auth.agent_token_file));
}

TEST_F(SecuritySetup, EnvironmentTokensOverrideTheFiles) {
  Config c;
  c.auth.admin_token_file = File("admin", "from-file\n");
  c.auth.read_token_file = File("read", "read-file\n");
  absl::StatusOr<ServerSecurity> s = LoadServerSecurity(c, [](const char* name) -> const char* {
    return std::string(name) == "HARNESS_ADMIN_TOKEN" ? "from-env" : nullptr;
  });
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tokens.admin, "from-env");
  EXPECT_EQ(s->tokens.read, "read-file");
  EXPECT_EQ(s->tokens.agent, "");
}

TEST_F(SecuritySetup, TwoKindsWithTheSameTokenAreRefused) {
  Config c;
  c.auth.admin_token_file = File("admin", "same\n");
  c.auth.agent_token_file = File("agent", "same\n");
  EXPECT_FALSE(LoadServerSecurity(c, [](const char*) { return nullptr; }).ok());
}

TEST_F(SecuritySetup, ABadCertificateFileIsAnErrorNamingTheKey) {
  Config c;
  c.tls.cert = File("server.pem", "not a certificate");
  c.tls.key = File("server.key", "not a key");
  absl::StatusOr<ServerSecurity> s = LoadServerSecurity(c, [](const char*) { return nullptr; });
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("harness.tls.cert"));
  EXPECT_THAT(s.status().message(), HasSubstr("holds no PEM certificate"));
}

TEST(ListenPolicy, LoopbackAddressesNeedNothing) {
  for (const char* a : {"127.0.0.1:0", "127.0.0.2:7070", "localhost:7070", "[::1]:7070"}) {
    EXPECT_TRUE(IsLoopbackListen(a)) << a;
    EXPECT_TRUE(CheckListenPolicy(a, ServerSecurity{}, false).ok()) << a;
  }
  for (const char* a : {"0.0.0.0:7070", ":7070", "10.0.0.1:7070", "[::]:7070", "example.com:1"}) {
    EXPECT_FALSE(IsLoopbackListen(a)) << a;
  }
}

TEST(ListenPolicy, OtherAddressesNeedTlsAndTokensOrInsecure) {
  ServerSecurity none;
  absl::Status s = CheckListenPolicy("0.0.0.0:7070", none, false);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("harness.tls.cert"));
  EXPECT_THAT(s.message(), HasSubstr("harness.auth.admin_token_file"));
  EXPECT_THAT(s.message(), HasSubstr("--insecure"));
  EXPECT_TRUE(CheckListenPolicy("0.0.0.0:7070", none, /*insecure=*/true).ok());

  ServerSecurity tls_only;
  tls_only.cert = "c.pem";
  tls_only.key = "c.key";
  s = CheckListenPolicy(":7070", tls_only, false);
  EXPECT_THAT(s.message(), HasSubstr("tokens"));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("TLS (")));

  ServerSecurity both = tls_only;
  both.tokens.admin = "a";
  EXPECT_TRUE(CheckListenPolicy(":7070", both, false).ok());
}

TEST_F(SecuritySetup, ClientsTakeATokenFromOneSourceOnly) {
  auto no_env = [](const char*) -> const char* { return nullptr; };
  ClientAuthFlags f;
  f.token = "a";
  f.token_file = File("t", "b\n");
  EXPECT_FALSE(ResolveClientAuth(f, no_env).ok());
  f.token.clear();
  absl::StatusOr<ClientAuth> a = ResolveClientAuth(f, no_env);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->token, "b");
  a = ResolveClientAuth(ClientAuthFlags{}, [](const char* n) -> const char* {
    return std::string(n) == "HARNESS_TOKEN" ? "env" : nullptr;
  });
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->token, "env");
  EXPECT_FALSE(a->tls.enabled());
  ClientAuthFlags cert_without_ca;
  cert_without_ca.cert = "c.pem";
  cert_without_ca.key = "c.key";
  EXPECT_THAT(ResolveClientAuth(cert_without_ca, no_env).status().message(), HasSubstr("--ca"));
}

}  // namespace
}  // namespace harness
