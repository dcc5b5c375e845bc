// LogShipper: streams an attempt's log file to the controller while the command runs
// (Progress messages on the Session stream, for `harnessctl logs -f`). ShipNew() reads what the
// command appended since the last call and hands it on in chunks of at most 64 KiB with their
// byte offsets. The CommandRunner calls it every kShipInterval while setup and command run (its
// `on_tick`: no thread of its own, which cost an item a thread start and join), and the caller
// once more after the run (the lines agentd itself adds at the end too) before it reports. Best
// effort: nothing here can fail or slow the run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/time/time.h"
#include "harness/v1/agent.pb.h"

namespace harness::agentd {

inline constexpr absl::Duration kShipInterval = absl::Milliseconds(200);
inline constexpr size_t kProgressChunkBytes = 64 << 10;
// More new output than this in one interval: only its last part is shipped (the controller
// keeps at most limits.max_log_bytes_per_attempt anyway).
inline constexpr size_t kMaxShipBytes = 1 << 20;

class LogShipper {
 public:
  using Send = std::function<void(v1::Progress)>;
  LogShipper(std::string log_path, std::string item_id, uint64_t lease_token, Send send);
  LogShipper(const LogShipper&) = delete;
  LogShipper& operator=(const LogShipper&) = delete;

  // Reads and ships everything appended since the last call. One thread at a time.
  void ShipNew();

 private:
  const std::string path_;
  const std::string item_id_;
  const uint64_t token_;
  const Send send_;
  int64_t offset_ = 0;
};

}  // namespace harness::agentd
