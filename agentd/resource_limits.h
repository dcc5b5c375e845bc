// Resource limits on an attempt's processes (setup and command), from Lease.resource_limits:
// memory, CPU time and niceness. This file holds the values and the memory cgroups; the
// CommandRunner applies them in the child between fork and exec.
//
// Mechanisms (docs/AGENTD.md, "Resource limits"):
//   * memory: a memory cgroup per attempt when agentd may create one (cgroup v2 with the
//     memory controller at /sys/fs/cgroup, or v1's memory hierarchy), holding setup and
//     command together; its OOM kills are read back to name the limit in the error. Otherwise
//     RLIMIT_AS on each process (allocations past it fail; nothing can tell afterwards for sure
//     that the limit was the cause, so the error only says it may have been).
//   * CPU: RLIMIT_CPU on each process (SIGXCPU at the limit, SIGKILL one second later).
//   * nice: setpriority() in the child.
//
// Cgroups live under a parent agentd owns: `harness-agentd-<pid>` beside agentd's own cgroup
// (v2) or inside it (v1). Each attempt gets `<parent>/<n>-<item>-<attempt>`, removed after the
// attempt (whatever is still in it is killed first); the parent is removed when agentd exits,
// and parents of agentd processes that no longer exist are removed at start.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace harness::agentd {

// What one attempt's processes are limited to. 0: no limit.
struct ResourceLimits {
  int64_t memory_mb = 0;
  int64_t cpu_seconds = 0;
  std::optional<int> nice;  // unset: agentd's own
};

// One attempt's memory cgroup. Its destructor kills what is left in it and removes it.
class AttemptCgroup {
 public:
  ~AttemptCgroup();
  AttemptCgroup(const AttemptCgroup&) = delete;
  AttemptCgroup& operator=(const AttemptCgroup&) = delete;

  const std::string& path() const { return path_; }
  // Open for writing "0" from a child to move itself in (close-on-exec).
  int procs_fd() const { return procs_fd_; }
  // How many processes the kernel killed in this cgroup for want of memory so far.
  int64_t OomKills() const;

 private:
  friend class MemoryCgroups;
  AttemptCgroup(std::string path, bool v2, int procs_fd)
      : path_(std::move(path)), v2_(v2), procs_fd_(procs_fd) {}
  const std::string path_;
  const bool v2_;
  const int procs_fd_;
};

class MemoryCgroups {
 public:
  enum class Kind { kNone, kV1, kV2 };

  // Finds a memory cgroup hierarchy in /proc/self/mounts and creates agentd's parent cgroup
  // in it. Kind kNone (with the reason in Describe()) when there is none or it is not
  // writable: memory limits then fall back to RLIMIT_AS.
  static std::unique_ptr<MemoryCgroups> Probe();
  // No cgroups at all (RLIMIT_AS), e.g. for tests of the fallback.
  static std::unique_ptr<MemoryCgroups> None(absl::string_view why);
  ~MemoryCgroups();  // removes the parent

  Kind kind() const { return kind_; }
  // agentd's parent cgroup ("" for kNone).
  const std::string& parent() const { return parent_; }
  // "cgroup v1 (/sys/fs/cgroup/memory/.../harness-agentd-12)" or "RLIMIT_AS (<why>)".
  std::string Describe() const;
  // A new cgroup for one attempt limited to `memory_mb` MiB (swap included where the kernel
  // accounts it). Thread-safe.
  absl::StatusOr<std::unique_ptr<AttemptCgroup>> Create(absl::string_view item_id, int attempt,
                                                        int64_t memory_mb);

 private:
  MemoryCgroups() = default;
  Kind kind_ = Kind::kNone;
  std::string parent_;  // the harness-owned parent, when kind_ != kNone
  std::string why_none_;
  absl::Mutex mu_;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 1;
};

// One line for agentd's start: which mechanism enforces each limit.
std::string DescribeLimitMechanisms(const MemoryCgroups* cgroups);

}  // namespace harness::agentd
