// Client channels to the controller, with keepalive set explicitly (STYLE.md lesson 9) and the
// bearer token, if any, attached to every call as `authorization: Bearer <token>`.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/time/time.h"

namespace harness {

struct ChannelOptions {
  std::string token;  // empty: none
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(5);
};

std::shared_ptr<grpc::Channel> MakeControllerChannel(const std::string& address,
                                                     const ChannelOptions& options = {});

// A ClientContext with a deadline `timeout` from now and the token's metadata.
std::unique_ptr<grpc::ClientContext> MakeContext(absl::Duration timeout,
                                                 const std::string& token = "");

}  // namespace harness
