// The chaos soak: a real controller and its 8 launched agents work through thousands of items
// while, at random moments, an agent is killed (-9), the controller is killed (-9) and
// restarted, an agent is stopped (SIGSTOP) past its lease's TTL and continued, and the state
// dir's file system is filled and freed. Then everything settles and the audit holds every item
// against its branch and the runs' side effects: each item done exactly once with exactly one
// accepted commit, none lost, lost leases' runs counted as re-runs and never as results, the
// state dir clean, the controller's memory bounded. See docs/CHAOS.md.
//
// HARNESS_CHAOS_SECONDS (default 60: the CI mode; tests/chaos/soak.sh runs 600),
// HARNESS_CHAOS_SEED (default: from the clock; printed), HARNESS_CHAOS_AGENTS (8),
// HARNESS_CHAOS_MAX_RSS_MB (512), HARNESS_CHAOS_REPORT (a file for the summary as JSON).
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_audit.h"
#include "tests/chaos/chaos_rig.h"
#include "tests/chaos/chaos_submitter.h"

namespace harness::testing {
namespace {

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

struct Faults {
  int agent_kills = 0, controller_kills = 0, stops = 0, resumed = 0, killed_while_stopped = 0;
  int disk_fills = 0, restarts_on_full_disk = 0;
};

// The controller's RSS; `max_after_s`: how long after the controller's (re)start the maximum
// was seen (a peak at a few seconds is its recovery).
struct Memory {
  int64_t start_kib = 0, end_kib = 0, max_kib = 0;
  double max_after_s = 0;
  void Sample(pid_t pid, double since_start_s) {
    int64_t kib = ResidentKib(pid);
    if (kib <= 0) return;
    if (start_kib == 0) start_kib = kib;
    end_kib = kib;
    if (kib > max_kib) {
      max_kib = kib;
      max_after_s = since_start_s;
    }
  }
};

class ChaosSoak : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  void SetUp() override {
    seed_ = static_cast<uint64_t>(EnvNumber("HARNESS_CHAOS_SEED", 0));
    if (seed_ == 0) seed_ = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
    rng_.seed(seed_);
    options_.agents = static_cast<int>(EnvNumber("HARNESS_CHAOS_AGENTS", 8));
    rig_ = std::make_unique<ChaosRig>(tmp_, options_);
    absl::Status s = rig_->SetUp();
    if (absl::IsFailedPrecondition(s)) GTEST_SKIP() << s.message();  // no tmpfs: not root
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override {
    if (rig_ == nullptr) return;
    rig_->FreeDisk();
    rig_->StopController();
    rig_->KillAllAgents();
  }

  double Uniform(double lo, double hi) { return std::uniform_real_distribution<>(lo, hi)(rng_); }
  Clock::time_point After(double seconds) {
    return Clock::now() + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  }

  // One fault, chosen at random; one that cannot apply now (nothing to stop) does nothing.
  void Strike() {
    int pick = std::uniform_int_distribution<>(0, 8)(rng_);
    std::vector<LaunchedAgent> live = Unstopped(rig_->LiveAgents());
    if (pick < 3) {
      if (live.empty()) return;
      const LaunchedAgent& a = live[rng_() % live.size()];
      if (ChaosRig::Signal(a, SIGKILL)) ++faults_.agent_kills;
    } else if (pick < 5) {
      std::vector<LaunchedAgent> working = Working(live);
      if (!working.empty()) live = working;  // so that a result is due while it is stopped
      if (live.empty() || stopped_.size() >= 2) return;
      const LaunchedAgent& a = live[rng_() % live.size()];
      // Between the TTL and the heartbeat timeout, it comes back to find its lease gone and its
      // result refused; past the timeout, the pool kills it first. Both happen.
      double hold = Uniform(options_.lease_ttl + 0.5, options_.heartbeat_timeout + 2);
      if (ChaosRig::Signal(a, SIGSTOP)) {
        ++faults_.stops;
        stopped_.push_back({a, After(hold)});
      }
    } else if (pick < 7) {
      if (!rig_->controller_up()) return;
      rig_->KillController();
      ++faults_.controller_kills;
      restart_at_ = After(Uniform(0, 1.5));
    } else {
      if (rig_->disk_full()) return;
      rig_->FillDisk();
      ++faults_.disk_fills;
      free_at_ = After(Uniform(1, 5));
    }
  }
  std::vector<LaunchedAgent> Unstopped(std::vector<LaunchedAgent> live) {
    std::erase_if(live, [&](const LaunchedAgent& a) {
      for (const auto& [s, until] : stopped_) {
        if (s.pid == a.pid) return true;
      }
      return false;
    });
    return live;
  }
  // Those of `live` the controller says are working (none while it is down).
  std::vector<LaunchedAgent> Working(std::vector<LaunchedAgent> live) {
    v1::StatusSnapshot st;
    if (!rig_->controller_up() ||
        !rig_->controller().control().Status(Ctx().get(), v1::StatusRequest(), &st).ok()) {
      return {};
    }
    std::erase_if(live, [&](const LaunchedAgent& a) {
      for (const v1::AgentInfo& info : st.agents()) {
        if (info.id() == a.id && info.state() == v1::AGENT_STATE_WORKING) return false;
      }
      return true;
    });
    return live;
  }
  void Continue(const LaunchedAgent& a) {
    if (ChaosRig::Signal(a, SIGCONT)) {
      ++faults_.resumed;
    } else {
      ++faults_.killed_while_stopped;
    }
  }
  void Restart() {
    if (rig_->disk_full()) ++faults_.restarts_on_full_disk;
    ASSERT_TRUE(rig_->StartController()) << "the controller did not come back";
  }
  // Runs the faults until `end`, with the submitter feeding the queue.
  void RunFaults(Clock::time_point end, double total_s) {
    auto next_strike = After(Uniform(1, 4));
    auto next_sample = After(5);
    auto next_progress = After(10);
    auto started = Clock::now();
    while (Clock::now() < end) {
      auto now = Clock::now();
      for (size_t i = 0; i < stopped_.size();) {
        if (now >= stopped_[i].second) {
          Continue(stopped_[i].first);
          stopped_.erase(stopped_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
      if (rig_->disk_full() && now >= free_at_) rig_->FreeDisk();
      if (!rig_->controller_up() && now >= restart_at_) {
        Restart();
        if (HasFatalFailure()) return;
      }
      if (now >= next_strike) {
        Strike();
        next_strike = After(Uniform(1, 4));
      }
      if (now >= next_sample && rig_->controller_up()) {
        memory_.Sample(rig_->controller_pid(), rig_->controller_age_s());
        next_sample = After(1);
      }
      if (now >= next_progress) {
        double at = std::chrono::duration<double>(now - started).count();
        std::cout << absl::StrFormat(
                         "[chaos %4.0f/%.0f s] %s | kills: agent %d, controller %d | stops %d "
                         "(%d resumed) | disk fills %d | controller rss %.1f MiB",
                         at, total_s, Progress(), faults_.agent_kills, faults_.controller_kills,
                         faults_.stops, faults_.resumed, faults_.disk_fills,
                         memory_.end_kib / 1024.0)
                  << std::endl;
        next_progress = After(10);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  std::string Progress() {
    std::string s = absl::StrCat(submitter_->Acknowledged().size(), " items acknowledged");
    if (rig_->controller_up()) {
      v1::StatusSnapshot st;
      if (rig_->controller().control().Status(Ctx().get(), v1::StatusRequest(), &st).ok()) {
        absl::StrAppend(&s, ", ", st.queue().done(), " done, ", st.queue().pending(),
                        " pending, ", st.queue().leased(), " leased",
                        st.controller().store_error().empty() ? "" : " (store failing)");
      }
    }
    return s;
  }
  // Every fault undone: agents continued, the disk freed, the controller up.
  void Calm() {
    for (const auto& [a, until] : stopped_) Continue(a);
    stopped_.clear();
    rig_->FreeDisk();
    if (!rig_->controller_up()) Restart();
  }
  bool AllEnded(int64_t want) {
    v1::StatusSnapshot st;
    if (!rig_->controller().control().Status(Ctx().get(), v1::StatusRequest(), &st).ok()) {
      return false;
    }
    return st.queue().total() >= want && st.queue().pending() == 0 && st.queue().leased() == 0;
  }

  TempDir tmp_;
  ChaosOptions options_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::unique_ptr<ChaosRig> rig_;
  std::unique_ptr<ChaosSubmitter> submitter_;
  Faults faults_;
  Memory memory_;
  std::vector<std::pair<LaunchedAgent, Clock::time_point>> stopped_;
  Clock::time_point restart_at_, free_at_;
};

TEST_F(ChaosSoak, EveryItemIsDoneExactlyOnceWithOneAcceptedCommitWhateverIsKilled) {
  const double seconds = EnvNumber("HARNESS_CHAOS_SECONDS", 60);
  const double max_rss_mb = EnvNumber("HARNESS_CHAOS_MAX_RSS_MB", 512);
  std::cout << "chaos soak: " << seconds << " s, " << options_.agents
            << " agents, seed HARNESS_CHAOS_SEED=" << seed_ << ", in " << tmp_.path()
            << std::endl;
  submitter_ = std::make_unique<ChaosSubmitter>(rig_->address(), 8 * options_.agents, 25, seed_);
  submitter_->Start();
  RunFaults(After(seconds), seconds);
  if (HasFatalFailure()) return;

  // Settle: no new items, every fault undone, every batch acknowledged, every item ended.
  submitter_->StopNewBatches();
  Calm();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitFor([&] { return submitter_->Settled(); }, absl::Minutes(2)))
      << "submits still refused after the faults ended";
  submitter_->Join();
  const std::vector<std::string> acknowledged = submitter_->Acknowledged();
  const int64_t want = static_cast<int64_t>(acknowledged.size());
  bool ended = WaitFor(
      [&] {
        memory_.Sample(rig_->controller_pid(), rig_->controller_age_s());
        return AllEnded(want);
      },
      absl::Minutes(5));
  EXPECT_TRUE(ended) << Progress();

  ChaosAudit audit = AuditChaosRun(rig_->controller().control(), acknowledged, rig_->repo(),
                                   rig_->base_commit(), rig_->effects_dir(), rig_->state_dir());
  std::vector<std::string> violations = submitter_->Violations();
  violations.insert(violations.end(), audit.violations.begin(), audit.violations.end());

  // A clean stop leaves no agent behind, and a restart reads back the same queue.
  int stop_status = rig_->StopController();
  EXPECT_TRUE(WIFEXITED(stop_status) && WEXITSTATUS(stop_status) == 0) << stop_status;
  EXPECT_TRUE(rig_->LiveAgents().empty()) << "launched agents outlived a clean stop";
  ASSERT_TRUE(rig_->StartController());
  v1::StatusSnapshot after = GetStatus(rig_->controller().control());
  EXPECT_EQ(after.queue().total(), audit.items);
  EXPECT_EQ(after.queue().done(), audit.done);

  std::string outcomes;
  for (const auto& [name, n] : audit.outcomes) absl::StrAppend(&outcomes, " ", name, "=", n);
  std::string summary = absl::StrFormat(
      "chaos soak summary (seed %d, %.0f s, %d agents)\n"
      "  items: %d acknowledged, %d in the queue, %d done with their one commit verified, "
      "lost %d, duplicated results %d, result branches %d\n"
      "  runs of the item command: %d (re-runs after a lost lease: %d; results of lost leases discarded: "
      "%d)\n"
      "  attempts: %d (%s )\n"
      "  faults: agent kill -9 %d, controller kill -9 + restart %d (%d on a full disk), "
      "agent SIGSTOP past the TTL %d (continued %d, killed by the pool first %d), "
      "state disk filled %d\n"
      "  submits: %d batches, %d resent (refused on a full disk %d, unreachable %d)\n"
      "  controller rss: start %.1f MiB, end %.1f MiB, max %.1f MiB (%.0f s after a start)\n"
      "  violations: %d",
      seed_, seconds, options_.agents, want, audit.items, audit.done,
      want - std::min<int64_t>(want, audit.items), audit.duplicate_results, audit.result_refs,
      audit.runs,
      audit.reruns, audit.late_results_discarded, audit.attempts, outcomes, faults_.agent_kills,
      faults_.controller_kills, faults_.restarts_on_full_disk, faults_.stops, faults_.resumed,
      faults_.killed_while_stopped, faults_.disk_fills, submitter_->batches(),
      submitter_->resends(), submitter_->refused_disk_full(), submitter_->failed_unreachable(),
      memory_.start_kib / 1024.0, memory_.end_kib / 1024.0, memory_.max_kib / 1024.0,
      memory_.max_after_s,
      violations.size());
  std::cout << summary << std::endl;
  for (size_t i = 0; i < violations.size() && i < 30; ++i) {
    std::cout << "  violation: " << violations[i] << std::endl;
  }
  if (const char* report = std::getenv("HARNESS_CHAOS_REPORT"); report != nullptr && *report) {
    std::ofstream(report) << summary << "\n" << absl::StrJoin(violations, "\n") << "\n";
  }

  EXPECT_TRUE(violations.empty()) << violations.size() << " violations, the first: "
                                  << violations.front();
  EXPECT_EQ(audit.items, want);
  EXPECT_EQ(audit.done, want);
  EXPECT_GT(want, 0);
  EXPECT_LE(memory_.max_kib, max_rss_mb * 1024) << "the controller's memory grew past the bound";
}

}  // namespace
}  // namespace harness::testing
