// rpc_floor: what gRPC itself costs per message on this machine, for each server API the
// controller could be built on. A server that answers every `heartbeat` on the Session stream
// with a `heartbeat_ack` and does nothing else, built either on gRPC's callback API (what the
// controller uses: gRPC 1.51 runs the callbacks on its own "nexting" threads, at least two,
// which take turns at the one poller) or on the completion-queue API with one thread of its own
// that polls and answers (no nexting threads). M client streams (a thread and a channel each,
// like M agents) ping-pong N messages in all. It prints one JSON line: exchanges/s and the
// server's CPU and context switches per exchange (from wait4's rusage of the server process).
//
// usage: rpc_floor --api callback|callback+extras|callback+interceptor|cq|cq+callback [--streams M]
// [--messages N | --idle-seconds S [--interval-ms T]]
//   callback+extras: with gRPC's health service and reflection on, as in the controller
//   callback+interceptor: with a server interceptor that passes every batch on, as the
//   controller's metrics interceptor does
//   cq+callback: the cq server beside an unused callback service (whose threads then poll too)
// The server runs as a child process (rpc_floor serve API). GRPC_POLL_STRATEGY applies to both
// sides; RPC_FLOOR_SERVER_POLL sets the server's alone.
//
// With --idle-seconds S: idle agents instead. M streams (a channel each, on gRPC's callback
// API in one client process, as load_gen's idle mode) each send a heartbeat every
// --interval-ms (default 1000), spread evenly; after a warm-up, the server's CPU over S seconds
// is read from /proc. Prints heartbeats/s, the server's CPU in % of one core and its RSS: the
// floor under the controller's figure for M idle agents (load_gen --mode idle).
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/v1/agent.grpc.pb.h"
#include "harness/v1/control.grpc.pb.h"
#include "proc_stats.h"
#include "server_child.h"

namespace {

using harness::v1::AgentMessage;
using harness::v1::ControllerMessage;

void Answer(const AgentMessage& in, ControllerMessage* out) {
  out->Clear();
  out->mutable_heartbeat_ack()->set_seq(in.heartbeat().seq());
}

// The callback API: the next read starts once the answer is written, as a reactor must.
class EchoReactor : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  EchoReactor() { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    Answer(in_, &out_);
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    StartRead(&in_);
  }
  void OnDone() override { delete this; }

 private:
  AgentMessage in_;
  ControllerMessage out_;
};

// A server interceptor that only passes every batch on (the controller's metrics interceptor
// records at one hook point and passes the rest).
class PassInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }
};

class PassInterceptors : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new PassInterceptor;
  }
};

class CallbackEcho : public harness::v1::AgentService::CallbackService {
  grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* Session(
      grpc::CallbackServerContext*) override {
    return new EchoReactor;
  }
};

// The completion-queue API, one thread: the same steps as tags on one queue.
using bench::CqCall;

void ServeCq(grpc::ServerBuilder& builder, const int& port, bool with_callback_service) {
  harness::v1::AgentService::AsyncService service;
  builder.RegisterService(&service);
  // cq+callback: another service on the callback API beside it, never called (its nexting
  // threads exist and take part in polling).
  harness::v1::ControlService::CallbackService other;
  if (with_callback_service) builder.RegisterService(&other);
  std::function<void(grpc::ServerCompletionQueue*)> accept = [&](grpc::ServerCompletionQueue* q) {
    auto* c = new CqCall;
    service.RequestSession(&c->ctx, &c->rw, q, q, &c->accepted);
  };
  bench::CqServer s(builder, port, accept);
  grpc::ServerCompletionQueue* cq = s.cq.get();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
    auto* t = static_cast<CqCall::Tag*>(tag);
    CqCall* c = t->call;
    switch (t->op) {
      case CqCall::kAccepted:
        if (!ok) {
          delete c;
          break;
        }
        accept(cq);
        c->rw.Read(&c->in, &c->read);
        break;
      case CqCall::kRead:
        if (!ok) {
          c->rw.Finish(grpc::Status::OK, &c->finished);
          break;
        }
        Answer(c->in, &c->out);
        c->rw.Write(c->out, &c->written);
        break;
      case CqCall::kWritten:
        c->ReadNext(ok);
        break;
      case CqCall::kFinished:
        delete c;
        break;
    }
  }
  s.stopper.join();
}

// The server: prints its port, serves until stdin closes.
int Serve(const std::string& api) {
  // RPC_FLOOR_SERVER_POLL: the server's GRPC_POLL_STRATEGY alone (the clients keep theirs).
  if (const char* poll = std::getenv("RPC_FLOOR_SERVER_POLL"))
    setenv("GRPC_POLL_STRATEGY", poll, 1);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  if (api == "cq" || api == "cq+callback") {
    ServeCq(builder, port, api == "cq+callback");
    return 0;
  }
  if (api == "callback+extras") {
    // What the controller adds: gRPC's health service and server reflection (a sync service,
    // served by gRPC's own sync-server threads).
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }
  if (api == "callback+interceptor") {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> list;
    list.push_back(std::make_unique<PassInterceptors>());
    builder.experimental().SetInterceptorCreators(std::move(list));
  }
  CallbackEcho service;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::printf("%d\n", port);
  std::fflush(stdout);
  char b;
  while (read(0, &b, 1) > 0) {
  }
  server->Shutdown();
  return 0;
}

// An idle agent's stream: a heartbeat when told to (skipped while the last one is still being
// written), every ack read.
class IdleStream : public grpc::ClientBidiReactor<AgentMessage, ControllerMessage> {
 public:
  IdleStream(const std::string& target, int index) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("rpc_floor.stream", index);  // a channel (and connection) of its own
    stub_ = harness::v1::AgentService::NewStub(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
    stub_->async()->Session(&ctx_, this);
    StartRead(&in_);
    StartCall();
  }
  void Beat() {
    std::lock_guard<std::mutex> l(mu_);
    if (writing_ || closed_) return;
    out_.mutable_heartbeat()->set_seq(++seq_);
    writing_ = true;
    StartWrite(&out_);
  }
  void Stop() {
    ctx_.TryCancel();
    std::unique_lock<std::mutex> l(mu_);
    done_cv_.wait(l, [this] { return done_; });
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> l(mu_);
    writing_ = false;
    if (!ok) closed_ = true;
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    acks_.fetch_add(1, std::memory_order_relaxed);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard<std::mutex> l(mu_);
    done_ = true;
    done_cv_.notify_all();
  }
  int64_t acks() const { return acks_.load(std::memory_order_relaxed); }

 private:
  std::unique_ptr<harness::v1::AgentService::Stub> stub_;
  grpc::ClientContext ctx_;
  AgentMessage out_;
  ControllerMessage in_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool writing_ = false, closed_ = false, done_ = false;
  uint64_t seq_ = 0;
  std::atomic<int64_t> acks_{0};
};

int RunIdle(bench::ServerChild& server, const std::string& api, int streams, int seconds,
            int interval_ms) {
  const std::string target = "127.0.0.1:" + std::to_string(server.port());
  std::vector<std::unique_ptr<IdleStream>> all;
  for (int i = 0; i < streams; ++i) all.push_back(std::make_unique<IdleStream>(target, i));
  std::atomic<bool> stop{false};
  std::thread beater([&] {  // the beats spread over the interval, as independent agents
    const auto step = std::chrono::microseconds(interval_ms * 1000LL / streams);
    auto next = std::chrono::steady_clock::now();
    for (size_t i = 0; !stop.load(); i = (i + 1) % all.size()) {
      all[i]->Beat();
      next += step;
      std::this_thread::sleep_until(next);
    }
  });
  auto acks = [&] {
    int64_t n = 0;
    for (auto& s : all) n += s->acks();
    return n;
  };
  std::this_thread::sleep_for(std::chrono::seconds(2));  // warm-up: every stream open, beating
  const int64_t acks0 = acks();
  const double cpu0 = bench::ProcCpuSeconds(server.pid());
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double cpu = bench::ProcCpuSeconds(server.pid()) - cpu0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t n = acks() - acks0;
  const long rss = bench::ProcRssKb(server.pid());
  stop = true;
  beater.join();
  for (auto& s : all) s->Stop();
  const bool exited_ok = server.Stop();
  std::printf(
      "{\"bench\":\"rpc_floor\",\"mode\":\"idle\",\"api\":\"%s\",\"streams\":%d,"
      "\"interval_ms\":%d,\"seconds\":%.1f,\"heartbeats_per_s\":%.0f,"
      "\"server_cpu_pct_of_one_core\":%.1f,\"server_rss_mb\":%.1f}\n",
      api.c_str(), streams, interval_ms, secs, n / secs, 100.0 * cpu / secs, rss / 1024.0);
  return exited_ok ? 0 : 1;
}

}  // namespace

using bench::Flag;
using bench::FlagS;

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "serve") == 0) return Serve(argv[2]);
  const std::string api = FlagS(argc, argv, "--api", "");
  const int streams = Flag(argc, argv, "--streams", 16);
  const int messages = Flag(argc, argv, "--messages", 50000);
  const int idle_seconds = Flag(argc, argv, "--idle-seconds", 0);
  const int interval_ms = Flag(argc, argv, "--interval-ms", 1000);
  if ((api != "callback" && api != "callback+extras" && api != "callback+interceptor" &&
       api != "cq" && api != "cq+callback") ||
      streams < 1 || messages < streams || idle_seconds < 0 || interval_ms < 1) {
    std::fprintf(stderr,
                 "usage: rpc_floor --api "
                 "callback|callback+extras|callback+interceptor|cq|cq+callback [--streams M] "
                 "[--messages N | --idle-seconds S [--interval-ms T]]\n");
    return 2;
  }
  std::optional<bench::ServerChild> server =
      bench::ServerChild::Start(argv[0], {"serve", api}, false);
  if (!server) return 1;
  if (idle_seconds > 0) return RunIdle(*server, api, streams, idle_seconds, interval_ms);
  const int port = server->port();
  const std::string target = "127.0.0.1:" + std::to_string(port);
  const int per_stream = messages / streams;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> clients;
  for (int s = 0; s < streams; ++s) {
    clients.emplace_back([&, s] {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("rpc_floor.stream", s);  // a channel (and connection) of its own
      auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      auto stub = harness::v1::AgentService::NewStub(channel);
      grpc::ClientContext ctx;
      auto rw = stub->Session(&ctx);
      AgentMessage m;
      ControllerMessage r;
      m.mutable_heartbeat()->set_seq(0);  // one exchange to open the stream
      rw->Write(m);
      rw->Read(&r);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      for (int i = 1; i <= per_stream; ++i) {
        m.mutable_heartbeat()->set_seq(i);
        if (!rw->Write(m) || !rw->Read(&r)) break;
      }
      rw->WritesDone();
      rw->Finish();
    });
  }
  while (ready.load() < streams) std::this_thread::yield();
  auto t0 = std::chrono::steady_clock::now();
  go.store(true);
  for (std::thread& t : clients) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  struct rusage ru {};
  const bool exited_ok = server->Stop(&ru);
  const double n = static_cast<double>(per_stream) * streams;
  const double cpu = bench::CpuSeconds(ru);
  std::printf(
      "{\"bench\":\"rpc_floor\",\"api\":\"%s\",\"streams\":%d,\"exchanges\":%.0f,\"seconds\":%.3f,"
      "\"exchanges_per_s\":%.0f,\"server_cpu_us_per_exchange\":%.1f,"
      "\"server_switches_per_exchange\":%.2f}\n",
      api.c_str(), streams, n, seconds, n / seconds, cpu * 1e6 / n,
      (ru.ru_nvcsw + ru.ru_nivcsw) / n);
  return exited_ok ? 0 : 1;
}
