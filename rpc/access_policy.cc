// Token checks (see access_policy.h).
#include "rpc/access_policy.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"

namespace harness {
namespace {

constexpr char kBearer[] = "Bearer ";

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAgent:
      return "agent";
    case Role::kRead:
      return "read";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

const std::vector<std::pair<absl::string_view, Role>>& MethodRoles() {
  static const auto* table = new std::vector<std::pair<absl::string_view, Role>>{
      {"/harness.v1.AgentService/Register", Role::kAgent},
      {"/harness.v1.AgentService/Session", Role::kAgent},
      {"/harness.v1.AgentService/Acquire", Role::kAgent},
      {"/harness.v1.AgentService/Complete", Role::kAgent},
      {"/harness.v1.AgentService/Fail", Role::kAgent},
      {"/harness.v1.AgentService/Release", Role::kAgent},
      {"/harness.v1.AgentService/FetchBase", Role::kAgent},
      {"/harness.v1.AgentService/UploadResult", Role::kAgent},
      {"/harness.v1.ControlService/Submit", Role::kAdmin},
      {"/harness.v1.ControlService/List", Role::kRead},
      {"/harness.v1.ControlService/Get", Role::kRead},
      {"/harness.v1.ControlService/Cancel", Role::kAdmin},
      {"/harness.v1.ControlService/Retry", Role::kAdmin},
      {"/harness.v1.ControlService/Status", Role::kRead},
      {"/harness.v1.ControlService/WatchStatus", Role::kRead},
      {"/harness.v1.ControlService/Scale", Role::kAdmin},
      {"/harness.v1.ControlService/Drain", Role::kAdmin},
      {"/harness.v1.ControlService/StopAgent", Role::kAdmin},
      {"/harness.v1.ControlService/ListAgents", Role::kRead},
      {"/harness.v1.ControlService/FollowLog", Role::kRead},
      {"/harness.v1.ControlService/WatchEvents", Role::kRead},
  };
  return *table;
}

std::optional<Role> RequiredRole(absl::string_view method) {
  for (const auto& [name, role] : MethodRoles()) {
    if (name == method) return role;
  }
  return std::nullopt;
}

AccessPolicy::AccessPolicy(const AccessTokens& tokens) {
  auto add = [this](Role role, const std::string& token) {
    if (token.empty()) return;
    Known k{role, {}};
    SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), k.digest.data());
    known_.push_back(k);
  };
  add(Role::kAdmin, tokens.admin);
  add(Role::kRead, tokens.read);
  add(Role::kAgent, tokens.agent);
  enabled_ = !known_.empty();
}

absl::StatusOr<Role> AccessPolicy::Authenticate(absl::string_view what,
                                                std::optional<absl::string_view> header) const {
  if (!header.has_value() || header->empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat(what, ": this controller requires a token (authorization: Bearer ...)"));
  }
  if (!absl::StartsWith(*header, kBearer)) {
    return absl::UnauthenticatedError(
        absl::StrCat(what, ": the authorization metadata must read \"Bearer <token>\""));
  }
  absl::string_view token = header->substr(sizeof(kBearer) - 1);
  Digest presented{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), presented.data());
  // Every known digest is compared (no early exit), each in constant time.
  std::optional<Role> matched;
  for (const Known& k : known_) {
    if (CRYPTO_memcmp(k.digest.data(), presented.data(), presented.size()) == 0) {
      matched = k.role;
    }
  }
  if (!matched.has_value()) {
    return absl::UnauthenticatedError(absl::StrCat(what, ": the token is not valid here"));
  }
  return *matched;
}

absl::Status AccessPolicy::Permit(absl::string_view what, Role matched, Role needed) {
  const bool allowed = matched == needed || (matched == Role::kAdmin && needed == Role::kRead);
  if (allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      what, " needs the ", needed == Role::kRead ? "read or admin" : RoleName(needed),
      " token; this is the ", RoleName(matched), " token"));
}

absl::Status AccessPolicy::Check(absl::string_view method,
                                 std::optional<absl::string_view> header) const {
  if (!enabled_) return absl::OkStatus();
  absl::StatusOr<Role> matched = Authenticate(method, header);
  if (!matched.ok()) return matched.status();
  std::optional<Role> needed = RequiredRole(method);
  if (!needed.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat(method, ": no token may call this method"));
  }
  return Permit(method, *matched, *needed);
}

absl::Status AccessPolicy::CheckRole(absl::string_view what, Role needed,
                                     std::optional<absl::string_view> header) const {
  if (!enabled_) return absl::OkStatus();
  absl::StatusOr<Role> matched = Authenticate(what, header);
  if (!matched.ok()) return matched.status();
  return Permit(what, *matched, needed);
}

absl::Status Authorize(const AccessPolicy& policy, const grpc::CallbackServerContext& ctx,
                       absl::string_view method) {
  if (!policy.enabled()) return absl::OkStatus();
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  std::optional<absl::string_view> header;
  if (it != md.end()) header = absl::string_view(it->second.data(), it->second.size());
  return policy.Check(method, header);
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot read token file ", path, ": ", content.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*content));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": token file ", path, " is empty"));
  }
  return token;
}

}  // namespace harness
