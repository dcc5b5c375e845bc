// claim_stress_worker: hammers ClaimDir from several threads of one process, so that several
// such processes on one state dir check that a claim is never granted twice, whoever the
// claimers are. Used by tests/unit/claims_test.cc.
//
//   claim_stress_worker STATE_DIR WORKER_NUM ITERATIONS ITEMS THREADS
//
// Each thread tries ITERATIONS claims of items "item-0".."item-<ITEMS-1>" with tokens unique
// across all workers. A winner creates STATE_DIR/holders/<item> with O_EXCL (if it already
// exists, someone else holds the same item: a double grant, exit 3), removes it, and releases.
// Prints `wins=N` and exits 0; any other failure prints one line and exits 1 (2 for bad usage).
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/claim_dir.h"
#include "core/paths.h"

namespace {

std::atomic<int> exit_code{0};

void Fail(int code, const std::string& line) {
  std::fprintf(stderr, "claim_stress_worker: %s\n", line.c_str());
  int expected = 0;
  exit_code.compare_exchange_strong(expected, code);
}

void Run(harness::ClaimDir* claims, const std::string& holders, int worker, int thread,
         int iterations, int items, std::atomic<int64_t>* wins) {
  uint32_t rng = static_cast<uint32_t>(worker * 7919 + thread * 104729 + 1);
  for (int i = 0; i < iterations && exit_code.load() == 0; ++i) {
    rng = rng * 1664525u + 1013904223u;
    std::string item = absl::StrCat("item-", (rng >> 8) % static_cast<uint32_t>(items));
    uint64_t token = static_cast<uint64_t>(worker + 1) * 1'000'000'000ull +
                     static_cast<uint64_t>(thread) * 1'000'000ull + static_cast<uint64_t>(i);
    harness::store::LeaseRecord lease;
    lease.set_item_id(item);
    lease.set_token(token);
    lease.set_agent(absl::StrCat("w", worker, "-t", thread));
    lease.set_attempt(1);
    lease.set_granted_unix_ms(absl::ToUnixMillis(absl::Now()));
    lease.set_expires_unix_ms(absl::ToUnixMillis(absl::Now() + absl::Hours(1)));
    absl::Status s = claims->Claim(lease);
    if (absl::IsAlreadyExists(s)) continue;
    if (!s.ok()) return Fail(1, absl::StrCat("claim of ", item, " failed: ", s.ToString()));

    std::string marker = absl::StrCat(holders, "/", item);
    int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) {
        return Fail(3, absl::StrCat("double grant: ", item, " won with token ", token,
                                    " while another holder's marker exists"));
      }
      return Fail(1, absl::StrCat("cannot create ", marker, ": ", strerror(errno)));
    }
    ::close(fd);
    for (int k = 0; k < 3; ++k) sched_yield();  // a tiny bit of "work" while holding the item
    if (::unlink(marker.c_str()) != 0) {
      return Fail(1, absl::StrCat("cannot remove ", marker, ": ", strerror(errno)));
    }
    if (absl::Status r = claims->Release(item, token); !r.ok()) {
      return Fail(1,
                  absl::StrCat("release of ", item, " token ", token, " failed: ", r.ToString()));
    }
    wins->fetch_add(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int worker, iterations, items, threads;
  if (argc != 6 || !absl::SimpleAtoi(argv[2], &worker) || !absl::SimpleAtoi(argv[3], &iterations) ||
      !absl::SimpleAtoi(argv[4], &items) || !absl::SimpleAtoi(argv[5], &threads) || worker < 0 ||
      iterations < 0 || items < 1 || threads < 1 || threads > 999) {
    std::fprintf(stderr,
                 "usage: claim_stress_worker STATE_DIR WORKER_NUM ITERATIONS ITEMS THREADS\n");
    return 2;
  }
  const std::string state_dir = argv[1];
  const std::string holders = state_dir + "/holders";
  if (::mkdir(holders.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "claim_stress_worker: cannot create %s: %s\n", holders.c_str(),
                 strerror(errno));
    return 1;
  }
  auto claims = harness::ClaimDir::Open(harness::StatePaths(state_dir));
  if (!claims.ok()) {
    std::fprintf(stderr, "claim_stress_worker: %s\n", claims.status().ToString().c_str());
    return 1;
  }
  std::atomic<int64_t> wins{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(Run, claims->get(), holders, worker, t, iterations, items, &wins);
  }
  for (std::thread& t : pool) t.join();
  std::printf("wins=%lld\n", static_cast<long long>(wins.load()));
  std::fflush(stdout);
  return exit_code.load();
}
