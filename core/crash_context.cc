// Crash context folders (see crash_context.h).
#include "core/crash_context.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/ids.h"

namespace harness {
namespace {

constexpr char kPartialPrefix[] = ".partial-";

std::vector<std::string> ListNames(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(std::move(name));
  }
  ::closedir(d);
  return out;
}

// Removes a crash folder: plain files one level deep, as WriteCrashContext makes them.
void RemoveFolder(const std::string& dir) {
  for (const std::string& name : ListNames(dir)) ::unlink((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

}  // namespace

std::string CrashFolderName(absl::Time at) {
  return absl::FormatTime("%Y%m%dT%H%M%E3SZ", at, absl::UTCTimeZone());
}

std::string ReadFileTail(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return "";
  off_t start = st.st_size > static_cast<off_t>(max_bytes) ? st.st_size - max_bytes : 0;
  std::string out(static_cast<size_t>(st.st_size - start), '\0');
  ssize_t n = ::pread(fd.get(), out.data(), out.size(), start);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

absl::StatusOr<std::string> WriteCrashContext(const std::string& crashes_dir, const CrashContext& c,
                                              absl::Time at, int keep) {
  if (absl::Status s = ValidateAgentId(c.agent); !s.ok()) return s;
  const std::string agent_dir = absl::StrCat(crashes_dir, "/", c.agent);
  if (absl::Status s = MakeDirs(agent_dir); !s.ok()) return s;
  const std::string stamp = c.folder.empty() ? CrashFolderName(at) : c.folder;
  if (stamp.find('/') != std::string::npos || stamp.empty() || stamp[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat("bad crash folder name \"", stamp, "\""));
  }
  // Written in a hidden folder and renamed into place, so a reader (an operator, `show`, a
  // test that follows the attempt's error to it) never sees a folder with some files missing.
  std::string partial = absl::StrCat(agent_dir, "/", kPartialPrefix, "XXXXXX");
  if (::mkdtemp(partial.data()) == nullptr) return ErrnoStatus(errno, "cannot create", partial);
  const std::pair<const char*, const std::string*> files[] = {
      {"reason", &c.reason}, {"status", &c.status}, {"item", &c.item}, {"log.tail", &c.log_tail}};
  // Not state the controller recovers from: plain writes, no fsync (a crash of the whole
  // machine may lose a folder; it never leaves a wrong one under a name that was complete).
  for (const auto& [name, content] : files) {
    std::string text = *content;
    if (!text.empty() && text.back() != '\n') text += '\n';
    const std::string path = absl::StrCat(partial, "/", name);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    absl::Status s =
        fd.valid() ? WriteAll(fd.get(), text, path) : ErrnoStatus(errno, "cannot create", path);
    if (!s.ok()) {
      RemoveFolder(partial);
      return s;
    }
  }
  // rename(2) replaces only an empty directory: a taken name (a complete folder) fails with
  // EEXIST or ENOTEMPTY and the next suffix is tried.
  std::string dir;
  for (int n = 1;; ++n) {
    dir =
        n == 1 ? absl::StrCat(agent_dir, "/", stamp) : absl::StrCat(agent_dir, "/", stamp, "-", n);
    if (::rename(partial.c_str(), dir.c_str()) == 0) break;
    if ((errno != EEXIST && errno != ENOTEMPTY) || n > 1000) {
      absl::Status s = ErrnoStatus(errno, "cannot rename a crash folder to", dir);
      RemoveFolder(partial);
      return s;
    }
  }
  // Only the pool manager's thread writes here, so a hidden folder left now is one a crash
  // left half written: removed, never counted. Timestamps sort as text; the oldest go first.
  std::vector<std::string> all = ListNames(agent_dir);
  std::erase_if(all, [&](const std::string& name) {
    if (absl::StartsWith(name, kPartialPrefix)) RemoveFolder(absl::StrCat(agent_dir, "/", name));
    return name[0] == '.';
  });
  std::sort(all.begin(), all.end());
  for (size_t i = 0; keep > 0 && all.size() - i > static_cast<size_t>(keep); ++i) {
    RemoveFolder(absl::StrCat(agent_dir, "/", all[i]));
  }
  return dir;
}

}  // namespace harness
