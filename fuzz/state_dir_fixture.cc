// State dirs for the recovery fuzz targets (see state_dir_fixture.h).
#include "fuzz/state_dir_fixture.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/paths.h"
#include "core/work_queue.h"

namespace harness::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "state dir fuzz: %s\n", what.c_str());
  std::abort();
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Fail(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}

void Must(absl::Status s, const char* what) {
  if (!s.ok()) Fail(absl::StrCat(what, ": ", s.ToString()));
}

store::ItemSpec Spec(const std::string& id, int64_t priority) {
  store::ItemSpec s;
  s.set_id(id);
  s.set_title(absl::StrCat("Item ", id));
  s.set_prompt(absl::StrCat("Do ", id, " and commit."));
  s.set_priority(priority);
  return s;
}

WorkQueueOptions Options(const std::string& state_dir) {
  WorkQueueOptions o;
  o.state_dir = state_dir;
  o.lease_ttl = absl::Seconds(30);
  o.group_commit = false;
  return o;
}

// What a second recovery must agree on.
struct Summary {
  QueueCounts counts;
  std::vector<std::pair<std::string, store::ItemState>> items;
};

Summary Summarize(const WorkQueue& q) {
  Summary s;
  s.counts = q.Counts();
  for (const store::ItemRecord& r : q.List(std::nullopt, 1 << 20)) {
    // A leased item may be handed back by the first recovery (a grant with no claim): both
    // are "not ended", which is what must agree.
    store::ItemState st = r.state() == store::ITEM_LEASED ? store::ITEM_PENDING : r.state();
    s.items.emplace_back(r.spec().id(), st);
  }
  return s;
}

}  // namespace

std::string MakeStateDir(const std::string& state_dir, bool snapshot, std::string* leased_item) {
  FakeClock clock;
  WorkQueueOptions o = Options(state_dir);
  o.snapshot_after_bytes = snapshot ? 1 : 64ull << 20;
  auto q = Must(WorkQueue::Open(o, &clock), "open");
  store::ItemSpec labelled = Spec("labelled", 5);
  (*labelled.mutable_labels())["team"] = "web";
  Must(q->Submit({Spec("done-1", 9), Spec("failed-1", 8), Spec("cancel-1", 7)}), "submit");
  Must(q->Submit({labelled}), "submit");
  auto g = Must(q->Acquire("agent-1"), "acquire");
  AttemptResult done;
  done.commit = "0123456789abcdef0123456789abcdef01234567";
  done.branch = "harness/done-1";
  Must(q->Complete(g->spec.id(), g->token, done), "complete");
  g = Must(q->Acquire("agent-2"), "acquire");
  AttemptResult failed;
  failed.exit_code = 3;
  failed.error = "exit 3";
  failed.not_retryable = true;
  Must(q->Fail(g->spec.id(), g->token, store::OUTCOME_FAILED, failed), "fail");
  Must(q->Cancel("cancel-1").status(), "cancel");
  Must(q->Retry("failed-1"), "retry");
  g = Must(q->Acquire("agent-1"), "acquire");
  if (leased_item != nullptr) *leased_item = g->spec.id();
  // The claim is a hard link to its slot: find the slot by inode.
  StatePaths paths(state_dir);
  struct stat claim;
  if (::stat(paths.ClaimFile(g->spec.id()).c_str(), &claim) == 0) {
    for (const auto& e : std::filesystem::directory_iterator(paths.LeasesDir())) {
      struct stat st;
      if (::stat(e.path().c_str(), &st) == 0 && st.st_ino == claim.st_ino) return e.path();
    }
  }
  Fail("the leased item's claim links to no file in leases/");
  return "";
}

absl::Status RecoverTwice(const std::string& state_dir, const std::string& must_keep) {
  FakeClock clock;
  Summary first;
  {
    absl::StatusOr<std::unique_ptr<WorkQueue>> q = WorkQueue::Open(Options(state_dir), &clock);
    if (!q.ok()) return q.status();
    first = Summarize(**q);
  }
  auto q = Must(WorkQueue::Open(Options(state_dir), &clock),
                "the state dir the first recovery left does not open again");
  Summary second = Summarize(*q);
  if (second.items != first.items || second.counts.total != first.counts.total ||
      second.counts.done != first.counts.done || second.counts.failed != first.counts.failed ||
      second.counts.parked != first.counts.parked ||
      second.counts.cancelled != first.counts.cancelled) {
    Fail(absl::StrCat("a second recovery disagrees with the first: ", first.items.size(),
                      " items, then ", second.items.size()));
  }
  if (!must_keep.empty() && !q->Get(must_keep).ok()) {
    Fail(absl::StrCat("recovery dropped item ", must_keep));
  }
  return absl::OkStatus();
}

}  // namespace harness::fuzz
