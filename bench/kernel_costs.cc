// kernel_costs: what this machine charges for the operations an item is made of, to do the
// arithmetic of docs/PERFORMANCE.md in the same sitting as the throughput runs. Prints one JSON
// line; every figure is a mean over many repetitions, in microseconds:
//
//   syscall_us        the cheapest system call (getppid): the entry and exit alone
//   handoff_us        one thread waking another that sleeps on a futex and going to sleep
//                     itself (half of a ping-pong round; the threads are not pinned, as ours)
//   handoff_one_core_us  the same with both threads on one core (no cross-core wake-up)
//   wake_idle_us      from waking a thread that has slept 1 ms (its CPU gone idle, as a
//                     committer's between rounds) to that thread running: the median of 1,000
//   tcp_message_us    one 100-byte message over TCP on 127.0.0.1 (TCP_NODELAY): its send and
//                     its receive, as a gRPC message between two processes costs at the least
//   link_unlink_us    link(2) and unlink(2) of a file in --dir (a claim made and ended)
//   pwrite_us         a 200-byte pwrite(2) over a file's start in --dir (a lease record)
//
// usage: kernel_costs [--dir DIR]   (DIR: where the state dir would be; default /tmp)
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "config/flags.h"
#include "core/file_util.h"

namespace harness {
namespace {

double MeanUs(absl::Time start, int64_t n) {
  return absl::ToDoubleMicroseconds(absl::Now() - start) / static_cast<double>(n);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "kernel_costs: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double SyscallUs() {
  constexpr int kN = 200000;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kN; ++i) ::syscall(SYS_getppid);
  return MeanUs(start, kN);
}

long Futex(std::atomic<int>* word, int op, int value) {
  return ::syscall(SYS_futex, reinterpret_cast<int*>(word), op, value, nullptr, nullptr, 0);
}

// Two threads pass a turn back and forth through a futex word; returns the time per hand-off.
// `cpu` >= 0 pins both threads to that core.
double HandoffUs(int cpu) {
  constexpr int kRounds = 30000;
  std::atomic<int> turn{0};  // 0: the main thread's, 1: the other's
  auto pin = [cpu] {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
  };
  std::thread other([&] {
    pin();
    for (int i = 0; i < kRounds; ++i) {
      while (turn.load(std::memory_order_acquire) != 1) Futex(&turn, FUTEX_WAIT_PRIVATE, 0);
      turn.store(0, std::memory_order_release);
      Futex(&turn, FUTEX_WAKE_PRIVATE, 1);
    }
  });
  cpu_set_t saved;
  ::pthread_getaffinity_np(::pthread_self(), sizeof saved, &saved);
  pin();
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRounds; ++i) {
    turn.store(1, std::memory_order_release);
    Futex(&turn, FUTEX_WAKE_PRIVATE, 1);
    while (turn.load(std::memory_order_acquire) != 0) Futex(&turn, FUTEX_WAIT_PRIVATE, 1);
  }
  const double us = MeanUs(start, 2 * kRounds);
  other.join();
  ::pthread_setaffinity_np(::pthread_self(), sizeof saved, &saved);
  return us;
}

// The median time from FUTEX_WAKE to the woken thread running, for a thread that slept 1 ms.
double WakeIdleUs() {
  constexpr int kWakes = 1000;
  std::atomic<int> state{0};  // 0: sleeping, 1: woken, 2: stop
  std::atomic<int64_t> woken_ns{0};
  std::thread sleeper([&] {
    for (;;) {
      while (state.load(std::memory_order_acquire) == 0) Futex(&state, FUTEX_WAIT_PRIVATE, 0);
      if (state.load(std::memory_order_acquire) == 2) return;
      woken_ns.store(absl::GetCurrentTimeNanos(), std::memory_order_release);
      state.store(0, std::memory_order_release);
    }
  });
  std::vector<double> us;
  us.reserve(kWakes);
  for (int i = 0; i < kWakes; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
    woken_ns.store(0, std::memory_order_relaxed);
    const int64_t start = absl::GetCurrentTimeNanos();
    state.store(1, std::memory_order_release);
    Futex(&state, FUTEX_WAKE_PRIVATE, 1);
    int64_t end;
    while ((end = woken_ns.load(std::memory_order_acquire)) == 0) {
    }
    while (state.load(std::memory_order_acquire) != 0) {
    }
    us.push_back(static_cast<double>(end - start) / 1000);
  }
  state.store(2, std::memory_order_release);
  Futex(&state, FUTEX_WAKE_PRIVATE, 1);
  sleeper.join();
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

double TcpMessageUs() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (!listener.valid() || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("cannot listen on 127.0.0.1");
  }
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client.valid() || ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    Die("cannot connect to 127.0.0.1");
  }
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server.valid()) Die("accept");
  int one = 1;
  ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buf[100] = {};
  constexpr int kN = 100000;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kN; ++i) {
    if (::send(client.get(), buf, sizeof buf, 0) != sizeof buf) Die("send");
    for (size_t got = 0; got < sizeof buf;) {
      ssize_t r = ::recv(server.get(), buf + got, sizeof buf - got, 0);
      if (r <= 0) Die("recv");
      got += static_cast<size_t>(r);
    }
  }
  return MeanUs(start, kN);
}

// link+unlink and pwrite in `dir`, on two files of a temp folder removed afterwards.
void FileCosts(const std::string& dir, double* link_unlink_us, double* pwrite_us) {
  std::string folder = absl::StrCat(dir, "/kernel_costs.XXXXXX");
  if (::mkdtemp(folder.data()) == nullptr) Die(absl::StrCat("cannot make a folder in ", dir));
  const std::string a = folder + "/record", b = folder + "/claim";
  UniqueFd fd(::open(a.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd.valid()) Die(absl::StrCat("cannot create ", a));
  constexpr int kLinks = 50000, kWrites = 200000;
  absl::Time start = absl::Now();
  for (int i = 0; i < kLinks; ++i) {
    if (::link(a.c_str(), b.c_str()) != 0 || ::unlink(b.c_str()) != 0) Die("link/unlink");
  }
  *link_unlink_us = MeanUs(start, kLinks);
  char record[200] = {};
  start = absl::Now();
  for (int i = 0; i < kWrites; ++i) {
    if (::pwrite(fd.get(), record, sizeof record, 0) != sizeof record) Die("pwrite");
  }
  *pwrite_us = MeanUs(start, kWrites);
  ::unlink(a.c_str());
  ::rmdir(folder.c_str());
}

}  // namespace
}  // namespace harness

namespace {
double Round2(double v) { return static_cast<double>(static_cast<int64_t>(v * 100 + 0.5)) / 100; }
}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp";
  harness::FlagParser flags("kernel_costs", "usage: kernel_costs [--dir DIR]");
  flags.AddString("dir", &dir, "where link, unlink and pwrite are timed (default /tmp)");
  flags.ParseOrExit(argc, argv);
  const double syscall_us = harness::SyscallUs();
  const double handoff_us = harness::HandoffUs(-1);
  const double handoff_one_core_us = harness::HandoffUs(0);
  const double wake_idle_us = harness::WakeIdleUs();
  const double tcp_us = harness::TcpMessageUs();
  double link_unlink_us = 0, pwrite_us = 0;
  harness::FileCosts(dir, &link_unlink_us, &pwrite_us);
  nlohmann::ordered_json line = {{"bench", "kernel_costs"},
                                 {"dir", dir},
                                 {"syscall_us", Round2(syscall_us)},
                                 {"handoff_us", Round2(handoff_us)},
                                 {"handoff_one_core_us", Round2(handoff_one_core_us)},
                                 {"wake_idle_us", Round2(wake_idle_us)},
                                 {"tcp_message_us", Round2(tcp_us)},
                                 {"link_unlink_us", Round2(link_unlink_us)},
                                 {"pwrite_us", Round2(pwrite_us)}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}
