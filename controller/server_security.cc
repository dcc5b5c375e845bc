// Tokens, TLS files and the listen policy (see server_security.h).
#include "controller/server_security.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rpc/tls_files.h"

namespace harness {

absl::StatusOr<ServerSecurity> LoadServerSecurity(
    const Config& config, const std::function<const char*(const char*)>& getenv) {
  ServerSecurity out;
  struct Source {
    const char* env;
    const char* key;
    const std::string& file;
    std::string* token;
  };
  for (const Source& s :
       {Source{"HARNESS_ADMIN_TOKEN", "harness.auth.admin_token_file",
               config.auth.admin_token_file, &out.tokens.admin},
        Source{"HARNESS_READ_TOKEN", "harness.auth.read_token_file", config.auth.read_token_file,
               &out.tokens.read},
        Source{"HARNESS_AGENT_TOKEN", "harness.auth.agent_token_file",
               config.auth.agent_token_file, &out.tokens.agent}}) {
    const char* v = getenv(s.env);
    if (v != nullptr && *v != '\0') {
      *s.token = v;
      continue;
    }
    if (s.file.empty()) continue;
    absl::StatusOr<std::string> t = ReadTokenFile(s.file, s.key);
    if (!t.ok()) return t.status();
    *s.token = *std::move(t);
  }
  for (const auto& [a, b] : {std::pair{&out.tokens.admin, &out.tokens.read},
                             std::pair{&out.tokens.admin, &out.tokens.agent},
                             std::pair{&out.tokens.read, &out.tokens.agent}}) {
    if (!a->empty() && *a == *b) {
      return absl::InvalidArgumentError(
          "harness.auth: the admin, read and agent tokens must differ from each other "
          "(one token of two kinds would grant both)");
    }
  }
  if (!config.tls.cert.empty()) {
    if (absl::Status s = CheckServerTlsFiles(config.tls.cert, config.tls.key, config.tls.client_ca);
        !s.ok()) {
      return s;
    }
    out.cert = config.tls.cert;
    out.key = config.tls.key;
    out.client_ca = config.tls.client_ca;
  }
  return out;
}

bool IsLoopbackListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host == "localhost" || host == "[::1]") return true;
  return absl::StartsWith(host, "127.");
}

absl::Status CheckListenPolicy(const std::string& listen, const ServerSecurity& security,
                               bool insecure) {
  if (IsLoopbackListen(listen) || insecure) return absl::OkStatus();
  std::string missing;
  if (!security.tls()) missing = "TLS (harness.tls.cert and harness.tls.key)";
  if (!security.tokens.Any()) {
    absl::StrAppend(&missing, missing.empty() ? "" : " and ",
                    "tokens (harness.auth.admin_token_file and agent_token_file, or "
                    "HARNESS_ADMIN_TOKEN and HARNESS_AGENT_TOKEN)");
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "listening on ", listen, " (not a loopback address) needs ", missing,
      ": add them (see docs/SECURITY.md, scripts/make-certs.sh), listen on 127.0.0.1, or "
      "pass --insecure to serve anyone who can reach the port"));
}

absl::Status CheckHttpListenPolicy(const std::string& listen, const ServerSecurity& security,
                                   bool insecure) {
  if (listen.empty()) return absl::OkStatus();
  absl::Status s = CheckListenPolicy(listen, security, insecure);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat("harness.http.listen: ", s.message()));
}

}  // namespace harness
