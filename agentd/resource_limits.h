// Resource limits on an attempt's processes (setup and command), from Lease.resource_limits:
// memory, CPU time and niceness. This file holds the values and the memory cgroups; the
// CommandRunner applies them in the child between clone and exec.
//
// Mechanisms (docs/AGENTD.md, "Resource limits"):
//   * memory: a memory cgroup for the attempt when agentd may create one (cgroup v2 with the
//     memory controller at /sys/fs/cgroup, or v1's memory hierarchy), holding setup and
//     command together; its OOM kills are read back to name the limit in the error. Otherwise
//     RLIMIT_AS on each process (allocations past it fail; nothing can tell afterwards for sure
//     that the limit was the cause, so the error only says it may have been).
//   * CPU: RLIMIT_CPU on each process (SIGXCPU at the limit, SIGKILL one second later).
//   * nice: setpriority() in the child.
//
// Cgroups live under a parent agentd owns: `harness-agentd-<pid>` beside agentd's own cgroup
// (v2) or inside it (v1). Attempt cgroups `<parent>/attempt-<n>` are pooled: an attempt takes an
// idle one (a new one only when none is idle, so there are as many as attempts ever ran at
// once: one for agentd, which runs one at a time) and gives it back when it ends, after
// whatever is still in it has been killed. Reuse is what keeps an item cheap: making and
// removing a cgroup per attempt costs a mkdir, limit writes and an rmdir each time. The limit
// files are written only when the value changes; OOM kills are counted from the attempt's
// start. Every pooled cgroup and the parent are removed when agentd exits, and parents of
// agentd processes that no longer exist are removed at start.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

class MemoryCgroups;

// One cgroup of the pool (resource_limits.cc).
class PooledCgroup;

// The memory cgroup one attempt holds, taken from MemoryCgroups' pool. Its destructor kills
// what is left in the cgroup and gives the cgroup back to the pool.
class AttemptCgroup {
 public:
  ~AttemptCgroup();
  AttemptCgroup(const AttemptCgroup&) = delete;
  AttemptCgroup& operator=(const AttemptCgroup&) = delete;

  const std::string& path() const;
  // Open for writing "0" from a child to move itself in (close-on-exec).
  int procs_fd() const;
  // How many processes the kernel killed in this cgroup for want of memory since this
  // attempt took it (earlier attempts' kills do not count).
  int64_t OomKills() const;

 private:
  friend class MemoryCgroups;
  AttemptCgroup(MemoryCgroups* owner, std::unique_ptr<PooledCgroup> cgroup, int64_t oom_base);
  MemoryCgroups* const owner_;
  std::unique_ptr<PooledCgroup> cgroup_;
  const int64_t oom_base_;  // the cgroup's OOM kill count when the attempt took it
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
  ~MemoryCgroups();  // removes the pooled cgroups and the parent; none may be held

  Kind kind() const { return kind_; }
  // agentd's parent cgroup ("" for kNone).
  const std::string& parent() const { return parent_; }
  // "a cgroup v1 memory cgroup for each attempt, reused, under /sys/fs/.../harness-agentd-12"
  // or "RLIMIT_AS on each process (no memory cgroup: <why>)".
  std::string Describe() const;
  // A cgroup for one attempt limited to `memory_mb` MiB (swap included where the kernel
  // accounts it): an idle one from the pool, else a new one. Empty: nothing of an earlier
  // attempt runs in it. Thread-safe.
  absl::StatusOr<std::unique_ptr<AttemptCgroup>> Acquire(int64_t memory_mb);
  // The pooled cgroups, idle or held (for tests and logs).
  int64_t pooled() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class AttemptCgroup;
  MemoryCgroups() = default;
  // A new cgroup for the pool (no limit written yet).
  absl::StatusOr<std::unique_ptr<PooledCgroup>> MakeCgroup();
  // Writes the limit files of `cgroup` unless they hold `memory_mb` already.
  absl::Status SetLimit(PooledCgroup& cgroup, int64_t memory_mb);
  // Back from an attempt: killed empty, then idle (or removed if it cannot be emptied).
  void Release(std::unique_ptr<PooledCgroup> cgroup) ABSL_LOCKS_EXCLUDED(mu_);

  Kind kind_ = Kind::kNone;
  std::string parent_;  // the harness-owned parent, when kind_ != kNone
  std::string why_none_;
  mutable absl::Mutex mu_;
  int64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t pooled_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<PooledCgroup>> idle_ ABSL_GUARDED_BY(mu_);
};

// One line for agentd's start: which mechanism enforces each limit.
std::string DescribeLimitMechanisms(const MemoryCgroups* cgroups);

}  // namespace harness::agentd
