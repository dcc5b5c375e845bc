// ControllerServer: the gRPC server around a Controller: AgentService, ControlService, the
// standard health service (grpc.health.v1) and server reflection, with keepalive set explicitly.
// With TLS files the port speaks TLS only (mTLS when a client CA is set); the certificates are
// re-read by gRPC's file watcher (kTlsRefresh), so replaced files are used by new connections
// while existing ones go on. Tokens are checked by each service handler (access_policy.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/controller.h"
#include "controller/server_security.h"
#include "controller/service_agent.h"
#include "controller/service_control.h"

namespace harness {

// How often the TLS files are looked at for changes (gRPC's FileWatcherCertificateProvider).
inline constexpr int kTlsRefreshSeconds = 1;

class ControllerServer {
 public:
  // Listens on `listen` (HOST:PORT, [v6]:PORT or :PORT; port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<ControllerServer>> Start(
      Controller* controller, const std::string& listen, const ServerSecurity& security = {});
  ~ControllerServer();

  // HOST:PORT actually listened on.
  const std::string& address() const { return address_; }
  // Ends every call (waiting up to `grace` for in-flight ones) and stops the server.
  void Shutdown(absl::Duration grace);

 private:
  ControllerServer(Controller* c, std::unique_ptr<PackSpooler> spooler,
                   const AccessTokens& tokens)
      : access_(tokens),
        agent_service_(c, std::move(spooler), &access_),
        control_service_(c, &access_) {}

  const AccessPolicy access_;
  // Before server_: the services (FetchBase's spooler threads) outlive the server's calls.
  AgentServiceImpl agent_service_;
  ControlServiceImpl control_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace harness
