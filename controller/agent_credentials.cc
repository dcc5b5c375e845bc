// The launched agents' credentials (see agent_credentials.h).
#include "controller/agent_credentials.h"

#include <errno.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "rpc/tls_files.h"

namespace harness {
namespace {

std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }

absl::StatusOr<std::string> Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve ", Quote(path), ": no working directory (errno ", errno, ")"));
  }
  return absl::StrCat(cwd, "/", path);
}

}  // namespace

absl::StatusOr<launch::AgentCredentials> LaunchedAgentCredentials(const Config& config,
                                                                  const ServerSecurity& security) {
  const AgentConfig& a = config.agent;
  const bool any_tls_key = !a.tls_ca.empty() || !a.tls_cert.empty() || !a.tls_key.empty();
  if (a.launcher == "none") {
    if (any_tls_key) {
      return absl::InvalidArgumentError(
          "harness.agent.tls_ca, tls_cert and tls_key are for the agents the controller "
          "launches, and harness.agent.launcher is \"none\": remove them (agents started "
          "elsewhere take --ca, --cert and --key)");
    }
    return launch::AgentCredentials{};
  }
  if (!a.tls_ca.empty() && !security.tls()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "harness.agent.tls_ca (", Quote(a.tls_ca),
        ") needs TLS on the controller's port: set harness.tls.cert and harness.tls.key"));
  }
  if (!a.tls_cert.empty() && security.client_ca.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("harness.agent.tls_cert (", Quote(a.tls_cert),
                     ") is only sent when the controller asks for client certificates: set "
                     "harness.tls.client_ca (mTLS), or remove harness.agent.tls_cert and tls_key"));
  }
  if (security.tls() && a.tls_ca.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the agents the controller launches (agent.launcher: ", a.launcher,
        ") dial it with TLS and must trust its certificate: set harness.agent.tls_ca to the "
        "CA that signed harness.tls.cert (ca.pem from scripts/make-certs.sh), or use "
        "agent.launcher: none"));
  }
  if (!security.client_ca.empty() && a.tls_cert.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "harness.tls.client_ca asks every client for a certificate (mTLS): set "
        "harness.agent.tls_cert and harness.agent.tls_key for the agents the controller "
        "launches (agent.pem and agent.key from scripts/make-certs.sh), or use "
        "agent.launcher: none"));
  }
  launch::AgentCredentials out;
  out.token = security.tokens.agent;
  for (const auto& [from, to] :
       {std::pair{&a.tls_ca, &out.ca_file}, std::pair{&a.tls_cert, &out.cert_file},
        std::pair{&a.tls_key, &out.key_file}}) {
    absl::StatusOr<std::string> abs = Absolute(*from);
    if (!abs.ok()) return abs.status();
    *to = *std::move(abs);
  }
  // The same checks agentd makes at its start, made now, naming the config keys.
  absl::StatusOr<ClientTls> tls = LoadClientTls(out.ca_file, out.cert_file, out.key_file);
  if (!tls.ok()) {
    return absl::InvalidArgumentError(
        absl::StrReplaceAll(tls.status().message(), {{"--ca", "harness.agent.tls_ca"},
                                                     {"--cert", "harness.agent.tls_cert"},
                                                     {"--key", "harness.agent.tls_key"}}));
  }
  return out;
}

}  // namespace harness
