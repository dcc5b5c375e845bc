// MemoryCgroups and AttemptCgroup (see resource_limits.h).
#include "agentd/resource_limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "core/file_util.h"

namespace harness::agentd {
namespace {

constexpr absl::string_view kParentPrefix = "harness-agentd-";

absl::Status WriteSmall(const std::string& path, absl::string_view text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open", path);
  ssize_t n = write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(n < 0 ? errno : EIO, absl::StrCat("cannot write \"", text, "\" to"), path);
  }
  return absl::OkStatus();
}

std::string ReadSmall(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : std::string();
}

// The value of the line "<key> <n>" in a flat-keyed cgroup file; 0 when absent.
int64_t KeyedValue(const std::string& text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> kv = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t v;
    if (kv.size() == 2 && kv[0] == key && absl::SimpleAtoi(kv[1], &v)) return v;
  }
  return 0;
}

bool HasWord(absl::string_view text, absl::string_view word, char sep) {
  for (absl::string_view w : absl::StrSplit(text, sep, absl::SkipEmpty())) {
    if (absl::StripAsciiWhitespace(w) == word) return true;
  }
  return false;
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

// A small pseudo-file read from its start through a descriptor kept open: no path walk per read
// (the kernel regenerates a cgroup file's text at offset 0). Empty on an error.
std::string PreadSmall(int fd) {
  std::string out;
  char buf[4096];
  for (off_t off = 0;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
  }
  return out;
}

std::vector<pid_t> Procs(const std::string& cgroup) {
  std::vector<pid_t> out;
  for (absl::string_view line : absl::StrSplit(ReadSmall(cgroup + "/cgroup.procs"), '\n')) {
    int pid;
    if (absl::SimpleAtoi(line, &pid) && pid > 0) out.push_back(pid);
  }
  return out;
}

// Kills what is still in the cgroup `path` (our own processes: the attempt's, which left its
// process group) until it is empty. Best effort, a few seconds at most; false if it is not
// empty by then. (cgroup.procs is opened afresh each time: cgroup v1 keeps the pid list of an
// open file for a second, so a read through a descriptor kept open can be stale.)
bool KillAll(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    std::vector<pid_t> pids = Procs(path);
    if (pids.empty()) return true;
    for (pid_t p : pids) kill(p, SIGKILL);
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Removes the cgroup `path`, killing what is still in it first. Best effort, as KillAll.
void KillAndRemove(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    std::vector<pid_t> pids = Procs(path);
    if (pids.empty() && (rmdir(path.c_str()) == 0 || errno == ENOENT)) return;
    for (pid_t p : pids) kill(p, SIGKILL);
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// Whether `pid` runs (a zombie does not: its agentd is dead, only not reaped yet).
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::string stat = ReadSmall(absl::StrCat("/proc/", pid, "/stat"));
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;  // cannot tell
  return stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

// Parents left by agentd processes that no longer exist (killed with -9): removed if empty.
void SweepStaleParents(const std::string& base) {
  DIR* d = opendir(base.c_str());
  if (d == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    absl::string_view name(e->d_name);
    int pid;
    if (!absl::ConsumePrefix(&name, kParentPrefix) || !absl::SimpleAtoi(name, &pid)) continue;
    if (pid != getpid() && !Alive(pid)) {
      stale.push_back(absl::StrCat(base, "/", e->d_name));
    }
  }
  closedir(d);
  for (const std::string& parent : stale) {
    if (DIR* p = opendir(parent.c_str())) {
      while (dirent* e = readdir(p)) {
        if (e->d_type == DT_DIR && e->d_name[0] != '.') {
          rmdir(absl::StrCat(parent, "/", e->d_name).c_str());
        }
      }
      closedir(p);
    }
    rmdir(parent.c_str());
  }
}

struct Mounts {
  std::string v1_memory;  // mount point of a v1 hierarchy with the memory controller
  std::string v2;         // mount point of the cgroup2 hierarchy
};

Mounts FindMounts() {
  Mounts m;
  std::ifstream f("/proc/self/mounts");
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 4) continue;
    if (fields[2] == "cgroup2" && m.v2.empty()) m.v2 = fields[1];
    if (fields[2] == "cgroup" && m.v1_memory.empty() && HasWord(fields[3], "memory", ',')) {
      m.v1_memory = fields[1];
    }
  }
  return m;
}

// agentd's own cgroup: the v2 path ("0::/x") or the v1 memory hierarchy's ("4:memory:/x").
std::string OwnCgroup(bool v2) {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3) continue;
    if (v2 ? fields[0] == "0" && fields[1].empty() : HasWord(fields[1], "memory", ',')) {
      return fields[2];
    }
  }
  return "/";
}

}  // namespace

// One cgroup of the pool: its path, its files that are read or written per attempt (kept
// open: an attempt reads the OOM count two or three times) and the limit last written.
class PooledCgroup {
 public:
  PooledCgroup(std::string path, UniqueFd procs, UniqueFd oom)
      : path_(std::move(path)), procs_(std::move(procs)), oom_(std::move(oom)) {}
  ~PooledCgroup() {
    procs_.Reset();
    oom_.Reset();
    KillAndRemove(path_);
  }
  PooledCgroup(const PooledCgroup&) = delete;
  PooledCgroup& operator=(const PooledCgroup&) = delete;

  const std::string& path() const { return path_; }
  int procs_fd() const { return procs_.get(); }
  // The kernel's count of OOM kills in the cgroup since it was made (the oom_kill line of
  // memory.events, v2, or of memory.oom_control, v1).
  int64_t OomKills() const { return KeyedValue(PreadSmall(oom_.get()), "oom_kill"); }
  int64_t memory_mb = 0;  // the limit in the files; 0: none written yet (no limit)

 private:
  const std::string path_;
  UniqueFd procs_;  // cgroup.procs, for writing (the attempt's process joins by it)
  UniqueFd oom_;    // memory.events (v2) or memory.oom_control (v1)
};

AttemptCgroup::AttemptCgroup(MemoryCgroups* owner, std::unique_ptr<PooledCgroup> cgroup,
                             int64_t oom_base)
    : owner_(owner), cgroup_(std::move(cgroup)), oom_base_(oom_base) {}

AttemptCgroup::~AttemptCgroup() { owner_->Release(std::move(cgroup_)); }

const std::string& AttemptCgroup::path() const { return cgroup_->path(); }

int AttemptCgroup::procs_fd() const { return cgroup_->procs_fd(); }

int64_t AttemptCgroup::OomKills() const { return cgroup_->OomKills() - oom_base_; }

std::unique_ptr<MemoryCgroups> MemoryCgroups::None(absl::string_view why) {
  std::unique_ptr<MemoryCgroups> c(new MemoryCgroups());
  c->why_none_ = std::string(why);
  return c;
}

std::unique_ptr<MemoryCgroups> MemoryCgroups::Probe() {
  Mounts m = FindMounts();
  const std::string own_name = absl::StrCat(kParentPrefix, getpid());
  std::string why;
  // cgroup v2, when its memory controller is there (in a hybrid setup it is bound to v1).
  if (!m.v2.empty() && HasWord(ReadSmall(m.v2 + "/cgroup.controllers"), "memory", ' ')) {
    // Beside agentd's own cgroup: a cgroup with processes in it cannot hand the memory
    // controller down (the "no internal processes" rule), its parent can.
    std::string own = OwnCgroup(/*v2=*/true);
    std::string base = own == "/" ? m.v2 : Dirname(m.v2 + own);
    std::string parent = absl::StrCat(base, "/", own_name);
    absl::Status s = absl::OkStatus();
    if (!HasWord(ReadSmall(base + "/cgroup.subtree_control"), "memory", ' ')) {
      s = WriteSmall(base + "/cgroup.subtree_control", "+memory");
    }
    if (s.ok()) {
      SweepStaleParents(base);
      if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
        s = ErrnoStatus(errno, "cannot create", parent);
      } else {
        s = WriteSmall(parent + "/cgroup.subtree_control", "+memory");
        if (!s.ok()) rmdir(parent.c_str());
      }
    }
    if (s.ok()) {
      std::unique_ptr<MemoryCgroups> c(new MemoryCgroups());
      c->kind_ = Kind::kV2;
      c->parent_ = parent;
      return c;
    }
    why = absl::StrCat("cgroup v2: ", s.message());
  }
  if (!m.v1_memory.empty()) {
    std::string base = m.v1_memory + OwnCgroup(/*v2=*/false);
    if (base.back() == '/') base.pop_back();
    if (!PathExists(base + "/memory.limit_in_bytes")) base = m.v1_memory;
    std::string parent = absl::StrCat(base, "/", own_name);
    SweepStaleParents(base);
    if (mkdir(parent.c_str(), 0755) == 0 || errno == EEXIST) {
      std::unique_ptr<MemoryCgroups> c(new MemoryCgroups());
      c->kind_ = Kind::kV1;
      c->parent_ = parent;
      return c;
    }
    why = std::string(ErrnoStatus(errno, "cgroup v1: cannot create", parent).message());
  }
  if (why.empty()) why = "no memory cgroup hierarchy is mounted";
  return None(why);
}

MemoryCgroups::~MemoryCgroups() {
  if (kind_ == Kind::kNone) return;
  std::vector<std::unique_ptr<PooledCgroup>> idle;
  {
    absl::MutexLock l(&mu_);
    idle.swap(idle_);
  }
  idle.clear();  // each removes its cgroup
  KillAndRemove(parent_);
}

std::string MemoryCgroups::Describe() const {
  switch (kind_) {
    case Kind::kV1:
      return absl::StrCat("a cgroup v1 memory cgroup for each attempt, reused, under ", parent_);
    case Kind::kV2:
      return absl::StrCat("a cgroup v2 memory cgroup for each attempt, reused, under ", parent_);
    case Kind::kNone:
      break;
  }
  return absl::StrCat("RLIMIT_AS on each process (no memory cgroup: ", why_none_, ")");
}

int64_t MemoryCgroups::pooled() const {
  absl::MutexLock l(&mu_);
  return pooled_;
}

absl::StatusOr<std::unique_ptr<PooledCgroup>> MemoryCgroups::MakeCgroup() {
  int64_t n;
  {
    absl::MutexLock l(&mu_);
    n = next_++;
  }
  // Recreated if something removed it meanwhile (a sweep by another agentd that saw it empty).
  if (mkdir(parent_.c_str(), 0755) == 0 && kind_ == Kind::kV2) {
    (void)WriteSmall(parent_ + "/cgroup.subtree_control", "+memory");
  }
  const std::string path = absl::StrCat(parent_, "/attempt-", n);
  if (mkdir(path.c_str(), 0755) != 0) return ErrnoStatus(errno, "cannot create cgroup", path);
  absl::Status s = absl::OkStatus();
  if (kind_ == Kind::kV2 && PathExists(path + "/memory.swap.max")) {
    s = WriteSmall(path + "/memory.swap.max", "0");
  }
  const std::string procs_path = path + "/cgroup.procs";
  const std::string oom_path =
      path + (kind_ == Kind::kV2 ? "/memory.events" : "/memory.oom_control");
  UniqueFd procs, oom;
  if (s.ok()) {
    procs = UniqueFd(open(procs_path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!procs.valid()) s = ErrnoStatus(errno, "cannot open", procs_path);
  }
  if (s.ok()) {
    oom = UniqueFd(open(oom_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!oom.valid()) s = ErrnoStatus(errno, "cannot open", oom_path);
  }
  if (!s.ok()) {
    procs.Reset();
    rmdir(path.c_str());
    return s;
  }
  {
    absl::MutexLock l(&mu_);
    ++pooled_;
  }
  return std::make_unique<PooledCgroup>(path, std::move(procs), std::move(oom));
}

absl::Status MemoryCgroups::SetLimit(PooledCgroup& cgroup, int64_t memory_mb) {
  if (cgroup.memory_mb == memory_mb) return absl::OkStatus();
  const std::string bytes = absl::StrCat(memory_mb << 20);
  const std::string& path = cgroup.path();
  if (kind_ == Kind::kV2) {
    if (absl::Status s = WriteSmall(path + "/memory.max", bytes); !s.ok()) return s;
  } else {
    // With swap accounting, memory + swap too: the limit cannot be dodged by swapping. The
    // kernel wants memsw >= the memory limit at every step: lowering, the memory limit first;
    // raising, memsw first.
    const std::string memsw = path + "/memory.memsw.limit_in_bytes";
    const bool has_memsw = PathExists(memsw);
    const bool lowering = cgroup.memory_mb == 0 || memory_mb < cgroup.memory_mb;
    if (has_memsw && !lowering) (void)WriteSmall(memsw, bytes);
    if (absl::Status s = WriteSmall(path + "/memory.limit_in_bytes", bytes); !s.ok()) return s;
    if (has_memsw && lowering) (void)WriteSmall(memsw, bytes);
  }
  cgroup.memory_mb = memory_mb;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AttemptCgroup>> MemoryCgroups::Acquire(int64_t memory_mb) {
  if (kind_ == Kind::kNone) {
    return absl::FailedPreconditionError(absl::StrCat("no memory cgroup: ", why_none_));
  }
  std::unique_ptr<PooledCgroup> cgroup;
  {
    absl::MutexLock l(&mu_);
    if (!idle_.empty()) {
      cgroup = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  // An idle cgroup is dropped (and a new one made) if something removed it meanwhile or its
  // limit cannot be lowered (memory still charged to it that cannot be reclaimed).
  if (cgroup != nullptr &&
      (!PathExists(cgroup->path()) || !SetLimit(*cgroup, memory_mb).ok())) {
    cgroup.reset();
    absl::MutexLock l(&mu_);
    --pooled_;
  }
  if (cgroup == nullptr) {
    absl::StatusOr<std::unique_ptr<PooledCgroup>> made = MakeCgroup();
    if (!made.ok()) return made.status();
    cgroup = *std::move(made);
    if (absl::Status s = SetLimit(*cgroup, memory_mb); !s.ok()) {
      cgroup.reset();
      absl::MutexLock l(&mu_);
      --pooled_;
      return s;
    }
  }
  const int64_t oom_base = cgroup->OomKills();
  return std::unique_ptr<AttemptCgroup>(new AttemptCgroup(this, std::move(cgroup), oom_base));
}

void MemoryCgroups::Release(std::unique_ptr<PooledCgroup> cgroup) {
  if (cgroup == nullptr) return;
  if (!KillAll(cgroup->path())) {
    cgroup.reset();  // tries once more to empty and remove it
    absl::MutexLock l(&mu_);
    --pooled_;
    return;
  }
  absl::MutexLock l(&mu_);
  idle_.push_back(std::move(cgroup));
}

std::string DescribeLimitMechanisms(const MemoryCgroups* cgroups) {
  return absl::StrCat(
      "resource limits (from each lease): memory by ",
      cgroups != nullptr ? cgroups->Describe() : std::string("RLIMIT_AS on each process"),
      "; cpu time by RLIMIT_CPU on each process; nice by setpriority");
}

}  // namespace harness::agentd
