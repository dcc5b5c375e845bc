// Per-method RPC counts and durations (see rpc_metrics.h).
#include "controller/rpc_metrics.h"

#include "rpc/access_policy.h"

namespace harness {

const char* RpcMetrics::CodeName(int code) {
  static constexpr const char* kNames[kCodes] = {
      "OK",           "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS",   "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",  "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",      "DATA_LOSS",
      "UNAUTHENTICATED"};
  return code >= 0 && code < kCodes ? kNames[code] : "UNKNOWN";
}

RpcMetrics::RpcMetrics() {
  for (const auto& [name, role] : MethodRoles()) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->name = std::string(name);
  }
  slots_.push_back(std::make_unique<Slot>());
  slots_.back()->name = "other";
}

void RpcMetrics::Record(absl::string_view method, int code, absl::Duration duration) {
  Slot* slot = slots_.back().get();
  for (size_t i = 0; i + 1 < slots_.size(); ++i) {
    if (slots_[i]->name == method) {
      slot = slots_[i].get();
      break;
    }
  }
  if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
  slot->calls[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  slot->duration.Observe(duration);
}

std::vector<RpcMetrics::Method> RpcMetrics::Get() const {
  std::vector<Method> out;
  for (const auto& slot : slots_) {
    Method m;
    m.name = slot->name;
    for (int c = 0; c < kCodes; ++c) {
      m.calls_by_code[c] = slot->calls[c].load(std::memory_order_relaxed);
    }
    m.duration = slot->duration.Get();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace harness
