// Controller channels (see channel.h).
#include "rpc/channel.h"

#include <chrono>

namespace harness {

std::shared_ptr<grpc::Channel> MakeControllerChannel(const std::string& address,
                                                     const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Reconnect soon after a controller restart, however long it was gone. While a channel is
  // not connected, calls that do not wait for it (gRPC's default) fail at once with the last
  // connection error, so its backoff, not the caller's, says how soon the controller is seen
  // again: 100 ms, growing 1.6x (+-20 %) to kMaxReconnectBackoff. gRPC 1.51 reads "min
  // reconnect backoff" as the least time a connection attempt is given (default 20 s).
  const int max_backoff_ms = static_cast<int>(absl::ToInt64Milliseconds(kMaxReconnectBackoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  // A channel of its own, not shared with others to the same address in this process, so that
  // no other channel's failed connection (and its backoff) is reused.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, kMaxClientMessageBytes);
  args.SetInt(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, kMaxClientMessageBytes);
  // gRPC 1.51: a channel that failed to connect recovers only after re-resolving its target,
  // which is otherwise throttled to once per 30 s; calls then keep failing with a cached
  // "Connection refused" for seconds after the controller is back.
  args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 100);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (options.tls.enabled()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls.ca_pem;
    ssl.pem_cert_chain = options.tls.cert_pem;
    ssl.pem_private_key = options.tls.key_pem;
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

std::unique_ptr<grpc::ClientContext> MakeContext(absl::Duration timeout, const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

}  // namespace harness
