// Client credentials from flags and environment (see client_auth.h).
#include "rpc/client_auth.h"

#include "rpc/access_policy.h"

namespace harness {

absl::StatusOr<ClientAuth> ResolveClientAuth(
    const ClientAuthFlags& flags, const std::function<const char*(const char*)>& getenv) {
  auto env = [&](const char* name) {
    const char* v = getenv(name);
    return v == nullptr ? std::string() : std::string(v);
  };
  ClientAuth out;
  if (!flags.token.empty() && !flags.token_file.empty()) {
    return absl::InvalidArgumentError("give --token or --token-file, not both");
  }
  if (!flags.token.empty()) {
    out.token = flags.token;
  } else if (!flags.token_file.empty()) {
    absl::StatusOr<std::string> t = ReadTokenFile(flags.token_file, "--token-file");
    if (!t.ok()) return t.status();
    out.token = *std::move(t);
  } else {
    out.token = env("HARNESS_TOKEN");
  }
  auto pick = [&](const std::string& flag, const char* name) {
    return flag.empty() ? env(name) : flag;
  };
  absl::StatusOr<ClientTls> tls = LoadClientTls(
      pick(flags.ca, "HARNESS_CA"), pick(flags.cert, "HARNESS_CERT"), pick(flags.key, "HARNESS_KEY"));
  if (!tls.ok()) return tls.status();
  out.tls = *std::move(tls);
  return out;
}

}  // namespace harness
