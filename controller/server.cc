// The controller's gRPC server (see server.h).
#include "controller/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "controller/rpc_metrics_interceptor.h"
#include "core/paths.h"
#include "rpc/channel.h"

namespace harness {
namespace {

// FetchBase packs built at once (each build's delta search uses every core already).
constexpr int kPackBuildThreads = 2;

std::shared_ptr<grpc::ServerCredentials> Credentials(const ServerSecurity& security) {
  if (!security.tls()) return grpc::InsecureServerCredentials();
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      security.key, security.cert, security.client_ca, kTlsRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!security.client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControllerServer>> ControllerServer::Start(
    Controller* controller, const std::string& listen, const ServerSecurity& security) {
  if (absl::Status s = ValidateListenAddress(listen); !s.ok()) return s;
  std::string bind = listen;
  if (!bind.empty() && bind[0] == ':') bind = "0.0.0.0" + bind;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<PackSpooler> spooler;
  if (RepoResults* repo = controller->repo()) {
    absl::StatusOr<std::unique_ptr<PackSpooler>> s = PackSpooler::Open(
        repo, StatePaths(controller->options().queue.state_dir).SpoolDir(), kPackBuildThreads);
    if (!s.ok()) return s.status();
    spooler = *std::move(s);
  }
  auto server =
      std::unique_ptr<ControllerServer>(
          new ControllerServer(controller, std::move(spooler), security.tokens));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(bind, Credentials(security), &port);
  builder.RegisterService(&server->agent_service_);
  builder.RegisterService(&server->control_service_);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(RpcMetricsInterceptors(&controller->rpc_metrics()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Agents ping every 10 s; allow that without calls in flight.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // limits.max_message_mb: gRPC refuses a larger message with RESOURCE_EXHAUSTED before any
  // handler sees it. Answers may be as large as the clients take (rpc/channel.h).
  builder.SetMaxReceiveMessageSize(controller->options().max_message_bytes);
  builder.SetMaxSendMessageSize(kMaxClientMessageBytes);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (address in use or not available here)"));
  }
  std::string host = bind.substr(0, bind.rfind(':'));
  server->address_ = absl::StrCat(host, ":", port);
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  health->SetServingStatus("harness.v1.AgentService", true);
  health->SetServingStatus("harness.v1.ControlService", true);
  return server;
}

void ControllerServer::Shutdown(absl::Duration grace) {
  if (!server_) return;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  server_->Wait();
  server_.reset();
}

ControllerServer::~ControllerServer() { Shutdown(absl::ZeroDuration()); }

}  // namespace harness
