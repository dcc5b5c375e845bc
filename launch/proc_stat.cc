// /proc reading (see proc_stat.h).
#include "launch/proc_stat.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/file_util.h"

namespace harness::launch {

absl::StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so fields are
  // counted from the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(absl::StrCat(path, ": no ')' after the command name"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*text).substr(close + 1), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state), so field N is fields[N - 3].
  ProcStat st;
  if (fields.size() < 20 || fields[0].size() != 1 || !absl::SimpleAtoi(fields[2], &st.pgrp) ||
      !absl::SimpleAtoi(fields[3], &st.session) ||
      !absl::SimpleAtoi(fields[19], &st.start_ticks)) {
    return absl::DataLossError(absl::StrCat(path, ": cannot parse state, pgrp and start time"));
  }
  st.state = fields[0][0];
  return st;
}

absl::StatusOr<std::string> ReadProcExe(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/exe");
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) return ErrnoStatus(errno, "cannot read link", path);
  if (static_cast<size_t>(n) == sizeof buf) {
    return absl::OutOfRangeError(absl::StrCat(path, ": target longer than ", sizeof buf));
  }
  std::string exe(buf, static_cast<size_t>(n));
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(exe, kDeleted)) exe.resize(exe.size() - kDeleted.size());
  return exe;
}

std::vector<pid_t> ProcessesInSession(pid_t sid) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t pid;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    absl::StatusOr<ProcStat> st = ReadProcStat(pid);
    if (st.ok() && st->session == sid && st->state != 'Z') out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool IsSameLiveProcess(pid_t pid, uint64_t start_ticks) {
  absl::StatusOr<ProcStat> st = ReadProcStat(pid);
  return st.ok() && st->state != 'Z' && st->state != 'X' && st->start_ticks == start_ticks;
}

}  // namespace harness::launch
