// ControllerServer: the gRPC server around a Controller: AgentService, ControlService, the
// standard health service (grpc.health.v1) and server reflection, with keepalive set explicitly.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controller/controller.h"
#include "controller/service_agent.h"
#include "controller/service_control.h"

namespace harness {

class ControllerServer {
 public:
  // Listens on `listen` (HOST:PORT, [v6]:PORT or :PORT; port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<ControllerServer>> Start(Controller* controller,
                                                                 const std::string& listen);
  ~ControllerServer();

  // HOST:PORT actually listened on.
  const std::string& address() const { return address_; }
  // Ends every call (waiting up to `grace` for in-flight ones) and stops the server.
  void Shutdown(absl::Duration grace);

 private:
  ControllerServer(Controller* c, std::unique_ptr<PackSpooler> spooler)
      : agent_service_(c, std::move(spooler)), control_service_(c) {}

  // Before server_: the services (FetchBase's spooler threads) outlive the server's calls.
  AgentServiceImpl agent_service_;
  ControlServiceImpl control_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace harness
