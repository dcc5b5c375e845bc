// State dir layout (see paths.h).
#include "core/paths.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace harness {

StatePaths::StatePaths(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string StatePaths::SegmentFile(uint64_t n) const {
  return absl::StrFormat("%s/%020d.wal", JournalDir(), n);
}

std::string StatePaths::ClaimFile(absl::string_view item_id) const {
  return absl::StrCat(ClaimsDir(), "/", item_id);
}

std::string StatePaths::AgentDir(absl::string_view agent_id) const {
  return absl::StrCat(AgentsDir(), "/", agent_id);
}

std::string StatePaths::SlotName(uint64_t n) { return absl::StrCat(".slot-", n); }

std::optional<uint64_t> StatePaths::ParseSegmentName(absl::string_view name) {
  constexpr absl::string_view kSuffix = ".wal";
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  absl::string_view digits = name.substr(0, name.size() - kSuffix.size());
  if (digits.find_first_not_of("0123456789") != absl::string_view::npos) return std::nullopt;
  uint64_t n;
  if (!absl::SimpleAtoi(digits, &n)) return std::nullopt;
  return n;
}

}  // namespace harness
