// The work half of AgentService (Complete, Fail, Release, and the next grant that may ride on a
// report), shared by the unary RPCs and the Session stream's fast path. Each call validates,
// begins its change in the queue and calls `done` once that change is durable (for a result,
// once its branch is set too). Transport-neutral: absl::Status in, absl::Status out.
#pragma once

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/acquire_dispatcher.h"
#include "controller/controller.h"
#include "harness/v1/agent.pb.h"

namespace harness {

// Fills an API lease from a grant: the item, the token, and what the agent needs to run it.
void FillLease(const Controller& controller, const Grant& grant, v1::Lease* out);

using CompleteDone = std::function<void(absl::Status, v1::CompleteResponse)>;
using FailDone = std::function<void(absl::Status, v1::FailResponse)>;
using ReleaseDone = std::function<void(absl::Status, v1::ReleaseResponse)>;

// `acquire_next` in the requests is not looked at here: the caller decides how the next lease
// travels (see GrantIfPending, and the Session stream's want_work).
void RunComplete(Controller* controller, const v1::CompleteRequest& req, CompleteDone done);
void RunFail(Controller* controller, const v1::FailRequest& req, FailDone done);
void RunRelease(Controller* controller, const v1::ReleaseRequest& req, ReleaseDone done);

// A lease for `agent` if an item is pending now, without waiting: done(lease or nullopt) once
// the grant is durable. Errors (the agent is draining, holds a lease already) give nullopt:
// the report it rides on still succeeded.
void GrantIfPending(Controller* controller, const std::string& agent,
                    std::function<void(std::optional<v1::Lease>)> done);

}  // namespace harness
