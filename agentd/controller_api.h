// ControllerApi: what the agent's main loop needs from the controller, without gRPC (the
// implementation over gRPC is in controller_client.cc; a test can supply its own). And
// SessionListener: the commands that arrive on the Session stream, delivered to the agent.
//
// Division of labour: the client owns the connection, the registration (session id), the
// Session stream with its heartbeats and the work that travels on it (leases down, reports up),
// reconnection with backoff and the list of leases the agent holds (so that Register and every
// Heartbeat name them). The agent owns what to do: acquire, run, report, obey commands.
#pragma once

#include <functional>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "harness/v1/agent.pb.h"

namespace harness::agentd {

// Called on the client's threads; implementations must return quickly (set flags, cancel a
// runner) and must not call back into the client's blocking methods.
class SessionListener {
 public:
  virtual ~SessionListener() = default;
  // A held lease is not live: LeaseLost on the stream, or a re-Register that did not renew it.
  // Stop the item, report nothing.
  virtual void OnLeaseLost(const v1::LeaseRef& lease, absl::string_view reason) = 0;
  // The item was cancelled; its lease has ended. Stop it, report nothing.
  virtual void OnCancelItem(const v1::LeaseRef& lease, absl::string_view reason) = 0;
  // Finish the current item, take no more, exit 0.
  virtual void OnDrain() = 0;
  // Finish the current item within `grace` or Release it; exit 0.
  virtual void OnStop(absl::Duration grace, absl::string_view reason) = 0;
  // The controller refused this agent for good (e.g. a wrong token on re-registration).
  virtual void OnFatal(const absl::Status& status) = 0;
};

class ControllerApi {
 public:
  virtual ~ControllerApi() = default;

  // Registers, retrying with backoff while the controller is unreachable, then opens the
  // Session stream (kept open, reconnected and re-registered as needed until Shutdown()).
  // Returns Cancelled if StopAcquiring() or Shutdown() is called before registration
  // succeeded, and the controller's error if it refuses the agent for good (INVALID_ARGUMENT,
  // UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED).
  virtual absl::Status Start(SessionListener* listener) = 0;

  // Waits up to `wait` for a lease (over the Session stream: want_work, answered by a `lease`
  // message). OK with no value: none yet (the request stays outstanding, so a later call may
  // return at once), or StopAcquiring() was called and no lease that came before is left to
  // run. A lease is added to the held leases as it arrives. Other errors (the controller refused the request) are transient: back off and
  // call again.
  virtual absl::StatusOr<std::optional<v1::Lease>> Acquire(absl::Duration wait) = 0;

  // One attempt of each report (sent on the Session stream, answered by a `reply`), with a
  // deadline; the caller retries. The status is the controller's, as the unary RPC gives it
  // (FAILED_PRECONDITION: the lease is not live). UNAVAILABLE: no stream open, or it broke
  // before the answer; the report stays queued and goes out on the next stream, so a retry
  // may find its answer already there. With `acquire_next` the next lease comes through the
  // next Acquire().
  virtual absl::StatusOr<v1::CompleteResponse> Complete(const v1::CompleteRequest& request) = 0;
  virtual absl::StatusOr<v1::FailResponse> Fail(const v1::FailRequest& request) = 0;
  virtual absl::StatusOr<v1::ReleaseResponse> Release(const v1::ReleaseRequest& request) = 0;

  // The git transport (agents without a repository of the controller's: no --repo, or
  // --repo URL). One attempt each, with a deadline; the caller retries (a fresh pack each
  // time), as for the reports. The data never needs to fit in memory.
  using ChunkSink = std::function<absl::Status(absl::string_view chunk)>;
  // FetchBase: `on_header` gets the header, then `on_chunk` every chunk of the pack, in order.
  // Returns the controller's status, or the first error a callback returned (the call is then
  // cancelled and the status returned unchanged).
  virtual absl::Status FetchBase(
      const v1::FetchBaseRequest& request,
      const std::function<absl::Status(const v1::FetchBaseHeader& header)>& on_header,
      const ChunkSink& on_chunk) = 0;
  // UploadResult: sends `header`, then calls `source` once; it passes every chunk of the pack,
  // in order, to the sink it is given (which fails once the stream broke; `source` then stops
  // and returns that error). Returns the controller's answer (FAILED_PRECONDITION: the lease is
  // not live; INVALID_ARGUMENT / RESOURCE_EXHAUSTED: the pack or commit is refused), or the
  // source's own error. The deadline grows with header.pack_size.
  virtual absl::StatusOr<v1::UploadResultResponse> UploadResult(
      const v1::UploadHeader& header,
      const std::function<absl::Status(const ChunkSink& write)>& source) = 0;

  // Whether the lease is still in the held list (it leaves it on LeaseLost, CancelItem, a
  // re-Register that did not renew it, or ForgetLease()).
  virtual bool Holds(const v1::LeaseRef& lease) = 0;
  // Stops listing a lease in heartbeats and registrations (after its report was answered or
  // the result was dropped), and drops a report of it still waiting for an answer.
  virtual void ForgetLease(const v1::LeaseRef& lease) = 0;
  // The longest wait between two tries to reach the controller: short enough that an agent
  // comes back well within one lease TTL (all it gets after a controller restart).
  virtual absl::Duration RetryCap() const { return absl::Seconds(1); }
  // What heartbeats report; a change is sent at once.
  virtual void SetState(v1::AgentState state) = 0;
  // Output of the running item for the controller's live log (`harnessctl logs -f`), sent on
  // the Session stream ahead of any report queued later. Best effort: dropped while no stream
  // is open or when too much waits already (the controller then skips the gap). Never blocks.
  virtual void SendProgress(v1::Progress /*progress*/) {}
  // For drain and stop: wakes a blocked Acquire, makes later ones return at once with no
  // lease, and makes a Start() still trying to register give up. Sticky. A lease that arrives
  // later (asked for before) is held until Shutdown(), whose last heartbeat hands it back.
  virtual void StopAcquiring() = 0;
  // Sends a last heartbeat (state STOPPED, held leases), closes the stream, cancels every call
  // in flight and joins the client's threads. Call once, last.
  virtual void Shutdown() = 0;
};

}  // namespace harness::agentd
