// load_gen: simulates M agents in one process, speaking the real agent protocol to a real
// controller it starts (its own state dir, durable commits on), and reports one JSON line:
//
//   lifecycle mode: N no-op items, each submitted (in batches), acquired and completed;
//                   items per second, acquire latency p50/p99.
//   wake mode:      one agent parked in a long poll, then one item submitted, --items times:
//                   time from the Submit call to the lease arriving, p50/p99.
//   stream mode:    lifecycle over the Session stream's fast path instead of unary calls: each
//                   agent sends want_work once, then answers every lease with a `complete`
//                   (acquire_next set), which brings the next lease; same figures, acquire
//                   latency from sending want_work/complete to the lease arriving.
//                   Lifecycle and stream also report the store's commit rounds during the run and
//                   their mean sync time (from the controller's /metrics, its HTTP listener on
//                   127.0.0.1 port 0): 1000 / store_round_mean_ms is the fsync floor of one agent;
//                   store_round_whole_mean_ms is the whole round (journal write, syncs, answers).
//                   Both also give what the run cost the two processes: the controller's CPU
//                   and context switches per item (every thread's, from /proc), and this
//                   process's (the simulated agents and the submitting client, getrusage).
//   idle mode:      M agents registered with an open Session stream, heartbeating every
//                   --heartbeat-ms; the controller's CPU (share of one core) and RSS over
//                   --seconds.
//   ping mode:      M agents (--agents; 1 for one agent's round trip), each on its Session
//                   stream: --items / M heartbeats, each sent once the last one's ack came
//                   back (no disk involved): the round trip of one message each way through
//                   gRPC and both processes, p50 and mean, and the exchanges per second of all
//                   M (rounds_per_s). With one agent an item
//                   costs one such round trip plus one commit round, so 1 / (round trip + the
//                   commit round's sync time) bounds the 1-agent stream figure; with M agents,
//                   rounds_per_s is what the stack alone carries for M streams. Also the CPU
//                   (us) and context switches per round of the controller and of this process.
//   restart mode:   --items no-op items (default 100000, --batch default 1000) submitted and
//                   durable; the controller killed with SIGKILL and started again on the same
//                   state dir and port: time from the spawn to the first Status answer showing
//                   every item pending (polled on a fresh channel, 50 ms deadline, 5 ms apart),
//                   RSS then and 1 s later; then the same after a clean stop (SIGTERM); and the
//                   state dir's size. The TARGETS.md figure: serving again in < 2 s, RSS < 200 MB.
//
//   load_gen --controller-bin PATH [--mode lifecycle|wake|idle|stream|ping|restart] [--agents M]
//            [--items N] [--batch B] [--seconds S] [--heartbeat-ms MS] [--dir DIR]
//
// Agents use the gRPC callback API (a chain of calls per agent, no thread per agent), each on
// its own connection.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "config/flags.h"
#include "core/file_util.h"
#include "harness/v1/agent.grpc.pb.h"
#include "harness/v1/control.grpc.pb.h"
#include "proc_stats.h"
#include "rpc/channel.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace harness {
namespace {

using testing::ChildProcess;

struct Args {
  std::string controller_bin;
  std::string mode = "lifecycle";
  int64_t agents = 16;
  int64_t items = 20000;
  int64_t batch = 500;
  double seconds = 10;
  int64_t heartbeat_ms = 1000;
  std::string dir = "/tmp";
};

void RaiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::shared_ptr<grpc::Channel> AgentChannel(const std::string& addr, int index) {
  grpc::ChannelArguments args;
  args.SetInt("harness.bench.agent", index);  // distinct args: a connection of its own
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

// Context switches (voluntary and not) of every live thread of `pid`, from /proc. The
// controller's threads live as long as it does, so a difference over a run loses none.
int64_t Switches(pid_t pid) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream f(task.path() / "status");
    std::string line;
    while (std::getline(f, line)) {
      if (line.find("ctxt_switches:") == std::string::npos) continue;
      int64_t n = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)), &n)) {
        total += n;
      }
    }
  }
  return total;
}

// What a process used over a run: CPU seconds and context switches.
struct Use {
  double cpu_s = 0;
  int64_t switches = 0;
  Use operator-(const Use& o) const { return Use{cpu_s - o.cpu_s, switches - o.switches}; }
};

Use UseOf(pid_t pid) { return Use{bench::ProcCpuSeconds(pid), Switches(pid)}; }

// This process (the simulated agents and the submitting client): every thread's, live or gone.
Use OwnUse() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return Use{secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_nvcsw + ru.ru_nivcsw};
}

struct Controller {
  std::unique_ptr<ChildProcess> process;
  std::string address;
  std::string http_address;  // HOST:PORT of /metrics; empty when the listener is off
  std::string state_dir;
  std::string base;  // the run's dir: state dir, controller output and log
};

// The controller's command line. Long TTL and slow heartbeats: the runs measure the queue, not
// expiry. No managed pool (`--agents 0`): the load generator's agents are the only ones; the
// default pool would launch agentd processes that take the run's items.
std::vector<std::string> ControllerArgv(const Args& args, const std::string& listen,
                                        const std::string& state_dir,
                                        const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {args.controller_bin,
                                   "--listen",
                                   listen,
                                   "--state-dir",
                                   state_dir,
                                   "--lease-ttl",
                                   "600",
                                   "--heartbeat-interval",
                                   absl::StrCat(args.heartbeat_ms / 1000.0),
                                   "--heartbeat-timeout",
                                   "600",
                                   "--agents",
                                   "0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// Starts the controller on a fresh state dir and any free port; waits until it is listening.
// With `metrics`, its HTTP listener is on too (127.0.0.1 port 0, through a harness.yaml of the
// run's own), for the store figures of /metrics.
Controller StartController(const Args& args, const std::string& tag,
                           const std::vector<std::string>& extra = {}, bool metrics = false) {
  Controller c;
  c.base = absl::StrCat(args.dir, "/load-gen-", ::getpid(), "-", tag);
  std::filesystem::remove_all(c.base);
  std::filesystem::create_directories(c.base);
  c.state_dir = c.base + "/state";
  std::string out = c.base + "/controller.out";
  std::vector<std::string> more = extra;
  if (metrics) {
    const std::string yaml = c.base + "/harness.yaml";
    if (absl::Status s = WriteFileAtomically(yaml, "harness:\n  http: {listen: 127.0.0.1:0}\n");
        !s.ok()) {
      std::fprintf(stderr, "load_gen: %s\n", std::string(s.message()).c_str());
      std::exit(1);
    }
    more.insert(more.end(), {"--config", yaml});
  }
  c.process = std::make_unique<ChildProcess>(ChildProcess::Spawn(
      ControllerArgv(args, "127.0.0.1:0", c.state_dir, more), out, c.base + "/controller.log"));
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<std::string> s = ReadFile(out);
    size_t at = s.ok() ? s->find("listening on ") : std::string::npos;
    if (at != std::string::npos && (at == 0 || (*s)[at - 1] == '\n') &&
        s->find('\n', at) != std::string::npos) {
      c.address = s->substr(at + 13, s->find('\n', at) - at - 13);
      if (metrics) {
        absl::StatusOr<std::string> h = ReadFile(c.state_dir + "/http.addr");
        if (!h.ok() || h->empty()) {
          std::fprintf(stderr, "load_gen: no %s/http.addr\n", c.state_dir.c_str());
          std::exit(1);
        }
        c.http_address = h->substr(0, h->find('\n'));
      }
      return c;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::fprintf(stderr, "load_gen: the controller did not start (see %s/controller.log)\n",
               c.base.c_str());
  std::exit(1);
}

// The store's counters from /metrics: commit rounds, and the count and sum of their syncs.
struct StoreFigures {
  double rounds = 0;
  double sync_count = 0;
  double sync_sum_s = 0;
  double round_count = 0;
  double round_sum_s = 0;
};

// Reads the store's figures from the controller's /metrics; false (after saying why) if not.
bool ScrapeStore(const Controller& c, StoreFigures* f) {
  const testing::HttpResult r =
      testing::HttpFetch(absl::StrCat("http://", c.http_address, "/metrics"));
  if (r.status != 200) {
    std::fprintf(stderr, "load_gen: GET /metrics from %s: %s\n", c.http_address.c_str(),
                 r.status == 0 ? r.curl_error.c_str() : absl::StrCat("HTTP ", r.status).c_str());
    return false;
  }
  int found = 0;
  for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    if (kv.size() != 2) continue;
    double* to = kv[0] == "harness_store_commit_rounds_total"            ? &f->rounds
                 : kv[0] == "harness_store_sync_duration_seconds_count"  ? &f->sync_count
                 : kv[0] == "harness_store_sync_duration_seconds_sum"    ? &f->sync_sum_s
                 : kv[0] == "harness_store_round_duration_seconds_count" ? &f->round_count
                 : kv[0] == "harness_store_round_duration_seconds_sum"   ? &f->round_sum_s
                                                                         : nullptr;
    if (to != nullptr && absl::SimpleAtod(kv[1], to)) ++found;
  }
  if (found != 5) {
    std::fprintf(stderr, "load_gen: /metrics lacks the store's figures (%d of 5 found)\n", found);
    return false;
  }
  return true;
}

// Registers `id` (unary) and keeps its session id; prints why not.
bool RegisterAgent(v1::AgentService::Stub* stub, const std::string& id, std::string* session) {
  v1::RegisterRequest req;
  req.set_agent_id(id);
  v1::RegisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status st = stub->Register(&ctx, req, &resp);
  *session = resp.session_id();
  if (!st.ok()) std::fprintf(stderr, "register %s: %s\n", id.c_str(), st.error_message().c_str());
  return st.ok();
}

// One simulated agent in lifecycle mode: Acquire -> Complete -> Acquire ... until `remaining`
// runs out. Callback chain, no thread of its own.
class LifecycleAgent {
 public:
  LifecycleAgent(std::shared_ptr<grpc::Channel> ch, std::string id, std::atomic<int64_t>* remaining,
                 absl::Notification* all_done, std::atomic<int>* running)
      : stub_(v1::AgentService::NewStub(ch)),
        id_(std::move(id)),
        remaining_(remaining),
        all_done_(all_done),
        running_(running) {}

  bool Register() { return RegisterAgent(stub_.get(), id_, &session_); }
  void Start() { Acquire(); }
  const std::vector<double>& latencies_ms() const { return latencies_; }
  int64_t errors() const { return errors_; }

 private:
  void Acquire() {
    if (remaining_->load() <= 0) {
      Done();
      return;
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    acq_req_.set_agent_id(id_);
    acq_req_.set_session_id(session_);
    acq_req_.set_wait_ms(2000);
    acq_resp_.Clear();
    started_ = absl::Now();
    stub_->async()->Acquire(ctx_.get(), &acq_req_, &acq_resp_, [this](grpc::Status st) {
      if (!st.ok()) {
        ++errors_;
        Acquire();
        return;
      }
      if (!acq_resp_.has_lease()) {
        Acquire();
        return;
      }
      latencies_.push_back(absl::ToDoubleMilliseconds(absl::Now() - started_));
      Complete();
    });
  }
  void Complete() {
    ctx_ = std::make_unique<grpc::ClientContext>();
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    comp_req_.set_agent_id(id_);
    comp_req_.set_item_id(acq_resp_.lease().item_id());
    comp_req_.set_lease_token(acq_resp_.lease().lease_token());
    comp_req_.set_attempt(acq_resp_.lease().attempt());
    stub_->async()->Complete(ctx_.get(), &comp_req_, &comp_resp_, [this](grpc::Status st) {
      if (!st.ok()) {
        ++errors_;
      } else {
        remaining_->fetch_sub(1);
      }
      Acquire();
    });
  }
  void Done() {
    if (running_->fetch_sub(1) == 1) all_done_->Notify();
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string id_;
  std::string session_;
  std::atomic<int64_t>* remaining_;
  absl::Notification* all_done_;
  std::atomic<int>* running_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::AcquireRequest acq_req_;
  v1::AcquireResponse acq_resp_;
  v1::CompleteRequest comp_req_;
  v1::CompleteResponse comp_resp_;
  absl::Time started_;
  std::vector<double> latencies_;
  int64_t errors_ = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Submits --items no-op items, --batch per call. Stops early once `stop` (if any) is notified;
// returns false (after saying why) if a Submit call fails.
bool SubmitNoops(v1::ControlService::Stub* control, const Args& args,
                 const absl::Notification* stop) {
  for (int64_t i = 0; i < args.items; i += args.batch) {
    if (stop != nullptr && stop->HasBeenNotified()) return true;
    v1::SubmitRequest req;
    for (int64_t k = i; k < std::min(args.items, i + args.batch); ++k) {
      v1::ItemSpec* s = req.add_items();
      s->set_id(absl::StrCat("i", k));
      s->set_title("noop");
      s->set_prompt("noop");
    }
    v1::SubmitResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = control->Submit(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "submit: %s\n", st.error_message().c_str());
      return false;
    }
  }
  return true;
}

// The JSON line of lifecycle and stream mode.
// `before` and `after` are the store's figures at the clock's start and end: the line gives the
// commit rounds in between and their mean sync time (null when a scrape failed).
void PrintItemsLine(const char* mode, const Args& args, const Controller& c,
                    v1::ControlService::Stub* control, double secs, const std::vector<double>& lat,
                    int64_t errors, const Use& controller, const Use& own,
                    const std::optional<StoreFigures>& before,
                    const std::optional<StoreFigures>& after) {
  v1::StatusSnapshot status;
  grpc::ClientContext ctx;
  control->Status(&ctx, v1::StatusRequest(), &status);
  std::string rounds = "null", round_ms = "null", whole_ms = "null";
  if (before && after) {
    rounds = absl::StrCat(static_cast<long long>(after->rounds - before->rounds));
    auto mean_ms = [](double sum_s, double n) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4f", 1000 * sum_s / n);
      return std::string(buf);
    };
    const double n = after->sync_count - before->sync_count;
    if (n > 0) round_ms = mean_ms(after->sync_sum_s - before->sync_sum_s, n);
    const double w = after->round_count - before->round_count;
    if (w > 0) whole_ms = mean_ms(after->round_sum_s - before->round_sum_s, w);
  }
  std::printf(
      "{\"bench\":\"load_gen\",\"mode\":\"%s\",\"agents\":%lld,\"items\":%lld,\"seconds\":%.3f,"
      "\"items_per_s\":%.0f,\"acquire_p50_ms\":%.3f,\"acquire_p99_ms\":%.3f,\"done\":%lld,"
      "\"errors\":%lld,\"controller_cpu_s\":%.2f,\"controller_rss_kb\":%ld,"
      "\"store_rounds\":%s,\"store_round_mean_ms\":%s,\"store_round_whole_mean_ms\":%s,"
      "\"controller_switches_per_item\":%.2f,\"agents_cpu_s\":%.2f,"
      "\"agents_switches_per_item\":%.2f}\n",
      mode, static_cast<long long>(args.agents), static_cast<long long>(args.items), secs,
      args.items / secs, Percentile(lat, 0.5), Percentile(lat, 0.99),
      static_cast<long long>(status.queue().done()), static_cast<long long>(errors),
      controller.cpu_s, bench::ProcRssKb(c.process->pid()), rounds.c_str(), round_ms.c_str(),
      whole_ms.c_str(), static_cast<double>(controller.switches) / args.items, own.cpu_s,
      static_cast<double>(own.switches) / args.items);
  std::fflush(stdout);
}

// The store's figures now, or nothing (said on stderr) when /metrics cannot be read.
std::optional<StoreFigures> StoreNow(const Controller& c) {
  StoreFigures f;
  if (!ScrapeStore(c, &f)) return std::nullopt;
  return f;
}

void RunLifecycle(const Args& args) {
  Controller c = StartController(args, absl::StrCat("lc", args.agents), {}, /*metrics=*/true);
  std::vector<std::unique_ptr<LifecycleAgent>> agents;
  std::atomic<int64_t> remaining{args.items};
  absl::Notification all_done;
  std::atomic<int> running{static_cast<int>(args.agents)};
  for (int64_t i = 0; i < args.agents; ++i) {
    agents.push_back(std::make_unique<LifecycleAgent>(AgentChannel(c.address, static_cast<int>(i)),
                                                      absl::StrCat("bench-", i), &remaining,
                                                      &all_done, &running));
    if (!agents.back()->Register()) std::exit(1);
  }
  auto control = v1::ControlService::NewStub(MakeControllerChannel(c.address));
  const std::optional<StoreFigures> store0 = StoreNow(c);
  const Use controller0 = UseOf(c.process->pid());
  const Use own0 = OwnUse();
  absl::Time start = absl::Now();
  for (auto& a : agents) a->Start();
  // Submit while the agents run: the clock covers submit, grant and complete of every item.
  if (!SubmitNoops(control.get(), args, nullptr)) std::exit(1);
  all_done.WaitForNotification();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const Use controller = UseOf(c.process->pid()) - controller0;
  const Use own = OwnUse() - own0;
  const std::optional<StoreFigures> store1 = StoreNow(c);
  std::vector<double> lat;
  int64_t errors = 0;
  for (auto& a : agents) {
    lat.insert(lat.end(), a->latencies_ms().begin(), a->latencies_ms().end());
    errors += a->errors();
  }
  PrintItemsLine("lifecycle", args, c, control.get(), secs, lat, errors, controller, own, store0,
                 store1);
  agents.clear();
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(std::filesystem::path(c.state_dir).parent_path());
}

// What the agents of a stream-mode run share: the completion count and how the run ended.
class StreamRun {
 public:
  explicit StreamRun(int64_t items) : items_(items) {}
  // One item completed; the last one ends the run.
  void Completed() {
    if (completed_.fetch_add(1) + 1 == items_) End("");
  }
  // Ends the run as failed (the first reason wins).
  void Fail(std::string why) { End(std::move(why)); }
  // Whether to print an error: the first few only.
  bool ShouldPrintError() { return printed_.fetch_add(1) < 5; }
  // Notified when every item is completed or the run failed.
  const absl::Notification& ended() const { return ended_; }
  std::string failure() {
    std::lock_guard<std::mutex> l(mu_);
    return failure_;
  }

 private:
  void End(std::string why) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (over_) return;
      over_ = true;
      failure_ = std::move(why);
    }
    ended_.Notify();
  }

  const int64_t items_;
  std::atomic<int64_t> completed_{0};
  std::atomic<int> printed_{0};
  std::mutex mu_;
  bool over_ = false;
  std::string failure_;
  absl::Notification ended_;
};

// The thread that drives the Session streams of stream mode: every agent's stream runs on one
// completion queue, polled by this one thread. The process then has a single gRPC poller, as
// each agentd has (its reader thread; agentd uses no callback API), so the controller is
// measured without the thread hand-offs of gRPC's callback threads in the load itself (two of
// them, passing the poller role back and forth on every event).
class StreamDriver {
 public:
  // What a stream's operation reports back: the agent and the kind of operation.
  struct Tag {
    class StreamAgent* agent;
    enum Op { kStart, kRead, kWrite, kWritesDone, kFinish } op;
  };
  StreamDriver() : thread_([this] { Loop(); }) {}
  // After every stream finished.
  ~StreamDriver() {
    cq_.Shutdown();
    thread_.join();
  }
  grpc::CompletionQueue* cq() { return &cq_; }

 private:
  void Loop();

  grpc::CompletionQueue cq_;
  std::thread thread_;
};

// One simulated agent in stream mode: Register, then on its Session stream hello and one
// want_work; every lease is answered with a `complete` (acquire_next set), whose reply brings
// the next lease (Hello.lease_in_reply, as agentd sets it). One write in flight at a time: the
// rest wait in `pending_`. Its operations complete on the driver's thread (On); Start,
// HalfClose, Cancel and WaitDone are called from the main thread.
class StreamAgent {
 public:
  StreamAgent(std::shared_ptr<grpc::Channel> ch, std::string id, StreamRun* run,
              StreamDriver* driver)
      : stub_(v1::AgentService::NewStub(ch)), id_(std::move(id)), run_(run), driver_(driver) {}

  bool Register() { return RegisterAgent(stub_.get(), id_, &session_); }
  // Opens the Session stream: hello, then want_work.
  void Start() {
    std::lock_guard<std::mutex> l(mu_);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_session_id(session_);
    hello.mutable_hello()->set_agent_id(id_);
    hello.mutable_hello()->set_lease_in_reply(true);  // as agentd does
    SendLocked(std::move(hello));
    WantWorkLocked();
    stream_ = stub_->PrepareAsyncSession(&ctx_, driver_->cq());
    stream_->StartCall(&start_tag_);
  }
  // Sends nothing more and half-closes once the writes in flight are done; the controller then
  // ends the stream.
  void HalfClose() {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    pending_.clear();
    MaybeWriteLocked();
  }
  void Cancel() { ctx_.TryCancel(); }
  // Whether the stream finished within `timeout`.
  bool WaitDone(absl::Duration timeout) { return done_.WaitForNotificationWithTimeout(timeout); }
  // Read only after WaitDone.
  const std::vector<double>& latencies_ms() const { return latencies_; }
  int64_t errors() const { return errors_; }

  // An operation completed (on the driver's thread).
  void On(StreamDriver::Tag::Op op, bool ok) {
    switch (op) {
      case StreamDriver::Tag::kStart: {
        std::lock_guard<std::mutex> l(mu_);
        if (!ok) {
          closed_ = true;
          MaybeFinishLocked();
          return;
        }
        started_ = true;
        reading_ = true;
        stream_->Read(&in_, &read_tag_);
        MaybeWriteLocked();
        return;
      }
      case StreamDriver::Tag::kRead:
        OnRead(ok);
        return;
      case StreamDriver::Tag::kWrite: {
        std::lock_guard<std::mutex> l(mu_);
        writing_ = false;
        if (!ok) {
          closed_ = true;  // the stream is over: the read fails too
          pending_.clear();
        }
        MaybeWriteLocked();
        MaybeFinishLocked();
        return;
      }
      case StreamDriver::Tag::kWritesDone: {
        std::lock_guard<std::mutex> l(mu_);
        writes_done_pending_ = false;
        MaybeFinishLocked();
        return;
      }
      case StreamDriver::Tag::kFinish:
        // We only half-close or cancel after the run ended: an earlier end is a failure.
        if (!run_->ended().HasBeenNotified()) {
          run_->Fail(absl::StrCat(id_, ": the Session stream ended early: code ",
                                  static_cast<int>(status_.error_code()), ": ",
                                  status_.error_message()));
        }
        done_.Notify();
        return;
    }
  }

 private:
  void OnRead(bool ok) {
    if (!ok) {
      std::lock_guard<std::mutex> l(mu_);
      reading_ = false;
      closed_ = true;
      pending_.clear();
      MaybeFinishLocked();
      return;
    }
    if (in_.has_lease()) {
      OnLease(in_.lease());
    } else if (in_.has_reply()) {
      OnReply(in_.reply());
      if (in_.reply().has_next_lease()) OnLease(in_.reply().next_lease());
    }  // heartbeat_ack, lease_renewed and commands: ignored
    stream_->Read(&in_, &read_tag_);
  }
  void OnLease(const v1::Lease& lease) {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    if (timed_) {
      latencies_.push_back(absl::ToDoubleMilliseconds(absl::Now() - sent_));
      timed_ = false;
    }
    v1::AgentMessage m;
    v1::CompleteRequest* c = m.mutable_complete();
    c->set_agent_id(id_);
    c->set_item_id(lease.item_id());
    c->set_lease_token(lease.lease_token());
    c->set_attempt(lease.attempt());
    c->set_exit_code(0);
    c->set_acquire_next(true);
    sent_ = absl::Now();
    timed_ = true;
    SendLocked(std::move(m));
  }
  void OnReply(const v1::Reply& reply) {
    if (reply.code() == 0) {
      run_->Completed();
      return;
    }
    if (reply.code() == static_cast<int>(grpc::StatusCode::UNIMPLEMENTED)) {
      run_->Fail("the controller does not support work on the Session stream");
      return;
    }
    if (reply.item_id().empty()) {  // not the answer to a complete: want_work was refused
      run_->Fail(
          absl::StrCat(id_, ": want_work refused: code ", reply.code(), ": ", reply.message()));
      return;
    }
    ++errors_;
    if (run_->ShouldPrintError()) {
      std::fprintf(stderr, "load_gen: %s: complete %s (token %llu): code %d: %s\n", id_.c_str(),
                   reply.item_id().c_str(), static_cast<unsigned long long>(reply.lease_token()),
                   reply.code(), reply.message().c_str());
    }
    // A refused complete brings no next lease: ask again.
    std::lock_guard<std::mutex> l(mu_);
    WantWorkLocked();
  }
  void WantWorkLocked() {
    v1::AgentMessage m;
    m.mutable_want_work();
    sent_ = absl::Now();
    timed_ = true;
    SendLocked(std::move(m));
  }
  void SendLocked(v1::AgentMessage m) {
    if (stopping_ || closed_) return;
    pending_.push_back(std::move(m));
    MaybeWriteLocked();
  }
  // Starts the next write, or the half-close once nothing is left to write.
  void MaybeWriteLocked() {
    if (!started_ || writing_ || closed_ || writes_done_) return;
    if (!pending_.empty()) {
      out_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      stream_->Write(out_, &write_tag_);
    } else if (stopping_) {
      writes_done_ = true;
      writes_done_pending_ = true;
      stream_->WritesDone(&writes_done_tag_);
    }
  }
  // Asks for the stream's status once it is over and no operation is in flight.
  void MaybeFinishLocked() {
    if (!closed_ || finishing_ || writing_ || reading_ || writes_done_pending_) return;
    finishing_ = true;
    stream_->Finish(&status_, &finish_tag_);
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string id_;
  std::string session_;
  StreamRun* const run_;
  StreamDriver* const driver_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream_;
  StreamDriver::Tag start_tag_{this, StreamDriver::Tag::kStart};
  StreamDriver::Tag read_tag_{this, StreamDriver::Tag::kRead};
  StreamDriver::Tag write_tag_{this, StreamDriver::Tag::kWrite};
  StreamDriver::Tag writes_done_tag_{this, StreamDriver::Tag::kWritesDone};
  StreamDriver::Tag finish_tag_{this, StreamDriver::Tag::kFinish};
  v1::ControllerMessage in_;  // the driver's thread's only
  grpc::Status status_;       // set by Finish
  std::mutex mu_;             // guards everything below
  v1::AgentMessage out_;      // the write in flight
  std::deque<v1::AgentMessage> pending_;
  bool started_ = false;              // StartCall completed
  bool reading_ = false;              // a read is in flight
  bool writing_ = false;              // a write is in flight
  bool stopping_ = false;             // HalfClose called: send nothing more
  bool writes_done_ = false;          // WritesDone called
  bool writes_done_pending_ = false;  // ... and not completed
  bool closed_ = false;               // a read or write failed: the stream is over
  bool finishing_ = false;            // Finish called
  absl::Time sent_;                   // when the last want_work or complete was queued
  bool timed_ = false;                // a lease will end a latency sample started at `sent_`
  std::vector<double> latencies_;
  int64_t errors_ = 0;
  absl::Notification done_;
};

void StreamDriver::Loop() {
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) {
    Tag* t = static_cast<Tag*>(tag);
    t->agent->On(t->op, ok);
  }
}

// Returns the process's exit status: 1 when the run failed (e.g. the controller does not take
// work on the Session stream).
int RunStream(const Args& args) {
  Controller c = StartController(args, absl::StrCat("st", args.agents), {}, /*metrics=*/true);
  StreamRun run(args.items);
  auto driver = std::make_unique<StreamDriver>();
  std::vector<std::unique_ptr<StreamAgent>> agents;
  for (int64_t i = 0; i < args.agents; ++i) {
    agents.push_back(std::make_unique<StreamAgent>(AgentChannel(c.address, static_cast<int>(i)),
                                                   absl::StrCat("bench-", i), &run, driver.get()));
    if (!agents.back()->Register()) std::exit(1);
  }
  auto control = v1::ControlService::NewStub(MakeControllerChannel(c.address));
  const std::optional<StoreFigures> store0 = StoreNow(c);
  const Use controller0 = UseOf(c.process->pid());
  const Use own0 = OwnUse();
  absl::Time start = absl::Now();
  for (auto& a : agents) a->Start();
  // Submit while the agents run, as in lifecycle mode.
  if (!SubmitNoops(control.get(), args, &run.ended())) run.Fail("submit failed");
  run.ended().WaitForNotification();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const Use controller = UseOf(c.process->pid()) - controller0;
  const Use own = OwnUse() - own0;
  const std::optional<StoreFigures> store1 = StoreNow(c);
  std::string failure = run.failure();
  // Stop: half-close (the controller then ends each stream with OK); streams still open after
  // a grace period, or every stream of a failed run, are cancelled. Agents outlive their streams.
  absl::Time grace = absl::Now() + absl::Seconds(10);
  for (auto& a : agents) {
    if (failure.empty()) {
      a->HalfClose();
    } else {
      a->Cancel();
    }
  }
  for (auto& a : agents) {
    if (!a->WaitDone(std::max(grace - absl::Now(), absl::ZeroDuration()))) {
      a->Cancel();
      a->WaitDone(absl::InfiniteDuration());
    }
  }
  if (failure.empty()) {
    std::vector<double> lat;
    int64_t errors = 0;
    for (auto& a : agents) {
      lat.insert(lat.end(), a->latencies_ms().begin(), a->latencies_ms().end());
      errors += a->errors();
    }
    PrintItemsLine("stream", args, c, control.get(), secs, lat, errors, controller, own, store0,
                   store1);
  } else {
    std::fprintf(stderr, "load_gen: %s\n", failure.c_str());
  }
  driver.reset();  // every stream finished: nothing is left on its queue
  agents.clear();
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(std::filesystem::path(c.state_dir).parent_path());
  return failure.empty() ? 0 : 1;
}

// An idle agent: registered, with a Session stream that sends a heartbeat when told to.
class IdleAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  IdleAgent(std::shared_ptr<grpc::Channel> ch, std::string id)
      : stub_(v1::AgentService::NewStub(ch)), id_(std::move(id)) {}
  bool Register() {
    v1::RegisterRequest req;
    req.set_agent_id(id_);
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    if (!stub_->Register(&ctx, req, &resp).ok()) return false;
    stub_->async()->Session(&ctx_, this);
    out_.mutable_hello()->set_agent_id(id_);
    out_.mutable_hello()->set_session_id(resp.session_id());
    writing_ = true;
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
    return true;
  }
  void Beat() {
    std::lock_guard<std::mutex> l(mu_);
    if (writing_ || closed_) return;  // previous write still in flight: skip a beat
    out_.Clear();
    out_.mutable_heartbeat()->set_seq(++seq_);
    out_.mutable_heartbeat()->set_state(v1::AGENT_STATE_IDLE);
    writing_ = true;
    StartWrite(&out_);
  }
  void Stop() {
    ctx_.TryCancel();
    done_.WaitForNotification();
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    writing_ = false;
    if (!ok) closed_ = true;
  }
  void OnReadDone(bool ok) override {
    if (ok) {
      acks_.fetch_add(1);
      StartRead(&in_);
    }
  }
  void OnDone(const grpc::Status&) override { done_.Notify(); }
  int64_t acks() const { return acks_.load(); }

 private:
  std::unique_ptr<v1::AgentService::Stub> stub_;
  std::string id_;
  grpc::ClientContext ctx_;
  v1::AgentMessage out_;
  v1::ControllerMessage in_;
  std::mutex mu_;
  bool writing_ = false;
  bool closed_ = false;
  uint64_t seq_ = 0;
  std::atomic<int64_t> acks_{0};
  absl::Notification done_;
};

void RunIdle(const Args& args) {
  Controller c = StartController(args, absl::StrCat("idle", args.agents));
  std::vector<std::unique_ptr<IdleAgent>> agents;
  for (int64_t i = 0; i < args.agents; ++i) {
    agents.push_back(std::make_unique<IdleAgent>(AgentChannel(c.address, static_cast<int>(i)),
                                                 absl::StrCat("idle-", i)));
    if (!agents.back()->Register()) {
      std::fprintf(stderr, "load_gen: agent %lld could not register\n", static_cast<long long>(i));
      std::exit(1);
    }
  }
  // Spread the beats over the interval, as independent agents would be.
  std::atomic<bool> stop{false};
  std::thread beater([&] {
    const absl::Duration step =
        absl::Milliseconds(args.heartbeat_ms) / static_cast<double>(agents.size());
    absl::Time next = absl::Now();
    for (size_t i = 0; !stop.load(); i = (i + 1) % agents.size()) {
      agents[i]->Beat();
      next += step;
      absl::Time now = absl::Now();
      if (next > now) absl::SleepFor(next - now);
    }
  });
  absl::SleepFor(absl::Seconds(2));  // warm up: every stream open and beating
  int64_t acks0 = 0;
  for (auto& a : agents) acks0 += a->acks();
  double cpu0 = bench::ProcCpuSeconds(c.process->pid());
  absl::Time t0 = absl::Now();
  absl::SleepFor(absl::Seconds(args.seconds));
  double cpu = bench::ProcCpuSeconds(c.process->pid()) - cpu0;
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  int64_t acks = -acks0;
  for (auto& a : agents) acks += a->acks();
  long rss = bench::ProcRssKb(c.process->pid());
  auto control = v1::ControlService::NewStub(MakeControllerChannel(c.address));
  v1::StatusSnapshot status;
  grpc::ClientContext ctx;
  control->Status(&ctx, v1::StatusRequest(), &status);
  int healthy = 0;
  for (const auto& a : status.agents()) healthy += a.health() == v1::HEALTH_HEALTHY;
  std::printf(
      "{\"bench\":\"load_gen\",\"mode\":\"idle\",\"agents\":%lld,\"heartbeat_ms\":%lld,\"seconds\":"
      "%.1f,"
      "\"heartbeats_per_s\":%.0f,\"controller_cpu_pct_of_one_core\":%.1f,\"controller_rss_mb\":%."
      "1f,"
      "\"healthy\":%d}\n",
      static_cast<long long>(args.agents), static_cast<long long>(args.heartbeat_ms), secs,
      acks / secs, 100.0 * cpu / secs, rss / 1024.0, healthy);
  std::fflush(stdout);
  stop = true;
  beater.join();
  for (auto& a : agents) a->Stop();
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(std::filesystem::path(c.state_dir).parent_path());
}

// One simulated agent in ping mode: hello on its Session stream, then `rounds` heartbeats, each
// written once the last one's ack came back (one message each way, no disk). One write in flight
// at a time: a heartbeat whose ack overtook its own write completion waits for it.
class PingAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
 public:
  PingAgent(std::shared_ptr<grpc::Channel> ch, std::string id, int64_t rounds,
            std::atomic<int>* running, absl::Notification* all_done)
      : stub_(v1::AgentService::NewStub(ch)),
        id_(std::move(id)),
        rounds_(rounds),
        running_(running),
        all_done_(all_done) {}

  bool Register() { return RegisterAgent(stub_.get(), id_, &session_); }
  void Start() {
    stub_->async()->Session(&ctx_, this);
    out_.mutable_hello()->set_session_id(session_);
    out_.mutable_hello()->set_agent_id(id_);
    {
      std::lock_guard<std::mutex> l(mu_);
      writing_ = true;
    }
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }
  void Stop() {
    ctx_.TryCancel();
    done_.WaitForNotification();
  }
  // Read only after the run ended.
  const std::vector<double>& rtt_ms() const { return rtt_; }
  bool failed() const { return failed_; }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    writing_ = false;
    if (!ok) return FailLocked();
    if (!hello_done_) {  // hello written: the first heartbeat
      hello_done_ = true;
      return SendNextLocked();
    }
    if (next_waiting_) SendNextLocked();
  }
  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!ok) return FailLocked();
    if (in_.has_heartbeat_ack() && in_.heartbeat_ack().seq() == seq_ && sent_at_.has_value()) {
      rtt_.push_back(absl::ToDoubleMilliseconds(absl::Now() - *sent_at_));
      sent_at_.reset();
      if (static_cast<int64_t>(rtt_.size()) == rounds_) return FinishLocked();
      if (writing_) {
        next_waiting_ = true;
      } else {
        SendNextLocked();
      }
    }
    StartRead(&in_);
  }
  void OnDone(const grpc::Status&) override { done_.Notify(); }

 private:
  void SendNextLocked() {
    next_waiting_ = false;
    out_.Clear();
    out_.mutable_heartbeat()->set_seq(++seq_);
    out_.mutable_heartbeat()->set_state(v1::AGENT_STATE_IDLE);
    sent_at_ = absl::Now();
    writing_ = true;
    StartWrite(&out_);
  }
  void FinishLocked() {
    if (finished_) return;
    finished_ = true;
    if (running_->fetch_sub(1) == 1) all_done_->Notify();
  }
  void FailLocked() {
    if (!finished_) failed_ = true;
    FinishLocked();
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  const std::string id_;
  std::string session_;
  const int64_t rounds_;
  std::atomic<int>* running_;
  absl::Notification* all_done_;
  grpc::ClientContext ctx_;
  v1::ControllerMessage in_;
  std::mutex mu_;  // guards everything below
  v1::AgentMessage out_;
  bool writing_ = false;
  bool hello_done_ = false;
  bool next_waiting_ = false;
  uint64_t seq_ = 0;
  std::optional<absl::Time> sent_at_;
  std::vector<double> rtt_;
  bool finished_ = false;
  bool failed_ = false;
  absl::Notification done_;
};

// Ping: M agents (--agents) each exchange --items / M heartbeats with their acks on their own
// Session stream, one in flight per agent: the round trip of one message each way through gRPC
// and both processes (p50, mean), and with M agents the exchanges per second of all of them:
// what the stack alone carries, an upper bound for items/s with one message each way per item.
void RunPing(const Args& args) {
  Controller c = StartController(args, "ping");
  const int64_t m = std::max<int64_t>(args.agents, 1);
  const int64_t per_agent = std::max<int64_t>(args.items / m, 1);
  std::atomic<int> running{static_cast<int>(m)};
  absl::Notification all_done;
  std::vector<std::unique_ptr<PingAgent>> agents;
  for (int64_t i = 0; i < m; ++i) {
    agents.push_back(std::make_unique<PingAgent>(AgentChannel(c.address, static_cast<int>(i)),
                                                 absl::StrCat("pinger-", i), per_agent, &running,
                                                 &all_done));
    if (!agents.back()->Register()) std::exit(1);
  }
  const Use controller0 = UseOf(c.process->pid());
  const Use own0 = OwnUse();
  const absl::Time start = absl::Now();
  for (auto& a : agents) a->Start();
  all_done.WaitForNotification();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const Use controller = UseOf(c.process->pid()) - controller0;
  const Use own = OwnUse() - own0;
  for (auto& a : agents) a->Stop();
  std::vector<double> rtt;
  bool failed = false;
  for (auto& a : agents) {
    rtt.insert(rtt.end(), a->rtt_ms().begin(), a->rtt_ms().end());
    failed = failed || a->failed();
  }
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(std::filesystem::path(c.state_dir).parent_path());
  if (failed) {
    std::fprintf(stderr, "load_gen: ping: a Session stream ended early\n");
    std::exit(1);
  }
  double sum = 0;
  for (double v : rtt) sum += v;
  const double n = std::max<double>(static_cast<double>(rtt.size()), 1);
  std::printf(
      "{\"bench\":\"load_gen\",\"mode\":\"ping\",\"agents\":%lld,\"rounds\":%zu,"
      "\"seconds\":%.3f,\"rounds_per_s\":%.0f,\"rtt_p50_ms\":%.4f,\"rtt_mean_ms\":%.4f,"
      "\"controller_cpu_us_per_round\":%.1f,\"controller_switches_per_round\":%.2f,"
      "\"agents_cpu_us_per_round\":%.1f,\"agents_switches_per_round\":%.2f}\n",
      static_cast<long long>(m), rtt.size(), secs,
      secs > 0 ? static_cast<double>(rtt.size()) / secs : 0.0, Percentile(rtt, 0.5),
      rtt.empty() ? 0.0 : sum / static_cast<double>(rtt.size()), 1e6 * controller.cpu_s / n,
      static_cast<double>(controller.switches) / n, 1e6 * own.cpu_s / n,
      static_cast<double>(own.switches) / n);
  std::fflush(stdout);
}

// Wake latency: one agent parked in Acquire; an item is submitted; time from the Submit call
// to the lease arriving at the agent (the submit's fsync included).
void RunWake(const Args& args) {
  Controller c = StartController(args, "wake");
  auto ch = AgentChannel(c.address, 0);
  auto agent = v1::AgentService::NewStub(ch);
  auto control = v1::ControlService::NewStub(MakeControllerChannel(c.address));
  v1::RegisterRequest reg;
  reg.set_agent_id("waker");
  v1::RegisterResponse reg_resp;
  {
    grpc::ClientContext ctx;
    if (!agent->Register(&ctx, reg, &reg_resp).ok()) std::exit(1);
  }
  std::vector<double> lat;
  for (int64_t i = 0; i < args.items; ++i) {
    absl::Time submitted;
    v1::AcquireResponse acq;
    std::thread waiter([&] {
      v1::AcquireRequest req;
      req.set_agent_id("waker");
      req.set_session_id(reg_resp.session_id());
      req.set_wait_ms(10000);
      grpc::ClientContext ctx;
      agent->Acquire(&ctx, req, &acq);
    });
    absl::SleepFor(absl::Milliseconds(20));  // parked by now
    v1::SubmitRequest sub;
    v1::ItemSpec* s = sub.add_items();
    s->set_id(absl::StrCat("w", i));
    s->set_title("wake");
    s->set_prompt("noop");
    v1::SubmitResponse sub_resp;
    submitted = absl::Now();
    {
      grpc::ClientContext ctx;
      control->Submit(&ctx, sub, &sub_resp);
    }
    waiter.join();
    if (!acq.has_lease()) continue;
    lat.push_back(absl::ToDoubleMilliseconds(absl::Now() - submitted));
    v1::CompleteRequest comp;
    comp.set_agent_id("waker");
    comp.set_item_id(acq.lease().item_id());
    comp.set_lease_token(acq.lease().lease_token());
    v1::CompleteResponse comp_resp;
    grpc::ClientContext ctx;
    agent->Complete(&ctx, comp, &comp_resp);
  }
  std::printf(
      "{\"bench\":\"load_gen\",\"mode\":\"wake\",\"rounds\":%zu,\"submit_to_lease_p50_ms\":%.3f,"
      "\"submit_to_lease_p99_ms\":%.3f}\n",
      lat.size(), Percentile(lat, 0.5), Percentile(lat, 0.99));
  std::fflush(stdout);
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(std::filesystem::path(c.state_dir).parent_path());
}

// Whether the process has exited (a zombie not yet reaped counts) or is gone.
bool Exited(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  return close == std::string::npos || close + 2 >= s.size() || s[close + 2] == 'Z' ||
         s[close + 2] == 'X';
}

// Total size of the regular files under `dir`.
uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) {
      uintmax_t n = it->file_size(fec);
      if (!fec) total += n;
    }
  }
  return total;
}

// One restart, timed: from just before the spawn to the first Status answer showing the
// expected pending count.
struct Restart {
  bool ok = false;
  double serving_s = 0;
  absl::Time serving_at;
  long rss_kb = 0;         // at the serving moment
  int tries = 0;           // Status calls made
  int64_t pending = -1;    // from the last Status answer
  std::string last_error;  // of the last failed Status call
};

// Starts the controller again on c's state dir and address (port), then polls Status with a
// short deadline on a fresh channel per try (no shared subchannel, so no reconnect backoff
// carried over from a refused connection) until queue pending == `want_pending`.
Restart RespawnAndTime(const Args& args, Controller* c, int64_t want_pending,
                       const std::string& label) {
  Restart r;
  const std::string out = absl::StrCat(c->base, "/controller-", label, ".out");
  const std::vector<std::string> argv = ControllerArgv(args, c->address, c->state_dir, {});
  const absl::Time start = absl::Now();
  c->process =
      std::make_unique<ChildProcess>(ChildProcess::Spawn(argv, out, c->base + "/controller.log"));
  const pid_t pid = c->process->pid();
  const absl::Time give_up = start + absl::Seconds(120);
  for (;;) {
    grpc::ChannelArguments ca;
    ca.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto control = v1::ControlService::NewStub(
        grpc::CreateCustomChannel(c->address, grpc::InsecureChannelCredentials(), ca));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(50));
    ctx.set_wait_for_ready(false);  // a refused connection fails at once
    v1::StatusSnapshot status;
    grpc::Status st = control->Status(&ctx, v1::StatusRequest(), &status);
    ++r.tries;
    if (st.ok()) {
      r.pending = status.queue().pending();
      if (r.pending == want_pending) {
        r.serving_at = absl::Now();
        r.serving_s = absl::ToDoubleSeconds(r.serving_at - start);
        r.rss_kb = bench::ProcRssKb(pid);
        r.ok = true;
        return r;
      }
    } else {
      r.last_error =
          absl::StrCat("code ", static_cast<int>(st.error_code()), ": ", st.error_message());
    }
    if (Exited(pid)) {
      r.last_error = absl::StrCat("the controller exited; last Status: ", r.last_error);
      return r;
    }
    if (absl::Now() > give_up) return r;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// Restart mode: --items no-op items submitted (durable once Submit returns); the controller
// killed with SIGKILL and started again on the same state dir and port, timed until Status
// shows every item pending, RSS then and 1 s later; then the same after a clean stop (SIGTERM).
int RunRestart(const Args& args) {
  Controller c = StartController(args, "restart");
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "load_gen: %s (see %s/controller.log)\n", why.c_str(), c.base.c_str());
    return 1;  // ~ChildProcess kills the controller; the dir stays for a look
  };
  double submit_s = 0;
  {
    auto control = v1::ControlService::NewStub(MakeControllerChannel(c.address));
    absl::Time t0 = absl::Now();
    if (!SubmitNoops(control.get(), args, nullptr)) return fail("submit failed");
    submit_s = absl::ToDoubleSeconds(absl::Now() - t0);
    v1::StatusSnapshot status;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status st = control->Status(&ctx, v1::StatusRequest(), &status);
    if (!st.ok()) return fail(absl::StrCat("status after submit: ", st.error_message()));
    if (status.queue().pending() != args.items) {
      return fail(absl::StrCat("after submit ", status.queue().pending(), " items pending, not ",
                               args.items));
    }
  }  // the channel goes before the kill
  // What a restart reads: the state dir as the killed process leaves it.
  const double state_dir_mb = static_cast<double>(DirBytes(c.state_dir)) / (1024.0 * 1024.0);

  c.process->Signal(SIGKILL);
  c.process->Wait();
  Restart kill9 = RespawnAndTime(args, &c, args.items, "kill9");
  if (!kill9.ok) {
    return fail(absl::StrCat("after SIGKILL the controller was not serving ", args.items,
                             " pending items within 120 s (", kill9.tries, " tries; last pending ",
                             kill9.pending, "; ", kill9.last_error, ")"));
  }
  absl::Time later = kill9.serving_at + absl::Seconds(1);
  if (later > absl::Now()) absl::SleepFor(later - absl::Now());
  const long kill9_rss_1s = bench::ProcRssKb(c.process->pid());

  c.process->Signal(SIGTERM);
  int ws = c.process->Wait();
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    std::fprintf(stderr, "load_gen: warning: the controller's clean stop ended with status %d\n",
                 ws);
  }
  Restart term = RespawnAndTime(args, &c, args.items, "term");
  if (!term.ok) {
    return fail(absl::StrCat("after SIGTERM the controller was not serving ", args.items,
                             " pending items within 120 s (", term.tries, " tries; last pending ",
                             term.pending, "; ", term.last_error, ")"));
  }
  std::printf(
      "{\"bench\":\"load_gen\",\"mode\":\"restart\",\"items\":%lld,\"batch\":%lld,"
      "\"submit_s\":%.3f,\"kill9_restart_serving_s\":%.3f,\"kill9_rss_kb\":%ld,"
      "\"kill9_rss_after_1s_kb\":%ld,\"term_restart_serving_s\":%.3f,\"term_rss_kb\":%ld,"
      "\"state_dir_mb\":%.1f}\n",
      static_cast<long long>(args.items), static_cast<long long>(args.batch), submit_s,
      kill9.serving_s, kill9.rss_kb, kill9_rss_1s, term.serving_s, term.rss_kb, state_dir_mb);
  std::fflush(stdout);
  c.process->Signal(SIGTERM);
  c.process->Wait();
  std::filesystem::remove_all(c.base);
  return 0;
}

}  // namespace
}  // namespace harness

int main(int argc, char** argv) {
  // Debian's Abseil is built with deadlock detection on, which costs on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  harness::Args args;
  harness::FlagParser flags(
      "load_gen",
      "usage: load_gen --controller-bin PATH [--mode lifecycle|wake|idle|stream|restart] "
      "[--agents M] [--items N] [--batch B] [--seconds S] [--heartbeat-ms MS] [--dir DIR]");
  flags.AddString("controller-bin", &args.controller_bin, "the controller binary to start");
  flags.AddString("mode", &args.mode,
                  "lifecycle (items/s), wake (long-poll latency), idle (heartbeat cost), "
                  "stream (items/s over the Session stream), ping (a message's round trip) or "
                  "restart (time to serving again "
                  "after SIGKILL and after SIGTERM with --items pending)");
  flags.AddInt("agents", &args.agents, "simulated agents", 1, 20000);
  flags.AddInt("items", &args.items,
               "items (lifecycle, stream; restart: pending items, default 100000) or rounds (wake)",
               1, 100000000);
  flags.AddInt("batch", &args.batch, "items per Submit call (restart: default 1000)", 1, 10000);
  flags.AddDouble("seconds", &args.seconds, "measuring window in idle mode", 1, 3600);
  flags.AddInt("heartbeat-ms", &args.heartbeat_ms, "heartbeat interval", 10, 60000);
  flags.AddString("dir", &args.dir, "where the controller's state dir goes");
  flags.ParseOrExit(argc, argv);
  if (args.controller_bin.empty()) flags.Fail("--controller-bin is required");
  if (args.mode != "lifecycle" && args.mode != "idle" && args.mode != "wake" &&
      args.mode != "stream" && args.mode != "ping" && args.mode != "restart") {
    flags.Fail("--mode must be lifecycle, wake, idle, stream, ping or restart");
  }
  if (args.mode == "restart") {
    if (!flags.WasSet("items")) args.items = 100000;
    if (!flags.WasSet("batch")) args.batch = 1000;
  }
  signal(SIGPIPE, SIG_IGN);
  harness::RaiseFdLimit();
  if (args.mode == "lifecycle") {
    harness::RunLifecycle(args);
  } else if (args.mode == "stream") {
    return harness::RunStream(args);
  } else if (args.mode == "restart") {
    return harness::RunRestart(args);
  } else if (args.mode == "wake") {
    harness::RunWake(args);
  } else if (args.mode == "ping") {
    harness::RunPing(args);
  } else {
    harness::RunIdle(args);
  }
  return 0;
}
