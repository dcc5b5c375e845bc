// PackSpooler: the work behind a FetchBase stream, on threads of its own so that no gRPC
// callback thread waits on libgit2 or the disk. It resolves what the agent wants, builds the
// pack (git::BuildPack) into a SpoolFile under <state>/spool (the header the stream starts with
// carries the pack's size, so the pack is complete before anything is sent), and reads it back
// one chunk at a time as the stream asks. Memory per stream: one chunk, plus the packbuilder's
// own while it builds. No gRPC here: fetch_base_reactor.cc turns this into messages.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/repo_results.h"
#include "core/spool_file.h"
#include "core/worker_pool.h"

namespace harness {

class PackSpooler {
 public:
  // A built pack, ready to be read.
  struct Pack {
    std::string base_commit;  // what `want` resolved to
    std::string base_ref;     // the full ref name `want` resolved to; "" for a commit id
    uint64_t objects = 0;
    uint64_t bytes = 0;
    std::shared_ptr<const SpoolFile> file;
  };

  // `repo` outlives the spooler. Empties `spool_dir` (creating it if needed): nothing in it can
  // belong to a stream of this process yet. Packs are built by `build_threads` threads; reads
  // run on one more, so that a read never waits behind a build.
  static absl::StatusOr<std::unique_ptr<PackSpooler>> Open(RepoResults* repo,
                                                           const std::string& spool_dir,
                                                           int build_threads);
  // Builds not started yet end with CANCELLED; a running one stops at its next write (libgit2
  // cannot stop its delta search, so this can wait for that); every callback has run when it
  // returns.
  ~PackSpooler();

  // Resolves `want` ("" = the tip of the base branch, a full "refs/..." name, or a commit id)
  // and builds a pack of it minus `haves` (see git::BuildPack). Runs `done` on a build thread
  // with the pack or the error: InvalidArgument or NotFound for a bad `want`/`haves`,
  // Cancelled once `*cancelled` is true (checked before the build and at each write of it;
  // it must stay valid until `done` has run), the I/O error otherwise.
  void Build(std::string want, std::vector<std::string> haves, const std::atomic<bool>* cancelled,
             std::function<void(absl::StatusOr<Pack>)> done);

  // Reads up to `max` bytes of `file` at `offset` and runs `done` with them on the read thread.
  void Read(std::shared_ptr<const SpoolFile> file, uint64_t offset, size_t max,
            std::function<void(absl::StatusOr<std::string>)> done);

 private:
  PackSpooler(RepoResults* repo, std::string spool_dir, int build_threads)
      : repo_(repo), spool_dir_(std::move(spool_dir)), builders_(build_threads), reader_(1) {}
  absl::StatusOr<Pack> BuildNow(const std::string& want, const std::vector<std::string>& haves,
                                const std::atomic<bool>* cancelled);

  RepoResults* const repo_;
  const std::string spool_dir_;
  std::atomic<bool> stopping_{false};
  // Last: the pools join their threads first when the spooler goes.
  WorkerPool builders_;
  WorkerPool reader_;
};

}  // namespace harness
