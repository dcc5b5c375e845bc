// State dir layout (see paths.h).
#include "core/paths.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"

namespace harness {

StatePaths::StatePaths(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string StatePaths::SegmentFile(uint64_t n) const {
  return absl::StrFormat("%s/%020d.wal", JournalDir(), n);
}

std::string StatePaths::LeaseFile(absl::string_view item_id, uint64_t token) const {
  return absl::StrCat(LeasesDir(), "/", LeaseName(item_id, token));
}

std::string StatePaths::ClaimFile(absl::string_view item_id) const {
  return absl::StrCat(ClaimsDir(), "/", item_id);
}

std::string StatePaths::AgentDir(absl::string_view agent_id) const {
  return absl::StrCat(AgentsDir(), "/", agent_id);
}

std::string StatePaths::LeaseName(absl::string_view item_id, uint64_t token) {
  return absl::StrCat(item_id, ".", token);
}

std::optional<StatePaths::ParsedLease> StatePaths::ParseLeaseName(absl::string_view name) {
  size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos || dot == 0) return std::nullopt;
  uint64_t token;
  absl::string_view digits = name.substr(dot + 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != absl::string_view::npos ||
      !absl::SimpleAtoi(digits, &token)) {
    return std::nullopt;
  }
  absl::string_view item = name.substr(0, dot);
  if (!ValidateItemId(item).ok()) return std::nullopt;
  return ParsedLease{std::string(item), token};
}

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
