// ControllerClient: harnessctl's calls to the controller's ControlService (control.proto).
// Every call carries a deadline (`--timeout`) and the bearer token, if any. Failures come back
// as an absl::Status with the gRPC code and the one line harnessctl prints after
// "harnessctl: ": the controller's own message (NOT_FOUND, INVALID_ARGUMENT...), or
// "cannot reach the controller at ADDR: ..." when it is unreachable. The gRPC headers stay in
// the .cc so that the command code compiles without them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "harness/v1/control.pb.h"
#include "rpc/tls_files.h"

namespace harness::client {

struct ClientOptions {
  std::string address;                         // HOST:PORT
  std::string token;                           // "" for none
  ClientTls tls;                               // tls.ca_pem empty: plaintext
  absl::Duration timeout = absl::Seconds(10);  // the deadline of each call
};

class ControllerClient {
 public:
  explicit ControllerClient(ClientOptions options);
  ~ControllerClient();
  ControllerClient(const ControllerClient&) = delete;
  ControllerClient& operator=(const ControllerClient&) = delete;

  absl::StatusOr<v1::StatusSnapshot> Status();
  absl::StatusOr<v1::ScaleResponse> Scale(int32_t target, bool force = false);
  absl::StatusOr<v1::SubmitResponse> Submit(const v1::SubmitRequest& request);
  // Every item in one of `states` (all items when empty), following next_page_token to the
  // last page; each page is one call with its own deadline.
  absl::StatusOr<google::protobuf::RepeatedPtrField<v1::ItemSummary>> ListAll(
      const std::vector<v1::ItemState>& states);
  absl::StatusOr<v1::Item> Get(const std::string& id);
  absl::StatusOr<v1::CancelResponse> Cancel(const std::string& id, const std::string& reason);
  absl::StatusOr<v1::RetryResponse> Retry(const std::string& id);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents();
  absl::StatusOr<v1::DrainResponse> Drain(const std::string& agent_id);
  absl::StatusOr<v1::StopAgentResponse> StopAgent(const std::string& agent_id);

  // Streams status snapshots (WatchStatus), calling `on_snapshot` for each, until SIGINT or
  // SIGTERM arrives (returns OK) or the stream fails. Requires BlockStopSignals() before this
  // client was made. The stream has no overall deadline; instead the first snapshot must
  // arrive within the timeout, and each next one within `interval` plus the timeout, or the
  // call is cancelled with DEADLINE_EXCEEDED.
  absl::Status Watch(absl::Duration interval,
                     const std::function<void(const v1::StatusSnapshot&)>& on_snapshot);

  // Streams an attempt's log (FollowLog), calling `on_chunk` for each piece, until the stream
  // ends (OK). With request.follow(): no deadline, and SIGINT or SIGTERM ends it with OK
  // (requires BlockStopSignals() before this client was made); without, the timeout is the
  // deadline of the whole call.
  absl::Status FollowLog(const v1::FollowLogRequest& request,
                         const std::function<void(const v1::LogChunk&)>& on_chunk);
  // Streams events (WatchEvents), as FollowLog does.
  absl::Status WatchEvents(const v1::WatchEventsRequest& request,
                           const std::function<void(const v1::Event&)>& on_event);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace harness::client
