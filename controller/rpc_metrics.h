// RpcMetrics: calls and their durations per gRPC method and status code, for /metrics. Filled by
// a server interceptor (rpc_metrics_interceptor.h) as each call sends its status, and by the
// agents' Session stream itself (session_reactor.h); lock-free
// (atomics in a table fixed at construction: the methods of rpc/access_policy.cc's
// MethodRoles(), and "other" for the rest, e.g. health checks and reflection). No gRPC here.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/histogram.h"

namespace harness {

// The agents' Session stream, which records its own calls (rpc_metrics_interceptor.h says why).
inline constexpr absl::string_view kSessionMethod = "/harness.v1.AgentService/Session";

class RpcMetrics {
 public:
  static constexpr int kCodes = 17;  // grpc::StatusCode OK (0) .. UNAUTHENTICATED (16)
  // The status code's name as gRPC spells it ("OK", "NOT_FOUND", ...); "UNKNOWN" out of range.
  static const char* CodeName(int code);

  RpcMetrics();

  // A call of `method` ("/harness.v1.ControlService/Status") ended with `code` after `duration`
  // (for a stream: its whole life).
  void Record(absl::string_view method, int code, absl::Duration duration);

  struct Method {
    std::string name;  // the full method name, or "other"
    std::array<uint64_t, kCodes> calls_by_code{};
    HistogramSnapshot duration;
  };
  // Every method, including those never called (their counts are 0).
  std::vector<Method> Get() const;

 private:
  struct Slot {
    std::string name;
    std::array<std::atomic<uint64_t>, kCodes> calls{};
    Histogram duration{Histogram::LatencyBounds()};
  };
  std::vector<std::unique_ptr<Slot>> slots_;  // fixed after construction; the last is "other"
};

}  // namespace harness
