// Fuzzes pack receiving (git/pack_receiver.h: the path of UploadResult on the controller and
// FetchBase on an agent): any bytes as the pack an agent uploads, appended in chunks to a
// PackReceiver of a repository holding a base commit, then committed. A corrupt pack must be
// refused with nothing left behind; a pack that is stored must leave the repository readable.
// libgit2 (Debian's, not instrumented) does the indexing; the coverage figures are of our code.
#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "absl/strings/string_view.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/pack_fixture.h"
#include "git/git_util.h"
#include "git/pack_receiver.h"

namespace {

std::string repo_dir;
std::set<std::string> base_objects;  // entries of objects/ and objects/pack at the start

std::set<std::string> ObjectEntries() {
  std::set<std::string> out;
  for (const char* sub : {"/objects", "/objects/pack"}) {
    for (const auto& e : std::filesystem::directory_iterator(repo_dir + sub)) {
      out.insert(e.path().string());
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  repo_dir = harness::fuzz::ScratchDir() + "/repo.git";
  std::filesystem::remove_all(repo_dir);
  harness::fuzz::MakeBaseRepo(repo_dir);
  base_objects = ObjectEntries();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<harness::git::Repository> repo = harness::git::OpenRepository(repo_dir);
  if (!repo.ok()) std::abort();
  bool stored = false;
  {
    auto receiver = harness::git::PackReceiver::Begin(repo->get(), 1 << 20);
    if (!receiver.ok()) std::abort();
    absl::string_view pack(reinterpret_cast<const char*>(data), size);
    // Three chunks or so, as a stream would bring them; the split is fixed by the size.
    size_t chunk = pack.size() / 3 + 1;
    bool appended = true;
    for (size_t at = 0; at < pack.size() && appended; at += chunk) {
      appended = (*receiver)->Append(pack.substr(at, chunk)).ok();
    }
    if (appended) {
      stored = (*receiver)->Commit().ok();
    }
  }
  if (!stored && ObjectEntries() != base_objects) {
    std::fprintf(stderr, "a refused pack left files behind in %s\n", repo_dir.c_str());
    std::abort();
  }
  if (stored) {
    // Every object of the repository reads back, the stored ones included.
    absl::StatusOr<harness::git::Repository> again = harness::git::OpenRepository(repo_dir);
    git_odb* odb = nullptr;
    if (!again.ok() || git_repository_odb(&odb, again->get()) < 0) std::abort();
    int rc = git_odb_foreach(
        odb,
        [](const git_oid* id, void* payload) {
          git_odb_object* obj = nullptr;
          if (git_odb_read(&obj, static_cast<git_odb*>(payload), id) < 0) return -1;
          git_odb_object_free(obj);
          return 0;
        },
        odb);
    git_odb_free(odb);
    if (rc < 0) {
      std::fprintf(stderr, "a stored pack left an object that does not read back\n");
      std::abort();
    }
    // A stored pack: take it away again so that every input starts from the same repository.
    for (const std::string& p : ObjectEntries()) {
      if (base_objects.count(p) == 0) std::filesystem::remove_all(p);
    }
  }
  return 0;
}
