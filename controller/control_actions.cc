// The operator's actions (see control_actions.h).
#include "controller/control_actions.h"

#include "absl/strings/str_cat.h"
#include "controller/convert.h"
#include "core/ids.h"
#include "core/log.h"

namespace harness {

void CancelItem(Controller& c, const std::string& id, const std::string& reason,
                std::function<void(absl::StatusOr<CancelResult>)> done) {
  absl::StatusOr<store::ItemRecord> before = c.queue().Get(id);
  if (!before.ok()) return done(before.status());
  CancelResult result;
  if (before->state() == store::ITEM_CANCELLED) {  // cancelling twice changes nothing
    result.previous_state = v1::ITEM_STATE_CANCELLED;
    return done(result);
  }
  // The running agent is told by the queue's LeaseEnded (Controller::OnLeaseEnded).
  Pending<std::optional<Lease>> p =
      c.queue().BeginCancel(id, reason.empty() ? "cancelled by the operator" : reason);
  if (!p.value.ok()) return done(p.value.status());
  result.previous_state = ToApi(before->state());
  if (p.value->has_value()) result.agent = (*p.value)->agent;
  c.queue().WhenDurable(p.ticket, [result, done = std::move(done)](absl::Status s) {
    if (!s.ok()) return done(s);
    done(result);
  });
}

void RetryItem(Controller& c, const std::string& id,
               std::function<void(absl::StatusOr<v1::ItemState>)> done) {
  absl::StatusOr<store::ItemRecord> before = c.queue().Get(id);
  if (!before.ok()) return done(before.status());
  Pending<bool> p = c.queue().BeginRetry(id);
  if (!p.value.ok()) return done(p.value.status());
  const v1::ItemState previous = ToApi(before->state());
  c.queue().WhenDurable(p.ticket, [previous, done = std::move(done)](absl::Status s) {
    if (!s.ok()) return done(s);
    done(previous);
  });
}

void ScalePool(Controller& c, int target, bool force,
               std::function<void(absl::StatusOr<ScaleResult>)> done) {
  if (target < 0 || target > kMaxPoolTarget) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("scale: target must be between 0 and ", kMaxPoolTarget, ", got ", target)));
  }
  c.pool().Scale(target, force, std::move(done));
}

v1::AgentInfo DescribeAgent(Controller& c, const std::string& agent_id, AgentState if_unknown) {
  std::string item;
  for (const Lease& l : c.queue().Leases()) {
    if (l.agent == agent_id) item = l.item_id;
  }
  if (std::optional<AgentInfo> info = c.agents().Get(agent_id)) {
    return c.ToApiAgent(*info, item);
  }
  // Launched, not registered yet.
  AgentInfo a;
  a.id = agent_id;
  a.state = if_unknown;
  a.last_seen = c.clock()->Now();
  return c.ToApiAgent(a, item);
}

void DrainAgent(Controller& c, const std::string& id,
                std::function<void(absl::StatusOr<v1::AgentInfo>)> done) {
  if (absl::Status s = ValidateAgentId(id); !s.ok()) return done(s);
  // An agent of the pool is drained and replaced by the pool manager; any other only drained.
  c.pool().Replace(id, false, [&c, id, done = std::move(done)](absl::Status s) {
    if (s.ok()) return done(DescribeAgent(c, id, AgentState::kDraining));
    if (!absl::IsNotFound(s)) return done(s);
    absl::StatusOr<AgentInfo> info = c.agents().Drain(id);
    if (!info.ok()) return done(info.status());
    LogInfo(absl::StrCat("agent ", id, " is draining"));
    done(DescribeAgent(c, id, AgentState::kDraining));
  });
}

}  // namespace harness
