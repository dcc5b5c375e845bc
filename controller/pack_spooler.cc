// PackSpooler (see pack_spooler.h).
#include "controller/pack_spooler.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "git/git_util.h"
#include "git/pack_builder.h"

namespace harness {

absl::StatusOr<std::unique_ptr<PackSpooler>> PackSpooler::Open(RepoResults* repo,
                                                               const std::string& spool_dir,
                                                               int build_threads) {
  absl::StatusOr<int> cleared = ClearSpoolDir(spool_dir);
  if (!cleared.ok()) return cleared.status();
  if (*cleared > 0) {
    LogInfo(absl::StrCat("removed ", *cleared, " temp file(s) a crash left in ", spool_dir));
  }
  return std::unique_ptr<PackSpooler>(new PackSpooler(repo, spool_dir, build_threads));
}

PackSpooler::~PackSpooler() {
  // The pools' destructors (members, after this body) run what is queued and join.
  stopping_ = true;
}

void PackSpooler::Build(std::string want, std::vector<std::string> haves,
                        const std::atomic<bool>* cancelled,
                        std::function<void(absl::StatusOr<Pack>)> done) {
  builders_.Post([this, want = std::move(want), haves = std::move(haves), cancelled,
                  done = std::move(done)] { done(BuildNow(want, haves, cancelled)); });
}

void PackSpooler::Read(std::shared_ptr<const SpoolFile> file, uint64_t offset, size_t max,
                       std::function<void(absl::StatusOr<std::string>)> done) {
  reader_.Post([file = std::move(file), offset, max, done = std::move(done)] {
    done(file->ReadAt(offset, max));
  });
}

absl::StatusOr<PackSpooler::Pack> PackSpooler::BuildNow(const std::string& want,
                                                        const std::vector<std::string>& haves,
                                                        const std::atomic<bool>* cancelled) {
  auto stop = [&] { return stopping_.load() || cancelled->load(); };
  const absl::Status kGone = absl::CancelledError("the fetch was cancelled");
  if (stop()) return kGone;
  absl::StatusOr<git::Repository> handle = git::OpenRepository(repo_->path());
  if (!handle.ok()) return handle.status();
  Pack pack;
  if (want.empty()) {
    absl::StatusOr<std::string> base = repo_->BaseCommit();
    if (!base.ok()) return base.status();
    pack.base_commit = *base;
    pack.base_ref = repo_->base_ref();
  } else if (absl::StartsWith(want, "refs/")) {
    absl::StatusOr<std::string> tip = git::ResolveBaseBranch(handle->get(), want);
    if (!tip.ok()) return tip.status();
    pack.base_commit = *tip;
    pack.base_ref = want;
  } else {
    pack.base_commit = want;
  }
  absl::StatusOr<std::unique_ptr<SpoolFile>> file = SpoolFile::Create(spool_dir_);
  if (!file.ok()) return file.status();
  git::PackStats stats;
  absl::Status built = git::BuildPack(
      handle->get(), {pack.base_commit}, haves, git::kDefaultPackChunkBytes,
      [&](absl::string_view chunk) { return stop() ? kGone : (*file)->Append(chunk); }, &stats);
  if (!built.ok()) return built;
  pack.objects = stats.objects;
  pack.bytes = stats.bytes;
  pack.file = *std::move(file);
  return pack;
}

}  // namespace harness
