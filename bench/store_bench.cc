// store_bench: grant+complete cycles per second on the durable queue (WorkQueue over the Store),
// with group commit on and off. Every grant and completion is durable before it returns.
//
//   store_bench [--threads N] [--items N] [--mode on|off|both] [--lifecycle] [--dir DIR]
//
// --lifecycle also times the submit of each item (submit, grant, complete per cycle).
// Prints one JSON line per run.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/work_queue.h"

namespace {

struct Args {
  int threads = 16;
  int items = 20000;
  std::string mode = "both";
  bool lifecycle = false;
  std::string dir;
};

[[noreturn]] void Usage(const std::string& err) {
  std::fprintf(stderr,
               "store_bench: %s\nusage: store_bench [--threads N] [--items N] "
               "[--mode on|off|both] [--lifecycle] [--dir DIR]\n",
               err.c_str());
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(f + " needs a value");
      return argv[++i];
    };
    if (f == "--threads") {
      a.threads = std::atoi(value().c_str());
    } else if (f == "--items") {
      a.items = std::atoi(value().c_str());
    } else if (f == "--mode") {
      a.mode = value();
    } else if (f == "--lifecycle") {
      a.lifecycle = true;
    } else if (f == "--dir") {
      a.dir = value();
    } else if (f == "--help") {
      Usage("help");
    } else {
      Usage("unknown flag " + f);
    }
  }
  if (a.threads < 1 || a.items < 1) Usage("--threads and --items must be positive");
  if (a.mode != "on" && a.mode != "off" && a.mode != "both")
    Usage("--mode must be on, off or both");
  return a;
}

harness::store::ItemSpec Spec(int i) {
  harness::store::ItemSpec s;
  s.set_id(absl::StrCat("bench-", i));
  s.set_title("bench");
  s.set_prompt("noop");
  return s;
}

void RunOnce(const Args& args, bool group_commit) {
  std::string dir = args.dir.empty() ? "/tmp" : args.dir;
  dir = absl::StrCat(dir, "/store-bench-", ::getpid(), group_commit ? "-gc" : "-nogc");
  std::filesystem::remove_all(dir);
  harness::WorkQueueOptions o;
  o.state_dir = dir;
  o.group_commit = group_commit;
  o.lease_ttl = absl::Seconds(600);
  auto q = harness::WorkQueue::Open(o, harness::Clock::Real());
  if (!q.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", std::string(q.status().message()).c_str());
    std::exit(1);
  }
  if (!args.lifecycle) {
    std::vector<harness::store::ItemSpec> specs;
    for (int i = 0; i < args.items; ++i) specs.push_back(Spec(i));
    if (!(*q)->Submit(std::move(specs)).ok()) std::exit(1);
  }
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < args.threads; ++t) {
    threads.emplace_back([&, t] {
      std::string agent = absl::StrCat("agent-", t);
      for (;;) {
        int i = next.fetch_add(1);
        if (i >= args.items) return;
        if (args.lifecycle && !(*q)->Submit({Spec(i)}).ok()) ++failures;
        auto g = (*q)->Acquire(agent);
        if (!g.ok() || !g->has_value()) {
          ++failures;
          continue;
        }
        if (!(*q)->Complete((*g)->spec.id(), (*g)->token).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  auto counts = (*q)->Counts();
  std::printf(
      "{\"bench\":\"store\",\"group_commit\":%s,\"lifecycle\":%s,\"threads\":%d,\"items\":%d,"
      "\"seconds\":%.3f,\"cycles_per_s\":%.0f,\"commit_rounds\":%llu,\"done\":%lld,"
      "\"failures\":%d}\n",
      group_commit ? "true" : "false", args.lifecycle ? "true" : "false", args.threads, args.items,
      secs, args.items / secs, static_cast<unsigned long long>((*q)->commit_rounds()),
      static_cast<long long>(counts.done), failures.load());
  std::fflush(stdout);
  q->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  Args args = Parse(argc, argv);
  if (args.mode == "on" || args.mode == "both") RunOnce(args, true);
  if (args.mode == "off" || args.mode == "both") RunOnce(args, false);
  return 0;
}
