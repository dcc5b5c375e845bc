// Small helpers shared by the core's unit tests: building item specs, opening a WorkQueue on a
// fake clock, listing a folder, and gtest assertions on absl::Status. Header-only, so a test
// needs nothing but this include.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/paths.h"
#include "core/records.pb.h"
#include "core/work_queue.h"
#include "gtest/gtest.h"

namespace harness::testing {

// Polls cond until it holds or 20 s pass.
inline bool Eventually(const std::function<bool()>& cond) {
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!cond()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// A valid spec: the given id (may be empty), a title and a prompt.
inline store::ItemSpec MakeSpec(const std::string& id, int64_t priority = 0, int max_attempts = 0) {
  store::ItemSpec spec;
  spec.set_id(id);
  spec.set_title("title of " + (id.empty() ? std::string("an item") : id));
  spec.set_prompt("do the thing for " + id);
  spec.set_priority(priority);
  spec.set_max_attempts(max_attempts);
  return spec;
}

inline WorkQueueOptions QueueOptions(const std::string& state_dir,
                                     absl::Duration ttl = absl::Seconds(10)) {
  WorkQueueOptions o;
  o.state_dir = state_dir;
  o.lease_ttl = ttl;
  return o;
}

// Opens a queue or fails the test (use with ASSERT_NO_FATAL_FAILURE or check for nullptr).
inline std::unique_ptr<WorkQueue> OpenQueueOrDie(const WorkQueueOptions& options, Clock* clock) {
  absl::StatusOr<std::unique_ptr<WorkQueue>> q = WorkQueue::Open(options, clock);
  EXPECT_TRUE(q.ok()) << q.status();
  return q.ok() ? std::move(*q) : nullptr;
}

// Names in a folder (without "." and ".."), sorted; empty if it does not exist.
inline std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The file in leases/ that claims/<item> is a hard link to (its lease record's slot), or "" if
// the item is not claimed or no such file is found.
inline std::string LeaseFileOf(const StatePaths& paths, const std::string& item) {
  struct stat claim;
  if (::stat(paths.ClaimFile(item).c_str(), &claim) != 0) return "";
  for (const std::string& name : ListNames(paths.LeasesDir())) {
    std::string path = paths.LeasesDir() + "/" + name;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_ino == claim.st_ino && st.st_dev == claim.st_dev) {
      return path;
    }
  }
  return "";
}

inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

}  // namespace harness::testing

// EXPECT/ASSERT that an expression yielding absl::Status or absl::StatusOr is OK; evaluated
// once, and more context can be streamed in: `ASSERT_OK(q->Submit(specs)) << "round " << i;`.
#define HARNESS_STATUS_OF(expr) ::harness::testing::internal_status::Of(expr)
#define HARNESS_CHECK_OK_(expr, fail)                                                 \
  switch (0)                                                                          \
  case 0:                                                                             \
  default:                                                                            \
    if (const ::absl::Status harness_s_ = HARNESS_STATUS_OF(expr); harness_s_.ok()) { \
    } else                                                                            \
      fail() << #expr << " failed: " << harness_s_ << " "
#define EXPECT_OK(expr) HARNESS_CHECK_OK_(expr, ADD_FAILURE)
#define ASSERT_OK(expr) HARNESS_CHECK_OK_(expr, FAIL)

namespace harness::testing::internal_status {
inline const absl::Status& Of(const absl::Status& s) { return s; }
template <typename T>
inline absl::Status Of(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace harness::testing::internal_status
