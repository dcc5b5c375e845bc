// The /metrics page: every figure the controller keeps, in the Prometheus text format. Reads a
// status snapshot (Controller::Status(), as `harnessctl status` does) and the running totals
// (core/metrics.h, the queue's lease counters, the store's sync histogram, the pool's deaths,
// RpcMetrics), all of which take at most a short lock each and no I/O. docs/HTTP.md lists the
// metric names and their meaning; keep the two in step.
#pragma once

#include <string>

#include "controller/controller.h"

namespace harness::http {

std::string RenderMetricsPage(Controller& controller);

}  // namespace harness::http
