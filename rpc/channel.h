// Client channels to the controller, with keepalive and the reconnect backoff set explicitly
// (STYLE.md lesson 9) and the bearer token, if any, attached to every call as
// `authorization: Bearer <token>`. With TLS material (ClientTls) the channel is TLS, with a
// client certificate when one is given; otherwise plaintext.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "rpc/tls_files.h"

namespace harness {

// The longest wait between two connection attempts of a channel whose controller is gone
// (gRPC's default grows to 120 s): a channel reconnects within about this long of the controller
// serving again, whatever the outage's length. agentd's own retries stay within it too.
inline constexpr absl::Duration kMaxReconnectBackoff = absl::Seconds(1);

// The largest message a client channel receives (and sends), and the controller sends: far
// above any answer (a page of List is at most 10,000 items). What the controller receives is
// its own limits.max_message_mb (docs/SECURITY.md, "Limits").
inline constexpr int kMaxClientMessageBytes = 256 << 20;

struct ChannelOptions {
  std::string token;  // empty: none
  ClientTls tls;      // tls.ca_pem empty: plaintext
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(5);
};

std::shared_ptr<grpc::Channel> MakeControllerChannel(const std::string& address,
                                                     const ChannelOptions& options = {});

// A ClientContext with a deadline `timeout` from now and the token's metadata.
std::unique_ptr<grpc::ClientContext> MakeContext(absl::Duration timeout,
                                                 const std::string& token = "");

}  // namespace harness
