// SessionReactor: one agent's bidirectional Session stream (gRPC callback API: no thread per
// stream). Reads Hello/Heartbeat/Progress from the agent; writes acks, renewals and commands
// (drain, cancel, stop, lease lost) through a queue, one write in flight at a time. The read
// after a report waits for the report's reply (or ReadHold::kMaxHold): see read_hold.h.
//
// The fast path rides on the same stream: `want_work` parks a request for a lease (sent as a
// `lease` message when granted), and `complete`/`fail`/`release` are answered by a `reply`.
// A report with `acquire_next` and the next grant are begun under one CommitGroup, so an item's
// completion and its agent's next lease share one fsync round; for an agent whose Hello set
// `lease_in_reply`, that lease rides on the report's reply: one message each way per item.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "controller/controller.h"
#include "controller/read_hold.h"
#include "harness/v1/agent.grpc.pb.h"

namespace harness {

class SessionReactor : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  // `peer` (the stream's gRPC peer) has been counted in controller->sessions(); the reactor
  // gives it back when done.
  SessionReactor(Controller* controller, std::string peer);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

  // Queues a message to the agent; dropped if the stream is closing.
  void Send(v1::ControllerMessage message) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Sink;
  class WantWaiter;
  class ReplyJoin;
  void Handle(v1::AgentMessage& message) ABSL_LOCKS_EXCLUDED(mu_);
  // Work messages (the fast path). Each needs a Hello first, and acts for the Hello's agent
  // only: a report naming another agent is refused (PERMISSION_DENIED), one naming none is
  // taken as the stream's own.
  void HandleWork(v1::AgentMessage& message) ABSL_LOCKS_EXCLUDED(mu_);
  // Parks one request for a lease unless one is outstanding already. `join` (a report's
  // acquire_next, for an agent that reads Reply.next_lease) hears whether a grant rides on the
  // report's reply.
  void StartWant(std::shared_ptr<ReplyJoin> join) ABSL_LOCKS_EXCLUDED(mu_);
  // The outstanding want ended (granted, refused, or nothing because of drain or shutdown);
  // `message` goes out, if any. `lease_follows`: its lease goes out later through SendLease (it
  // rides on a report's reply still on its way).
  void WantDone(const WantWaiter* waiter, std::optional<v1::ControllerMessage> message,
                bool lease_follows) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends the message carrying a lease announced by WantDone's `lease_follows`.
  void SendLease(v1::ControllerMessage message) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends `message` (a drain) once every lease granted so far has gone out before it: at once
  // when none is outstanding, else queued. Returns the outstanding want, for the caller to
  // withdraw if it is still parked (without this stream's locks held).
  std::shared_ptr<WantWaiter> SendAfterGrants(v1::ControllerMessage message)
      ABSL_LOCKS_EXCLUDED(mu_);
  void FlushAfterGrantsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLocked(v1::ControllerMessage message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ticker: starts a read held back longer than ReadHold::kMaxHold.
  void ResumeOverdueRead(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes back an outstanding want (the stream is ending).
  void DropWant() ABSL_LOCKS_EXCLUDED(mu_);
  void OnHeartbeat(const v1::Heartbeat& hb) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the stream once no write is in flight.
  void Close(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends final_status_ and counts the stream in the RPC metrics (no interceptor does it for
  // this method: rpc_metrics_interceptor.h).
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Controller* const controller_;
  const std::string peer_;
  const absl::Time started_ = absl::Now();
  // The read path's own (OnReadDone and what it calls, then OnDone): no lock.
  v1::AgentMessage in_;
  std::string agent_id_;  // set by Hello
  std::string session_id_;
  bool lease_in_reply_ = false;  // the Hello's
  std::shared_ptr<Sink> sink_;

  absl::Mutex mu_;
  std::deque<v1::ControllerMessage> out_queue_ ABSL_GUARDED_BY(mu_);
  v1::ControllerMessage out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  ReadHold hold_ ABSL_GUARDED_BY(mu_);  // the next read, held until a report's reply goes out
  std::shared_ptr<WantWaiter> want_ ABSL_GUARDED_BY(mu_);  // the outstanding want_work
  int leases_on_the_way_ ABSL_GUARDED_BY(mu_) = 0;  // granted, to ride on a reply not yet sent
  std::vector<v1::ControllerMessage> after_grants_ ABSL_GUARDED_BY(mu_);  // see SendAfterGrants
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace harness
