// Limits on what a peer may send the controller or make it keep (SECURITY.md, "Limits"). Each
// one is a config key (CONFIG.md); a breach is refused with a status naming the key and the
// value, and nothing is stored. The rules live here; the gRPC layer only translates the status.
//
// Not here: gRPC's own message-size limit (a server and channel option, rpc/ and controller/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace harness {

// Defaults are far above real use; each is documented with its key in CONFIG.md.
struct Limits {
  size_t max_prompt_bytes = 1 << 20;             // queue.max_prompt_bytes
  size_t max_items_per_submit = 100000;          // limits.max_items_per_submit
  uint64_t max_queued_items = 1000000;           // limits.max_queued_items (pending + leased)
  size_t max_labels = 64;                        // limits.max_labels (per item)
  size_t max_label_key_bytes = 128;              // limits.max_label_key_bytes
  size_t max_label_value_bytes = 1024;           // limits.max_label_value_bytes
  int max_sessions_per_peer = 10000;             // limits.max_sessions_per_peer (by host)
  size_t max_log_bytes_per_attempt = 64 << 10;   // limits.max_log_bytes_per_attempt
  uint64_t max_pack_bytes = uint64_t{1024} << 20;  // repo.max_pack_mb
};

// 1048576 -> "1,048,576".
std::string FormatCount(uint64_t n);

// InvalidArgument "prompt of 2,100,000 bytes is over queue.max_prompt_bytes (1,048,576)".
absl::Status CheckPromptSize(const Limits& limits, size_t bytes);
// InvalidArgument naming limits.max_items_per_submit; also for an empty submit.
absl::Status CheckItemsPerSubmit(const Limits& limits, size_t items);
// ResourceExhausted when `adding` items on top of `queued` (not yet ended) would pass
// limits.max_queued_items.
absl::Status CheckQueueRoom(const Limits& limits, uint64_t queued, size_t adding);
// InvalidArgument naming limits.max_labels.
absl::Status CheckLabelCount(const Limits& limits, size_t labels);
// InvalidArgument naming limits.max_label_key_bytes or limits.max_label_value_bytes.
absl::Status CheckLabel(const Limits& limits, absl::string_view key, absl::string_view value);
// ResourceExhausted "pack of N bytes is over repo.max_pack_mb (M MiB = B bytes)".
absl::Status CheckPackSize(const Limits& limits, uint64_t bytes);

// What is kept of an attempt's log: its last max_log_bytes_per_attempt bytes (a cut made inside
// a UTF-8 sequence is not repaired: logs are raw bytes).
absl::string_view KeptLogTail(const Limits& limits, absl::string_view log);

// The host part of a gRPC peer string ("ipv4:10.0.0.7:5123" -> "ipv4:10.0.0.7",
// "ipv6:[::1]:5123" -> "ipv6:[::1]"); other forms (unix sockets) are returned whole.
std::string PeerHost(absl::string_view peer);

// Open agent sessions per peer host, at most limits.max_sessions_per_peer each. Thread-safe;
// no I/O under its lock.
class PeerSessions {
 public:
  explicit PeerSessions(int max_per_peer) : max_(max_per_peer) {}
  // Counts a new session of `peer` (a gRPC peer string), or ResourceExhausted
  // "peer ipv4:10.0.0.7 has 64 sessions open, at limits.max_sessions_per_peer (64)" and counts
  // nothing. Every OK must be matched by one Close(peer). *first_refusal (if given) says whether
  // this is the host's first refusal since it last had a session accepted, so that a peer
  // retrying in a loop is logged once.
  absl::Status Open(absl::string_view peer, bool* first_refusal = nullptr);
  void Close(absl::string_view peer);
  int Count(absl::string_view peer) const;

 private:
  const int max_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> refused_ ABSL_GUARDED_BY(mu_);  // since the last OK
};

}  // namespace harness
