// Child processes for tests: spawn an executable with its stdout/stderr sent to files, wait
// for it, kill it by pid. Never by name.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace harness::testing {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdout appended to stdout_file (and stderr to stderr_file,
  // or the test's stderr if empty).
  static ChildProcess Spawn(const std::vector<std::string>& argv, const std::string& stdout_file,
                            const std::string& stderr_file = "");
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();  // kills (SIGKILL) and reaps if still running

  pid_t pid() const { return pid_; }
  // Sends a signal to the child.
  void Signal(int sig) const;
  // Waits for exit; returns the raw wait status.
  int Wait();

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

}  // namespace harness::testing
