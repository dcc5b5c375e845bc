// The gRPC server interceptor that feeds RpcMetrics: it notes when a call starts and records
// the method, status code and duration when the call sends its status. Nothing else.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "controller/rpc_metrics.h"

namespace harness {

// A factory for ServerBuilder::experimental().SetInterceptorCreators(); `metrics` must outlive
// the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptors(
    RpcMetrics* metrics);

}  // namespace harness
