// Item log tails (see item_logs.h).
#include "core/item_logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/ids.h"

namespace harness {

absl::Status ItemLogs::Write(absl::string_view item_id, int attempt, absl::string_view tail) const {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  std::string dir = absl::StrCat(paths_.LogsDir(), "/", item_id);
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  // No fsync: a tail is for reading, and a lost one loses no work.
  std::string path = absl::StrCat(dir, "/", attempt, ".log");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot write", path);
  return WriteAll(fd.get(), tail, path);
}

std::string ItemLogs::Latest(absl::string_view item_id) const {
  if (!ValidateItemId(item_id).ok()) return "";
  std::string dir = absl::StrCat(paths_.LogsDir(), "/", item_id);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "";
  int best = -1;
  while (dirent* e = ::readdir(d)) {
    absl::string_view n = e->d_name;
    int k;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".log" &&
        absl::SimpleAtoi(n.substr(0, n.size() - 4), &k)) {
      best = std::max(best, k);
    }
  }
  ::closedir(d);
  if (best < 0) return "";
  absl::StatusOr<std::string> s = ReadFile(absl::StrCat(dir, "/", best, ".log"));
  return s.ok() ? *s : "";
}

std::optional<std::string> ItemLogs::Read(absl::string_view item_id, int attempt) const {
  if (!ValidateItemId(item_id).ok()) return std::nullopt;
  absl::StatusOr<std::string> s =
      ReadFile(absl::StrCat(paths_.LogsDir(), "/", item_id, "/", attempt, ".log"));
  if (!s.ok()) return std::nullopt;
  return *std::move(s);
}

}  // namespace harness
