// The gRPC server interceptor that feeds RpcMetrics: it notes when a call starts and records
// the method, status code and duration when the call sends its status. Nothing else.
//
// Not for the agents' Session stream: an interceptor on a call sends each of its messages
// through gRPC's interception path, which with one agent cost the controller 3-5 of its 16-18
// context switches per item (docs/PERFORMANCE.md). The stream records its own end
// (SessionReactor, and AgentServiceImpl::Session for a refused one).
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
