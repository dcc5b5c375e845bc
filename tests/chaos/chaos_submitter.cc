// The chaos soak's submitter (see chaos_submitter.h).
#include "tests/chaos/chaos_submitter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "rpc/channel.h"

namespace harness::testing {

ChaosSubmitter::ChaosSubmitter(const std::string& address, int backlog, int batch_size,
                               uint64_t seed)
    : stub_(v1::ControlService::NewStub(MakeControllerChannel(address))),
      backlog_(backlog),
      batch_size_(batch_size),
      rng_(seed | 1) {}

ChaosSubmitter::~ChaosSubmitter() {
  stop_ = true;
  Join();
}

void ChaosSubmitter::Start() { thread_ = std::thread([this] { Run(); }); }

void ChaosSubmitter::Join() {
  if (thread_.joinable()) thread_.join();
}

bool ChaosSubmitter::Settled() { return settled_; }

std::vector<std::string> ChaosSubmitter::Acknowledged() {
  absl::MutexLock l(&mu_);
  return acknowledged_;
}

std::vector<std::string> ChaosSubmitter::Violations() {
  absl::MutexLock l(&mu_);
  return violations_;
}

ChaosSubmitter::Batch ChaosSubmitter::MakeBatch() {
  Batch b;
  for (int i = 0; i < batch_size_; ++i) {
    // xorshift: the item's run time, 20-320 ms.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    std::string id = absl::StrCat("c-", next_id_++);
    v1::ItemSpec* spec = b.request.add_items();
    spec->set_id(id);
    spec->set_title(absl::StrCat("chaos item ", id));
    spec->set_prompt(absl::StrCat("0.", 20 + rng_ % 300));
    // Kills end attempts (expired, counted): never park an item for it.
    spec->set_max_attempts(1000);
    b.ids.push_back(id);
  }
  ++batches_;
  return b;
}

bool ChaosSubmitter::Send(Batch& b) {
  if (b.sends++ > 0) ++resends_;
  v1::SubmitResponse resp;
  grpc::Status st = stub_->Submit(MakeContext(absl::Seconds(10)).get(), b.request, &resp);
  bool landed = st.ok() || (st.error_code() == grpc::StatusCode::ALREADY_EXISTS && b.sends > 1);
  absl::MutexLock l(&mu_);
  if (landed) {
    acknowledged_.insert(acknowledged_.end(), b.ids.begin(), b.ids.end());
    return true;
  }
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE &&
      absl::StrContains(st.error_message(), "cannot take writes")) {
    ++refused_disk_full_;
  } else if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
             st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ++failed_unreachable_;
  } else {
    violations_.push_back(absl::StrCat("submit of ", b.ids.front(), "..: ", st.error_code(),
                                       " ", st.error_message()));
    return true;  // not retried: the audit finds its items missing or present
  }
  return false;
}

int64_t ChaosSubmitter::Pending() {
  v1::StatusSnapshot s;
  grpc::Status st = stub_->Status(MakeContext(absl::Seconds(5)).get(), v1::StatusRequest(), &s);
  return st.ok() ? s.queue().pending() : -1;
}

void ChaosSubmitter::Run() {
  std::vector<Batch> unsent;
  while (!stop_) {
    if (!unsent.empty()) {
      if (Send(unsent.front())) {
        unsent.erase(unsent.begin());
        continue;
      }
    } else if (no_new_) {
      settled_ = true;
      return;
    } else if (int64_t pending = Pending(); pending >= 0 && pending < backlog_) {
      unsent.push_back(MakeBatch());
      continue;
    }
    // Pacing: the queue is full enough, or the controller is away (the soak restarts it).
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace harness::testing
