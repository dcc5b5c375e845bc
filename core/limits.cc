// Input limits (see limits.h).
#include "core/limits.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"

namespace harness {

std::string FormatCount(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

absl::Status CheckPromptSize(const Limits& limits, size_t bytes) {
  if (bytes <= limits.max_prompt_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("prompt of ", FormatCount(bytes),
                                                 " bytes is over queue.max_prompt_bytes (",
                                                 FormatCount(limits.max_prompt_bytes), ")"));
}

absl::Status CheckItemsPerSubmit(const Limits& limits, size_t items) {
  if (items == 0) return absl::InvalidArgumentError("no items to submit");
  if (items <= limits.max_items_per_submit) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("a submit of ", FormatCount(items), " items is over limits.max_items_per_submit (",
                   FormatCount(limits.max_items_per_submit), "); submit them in smaller parts"));
}

absl::Status CheckQueueRoom(const Limits& limits, uint64_t queued, size_t adding) {
  if (queued <= limits.max_queued_items && adding <= limits.max_queued_items - queued) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrCat(
      "the queue holds ", FormatCount(queued), " items not yet ended; ", FormatCount(adding),
      " more would be over limits.max_queued_items (", FormatCount(limits.max_queued_items), ")"));
}

absl::Status CheckLabelCount(const Limits& limits, size_t labels) {
  if (labels <= limits.max_labels) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(FormatCount(labels),
                                                 " labels are over limits.max_labels (",
                                                 FormatCount(limits.max_labels), ")"));
}

absl::Status CheckLabel(const Limits& limits, absl::string_view key, absl::string_view value) {
  if (key.size() > limits.max_label_key_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label key ", QuoteForMessage(key.substr(0, 32)), key.size() > 32 ? "..." : "", " of ",
        FormatCount(key.size()), " bytes is over limits.max_label_key_bytes (",
        FormatCount(limits.max_label_key_bytes), ")"));
  }
  if (value.size() > limits.max_label_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "value of label ", QuoteForMessage(key), " of ", FormatCount(value.size()),
        " bytes is over limits.max_label_value_bytes (",
        FormatCount(limits.max_label_value_bytes), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckPackSize(const Limits& limits, uint64_t bytes) {
  if (bytes <= limits.max_pack_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "pack of ", FormatCount(bytes), " bytes is over repo.max_pack_mb (",
      FormatCount(limits.max_pack_bytes >> 20), " MiB = ", FormatCount(limits.max_pack_bytes),
      " bytes)"));
}

absl::string_view KeptLogTail(const Limits& limits, absl::string_view log) {
  if (log.size() <= limits.max_log_bytes_per_attempt) return log;
  return log.substr(log.size() - limits.max_log_bytes_per_attempt);
}

std::string PeerHost(absl::string_view peer) {
  if (!absl::StartsWith(peer, "ipv4:") && !absl::StartsWith(peer, "ipv6:")) {
    return std::string(peer);
  }
  size_t colon = peer.rfind(':');
  absl::string_view host = peer.substr(0, colon);
  // "ipv6:[::1]:5123" (or %5B/%5D escaped): the port follows the bracket; without a bracket
  // there is no port to cut.
  if (absl::StartsWith(peer, "ipv6:") && !absl::EndsWith(host, "]") &&
      !absl::EndsWith(host, "%5D")) {
    return std::string(peer);
  }
  if (colon <= 5) return std::string(peer);  // "ipv4:" with nothing after it
  return std::string(host);
}

absl::Status PeerSessions::Open(absl::string_view peer, bool* first_refusal) {
  std::string host = PeerHost(peer);
  absl::MutexLock l(&mu_);
  int& n = open_[host];
  if (n >= max_) {
    int open = n;
    if (n == 0) open_.erase(host);
    const int refusals = ++refused_[host];
    if (first_refusal != nullptr) *first_refusal = refusals == 1;
    return absl::ResourceExhaustedError(
        absl::StrCat("peer ", host, " has ", FormatCount(open),
                     " agent sessions open, at limits.max_sessions_per_peer (", FormatCount(max_),
                     ")"));
  }
  ++n;
  refused_.erase(host);
  return absl::OkStatus();
}

void PeerSessions::Close(absl::string_view peer) {
  std::string host = PeerHost(peer);
  absl::MutexLock l(&mu_);
  auto it = open_.find(host);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

int PeerSessions::Count(absl::string_view peer) const {
  absl::MutexLock l(&mu_);
  auto it = open_.find(PeerHost(peer));
  return it == open_.end() ? 0 : it->second;
}

}  // namespace harness
