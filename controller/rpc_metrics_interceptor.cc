// RPC metrics interceptor (see rpc_metrics_interceptor.h).
#include "controller/rpc_metrics_interceptor.h"

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace harness {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(RpcMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method != nullptr ? method : ""), started_(absl::Now()) {}
  // `method` is the call's (ServerRpcInfo's), which outlives this interceptor.

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->Record(method_, static_cast<int>(methods->GetSendStatus().error_code()),
                       absl::Now() - started_);
    }
    methods->Proceed();
  }

 private:
  RpcMetrics* const metrics_;
  const absl::string_view method_;
  const absl::Time started_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(RpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    if (method != nullptr && method == kSessionMethod) return nullptr;  // records its own
    return new RpcMetricsInterceptor(metrics_, method);
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcMetricsInterceptors(
    RpcMetrics* metrics) {
  return std::make_unique<Factory>(metrics);
}

}  // namespace harness
