// Long-poll dispatch (see acquire_dispatcher.h).
#include "controller/acquire_dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace harness {

absl::StatusOr<std::string> AcquireDispatcher::ResolveBase() const {
  if (!base_) return std::string();
  return base_();
}

bool AcquireDispatcher::TryGrant(const std::shared_ptr<Waiter>& waiter,
                                 const absl::StatusOr<std::string>& base) {
  if (!base.ok()) {
    // No base to start from (the branch is gone): the agent hears why; nothing is granted.
    waiter->Finish(
        absl::FailedPreconditionError(absl::StrCat("cannot grant work: ", base.status().message())));
    return true;
  }
  Pending<std::optional<Grant>> p = queue_->BeginAcquire(waiter->agent, *base);
  if (p.value.ok() && !p.value->has_value()) return false;
  auto result = std::make_shared<absl::StatusOr<std::optional<Grant>>>(std::move(p.value));
  queue_->WhenDurable(p.ticket, [waiter, result](absl::Status durable) {
    if (!durable.ok()) {
      waiter->Finish(durable);
    } else {
      waiter->Finish(std::move(*result));
    }
  });
  return true;
}

bool AcquireDispatcher::Acquire(std::shared_ptr<Waiter> waiter) {
  // The base is read from the repository before the lock is taken (no I/O under it). A grant
  // made with a base read a moment earlier is as good as one read under the lock.
  const absl::StatusOr<std::string> base = ResolveBase();
  absl::MutexLock l(&mu_);
  if (shutdown_ || agents_->IsDraining(waiter->agent)) {
    waiter->Finish(std::optional<Grant>());
    return false;
  }
  if (waiters_.empty() && TryGrant(waiter, base)) return false;
  const Waiter* mine = waiter.get();
  waiters_.push_back(std::move(waiter));
  // Others may be parked ahead of it while work is pending (a grant raced a submit).
  while (!waiters_.empty() && TryGrant(waiters_.front(), base)) waiters_.pop_front();
  return std::any_of(waiters_.begin(), waiters_.end(),
                     [mine](const std::shared_ptr<Waiter>& w) { return w.get() == mine; });
}

void AcquireDispatcher::OnPending() {
  {
    absl::MutexLock l(&mu_);
    if (waiters_.empty()) return;  // nobody to serve: no need to read the base
  }
  const absl::StatusOr<std::string> base = ResolveBase();
  absl::MutexLock l(&mu_);
  while (!waiters_.empty()) {
    std::shared_ptr<Waiter> w = waiters_.front();
    if (agents_->IsDraining(w->agent)) {
      waiters_.pop_front();
      w->Finish(std::optional<Grant>());
      continue;
    }
    if (!TryGrant(w, base)) break;
    waiters_.pop_front();
  }
}

absl::Time AcquireDispatcher::ExpireWaiters() {
  std::vector<std::shared_ptr<Waiter>> done;
  absl::Time next = absl::InfiniteFuture();
  {
    absl::MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    auto keep =
        std::stable_partition(waiters_.begin(), waiters_.end(),
                              [&](const std::shared_ptr<Waiter>& w) { return w->deadline > now; });
    done.assign(keep, waiters_.end());
    waiters_.erase(keep, waiters_.end());
    for (const auto& w : waiters_) next = std::min(next, w->deadline);
  }
  for (auto& w : done) w->Finish(std::optional<Grant>());
  return next;
}

std::shared_ptr<AcquireDispatcher::Waiter> AcquireDispatcher::Unpark(const Waiter* waiter) {
  absl::MutexLock l(&mu_);
  auto it = std::find_if(waiters_.begin(), waiters_.end(),
                         [&](const std::shared_ptr<Waiter>& w) { return w.get() == waiter; });
  if (it == waiters_.end()) return nullptr;
  std::shared_ptr<Waiter> found = *it;
  waiters_.erase(it);
  return found;
}

void AcquireDispatcher::Cancel(const Waiter* waiter) {
  if (std::shared_ptr<Waiter> w = Unpark(waiter)) w->Finish(absl::CancelledError("the agent went away"));
}

void AcquireDispatcher::Withdraw(const Waiter* waiter) {
  if (std::shared_ptr<Waiter> w = Unpark(waiter)) w->Finish(std::optional<Grant>());
}

void AcquireDispatcher::Shutdown() {
  std::deque<std::shared_ptr<Waiter>> all;
  {
    absl::MutexLock l(&mu_);
    shutdown_ = true;
    all.swap(waiters_);
  }
  for (auto& w : all) w->Finish(std::optional<Grant>());
}

size_t AcquireDispatcher::parked() const {
  absl::MutexLock l(&mu_);
  return waiters_.size();
}

}  // namespace harness
