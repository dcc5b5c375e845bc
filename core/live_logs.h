// LiveLogs: the output of running attempts as agentd streams it (Progress on the Session
// stream), kept in memory per attempt -- its last limits.max_log_bytes_per_attempt bytes -- so
// `harnessctl logs -f` can follow a run. Byte offsets are those of the attempt's log on the
// agent, so a resent chunk is kept once and a reader resumes where it stopped. Ended attempts
// stay readable until `ended_kept` newer ones ended (then only their log file remains,
// core/item_logs.h). Memory only, no I/O; cheap calls under a lock of its own. No gRPC here.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace harness {

class LiveLogs {
 public:
  explicit LiveLogs(size_t max_bytes_per_attempt, size_t ended_kept = 64);

  // Attempt `attempt` of `item` began (its lease `token` was granted to `agent`): an empty,
  // live log.
  void Begin(const std::string& item, int attempt, uint64_t token, const std::string& agent)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Output at byte `offset` of the log of the item's live attempt, from the agent its lease
  // `token` was granted to. Bytes already received are not kept twice; a gap (chunks lost on
  // the way) is skipped. Fenced: false (and nothing kept) unless `token` and `agent` are the
  // item's live attempt's.
  bool Append(const std::string& item, uint64_t token, const std::string& agent, int64_t offset,
              absl::string_view data) ABSL_LOCKS_EXCLUDED(mu_);
  // The attempt ended (its lease did): readers get what is kept, then the end.
  void End(const std::string& item, int attempt) ABSL_LOCKS_EXCLUDED(mu_);

  struct Chunk {
    int attempt = 0;
    int64_t offset = 0;   // of `data` in the attempt's log
    std::string data;     // empty: nothing new yet (or ever, if `ended`)
    int64_t skipped = 0;  // bytes between the asked offset and `offset` no longer kept
    bool ended = false;   // the attempt ended and `data` reaches its end
  };
  // Up to `max` bytes of the attempt (0: the item's newest one known here) from byte `from`
  // on; nullopt when this attempt is not known here.
  std::optional<Chunk> Read(const std::string& item, int attempt, int64_t from, size_t max) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Everything kept of the attempt; nullopt when not known here.
  std::optional<std::string> Kept(const std::string& item, int attempt) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Log {
    int64_t start = 0;  // offset of buf[0]
    std::string buf;
    bool ended = false;
    uint64_t token = 0;
    std::string agent;
  };
  using Key = std::pair<std::string, int>;
  const Log* FindLocked(const std::string& item, int attempt, int* found) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_bytes_;
  const size_t ended_kept_;
  mutable absl::Mutex mu_;
  std::map<Key, Log> logs_ ABSL_GUARDED_BY(mu_);
  std::deque<Key> ended_ ABSL_GUARDED_BY(mu_);  // oldest first
};

}  // namespace harness
