// The pool manager's launcher-outage path (see pool_manager.h and core/launcher_outage.h): a
// launcher that cannot act holds the slots' starts instead of failing them; once it answers,
// what runs is adopted and the held slots start. Runs on the manager's thread only.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controller/pool_manager.h"
#include "core/log.h"

namespace harness {

void PoolManager::EnterOutage(const absl::Status& error) {
  // The probe's words name the daemon rather than one container's call.
  absl::Status probe = launcher_->Check();
  const std::string why(probe.ok() ? error.message() : probe.message());
  if (outage_.Failed(why, clock_->Now())) {
    LogError(absl::StrCat("pool: launcher ", options_.launcher, " cannot act: ", why,
                          "; slot starts are held (no death is counted) and retried with backoff; "
                          "running agents and agents started by hand keep working"));
  }
}

void PoolManager::RetryLauncher() {
  absl::Status probe = launcher_->Check();
  if (LauncherOutage::IsOutage(probe)) {
    if (outage_.Failed(std::string(probe.message()), clock_->Now())) {
      LogError(absl::StrCat("pool: launcher ", options_.launcher,
                            " still cannot act: ", probe.message()));
    }
    return;
  }
  LogInfo(absl::StrCat("pool: launcher ", options_.launcher, " answers again; starting ",
                       outage_.HeldSlots().size(), " held slots"));
  outage_.Recovered();
  absl::StatusOr<std::vector<launch::Launched>> alive = launcher_->List();
  if (!alive.ok() && LauncherOutage::IsOutage(alive.status())) {
    EnterOutage(alive.status());
    return;
  }
  if (!alive.ok()) {
    LogError(absl::StrCat("cannot list the launched agents: ", alive.status().message()));
  } else {
    AdoptFound(*alive);
  }
  DropUnwantedHeld();
  Execute(outage_.TakeHeld());  // a start that fails for the launcher again is held again
}

void PoolManager::AdoptFound(const std::vector<launch::Launched>& found) {
  for (const launch::Launched& l : found) {
    if (things_.count(l.id) != 0) continue;
    LogInfo(absl::StrCat("adopted ", l.agent_id, " (slot ", l.slot, ", ", l.id,
                         "), found running once the launcher answered"));
    if (outage_.IsHeld(l.slot)) {
      // Its start was held: it runs already (a previous controller started it).
      outage_.Drop(l.slot);
      things_[l.id] = Thing{l.agent_id, l.slot, l.pid, clock_->Now(), false};
      Execute(pool_->LaunchSucceeded(l.slot, l.id));
      continue;
    }
    std::vector<PoolAction> actions = pool_->Adopt({LaunchedThing{l.slot, l.id}});
    bool adopted = false;
    for (const PoolSlotStatus& s : pool_->Snapshot()) adopted |= s.launched_id == l.id;
    // A stray (stopped by `actions`) is tracked with no slot: its health is not the pool's.
    things_[l.id] = Thing{l.agent_id, adopted ? l.slot : 0, l.pid, clock_->Now(), false};
    Execute(std::move(actions));
  }
}

void PoolManager::DropUnwantedHeld() {
  for (int slot : outage_.HeldSlots()) {
    bool wanted = false;
    for (const PoolSlotStatus& s : pool_->Snapshot()) {
      if (s.slot == slot) wanted = s.state != SlotState::kStopped;  // kStopped: it leaves
    }
    if (wanted) continue;
    outage_.Drop(slot);
    Execute(pool_->LaunchFailed(slot, "scaled down while the launcher could not act"));
  }
}

}  // namespace harness
