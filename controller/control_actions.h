// The operator's mutating actions on a Controller (cancel, retry, scale, drain), apart from any
// transport: the gRPC ControlService and the HTTP API's admin endpoints both call these, so the
// two cannot drift apart. Each answers through `done` once its change is durable, on whichever
// thread made it so (the committer's or the pool manager's): `done` must not block. Access
// checks are the caller's.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "controller/controller.h"
#include "harness/v1/types.pb.h"

namespace harness {

inline constexpr int kMaxPoolTarget = 10000;

struct CancelResult {
  v1::ItemState previous_state = v1::ITEM_STATE_UNSPECIFIED;
  std::string agent;  // the agent that ran it, told to stop; "" if none
};
// Cancels item `id` (a second cancel changes nothing); `reason` "" : "cancelled by the operator".
void CancelItem(Controller& c, const std::string& id, const std::string& reason,
                std::function<void(absl::StatusOr<CancelResult>)> done);

// Puts a failed, parked or cancelled item back in the queue; `done` gets its previous state.
void RetryItem(Controller& c, const std::string& id,
               std::function<void(absl::StatusOr<v1::ItemState>)> done);

// Sets the managed pool's target (0..kMaxPoolTarget; InvalidArgument otherwise).
void ScalePool(Controller& c, int target, bool force,
               std::function<void(absl::StatusOr<ScaleResult>)> done);

// Drains agent `id`: a pool agent is drained and replaced by the pool manager, any other only
// drained. `done` gets the agent as status shows it.
void DrainAgent(Controller& c, const std::string& id,
                std::function<void(absl::StatusOr<v1::AgentInfo>)> done);

// The agent as status shows it; `if_unknown` as its state when it has not registered.
v1::AgentInfo DescribeAgent(Controller& c, const std::string& agent_id, AgentState if_unknown);

}  // namespace harness
