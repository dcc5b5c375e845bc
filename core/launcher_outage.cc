// LauncherOutage: held starts and backoff while a launcher cannot act (see launcher_outage.h).
#include "core/launcher_outage.h"

#include <algorithm>

namespace harness {

LauncherOutage::LauncherOutage(absl::Duration min_backoff, absl::Duration max_backoff)
    : min_backoff_(min_backoff),
      max_backoff_(std::max(min_backoff, max_backoff)),
      backoff_(min_backoff) {}

bool LauncherOutage::IsOutage(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

bool LauncherOutage::Failed(const std::string& error, absl::Time now) {
  const bool changed = error != error_;
  error_ = error.empty() ? "the launcher cannot act (no reason given)" : error;
  next_try_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff_);
  return changed;
}

void LauncherOutage::Recovered() {
  error_.clear();
  backoff_ = min_backoff_;
  next_try_ = absl::InfiniteFuture();
}

void LauncherOutage::Hold(const PoolAction& start) { held_[start.slot] = start; }

std::vector<int> LauncherOutage::HeldSlots() const {
  std::vector<int> out;
  for (const auto& [slot, a] : held_) out.push_back(slot);
  return out;
}

std::vector<PoolAction> LauncherOutage::TakeHeld() {
  std::vector<PoolAction> out;
  for (auto& [slot, a] : held_) out.push_back(std::move(a));
  held_.clear();
  return out;
}

}  // namespace harness
