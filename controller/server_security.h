// What protects the controller's port, decided once at start from the config and environment:
// the tokens (auth.*_token_file, overridden by HARNESS_ADMIN_TOKEN, HARNESS_READ_TOKEN,
// HARNESS_AGENT_TOKEN), the TLS files (tls.cert, tls.key, tls.client_ca), and the listen policy
// (a non-loopback address needs TLS and tokens, or --insecure). No gRPC server here.
#pragma once

#include <cstdlib>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"
#include "rpc/access_policy.h"

namespace harness {

struct ServerSecurity {
  AccessTokens tokens;
  std::string cert;       // PEM paths as the controller opens them; cert empty: no TLS
  std::string key;
  std::string client_ca;  // set: mTLS
  bool tls() const { return !cert.empty(); }
};

// Reads the token files (each trimmed; unreadable or empty: InvalidArgument naming the key and
// the file) and applies the environment, and checks the TLS files (CheckServerTlsFiles).
// Paths in `config` are used as given (resolve them against the config file first).
absl::StatusOr<ServerSecurity> LoadServerSecurity(
    const Config& config, const std::function<const char*(const char*)>& getenv = ::getenv);

// True for 127.0.0.0/8, [::1] and localhost; ":PORT" (every interface) and anything else is not.
bool IsLoopbackListen(const std::string& listen);

// The listen policy: loopback needs nothing; any other address needs TLS and a token, unless
// `insecure`. The refusal says what to add.
absl::Status CheckListenPolicy(const std::string& listen, const ServerSecurity& security,
                               bool insecure);

// The same policy for the HTTP listener (http.listen; empty: off, nothing to check). It serves
// HTTPS with the same TLS files and asks for the same tokens.
absl::Status CheckHttpListenPolicy(const std::string& listen, const ServerSecurity& security,
                                   bool insecure);

}  // namespace harness
