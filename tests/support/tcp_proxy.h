// TcpProxy: a TCP relay on 127.0.0.1 for fault injection between an agent and its controller.
// It forwards every connection to a target port and can hold back what the target sends (the
// answers) or cut every connection at once, e.g. to lose the answer to a report that the
// controller did commit. One thread; bytes are relayed unchanged (gRPC's HTTP/2 included).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace harness::testing {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 (an OS-chosen port) and relays to 127.0.0.1:target_port. Fails the
  // test (and returns nullptr) if it cannot listen.
  static std::unique_ptr<TcpProxy> Start(int target_port);
  ~TcpProxy();

  // HOST:PORT to connect to instead of the target.
  const std::string& address() const { return address_; }
  // While held, nothing the target sends is passed on (it waits, and is lost by CutAll()).
  void HoldReplies(bool hold);
  // Closes both ends of every open connection now. New ones are relayed as before.
  void CutAll();
  // How many connections were accepted so far.
  int accepted() const;

 private:
  struct Pair {
    int client;
    int target;
  };
  TcpProxy(int listen_fd, int target_port);
  void Loop();
  void Wake();

  const int listen_fd_;
  const int target_port_;
  std::string address_;
  int wake_[2] = {-1, -1};  // a pipe: commands wake the loop
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool cut_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace harness::testing
