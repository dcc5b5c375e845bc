// The durable pool target (see pool_target.h).
#include "core/pool_target.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"

namespace harness {

absl::StatusOr<PoolTargetChoice> LoadPoolTarget(const std::string& path, int configured) {
  if (!PathExists(path)) {
    return PoolTargetChoice{configured, absl::StrCat("pool target ", configured, " (config)")};
  }
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  int target = -1, recorded = -1;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ');
    int* into = nullptr;
    if (kv.size() == 2 && kv[0] == "target") into = &target;
    if (kv.size() == 2 && kv[0] == "configured") into = &recorded;
    if (into == nullptr || !absl::SimpleAtoi(kv[1], into) || *into < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": cannot read the pool target from line \"", line,
                       "\" (expected \"target N\" and \"configured M\"); remove the file to "
                       "start from the config's parallel_agents"));
    }
  }
  if (target < 0 || recorded < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the pool target file lacks a \"target N\" or \"configured M\" line; remove the "
              "file to start from the config's parallel_agents"));
  }
  if (recorded != configured) {
    return PoolTargetChoice{
        configured, absl::StrCat("pool target ", configured, " (config; it changed from ",
                                 recorded, " since the last scale to ", target, ")")};
  }
  return PoolTargetChoice{target, absl::StrCat("pool target ", target, " (the last scale, kept in ",
                                               path, ")")};
}

absl::Status SavePoolTarget(const std::string& path, int target, int configured) {
  return WriteFileAtomically(path, absl::StrCat("target ", target, "\nconfigured ", configured, "\n"));
}

}  // namespace harness
