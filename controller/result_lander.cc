// Result refs on a thread of their own (see result_lander.h).
#include "controller/result_lander.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/thread_name.h"

namespace harness {

ResultLander::ResultLander(RepoResults* repo) : repo_(repo) {
  thread_ = std::thread([this] { Loop(); });
}

ResultLander::~ResultLander() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void ResultLander::Post(std::function<void()> job) {
  absl::MutexLock l(&mu_);
  jobs_.push_back(std::move(job));
}

void ResultLander::Loop() {
  NameThisThread("lander");
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !jobs_.empty() || stop_; };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;  // stopping, and every job ran
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ResultLander::Land(std::string item_id, std::string commit) {
  Post([this, item_id = std::move(item_id), commit = std::move(commit)] {
    if (repo_ == nullptr || commit.empty()) return;
    absl::Status s = repo_->Land(item_id, commit);
    if (s.ok()) {
      failed_.erase(item_id);
      return;
    }
    // Recorded done (durable) but the ref did not move: a restart repairs it (LandDone).
    LogError(absl::StrCat("item ", item_id, " is done but its branch was not set: ", s.message()));
    failed_[item_id] =
        absl::InternalError(absl::StrCat("result recorded, branch not set: ", s.message()));
  });
}

void ResultLander::KeepAttempt(std::string item_id, int attempt, std::string commit) {
  Post([this, item_id = std::move(item_id), attempt, commit = std::move(commit)] {
    if (repo_ == nullptr || commit.empty() || attempt <= 0) return;
    if (absl::Status s = repo_->KeepAttempt(item_id, attempt, commit); !s.ok()) {
      LogWarning(absl::StrCat("work of failed attempt ", attempt, " of ", item_id,
                              " not kept: ", s.message()));
    }
  });
}

void ResultLander::After(std::string item_id, std::function<void(absl::Status)> fn) {
  Post([this, item_id = std::move(item_id), fn = std::move(fn)] {
    auto it = failed_.find(item_id);
    fn(it == failed_.end() ? absl::OkStatus() : it->second);
  });
}

}  // namespace harness
