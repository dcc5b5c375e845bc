// Writes the seed corpora of the fuzz targets whose inputs are files harness writes itself
// (journal segments, snapshots, lease files, packs), by running the real code: a WorkQueue for
// the state dir, git::BuildPack for the packs. Run by hand when a format changes:
//   build-fuzz/fuzz/make_seeds fuzz/corpus
// It writes into <corpus>/journal, snapshot, lease_file and pack (files named for what they
// hold). The text formats' seeds (item files, config, commands, pid files, pool.target) are
// written by hand.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/record_io.h"
#include "core/records.pb.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/pack_fixture.h"
#include "fuzz/state_dir_fixture.h"
#include "git/git_util.h"
#include "git/pack_builder.h"

namespace {

namespace fs = std::filesystem;

void Put(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  harness::fuzz::WriteFileOrDie(path, content);
  std::printf("%s (%zu bytes)\n", path.c_str(), content.size());
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> s = harness::ReadFile(path);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return *s;
}

std::string Pack(git_repository* repo, const std::string& want, const std::string& have) {
  std::string out;
  absl::Status s = harness::git::BuildPack(
      repo, {want}, have.empty() ? std::vector<std::string>{} : std::vector<std::string>{have},
      1 << 20,
      [&](absl::string_view chunk) {
        out.append(chunk.data(), chunk.size());
        return absl::OkStatus();
      },
      nullptr);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
    return 2;
  }
  const std::string corpus = argv[1];
  harness::fuzz::SilenceLog();
  const std::string scratch = harness::fuzz::ScratchDir();

  // State dirs: one without a snapshot (the journal holds everything), one cut by snapshots.
  const std::string plain = scratch + "/plain";
  std::string lease = harness::fuzz::MakeStateDir(plain, /*snapshot=*/false);
  harness::StatePaths pp(plain);
  std::string journal = Read(pp.SegmentFile(1));
  Put(corpus + "/journal/history.wal", journal);
  // A torn tail: the last record cut in half, as a crash during an append leaves it.
  Put(corpus + "/journal/torn-tail.wal", journal.substr(0, journal.size() - 7));
  Put(corpus + "/lease_file/lease", Read(lease));
  harness::store::LeaseRecord empty;
  Put(corpus + "/lease_file/empty-record", harness::EncodeFrame(empty.SerializeAsString()));

  const std::string snap = scratch + "/snap";
  harness::fuzz::MakeStateDir(snap, /*snapshot=*/true);
  Put(corpus + "/snapshot/snapshot", Read(harness::StatePaths(snap).SnapshotFile()));

  // Packs: the empty pack, a result on top of the base (what an upload carries), everything.
  const std::string repo_dir = scratch + "/repo.git";
  std::string base = harness::fuzz::MakeBaseRepo(repo_dir);
  absl::StatusOr<harness::git::Repository> repo = harness::git::OpenRepository(repo_dir);
  if (!repo.ok()) return 1;
  std::string child = harness::fuzz::AddChildCommit(repo->get(), base);
  Put(corpus + "/pack/empty.pack", Pack(repo->get(), base, base));
  Put(corpus + "/pack/result.pack", Pack(repo->get(), child, base));
  Put(corpus + "/pack/whole.pack", Pack(repo->get(), child, ""));
  return 0;
}
