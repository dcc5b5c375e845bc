// durable_floor: the cheapest durable server this stack allows, as a ceiling for the controller.
// A server that does, per item, only what the contract makes every grant and completion cost
// on disk and on the wire, and nothing else: no lease protocol, no item table, no metrics, no
// logging, no submits. Each message read on a Session stream is an item's completion and the
// next grant: the stream's previous claim is unlinked from claims/, its lease slot rewritten in
// place (pwrite) and linked to claims/<item>, and two journal records (the end and the grant, as
// large as the controller's) join the round's buffer; no answer yet. A round: one write of the
// buffer, then the journal's fdatasync and the claims/ fsync at once (a second thread runs one,
// as the controller's fsync worker does; --serial-syncs runs both on one thread), then every
// answer of the round is written. The server's threads (--api):
//   cq            gRPC's completion-queue API, one thread doing everything: it reads and claims
//                 whatever is waiting, runs the round itself, answers (no poller hand-offs, but
//                 the thread that polls gRPC blocks in the syncs)
//   cq+committer  the queue's thread reads and claims; a committer thread runs the rounds and
//                 writes the answers into gRPC (the controller's structure on one poller)
//   cq+syncer     the queue's thread reads, claims and answers; a thread of its own runs each
//                 round and hands it back through the queue (a grpc::Alarm)
//   callback      gRPC's callback API and a committer thread: the controller's structure
//   cq+committer+callback  cq+committer beside another service on the callback API, never
//                 called, as the controller's other RPCs are: gRPC's callback threads then exist
//                 and take their turns at the one poller, handing the stream's events across
// M streams (like M agents) are driven by one client thread on one completion queue (as
// load_gen's stream mode does), each sending its next message once the last one's answer came.
// An implementation of the contract does at least this much per item, so the figures bound
// what harness can reach on this machine: items/s for M streams, and for one stream the share
// of its own sync floor (1 / the mean time of a round's syncs).
//
// usage: durable_floor [--api cq|cq+committer|cq+syncer|callback|cq+committer+callback]
//                      [--streams M] [--items N] [--dir DIR] [--serial-syncs]
// DIR (default /tmp) gets a fresh temp dir for the server's files, removed at the end.
// Prints one JSON line: items_per_s, rounds, sync_mean_ms, floor_per_s (1000 / sync_mean_ms),
// share_of_floor, the server's CPU (us, from wait4, its start included) and context switches
// per item, the client's CPU per item over the timed part.
#include <fcntl.h>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "harness/v1/agent.grpc.pb.h"
#include "harness/v1/control.grpc.pb.h"
#include "server_child.h"

namespace {

using harness::v1::AgentMessage;
using harness::v1::ControllerMessage;
using Clock = std::chrono::steady_clock;

// A journal record of the size the controller writes for a grant or an end (item id, agent,
// token, times), framed by a length.
constexpr size_t kRecordBytes = 72;

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(1);
}

// Runs one task at a time on a thread of its own, for the claims/ fsync beside the journal's.
class Helper {
 public:
  explicit Helper(int fd) : fd_(fd), thread_([this] { Run(); }) {}
  ~Helper() {
    stop_ = true;
    start_.release();
    thread_.join();
  }
  void Start() { start_.release(); }
  void Wait() {
    done_.acquire();
    if (failed_) Die("fsync claims/");
  }

 private:
  void Run() {
    for (;;) {
      start_.acquire();
      if (stop_) return;
      failed_ = ::fsync(fd_) != 0;
      done_.release();
    }
  }
  int fd_;
  bool stop_ = false, failed_ = false;
  std::binary_semaphore start_{0}, done_{0};
  std::thread thread_;
};

// The server's files: claims/, leases/ (one slot per stream) and the journal.
class Disk {
 public:
  Disk(const std::string& dir, bool serial_syncs) : serial_(serial_syncs) {
    const std::string claims = dir + "/claims", leases = dir + "/leases";
    if (::mkdir(claims.c_str(), 0755) != 0 || ::mkdir(leases.c_str(), 0755) != 0) Die("mkdir");
    claims_fd_ = ::open(claims.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    leases_fd_ = ::open(leases.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    journal_fd_ =
        ::open((dir + "/journal").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (claims_fd_ < 0 || leases_fd_ < 0 || journal_fd_ < 0) Die("open");
    helper_ = std::make_unique<Helper>(claims_fd_);
    std::memset(record_, 'r', sizeof record_);
  }

  // A lease slot for a new stream, durable before it is used.
  int NewSlot(std::string* name) {
    std::lock_guard<std::mutex> l(slots_mu_);
    *name = ".slot-" + std::to_string(slots_++);
    int fd = ::openat(leases_fd_, name->c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::fsync(leases_fd_) != 0) Die("slot");
    return fd;
  }

  // The end of the stream's item (its claim unlinked) and the grant of its next one (the
  // slot rewritten and linked to claims/<item>); the two journal records go to `journal`.
  void EndAndGrant(int slot_fd, const std::string& slot, const void* owner, uint64_t seq,
                   std::string* claim, std::string* journal) {
    if (!claim->empty() && ::unlinkat(claims_fd_, claim->c_str(), 0) != 0) Die("unlink");
    *claim =
        "item-" + std::to_string(reinterpret_cast<uintptr_t>(owner)) + "-" + std::to_string(seq);
    if (::pwrite(slot_fd, record_, sizeof record_, 0) != sizeof record_) Die("pwrite");
    if (::linkat(leases_fd_, slot.c_str(), claims_fd_, claim->c_str(), 0) != 0) Die("link");
    journal->append(record_, sizeof record_);
    journal->append(record_, sizeof record_);
  }

  void Unclaim(const std::string& claim) {
    if (!claim.empty()) ::unlinkat(claims_fd_, claim.c_str(), 0);
  }

  // A commit round: the journal's bytes written, then its fdatasync and the claims/ fsync.
  void Round(const std::string& journal) {
    if (::write(journal_fd_, journal.data(), journal.size()) !=
        static_cast<ssize_t>(journal.size())) {
      Die("write journal");
    }
    const Clock::time_point t0 = Clock::now();
    if (serial_) {
      if (::fdatasync(journal_fd_) != 0 || ::fsync(claims_fd_) != 0) Die("sync");
    } else {
      helper_->Start();
      if (::fdatasync(journal_fd_) != 0) Die("fdatasync journal");
      helper_->Wait();
    }
    sync_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    ++rounds_;
  }

  // Once no round runs.
  void Report() const {
    std::fprintf(stderr, "rounds %ld sync_seconds %.6f\n", rounds_, sync_seconds_);
  }

 private:
  const bool serial_;
  int claims_fd_ = -1, leases_fd_ = -1, journal_fd_ = -1;
  char record_[kRecordBytes];
  std::unique_ptr<Helper> helper_;
  std::mutex slots_mu_;
  int slots_ = 0;
  long rounds_ = 0;  // the thread that runs the rounds' alone
  double sync_seconds_ = 0;
};

// A committer thread, as the controller's: takes what the readers claimed, runs the round, then
// answers each (Caller::Answer writes into gRPC from this thread).
template <typename Caller>
class Committer {
 public:
  explicit Committer(Disk* disk) : disk_(disk), thread_([this] { Run(); }) {}
  ~Committer() { Stop(); }

  void EndAndGrant(Caller* c, int slot_fd, const std::string& slot, uint64_t seq,
                   std::string* claim) {
    std::string records;  // the claim's file operations outside the lock
    disk_->EndAndGrant(slot_fd, slot, c, seq, claim, &records);
    bool wake;
    {
      std::lock_guard<std::mutex> l(mu_);
      journal_.append(records);
      wake = pending_.empty() && !committing_;
      pending_.push_back(c);
    }
    if (wake) cv_.notify_one();
  }

  // Ends the thread once every round is answered.
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  void Run() {
    std::vector<Caller*> batch;
    std::string bytes;
    for (;;) {
      {
        std::unique_lock<std::mutex> l(mu_);
        committing_ = false;
        cv_.wait(l, [&] { return stop_ || !pending_.empty(); });
        if (pending_.empty()) return;
        committing_ = true;
        batch.swap(pending_);
        bytes.swap(journal_);
      }
      disk_->Round(bytes);
      bytes.clear();
      for (Caller* c : batch) c->Answer();
      batch.clear();
    }
  }

  Disk* disk_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, committing_ = false;
  std::vector<Caller*> pending_;
  std::string journal_;
  std::thread thread_;
};

// The completion-queue API: every step of a stream is a tag on the server's one queue.
struct Call : bench::CqCall {
  int slot_fd = -1;
  std::string slot, claim;  // the lease slot's name, the item it is linked to ("" if none)
  void Answer() {
    out.Clear();
    out.mutable_heartbeat_ack()->set_seq(in.heartbeat().seq());
    rw.Write(out, &written);
  }
};

// Runs one round at a time on a thread of its own, then posts `tag` on the queue, so that the
// queue's thread answers the round (--api cq+syncer).
class Syncer {
 public:
  Syncer(Disk* disk, grpc::CompletionQueue* cq, void* tag)
      : disk_(disk), cq_(cq), tag_(tag), thread_([this] { Run(); }) {}
  ~Syncer() {
    stop_ = true;
    go_.release();
    thread_.join();
  }
  void Start(std::string* journal) {
    bytes_.swap(*journal);
    go_.release();
  }

 private:
  void Run() {
    for (;;) {
      go_.acquire();
      if (stop_) return;
      disk_->Round(bytes_);
      bytes_.clear();
      alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), tag_);
    }
  }
  Disk* disk_;
  grpc::CompletionQueue* cq_;
  void* tag_;
  grpc::Alarm alarm_;
  std::string bytes_;
  bool stop_ = false;
  std::binary_semaphore go_{0};
  std::thread thread_;
};

// --api cq: the queue's thread reads, claims, runs each round and answers;
// --api cq+committer: the queue's thread reads and claims, a committer thread does the rest;
// --api cq+committer+callback: the same beside an unused callback service;
// --api cq+syncer: the queue's thread reads, claims and answers, a thread of its own runs the
// rounds (the journal's write and the syncs) and hands each back through the queue.
int ServeCq(Disk* disk, const std::string& api) {
  const bool with_committer = api == "cq+committer" || api == "cq+committer+callback";
  harness::v1::AgentService::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  harness::v1::ControlService::CallbackService other;  // never called
  if (api == "cq+committer+callback") builder.RegisterService(&other);
  std::function<void(grpc::ServerCompletionQueue*)> accept = [&](grpc::ServerCompletionQueue* q) {
    auto* c = new Call;
    service.RequestSession(&c->ctx, &c->rw, q, q, &c->accepted);
  };
  bench::CqServer s(builder, port, accept);
  grpc::ServerCompletionQueue* cq = s.cq.get();
  std::optional<Committer<Call>> committer;
  if (with_committer) committer.emplace(disk);
  std::string journal;         // the round's records (--api cq)
  std::vector<Call*> pending;  // read, made durable by the next round, then answered (--api cq)
  auto handle = [&](void* tag, bool ok) {
    auto* t = static_cast<Call::Tag*>(tag);
    auto* c = static_cast<Call*>(t->call);
    switch (t->op) {
      case Call::kAccepted:
        if (!ok) {
          delete c;
          return;
        }
        accept(cq);
        c->slot_fd = disk->NewSlot(&c->slot);
        c->rw.Read(&c->in, &c->read);
        return;
      case Call::kRead:
        if (!ok) {
          c->rw.Finish(grpc::Status::OK, &c->finished);
        } else if (committer) {
          committer->EndAndGrant(c, c->slot_fd, c->slot, c->in.heartbeat().seq(), &c->claim);
        } else {
          disk->EndAndGrant(c->slot_fd, c->slot, c, c->in.heartbeat().seq(), &c->claim, &journal);
          pending.push_back(c);
        }
        return;
      case Call::kWritten:
        c->ReadNext(ok);
        return;
      case Call::kFinished:
        disk->Unclaim(c->claim);
        if (c->slot_fd >= 0) ::close(c->slot_fd);
        delete c;
        return;
    }
  };
  void* tag;
  bool ok;
  if (api == "cq+syncer") {
    static char round_done;  // the tag that says the round in flight is durable
    std::vector<Call*> inflight;
    bool syncing = false;
    {
      Syncer syncer(disk, cq, &round_done);
      while (cq->Next(&tag, &ok)) {
        if (tag == &round_done) {
          for (Call* c : inflight) c->Answer();
          inflight.clear();
          syncing = false;
        } else {
          handle(tag, ok);
        }
        if (syncing || pending.empty()) continue;
        while (cq->AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC)) ==
               grpc::CompletionQueue::GOT_EVENT) {
          handle(tag, ok);
        }
        inflight.swap(pending);
        syncer.Start(&journal);
        syncing = true;
      }
    }
    s.stopper.join();
    return 0;
  }
  for (;;) {
    if (pending.empty()) {
      if (!cq->Next(&tag, &ok)) break;
      handle(tag, ok);
      continue;
    }
    // Take whatever else is already waiting, then commit the round and answer it.
    while (cq->AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC)) ==
           grpc::CompletionQueue::GOT_EVENT) {
      handle(tag, ok);
    }
    disk->Round(journal);
    journal.clear();
    for (Call* c : pending) c->Answer();
    pending.clear();
  }
  if (committer) committer->Stop();
  s.stopper.join();
  return 0;
}

// The callback API with the controller's threads: gRPC's callback threads read and claim, a
// committer thread runs the rounds and writes the answers into gRPC.
class Reactor;
class CallbackService : public harness::v1::AgentService::CallbackService {
 public:
  explicit CallbackService(Disk* disk) : disk_(disk), committer_(disk) {}
  grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* Session(
      grpc::CallbackServerContext*) override;
  Disk* disk() { return disk_; }
  Committer<Reactor>* committer() { return &committer_; }

 private:
  Disk* disk_;
  Committer<Reactor> committer_;
};

class Reactor : public grpc::ServerBidiReactor<AgentMessage, ControllerMessage> {
 public:
  explicit Reactor(CallbackService* service) : service_(service) {
    slot_fd_ = service_->disk()->NewSlot(&slot_);
    StartRead(&in_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    service_->committer()->EndAndGrant(this, slot_fd_, slot_, in_.heartbeat().seq(), &claim_);
  }
  void Answer() {
    out_.Clear();
    out_.mutable_heartbeat_ack()->set_seq(in_.heartbeat().seq());
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);
    StartRead(&in_);
  }
  void OnDone() override {
    service_->disk()->Unclaim(claim_);
    ::close(slot_fd_);
    delete this;
  }

 private:
  CallbackService* service_;
  AgentMessage in_;
  ControllerMessage out_;
  int slot_fd_ = -1;
  std::string slot_, claim_;
};

grpc::ServerBidiReactor<AgentMessage, ControllerMessage>* CallbackService::Session(
    grpc::CallbackServerContext*) {
  return new Reactor(this);
}

int ServeCallback(Disk* disk) {
  CallbackService service(disk);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::printf("%d\n", port);
  std::fflush(stdout);
  char b;
  while (read(0, &b, 1) > 0) {
  }
  server->Shutdown();
  service.committer()->Stop();
  return 0;
}

int Serve(const std::string& dir, bool serial_syncs, const std::string& api) {
  Disk disk(dir, serial_syncs);
  int rc = api == "callback" ? ServeCallback(&disk) : ServeCq(&disk, api);
  disk.Report();
  return rc;
}

// One client thread drives every stream: write, then read the answer, then the next write.
struct Stream {
  enum Op { kStarted, kWritten, kRead, kWritesDone, kFinished };
  struct Tag {
    Stream* s;
    Op op;
  };
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<harness::v1::AgentService::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<AgentMessage, ControllerMessage>> rw;
  AgentMessage out;
  ControllerMessage in;
  grpc::Status status;
  int sent = 0;  // messages sent; the first opens the stream and is not timed
  Tag started{this, kStarted}, written{this, kWritten}, read{this, kRead},
      writes_done{this, kWritesDone}, finished{this, kFinished};
  void Send() {
    out.mutable_heartbeat()->set_seq(sent++);
    rw->Write(out, &written);
  }
};

}  // namespace

using bench::Flag;
using bench::FlagS;
using bench::Has;

int main(int argc, char** argv) {
  // As the controller and load_gen do: gRPC's mutexes without absl's deadlock graph.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (argc == 5 && std::strcmp(argv[1], "serve") == 0) {
    return Serve(argv[2], std::strcmp(argv[3], "serial") == 0, argv[4]);
  }
  const int streams = Flag(argc, argv, "--streams", 16);
  const int items = Flag(argc, argv, "--items", 20000);
  const std::string parent = FlagS(argc, argv, "--dir", "/tmp");
  const bool serial = Has(argc, argv, "--serial-syncs");
  const std::string api = FlagS(argc, argv, "--api", "cq");
  if (streams < 1 || items < streams ||
      (api != "cq" && api != "cq+committer" && api != "cq+syncer" && api != "callback" &&
       api != "cq+committer+callback")) {
    std::fprintf(stderr,
                 "usage: durable_floor [--api cq|cq+committer|cq+syncer|callback|"
                 "cq+committer+callback] [--streams M] [--items N] [--dir DIR] "
                 "[--serial-syncs]\n");
    return 2;
  }
  std::string dir = parent + "/durable_floor.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp");
  std::optional<bench::ServerChild> server =
      bench::ServerChild::Start(argv[0], {"serve", dir, serial ? "serial" : "parallel", api}, true);
  if (!server) {
    std::filesystem::remove_all(dir);
    return 1;
  }
  const int port = server->port();
  const std::string target = "127.0.0.1:" + std::to_string(port);
  const int per_stream = items / streams;
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    auto s = std::make_unique<Stream>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("durable_floor.stream", i);  // a connection of its own, like an agent's
    s->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    s->stub = harness::v1::AgentService::NewStub(s->channel);
    s->rw = s->stub->AsyncSession(&s->ctx, &cq, &s->started);
    all.push_back(std::move(s));
  }
  // Each stream's first exchange opens it; the clock starts once every stream is open.
  int open = 0, done = 0, failed = 0;
  Clock::time_point t0;
  struct rusage client_start {};
  void* tag;
  bool ok;
  while (done < streams && cq.Next(&tag, &ok)) {
    auto* t = static_cast<Stream::Tag*>(tag);
    Stream* s = t->s;
    if (!ok && t->op != Stream::kFinished) {
      ++failed;
      s->rw->Finish(&s->status, &s->finished);
      continue;
    }
    switch (t->op) {
      case Stream::kStarted:
        s->Send();
        break;
      case Stream::kWritten:
        s->rw->Read(&s->in, &s->read);
        break;
      case Stream::kRead:
        if (s->sent == 1) {
          if (++open < streams) break;
          t0 = Clock::now();
          getrusage(RUSAGE_SELF, &client_start);
          for (auto& each : all) each->Send();
          break;
        }
        if (s->sent <= per_stream) {
          s->Send();
        } else {
          s->rw->WritesDone(&s->writes_done);
        }
        break;
      case Stream::kWritesDone:
        s->rw->Finish(&s->status, &s->finished);
        break;
      case Stream::kFinished:
        ++done;
        break;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  struct rusage client_end {};
  getrusage(RUSAGE_SELF, &client_end);
  all.clear();  // the channels closed before the server shuts down
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  struct rusage ru {};
  std::string err;
  const bool exited_ok = server->Stop(&ru, &err);
  long rounds = 0;
  double sync_seconds = 0;
  for (absl::string_view line : absl::StrSplit(err, '\n', absl::SkipEmpty())) {
    if (std::sscanf(std::string(line).c_str(), "rounds %ld sync_seconds %lf", &rounds,
                    &sync_seconds) != 2) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
  }
  std::filesystem::remove_all(dir);
  if (failed > 0 || rounds == 0 || !exited_ok) {
    std::fprintf(stderr, "durable_floor: %d stream(s) failed, or the server did not end well\n",
                 failed);
    return 1;
  }
  const double n = static_cast<double>(per_stream) * streams;
  const double sync_mean_ms = sync_seconds * 1e3 / rounds;
  const double floor = 1e3 / sync_mean_ms;
  std::printf(
      "{\"bench\":\"durable_floor\",\"api\":\"%s\",\"streams\":%d,\"items\":%.0f,\"syncs\":\"%s\","
      "\"seconds\":%.3f,\"items_per_s\":%.0f,\"rounds\":%ld,\"sync_mean_ms\":%.4f,"
      "\"floor_per_s\":%.0f,\"share_of_floor\":%.3f,\"server_cpu_us_per_item\":%.1f,"
      "\"server_switches_per_item\":%.2f,\"client_cpu_us_per_item\":%.1f}\n",
      api.c_str(), streams, n, serial ? "serial" : "parallel", seconds, n / seconds, rounds,
      sync_mean_ms, floor, n / seconds / floor, bench::CpuSeconds(ru) * 1e6 / n,
      (ru.ru_nvcsw + ru.ru_nivcsw) / n,
      (bench::CpuSeconds(client_end) - bench::CpuSeconds(client_start)) * 1e6 / n);
  return 0;
}
