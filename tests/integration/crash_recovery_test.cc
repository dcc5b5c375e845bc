// Crash injection: a child process (crash_worker) runs random queue operations from several
// threads and is SIGKILLed at a random moment; recovery then runs and the invariants are checked
// against everything the child had acknowledged. Chains of trials reuse one state dir, so
// recovery also recovers from crashes of recovered state.
//
// HARNESS_CRASH_TRIALS sets the number of trials (default 200; the long mode runs thousands).
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/record_io.h"
#include "core/work_queue.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using testing::ChildProcess;
using testing::TempDir;
using testing::TestBinDir;

int TrialCount() {
  const char* env = std::getenv("HARNESS_CRASH_TRIALS");
  return env && *env ? std::atoi(env) : 200;
}

// What the children acknowledged, accumulated over a chain of trials.
struct Acked {
  std::set<std::string> submitted;
  std::map<uint64_t, std::string> granted;                           // token -> item
  std::map<uint64_t, std::string> done;                              // token -> item
  std::map<uint64_t, std::pair<std::string, store::Outcome>> ended;  // token -> (item, outcome)
  std::set<std::string> cancelled;
  uint64_t max_token = 0;
};

void ParseLog(const std::string& path, Acked* acked, bool* ready) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag, id;
    uint64_t token = 0;
    ls >> tag >> id >> token;
    if (tag == "READY") {
      *ready = true;
    } else if (tag == "S") {
      acked->submitted.insert(id);
    } else if (tag == "G") {
      ASSERT_FALSE(acked->granted.count(token)) << "token " << token << " granted twice";
      acked->granted[token] = id;
      acked->max_token = std::max(acked->max_token, token);
    } else if (tag == "D") {
      acked->done[token] = id;
      acked->ended[token] = {id, store::OUTCOME_DONE};
    } else if (tag == "F") {
      acked->ended[token] = {id, store::OUTCOME_FAILED};
    } else if (tag == "R") {
      acked->ended[token] = {id, store::OUTCOME_RELEASED};
    } else if (tag == "E") {
      acked->ended[token] = {id, store::OUTCOME_EXPIRED};
    } else if (tag == "C") {
      acked->cancelled.insert(id);
    }
  }
}

std::set<std::string> ListNames(const std::string& dir) {
  std::set<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.insert(n);
    }
    closedir(d);
  }
  return out;
}

// Opens the state dir (recovery), checks every invariant, then takes one more grant to check
// that tokens move on.
void CheckInvariants(const std::string& state_dir, const Acked& acked, int trial) {
  SCOPED_TRACE(absl::StrCat("trial ", trial, " state dir ", state_dir));
  WorkQueueOptions o;
  o.state_dir = state_dir;
  // Long enough that the check's own grant cannot expire under a loaded machine; the TTL is
  // in memory only, so the next worker's recovery is unaffected.
  o.lease_ttl = absl::Seconds(60);
  o.snapshot_after_bytes = 16 << 10;
  auto q = WorkQueue::Open(o, Clock::Real());
  ASSERT_TRUE(q.ok()) << q.status();

  std::vector<store::ItemRecord> items = (*q)->List(std::nullopt, SIZE_MAX);
  QueueCounts counts = (*q)->Counts();
  ASSERT_EQ(counts.total, static_cast<int64_t>(items.size()));
  ASSERT_EQ(counts.total, counts.pending + counts.leased + counts.done + counts.failed +
                              counts.parked + counts.cancelled);

  absl::flat_hash_map<std::string, const store::ItemRecord*> by_id;
  std::set<uint64_t> tokens;
  uint64_t max_token = 0;
  for (const store::ItemRecord& item : items) {
    ASSERT_TRUE(by_id.emplace(item.spec().id(), &item).second)
        << "item twice: " << item.spec().id();
    for (const store::Attempt& a : item.attempts()) {
      ASSERT_TRUE(tokens.insert(a.lease_token()).second)
          << "token " << a.lease_token() << " used by two attempts";
      max_token = std::max(max_token, a.lease_token());
    }
  }
  // Every acknowledged submit exists exactly once.
  for (const std::string& id : acked.submitted) {
    ASSERT_TRUE(by_id.contains(id)) << "acknowledged item lost: " << id;
  }
  // Every acknowledged grant is in its item's history; acknowledged ends kept their outcome.
  for (const auto& [token, id] : acked.granted) {
    ASSERT_TRUE(by_id.contains(id)) << id;
    bool found = false;
    for (const store::Attempt& a : by_id[id]->attempts()) found |= a.lease_token() == token;
    ASSERT_TRUE(found) << "acknowledged grant " << token << " of " << id << " lost";
  }
  for (const auto& [token, end] : acked.ended) {
    const store::ItemRecord* item = by_id[end.first];
    ASSERT_NE(item, nullptr);
    for (const store::Attempt& a : item->attempts()) {
      if (a.lease_token() == token) {
        ASSERT_EQ(a.outcome(), end.second) << "attempt " << token << " of " << end.first;
      }
    }
  }
  for (const auto& [token, id] : acked.done) {
    ASSERT_EQ(by_id[id]->state(), store::ITEM_DONE) << id;
    ASSERT_EQ(by_id[id]->attempts(by_id[id]->attempts_size() - 1).lease_token(), token);
  }
  for (const std::string& id : acked.cancelled) {
    ASSERT_EQ(by_id[id]->state(), store::ITEM_CANCELLED) << id;
  }
  // Claims on disk are exactly the leased items, with their running tokens; nothing pending is
  // claimed.
  StatePaths paths(state_dir);
  std::set<std::string> claims = ListNames(paths.ClaimsDir());
  for (const store::ItemRecord& item : items) {
    bool claimed = claims.count(item.spec().id()) > 0;
    ASSERT_EQ(claimed, item.state() == store::ITEM_LEASED)
        << item.spec().id() << " is " << item.state()
        << (claimed ? " and claimed" : " and not claimed");
    if (claimed) {
      std::optional<Lease> lease = (*q)->LeaseOf(item.spec().id());
      ASSERT_TRUE(lease.has_value());
      // The claim links to a lease record in leases/ naming this lease (recovery rewrote it
      // if the crash lost it).
      ASSERT_FALSE(harness::testing::LeaseFileOf(paths, item.spec().id()).empty());
      absl::StatusOr<std::string> bytes = ReadFile(paths.ClaimFile(item.spec().id()));
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      absl::string_view payload;
      store::LeaseRecord record;
      ASSERT_TRUE(DecodeSingleFrame(*bytes, &payload) &&
                  record.ParseFromArray(payload.data(), payload.size()))
          << "the lease record of " << item.spec().id() << " is torn after recovery";
      ASSERT_EQ(record.item_id(), item.spec().id());
      ASSERT_EQ(record.token(), lease->token);
    }
  }
  ASSERT_EQ(claims.size(), static_cast<size_t>(counts.leased));
  // A new grant takes a token above every token ever acknowledged or recorded.
  auto grant = (*q)->Acquire("checker");
  ASSERT_TRUE(grant.ok()) << grant.status();
  if (grant->has_value()) {
    ASSERT_GT((*grant)->token, std::max(max_token, acked.max_token));
    ASSERT_TRUE((*q)->Release((*grant)->spec.id(), (*grant)->token).ok());
  }
}

TEST(CrashRecovery, InvariantsHoldAfterRandomKills) {
  const int trials = TrialCount();
  const int chain = 10;  // trials per state dir
  std::mt19937_64 rng(20261125);
  const std::string worker = TestBinDir() + "/crash_worker";
  ASSERT_EQ(access(worker.c_str(), X_OK), 0) << worker;
  int killed_while_running = 0;
  for (int start = 0; start < trials; start += chain) {
    TempDir tmp;
    const std::string state = tmp.Sub("state");
    Acked acked;
    for (int t = start; t < std::min(trials, start + chain); ++t) {
      const std::string log = tmp.Sub(absl::StrCat("worker-", t, ".log"));
      {
        ChildProcess child =
            ChildProcess::Spawn({worker, state, absl::StrCat(t + 1), absl::StrCat(1 + rng() % 4)},
                                log, tmp.Sub("stderr"));
        // Kill anywhere from inside recovery to well into the run.
        absl::SleepFor(absl::Microseconds(2000 + rng() % 60000));
        child.Signal(SIGKILL);
        int status = child.Wait();
        if (WIFSIGNALED(status)) {
          ++killed_while_running;
        } else {
          std::ifstream err(tmp.Sub("stderr"));
          std::stringstream ss;
          ss << err.rdbuf();
          FAIL() << "crash_worker exited by itself, status " << status << ": " << ss.str();
        }
      }
      bool ready = false;
      ParseLog(log, &acked, &ready);
      if (HasFatalFailure()) return;
      CheckInvariants(state, acked, t);
      if (HasFatalFailure()) return;
    }
  }
  std::printf("crash trials: %d, killed while running: %d\n", trials, killed_while_running);
  EXPECT_EQ(killed_while_running, trials);
}

}  // namespace
}  // namespace harness
