// AccessPolicy: who may call which RPC. Bearer tokens (`authorization: Bearer <token>`) of three
// kinds: the agent token (the agent service only), the read token (status, items, agents,
// watch) and the admin token (the control service's mutating calls and every read). The method
// -> role table is data (MethodRoles() in access_policy.cc); every service handler calls
// Authorize() first, so the table is the one place the rules live. Tokens are kept only as
// SHA-256 digests and compared in constant time; neither they nor the presented value are ever
// put into a message or a log. No token configured: everything is allowed (the loopback default).
#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace harness {

enum class Role { kAgent, kRead, kAdmin };
const char* RoleName(Role role);

// The role each RPC needs, by full gRPC method name ("/harness.v1.ControlService/Submit").
// A method not listed is refused to every token while tokens are on.
const std::vector<std::pair<absl::string_view, Role>>& MethodRoles();
std::optional<Role> RequiredRole(absl::string_view method);

struct AccessTokens {
  std::string admin;  // empty: no token of this kind
  std::string read;
  std::string agent;
  bool Any() const { return !admin.empty() || !read.empty() || !agent.empty(); }
};

class AccessPolicy {
 public:
  AccessPolicy() = default;  // open: no token asked
  explicit AccessPolicy(const AccessTokens& tokens);

  // True when calls must carry a token.
  bool enabled() const { return enabled_; }
  // The answer for a call of `method` whose `authorization` metadata is `header` (nullopt:
  // absent). OK; UNAUTHENTICATED when no token or an unknown one is presented;
  // PERMISSION_DENIED when a valid token's role may not call `method`.
  absl::Status Check(absl::string_view method, std::optional<absl::string_view> header) const;
  // The same check for a caller that is not an RPC (the HTTP API): `what` names the request
  // in messages ("GET /metrics") and `needed` is its role. Same codes as Check.
  absl::Status CheckRole(absl::string_view what, Role needed,
                         std::optional<absl::string_view> header) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Known {
    Role role;
    Digest digest;
  };
  // The role of the presented token; UNAUTHENTICATED naming `what` if none matches.
  absl::StatusOr<Role> Authenticate(absl::string_view what,
                                    std::optional<absl::string_view> header) const;
  static absl::Status Permit(absl::string_view what, Role matched, Role needed);

  bool enabled_ = false;
  std::vector<Known> known_;
};

// The check for a server call: reads the call's `authorization` metadata. Every handler of
// AgentService and ControlService calls this before anything else.
absl::Status Authorize(const AccessPolicy& policy, const grpc::CallbackServerContext& ctx,
                       absl::string_view method);

// A token file's content without surrounding blanks and line breaks. An unreadable or empty
// file is InvalidArgument naming `what` and the file.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path, absl::string_view what);

}  // namespace harness
