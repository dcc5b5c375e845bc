// The gRPC implementation of ControllerApi (controller_api.h): AgentService over one channel.
// This header has no gRPC in it (the implementation class is in grpc_controller_client.h).
//
// Connection rules (agent.proto):
//   * Register at Start(), and again whenever the controller answers NOT_FOUND for the session
//     (it restarted), listing the leases still held. A held lease missing from the answer is
//     lost: the listener hears OnLeaseLost.
//   * One Session stream per agent, on a thread of its own (the synchronous API: one thread
//     writes Hello, a Heartbeat every heartbeat_interval_ms or at once when the agent starts
//     draining or stops, and the work messages; a second thread reads). A broken stream is
//     reopened with the same session id after a jittered exponential backoff (100 ms doubling
//     to RetryCap(), +-25 %); a stream that ends NOT_FOUND leads to Register first. A new
//     stream waits for the channel to connect (wait_for_ready), so it opens within the
//     channel's reconnect backoff (rpc/channel.h: at most 1 s) of the controller serving
//     again. Each stream carries a deadline (`stream_lifetime`) and is simply reopened when
//     it passes.
//   * All work travels on that stream: want_work / lease, and complete / fail / release each
//     answered by a reply. A report or want_work left unanswered by a broken stream is sent
//     again on the next one. The unary Acquire, Complete, Fail and Release are never called.
//   * Every call has a deadline: Register and a report's wait for its answer `call_timeout`,
//     FetchBase `fetch_timeout` (the pack's size is not known when it starts), UploadResult
//     `call_timeout` plus a second per `upload_bytes_per_second` bytes of pack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "agentd/controller_api.h"
#include "harness/v1/agent.pb.h"
#include "rpc/tls_files.h"

namespace harness::agentd {

struct ControllerClientOptions {
  std::string address;   // HOST:PORT of the controller
  std::string agent_id;  // already validated
  std::string token;     // `authorization: Bearer <token>`; empty: none
  ClientTls tls;         // tls.ca_pem empty: plaintext
  v1::RepoAccess repo_access = v1::REPO_ACCESS_CONTROLLER;
  absl::Duration call_timeout = absl::Seconds(15);
  absl::Duration fetch_timeout = absl::Minutes(30);
  int64_t upload_bytes_per_second = int64_t{1} << 20;
  absl::Duration stream_lifetime = absl::Hours(1);
};

std::unique_ptr<ControllerApi> NewControllerClient(const ControllerClientOptions& options);

}  // namespace harness::agentd
