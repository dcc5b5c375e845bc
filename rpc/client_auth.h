// The credentials a client (agentd, harnessctl) presents to the controller, from its flags and
// environment: the bearer token (--token, else --token-file, else $HARNESS_TOKEN) and the TLS
// files (--ca, --cert, --key, else $HARNESS_CA, $HARNESS_CERT, $HARNESS_KEY). TLS is used when
// a CA is given.
#pragma once

#include <cstdlib>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "rpc/tls_files.h"

namespace harness {

struct ClientAuthFlags {
  std::string token;       // "" when not given
  std::string token_file;  // "" when not given
  std::string ca, cert, key;
};

struct ClientAuth {
  std::string token;  // "" for none
  ClientTls tls;
};

// InvalidArgument (naming the flag and file) when both --token and --token-file are given, a
// token file is unreadable or empty, or a TLS file is bad (see LoadClientTls).
absl::StatusOr<ClientAuth> ResolveClientAuth(
    const ClientAuthFlags& flags,
    const std::function<const char*(const char*)>& getenv = ::getenv);

}  // namespace harness
