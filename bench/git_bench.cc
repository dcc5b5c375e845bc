// git_bench: the part of item start (lease granted -> command exec) that depends on the
// repository, and the landing of results, through harness's git library (git/), on a generated
// repository, side by side with the git CLI as the baseline.
//
//   git_bench [--files N] [--mb M] [--rounds R] [--dir DIR] [--keep]
//
// 1. Generates DIR/src: N files (~M MB) in 3 levels of folders (20 x 20 x N/400), committed on
//    main with the git CLI and repacked. Reused when DIR/src was made with the same N and M.
// 2. Local agent: AgentWorktree::OpenLinked + the first Prepare (a full checkout), then R rounds:
//    the previous item's leftovers (10 tracked files modified, 20 untracked, 200 ignored incl. a
//    build/ folder), a 1-file commit on main (git CLI), then ResolveBase + Prepare is timed.
//    Baselines, same rounds and leftovers, order rotated each round: (a) `git worktree add
//    --detach` of a fresh worktree (all removed at the end of the run, untimed); (b) `git
//    checkout -f --detach` + `git clean -fdx` on a reused worktree.
// 3. Remote agent: an AgentClone in a fresh folder; first item: BuildPack (wants = [base], haves
//    = the clone's) streamed into the clone's PackReceiver, SetBase, OpenClone, Prepare; then R
//    incremental items after a 1-file commit on main each (with the same leftovers).
// 4. Result landing of a 1-file and a 1,000-file change, R rounds each: local CommitAll +
//    VerifyResult + SetResultBranch; remote CommitAll + BuildPack(wants = [commit], haves =
//    [base]) streamed into a PackReceiver of the source + VerifyDescends + SetResultBranch.
//
// Harness's own steps go through the git library only; the git CLI makes the repository and the
// commits on main, and is the baseline. Packs are streamed in-process (no gRPC). Prints one JSON
// line per measurement on stdout, progress on stderr. DIR/src is kept for the next run; the
// worktrees and the clone (DIR/run) are removed at the end unless --keep (the fresh baseline
// worktrees always are). Disk at the peak: about (R + 5) x M MB (the fresh worktrees).
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "config/flags.h"
#include "core/file_util.h"
#include "git/agent_clone.h"
#include "git/agent_worktree.h"
#include "git/git_util.h"
#include "git/pack_builder.h"
#include "git/pack_receiver.h"
#include "git/result_refs.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace hg = harness::git;
using SteadyClock = std::chrono::steady_clock;

constexpr char kUsage[] =
    "usage: git_bench [--files N] [--mb M] [--rounds R] [--dir DIR] [--keep]\n"
    "Times item start (worktree prepare, remote fetch) and result landing through harness's\n"
    "git library against the git CLI on a generated repository; one JSON line per figure.";
constexpr int kTop = 20;  // folders at level 1, and level-2 folders in each
constexpr uint64_t kMaxPackBytes = uint64_t{16} << 30;
constexpr char kMarker[] = "git-bench.params";
constexpr char kLocalAgent[] = "bench-local";
constexpr char kRemoteAgent[] = "bench-remote";

struct Args {
  int64_t files = 20000;
  int64_t mb = 200;
  int64_t rounds = 20;
  std::string dir = "/tmp/git-bench";
  bool keep = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "git_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

template <typename T>
T Check(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}

void Progress(const std::string& msg) {
  std::fprintf(stderr, "git_bench: %s\n", msg.c_str());
  std::fflush(stderr);
}

double MsSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}

// Nearest-rank percentile (p in (0, 1]); with 20 rounds p99 is the maximum.
double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<size_t>(i, 1)) - 1];
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

// Runs `git <args>` (git from PATH) and waits for it. Its stdout goes to `out` when given, else
// to /dev/null; stderr is ours. Any failure ends the benchmark.
void Git(const std::vector<std::string>& args, std::string* out = nullptr) {
  std::vector<std::string> full = {"git"};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string cmd;
  for (const std::string& a : full) absl::StrAppend(&cmd, cmd.empty() ? "" : " ", a);

  int pipefd[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out != nullptr) {
    if (::pipe2(pipefd, O_CLOEXEC) != 0) Die("pipe failed");
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, "git", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out != nullptr) {
    ::close(pipefd[1]);
    if (rc == 0) {
      out->clear();
      char buf[4096];
      for (;;) {
        ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out->append(buf, static_cast<size_t>(n));
      }
    }
    ::close(pipefd[0]);
  }
  if (rc != 0) Die(absl::StrCat("cannot run ", cmd, ": ", std::strerror(rc)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) Die(absl::StrCat("waitpid for ", cmd, ": ", std::strerror(errno)));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(absl::StrCat(cmd, " failed (status ", status, ")"));
  }
}

std::string GitOut(const std::vector<std::string>& args) {
  std::string out;
  Git(args, &out);
  return std::string(absl::StripAsciiWhitespace(out));
}

// ---- The generated repository --------------------------------------------------------------

// Deterministic xorshift64* generator.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull) {
    if (s == 0) s = 1;
  }
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

// Source-like text: lines of words from a fixed vocabulary (compresses about as well as code).
const std::vector<std::string>& Vocabulary() {
  static const std::vector<std::string>* words = [] {
    static const char* kSyllables[] = {"st",  "ab", "re",  "con", "fig", "ptr", "val", "buf",
                                       "len", "it", "er",  "on",  "get", "set", "map", "key",
                                       "idx", "ok", "tmp", "out", "in",  "max", "min", "cnt"};
    auto* w = new std::vector<std::string>();
    Rng rng(7);
    for (int i = 0; i < 600; ++i) {
      std::string word;
      int n = 1 + static_cast<int>(rng.Below(3));
      for (int k = 0; k < n; ++k) word += kSyllables[rng.Below(std::size(kSyllables))];
      if (rng.Below(4) == 0) absl::StrAppend(&word, "_", rng.Below(100));
      w->push_back(std::move(word));
    }
    for (const char* p : {"{", "}", "(", ")", ";", "=", "+", "if", "for", "return", "int", "const",
                          "auto", "std::string", "->", "::"}) {
      w->push_back(p);
    }
    return w;
  }();
  return *words;
}

std::string Content(uint64_t seed, size_t size) {
  const std::vector<std::string>& words = Vocabulary();
  Rng rng(seed);
  std::string out;
  out.reserve(size + 100);
  while (out.size() < size) {
    out.append(2 * rng.Below(4), ' ');
    int n = 3 + static_cast<int>(rng.Below(8));
    for (int k = 0; k < n; ++k) {
      if (k > 0) out.push_back(' ');
      out += words[rng.Below(words.size())];
    }
    out.push_back('\n');
  }
  return out;
}

struct Layout {
  int64_t files;
  int64_t per_leaf;   // files in each level-3 folder
  uint64_t avg_size;  // bytes

  Layout(int64_t n, int64_t mb)
      : files(n),
        per_leaf((n + kTop * kTop - 1) / (kTop * kTop)),
        avg_size(static_cast<uint64_t>(mb) * 1024 * 1024 / static_cast<uint64_t>(n)) {}

  std::string Dir(int64_t i) const {
    int64_t leaf = i / per_leaf;
    return absl::StrFormat("d%02d/s%02d", leaf / kTop, leaf % kTop);
  }
  std::string Path(int64_t i) const { return absl::StrFormat("%s/f%04d.c", Dir(i), i % per_leaf); }
  // Between half and one and a half times the average.
  size_t Size(int64_t i) const {
    Rng rng(static_cast<uint64_t>(i) + 1000000007ull);
    return static_cast<size_t>(avg_size / 2 + rng.Below(avg_size + 1));
  }
};

void WriteFile(const std::string& path, const std::string& content, bool append = false) {
  std::FILE* f = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (f == nullptr) Die(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  size_t n = std::fwrite(content.data(), 1, content.size(), f);
  if (std::fclose(f) != 0 || n != content.size()) Die(absl::StrCat("cannot write ", path));
}

std::string MarkerLine(const Args& a) {
  return absl::StrCat("git_bench v1 files=", a.files, " mb=", a.mb);
}

// Makes (or reuses) DIR/src; returns the bytes of its files.
uint64_t PrepareSource(const Args& a, const Layout& L, const std::string& src) {
  const std::string marker = src + "/.git/" + kMarker;
  if (absl::StatusOr<std::string> m = harness::ReadFile(marker); m.ok()) {
    size_t nl = m->find('\n');
    if (nl != std::string::npos && m->substr(0, nl) == MarkerLine(a)) {
      uint64_t bytes = 0;
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(m->substr(nl + 1)), &bytes);
      auto t0 = SteadyClock::now();
      // A killed run may have left main's work tree mid-change.
      Git({"-C", src, "reset", "-q", "--hard"});
      int packs = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(src + "/.git/objects/pack", ec)) {
        if (e.path().extension() == ".pack") ++packs;
      }
      if (packs > 20) {
        Progress(absl::StrCat("repacking ", src, " (", packs, " packs from earlier runs)"));
        Git({"-C", src, "repack", "-adq"});
      }
      std::printf(
          "{\"bench\":\"git\",\"what\":\"generate\",\"files\":%lld,\"bytes\":%llu,"
          "\"reused\":true,\"seconds\":%.3f}\n",
          static_cast<long long>(a.files), static_cast<unsigned long long>(bytes),
          MsSince(t0) / 1000);
      std::fflush(stdout);
      Progress(absl::StrCat("reusing the repository in ", src));
      return bytes;
    }
  }

  Progress(absl::StrCat("generating ", a.files, " files (~", a.mb, " MB) in ", src));
  std::error_code ec;
  fs::remove_all(src, ec);
  if (ec) Die(absl::StrCat("cannot remove ", src, ": ", ec.message()));
  auto t0 = SteadyClock::now();
  uint64_t bytes = 0;
  std::string last_dir;
  for (int64_t i = 0; i < a.files; ++i) {
    std::string dir = src + "/" + L.Dir(i);
    if (dir != last_dir) {
      fs::create_directories(dir);
      last_dir = dir;
    }
    std::string text = Content(static_cast<uint64_t>(i), L.Size(i));
    bytes += text.size();
    WriteFile(src + "/" + L.Path(i), text);
    if ((i + 1) % std::max<int64_t>(1, a.files / 10) == 0) {
      Progress(absl::StrFormat("  %lld files, %.0f MB written", static_cast<long long>(i + 1),
                               static_cast<double>(bytes) / (1 << 20)));
    }
  }
  WriteFile(src + "/.gitignore", "build/\n*.o\n*.log\n");
  const double write_s = MsSince(t0) / 1000;
  Progress("git init + add");
  Git({"init", "-q", "-b", "main", src});
  Git({"-C", src, "config", "gc.auto", "0"});  // no background gc in the middle of timings
  Git({"-C", src, "config", "maintenance.auto", "false"});
  Git({"-C", src, "add", "-A"});
  Progress("git commit");
  Git({"-C", src, "commit", "-q", "-m", "generated"});
  Progress("git repack -ad");
  Git({"-C", src, "repack", "-adq"});
  const double total_s = MsSince(t0) / 1000;
  WriteFile(marker, absl::StrCat(MarkerLine(a), "\n", bytes, "\n"));
  std::printf(
      "{\"bench\":\"git\",\"what\":\"generate\",\"files\":%lld,\"bytes\":%llu,\"reused\":false,"
      "\"seconds\":%.3f,\"write_files_seconds\":%.3f,\"git_seconds\":%.3f}\n",
      static_cast<long long>(a.files), static_cast<unsigned long long>(bytes), total_s, write_s,
      total_s - write_s);
  std::fflush(stdout);
  return bytes;
}

// A 1-file commit on main in the source repository, through the git CLI. Returns its id.
std::string CommitOnMain(const std::string& src, const Layout& L, const std::string& run_id,
                         int seq) {
  int64_t i = (static_cast<int64_t>(seq) * 104729 + 13) % L.files;
  std::string text =
      Content(static_cast<uint64_t>(i) * 131 + static_cast<uint64_t>(seq) + 7, L.Size(i));
  absl::StrAppend(&text, "// main change ", run_id, "-", seq, "\n");
  WriteFile(src + "/" + L.Path(i), text);
  Git({"-C", src, "commit", "-q", "-a", "-m", absl::StrCat("bench change ", run_id, "-", seq)});
  return GitOut({"-C", src, "rev-parse", "HEAD"});
}

// What the previous item left behind in `root`: 10 tracked files modified, 20 untracked files
// (10 in a new folder), 200 ignored ones (150 under build/, 50 *.log beside tracked files).
int64_t LeftoverFile(const Layout& L, int round, int k) {
  return ((static_cast<int64_t>(round) * 10 + k) * 7919 + 3) % L.files;
}

void MakeLeftovers(const std::string& root, const Layout& L, int round) {
  for (int k = 0; k < 10; ++k) {
    WriteFile(root + "/" + L.Path(LeftoverFile(L, round, k)),
              absl::StrCat("// leftover of round ", round, "\n"), /*append=*/true);
  }
  fs::create_directories(root + "/scratch");
  for (int k = 0; k < 10; ++k) {
    WriteFile(absl::StrCat(root, "/scratch/untracked-", k, ".txt"), Content(900 + k, 2000));
    WriteFile(absl::StrCat(root, "/", L.Dir(LeftoverFile(L, round, k)), "/untracked-", k, ".c"),
              Content(950 + k, 2000));
  }
  for (int k = 0; k < 150; ++k) {
    std::string dir = absl::StrFormat("%s/build/obj/d%d/s%d", root, k % 5, (k / 5) % 6);
    fs::create_directories(dir);
    WriteFile(absl::StrFormat("%s/f%03d.o", dir, k), Content(2000 + k, 4000));
  }
  for (int k = 0; k < 50; ++k) {
    WriteFile(absl::StrCat(root, "/", L.Dir((static_cast<int64_t>(k) * 401 + round) % L.files),
                           "/run-", k, ".log"),
              Content(3000 + k, 1000));
  }
}

// Checks that a prepared tree holds none of the round's leftovers.
void CheckClean(const std::string& root, const Layout& L, int round, const std::string& who) {
  std::error_code ec;
  if (fs::exists(root + "/build", ec) || fs::exists(root + "/scratch", ec)) {
    Die(absl::StrCat(who, ": untracked or ignored leftovers survived in ", root));
  }
  for (int k = 0; k < 10; ++k) {
    std::string path = root + "/" + L.Path(LeftoverFile(L, round, k));
    absl::StatusOr<std::string> text = harness::ReadFile(path);
    if (!text.ok() || absl::StrContains(*text, "// leftover of round")) {
      Die(absl::StrCat(who, ": ", path, " was not restored"));
    }
  }
}

// Rewrites `count` tracked files (a line appended to each), spread over the tree.
void ChangeFiles(const std::string& root, const Layout& L, int64_t count, int round) {
  int64_t stride = std::max<int64_t>(1, L.files / count);
  for (int64_t j = 0; j < count; ++j) {
    int64_t i = (j * stride + round + 5) % L.files;
    WriteFile(root + "/" + L.Path(i), absl::StrCat("// result change ", round, "\n"), true);
  }
}

void PrintDist(const std::string& what, const std::string& extra, const std::vector<double>& ms) {
  std::printf(
      "{\"bench\":\"git\",\"what\":\"%s\"%s,\"rounds\":%zu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
      "\"mean_ms\":%.1f,\"min_ms\":%.1f}\n",
      what.c_str(), extra.c_str(), ms.size(), Pct(ms, 0.5), Pct(ms, 0.99), Mean(ms), Pct(ms, 1e-9));
  std::fflush(stdout);
}

// Streams a pack of `wants` minus `haves` from `from` into `to`; returns its stats.
hg::PackStats Transfer(git_repository* from, git_repository* to,
                       const std::vector<std::string>& wants,
                       const std::vector<std::string>& haves) {
  std::unique_ptr<hg::PackReceiver> rx =
      Check(hg::PackReceiver::Begin(to, kMaxPackBytes), "begin pack");
  hg::PackStats sent;
  Check(hg::BuildPack(
            from, wants, haves, hg::kDefaultPackChunkBytes,
            [&](absl::string_view chunk) { return rx->Append(chunk); }, &sent),
        "build pack");
  hg::PackStats got = Check(rx->Commit(), "store pack");
  if (got.bytes != sent.bytes) Die("pack sizes differ between sender and receiver");
  return sent;
}

hg::CommitInfo Info(const std::string& item, int attempt) {
  hg::CommitInfo info;
  info.item_id = item;
  info.attempt = attempt;
  info.lease_token = "bench-lease";
  info.title = "bench result";
  info.prompt = "change some files";
  return info;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  harness::FlagParser flags("git_bench", kUsage);
  flags.AddInt("files", &a.files, "files in the generated repository (default 20000)", 400,
               10000000);
  flags.AddInt("mb", &a.mb, "total size of those files in MB (default 200)", 1, 100000);
  flags.AddInt("rounds", &a.rounds, "timed rounds of each step (default 20)", 1, 100000);
  flags.AddString("dir", &a.dir,
                  "where the repository, worktrees and clone go "
                  "(default /tmp/git-bench; the repository is reused)");
  flags.AddBool("keep", &a.keep, "keep the worktrees and the clone (DIR/run) at the end");
  if (!flags.ParseOrExit(argc, argv).empty()) flags.Fail("takes no positional arguments");
  if (a.mb * 1024 * 1024 / a.files < 64) flags.Fail("--mb is too small for --files");

  ::setenv("GIT_AUTHOR_NAME", "git bench", 1);
  ::setenv("GIT_AUTHOR_EMAIL", "bench@example.com", 1);
  ::setenv("GIT_COMMITTER_NAME", "git bench", 1);
  ::setenv("GIT_COMMITTER_EMAIL", "bench@example.com", 1);
  hg::EnsureInit();

  const Layout L(a.files, a.mb);
  const std::string dir = fs::absolute(a.dir).lexically_normal().string();
  fs::create_directories(dir);
  harness::UniqueFd lock(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    Die(absl::StrCat("another git_bench is using ", dir));
  }
  const std::string src = dir + "/src";
  const std::string run = dir + "/run";
  const std::string files_json = absl::StrCat(",\"files\":", a.files);
  const int rounds = static_cast<int>(a.rounds);
  const std::string run_id = absl::StrCat(::getpid(), "-", ::time(nullptr));
  int seq = 0;

  // 1. The repository.
  PrepareSource(a, L, src);
  {
    std::error_code ec;
    fs::remove_all(run, ec);
    if (ec) Die(absl::StrCat("cannot remove ", run, ": ", ec.message()));
    (void)Check(hg::PruneDeadWorktrees(src), "prune the worktrees of earlier runs");
    Git({"-C", src, "worktree", "prune"});
    fs::create_directories(run);
  }
  std::unique_ptr<hg::ResultRefs> refs = Check(hg::ResultRefs::Open(src), "open result refs");

  // 2. Local agent: item start.
  Progress("local item start: first Prepare (full checkout)");
  std::string base = CommitOnMain(src, L, run_id, seq++);
  auto t0 = SteadyClock::now();
  std::unique_ptr<hg::AgentWorktree> wt =
      Check(hg::AgentWorktree::OpenLinked(src, kLocalAgent, run + "/wt-harness"), "OpenLinked");
  const double open_ms = MsSince(t0);
  auto t1 = SteadyClock::now();
  std::string b = Check(wt->ResolveBase("main"), "ResolveBase");
  Check(wt->Prepare(b), "first Prepare");
  const double first_prepare_ms = MsSince(t1);
  const double first_ms = MsSince(t0);
  if (b != base) Die("ResolveBase disagrees with git rev-parse");
  std::printf(
      "{\"bench\":\"git\",\"what\":\"item_start_local_first\"%s,\"ms\":%.1f,\"open_ms\":%.1f,"
      "\"prepare_ms\":%.1f}\n",
      files_json.c_str(), first_ms, open_ms, first_prepare_ms);
  const std::string cli_wt = run + "/wt-cli";
  // Fresh worktrees are all removed at the end of the run, not after their round: on this
  // machine (ext4), creating 20,000 files within minutes of deleting as many is several times
  // slower (kernel time in file creation), which would time the filesystem, not git.
  std::vector<std::string> fresh_wts;
  t0 = SteadyClock::now();
  Git({"-C", src, "worktree", "add", "-q", "--detach", cli_wt, base});
  std::printf("{\"bench\":\"git\",\"what\":\"baseline_first_worktree_add\"%s,\"ms\":%.1f}\n",
              files_json.c_str(), MsSince(t0));
  std::fflush(stdout);

  std::vector<double> harness_ms, add_ms, reuse_ms;
  for (int r = 0; r < rounds; ++r) {
    MakeLeftovers(wt->path(), L, r);
    MakeLeftovers(cli_wt, L, r);
    base = CommitOnMain(src, L, run_id, seq++);
    for (int j = 0; j < 3; ++j) {
      switch ((r + j) % 3) {
        case 0: {
          t0 = SteadyClock::now();
          b = Check(wt->ResolveBase("main"), "ResolveBase");
          Check(wt->Prepare(b), "Prepare");
          harness_ms.push_back(MsSince(t0));
          if (b != base) Die("ResolveBase disagrees with git rev-parse");
          CheckClean(wt->path(), L, r, "harness Prepare");
          break;
        }
        case 1:
          fresh_wts.push_back(absl::StrCat(run, "/wt-fresh-", r));
          t0 = SteadyClock::now();
          Git({"-C", src, "worktree", "add", "-q", "--detach", fresh_wts.back(), base});
          add_ms.push_back(MsSince(t0));
          break;
        case 2:
          t0 = SteadyClock::now();
          Git({"-C", cli_wt, "checkout", "-q", "-f", "--detach", base});
          Git({"-C", cli_wt, "clean", "-q", "-fdx"});
          reuse_ms.push_back(MsSince(t0));
          CheckClean(cli_wt, L, r, "git checkout -f + clean -fdx");
          break;
      }
    }
    Progress(
        absl::StrFormat("  round %d: harness %.0f ms, worktree add %.0f ms, "
                        "checkout+clean %.0f ms",
                        r + 1, harness_ms.back(), add_ms.back(), reuse_ms.back()));
  }
  const double h50 = Pct(harness_ms, 0.5);
  PrintDist("item_start_local_prepare", files_json, harness_ms);
  PrintDist("baseline_worktree_add",
            absl::StrFormat("%s,\"ratio_p50_vs_harness\":%.1f", files_json, Pct(add_ms, 0.5) / h50),
            add_ms);
  PrintDist(
      "baseline_checkout_clean",
      absl::StrFormat("%s,\"ratio_p50_vs_harness\":%.1f", files_json, Pct(reuse_ms, 0.5) / h50),
      reuse_ms);

  // 3. Remote agent: item start over packs.
  Progress("remote item start: first item (full pack)");
  const std::string clone_dir = run + "/clone";
  std::unique_ptr<hg::AgentClone> clone = Check(hg::AgentClone::Open(clone_dir), "AgentClone");
  std::unique_ptr<hg::AgentWorktree> cwt;
  {
    t0 = SteadyClock::now();
    base = Check(refs->ResolveBase("main"), "ResolveBase");
    hg::Repository from = Check(hg::OpenRepository(src), "open source");
    hg::PackStats st = Transfer(from.get(), clone->repo(), {base}, clone->Haves());
    const double pack_ms = MsSince(t0);
    Check(clone->SetBase(base), "SetBase");
    t1 = SteadyClock::now();
    cwt = Check(hg::AgentWorktree::OpenClone(clone_dir, kRemoteAgent), "OpenClone");
    Check(cwt->Prepare(base), "first Prepare of the clone");
    const double prepare_ms = MsSince(t1);
    std::printf(
        "{\"bench\":\"git\",\"what\":\"item_start_remote_first\"%s,\"ms\":%.1f,"
        "\"pack_bytes\":%llu,\"pack_objects\":%llu,\"pack_ms\":%.1f,\"prepare_ms\":%.1f}\n",
        files_json.c_str(), MsSince(t0), static_cast<unsigned long long>(st.bytes),
        static_cast<unsigned long long>(st.objects), pack_ms, prepare_ms);
    std::fflush(stdout);
  }
  std::vector<double> remote_ms, remote_pack_ms, remote_prepare_ms, remote_bytes;
  for (int r = 0; r < rounds; ++r) {
    MakeLeftovers(cwt->path(), L, r);
    std::string want = CommitOnMain(src, L, run_id, seq++);
    t0 = SteadyClock::now();
    base = Check(refs->ResolveBase("main"), "ResolveBase");
    hg::Repository from = Check(hg::OpenRepository(src), "open source");
    hg::PackStats st = Transfer(from.get(), clone->repo(), {base}, clone->Haves());
    const double pack_ms = MsSince(t0);
    Check(clone->SetBase(base), "SetBase");
    t1 = SteadyClock::now();
    Check(cwt->Prepare(base), "Prepare of the clone");
    remote_prepare_ms.push_back(MsSince(t1));
    remote_ms.push_back(MsSince(t0));
    remote_pack_ms.push_back(pack_ms);
    remote_bytes.push_back(static_cast<double>(st.bytes));
    if (base != want) Die("ResolveBase disagrees with git rev-parse");
    CheckClean(cwt->path(), L, r, "clone Prepare");
    Progress(absl::StrFormat("  round %d: remote item start %.0f ms (pack %.0f ms, %.0f bytes)",
                             r + 1, remote_ms.back(), pack_ms, remote_bytes.back()));
  }
  PrintDist("item_start_remote",
            absl::StrFormat("%s,\"pack_bytes_p50\":%.0f,\"pack_ms_p50\":%.1f,"
                            "\"prepare_ms_p50\":%.1f",
                            files_json, Pct(remote_bytes, 0.5), Pct(remote_pack_ms, 0.5),
                            Pct(remote_prepare_ms, 0.5)),
            remote_ms);

  // 4. Result landing.
  for (int64_t changed : {int64_t{1}, int64_t{1000}}) {
    Progress(absl::StrCat("result landing, ", changed, " changed file(s)"));
    const std::string item = absl::StrCat("bench-result-", changed);
    std::vector<double> local_ms;
    for (int r = 0; r < rounds; ++r) {
      base = Check(wt->ResolveBase("main"), "ResolveBase");
      Check(wt->Prepare(base), "Prepare");
      ChangeFiles(wt->path(), L, changed, r);
      t0 = SteadyClock::now();
      std::string commit = Check(wt->CommitAll(Info(item, r)), "CommitAll");
      if (commit.empty()) Die("CommitAll saw no change");
      Check(refs->VerifyResult(commit, base), "VerifyResult");
      Check(refs->SetResultBranch(item, commit), "SetResultBranch");
      local_ms.push_back(MsSince(t0));
    }
    PrintDist("result_local", absl::StrCat(files_json, ",\"changed_files\":", changed), local_ms);

    const std::string remote_item = absl::StrCat("bench-remote-result-", changed);
    std::vector<double> total_ms, commit_ms, upload_ms, bytes;
    base = Check(clone->Base(), "clone base");
    for (int r = 0; r < rounds; ++r) {
      Check(cwt->Prepare(base), "Prepare of the clone");
      ChangeFiles(cwt->path(), L, changed, r);
      t0 = SteadyClock::now();
      std::string commit = Check(cwt->CommitAll(Info(remote_item, r)), "CommitAll in the clone");
      if (commit.empty()) Die("CommitAll saw no change");
      commit_ms.push_back(MsSince(t0));
      t1 = SteadyClock::now();
      hg::Repository to = Check(hg::OpenRepository(src), "open source");
      hg::PackStats st = Transfer(clone->repo(), to.get(), {commit}, {base});
      Check(hg::VerifyDescends(to.get(), commit, base), "VerifyDescends");
      Check(refs->SetResultBranch(remote_item, commit), "SetResultBranch");
      upload_ms.push_back(MsSince(t1));
      total_ms.push_back(MsSince(t0));
      bytes.push_back(static_cast<double>(st.bytes));
    }
    PrintDist("result_remote",
              absl::StrFormat("%s,\"changed_files\":%lld,\"pack_bytes_p50\":%.0f,"
                              "\"commit_ms_p50\":%.1f,\"upload_ms_p50\":%.1f",
                              files_json, static_cast<long long>(changed), Pct(bytes, 0.5),
                              Pct(commit_ms, 0.5), Pct(upload_ms, 0.5)),
              total_ms);
  }

  Progress(absl::StrFormat(
      "item start p50: harness %.1f ms (target < 100 ms), git worktree add "
      "%.0f ms (%.1fx), checkout -f + clean -fdx %.0f ms (%.1fx)",
      h50, Pct(add_ms, 0.5), Pct(add_ms, 0.5) / h50, Pct(reuse_ms, 0.5), Pct(reuse_ms, 0.5) / h50));
  Progress("removing the fresh baseline worktrees");
  for (const std::string& w : fresh_wts) Git({"-C", src, "worktree", "remove", "--force", w});
  if (!a.keep) {
    Check(wt->Remove(), "remove the worktree");
    cwt.reset();
    clone.reset();
    Git({"-C", src, "worktree", "remove", "--force", cli_wt});
    std::error_code ec;
    fs::remove_all(run, ec);
  }
  return 0;
}
