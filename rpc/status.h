// The one place where absl::Status and grpc::Status are translated (STYLE.md lesson 5).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace harness {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace harness
