// UnixProxy: a relay between a unix socket it listens on and another (a daemon's), for fault
// injection: Down() closes every relayed connection and stops listening (the socket file is
// removed, so a client sees a daemon that is not there), Up() listens again at the same path.
// Used to take the docker daemon away from a launcher without stopping the shared daemon.
// One thread; bytes are relayed unchanged.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace harness::testing {

class UnixProxy {
 public:
  // Listens on `path` (which must not exist) and relays every connection to `target`. Fails
  // the test (and returns nullptr) if it cannot listen.
  static std::unique_ptr<UnixProxy> Start(const std::string& path, const std::string& target);
  ~UnixProxy();

  const std::string& path() const { return path_; }
  // Cuts every connection and stops listening; returns once done.
  void Down();
  // Listens again; returns once a client can connect.
  void Up();
  // Connections accepted so far.
  int accepted() const;

 private:
  UnixProxy(std::string path, std::string target);
  void Loop();
  void Wake();
  bool IsDown() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !is_up_; }
  bool IsUpOrGaveUp() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return is_up_ || !want_up_; }

  const std::string path_;
  const std::string target_;
  int wake_[2] = {-1, -1};
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool want_up_ ABSL_GUARDED_BY(mu_) = true;
  bool is_up_ ABSL_GUARDED_BY(mu_) = false;  // what the loop has done
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace harness::testing
