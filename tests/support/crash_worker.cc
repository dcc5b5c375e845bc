// crash_worker: runs random queue operations from several threads on a state dir until it is
// killed. Every operation it prints was acknowledged (durable) before the line was written, one
// write(2) per line, so the log is exactly what a client could rely on at the moment of a
// SIGKILL. Used by tests/integration/crash_recovery_test.cc.
//
//   crash_worker STATE_DIR SEED THREADS
//
// Lines: READY | S id | G id token | D id token | F id token | R id token | C id | T id |
//        E id token
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/work_queue.h"

namespace {

void Emit(const std::string& line) {
  std::string l = line + "\n";
  (void)!::write(1, l.data(), l.size());
}

void Run(harness::WorkQueue* q, uint64_t seed, int thread) {
  std::mt19937_64 rng(seed * 7919 + thread);
  // (item, token, agent): an agent holds one lease at a time, so each grant goes to an agent
  // of its own.
  std::vector<std::tuple<std::string, uint64_t, std::string>> held;
  std::vector<std::string> mine;
  for (uint64_t n = 0;; ++n) {
    int r = static_cast<int>(rng() % 100);
    if (r < 25) {
      std::vector<harness::store::ItemSpec> specs(1 + rng() % 3);
      for (size_t i = 0; i < specs.size(); ++i) {
        specs[i].set_id(absl::StrCat("w", seed, "-", thread, "-", n, "-", i));
        specs[i].set_title("crash test item");
        specs[i].set_prompt("do it");
        specs[i].set_priority(static_cast<int64_t>(rng() % 3));
      }
      auto ids = q->Submit(specs);
      if (ids.ok()) {
        for (const std::string& id : *ids) {
          Emit("S " + id);
          mine.push_back(id);
        }
      }
    } else if (r < 47) {
      const std::string agent = absl::StrCat("agent-", ::getpid(), "-", thread, "-", n);
      auto grant = q->Acquire(agent);
      if (grant.ok() && grant->has_value()) {
        Emit(absl::StrCat("G ", (*grant)->spec.id(), " ", (*grant)->token));
        held.emplace_back((*grant)->spec.id(), (*grant)->token, agent);
      }
    } else if (r < 70) {
      if (held.empty()) continue;
      size_t k = rng() % held.size();
      auto [id, token, agent] = held[k];
      held.erase(held.begin() + static_cast<long>(k));
      int how = static_cast<int>(rng() % 20);
      absl::Status s;
      const char* tag;
      if (how < 12) {
        s = q->Complete(id, token, {});
        tag = "D";
      } else if (how < 17) {
        harness::AttemptResult res;
        res.exit_code = 1;
        res.error = "boom";
        s = q->Fail(id, token, harness::store::OUTCOME_FAILED, res);
        tag = "F";
      } else {
        s = q->Release(id, token);
        tag = "R";
      }
      if (s.ok()) Emit(absl::StrCat(tag, " ", id, " ", token));
    } else if (r < 76) {
      if (mine.empty()) continue;
      const std::string& id = mine[rng() % mine.size()];
      if (q->Cancel(id).ok()) Emit("C " + id);
    } else if (r < 82) {
      if (mine.empty()) continue;
      const std::string& id = mine[rng() % mine.size()];
      if (q->Retry(id).ok()) Emit("T " + id);
    } else if (r < 90) {
      auto expired = q->ExpireDue();
      if (expired.ok()) {
        for (const harness::Lease& l : *expired) Emit(absl::StrCat("E ", l.item_id, " ", l.token));
      }
    } else {
      for (const auto& [id, token, agent] : held) {
        (void)q->Reconcile(agent, {harness::HeldLease{id, token}}, harness::Unlisted::kKeep);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: crash_worker STATE_DIR SEED THREADS\n");
    return 2;
  }
  harness::WorkQueueOptions o;
  o.state_dir = argv[1];
  o.lease_ttl = absl::Milliseconds(40);
  o.snapshot_after_bytes = 16 << 10;  // snapshots happen inside the crash window too
  uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  int threads = std::atoi(argv[3]);
  auto q = harness::WorkQueue::Open(o, harness::Clock::Real());
  if (!q.ok()) {
    std::fprintf(stderr, "crash_worker: %s\n", std::string(q.status().message()).c_str());
    return 1;
  }
  Emit("READY");
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(Run, q->get(), seed, t);
  for (auto& t : ts) t.join();
  return 0;
}
