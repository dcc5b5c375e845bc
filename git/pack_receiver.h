// The receiving side of the git transport between the controller and remote agents: takes a git
// pack in chunks (from FetchBase on an agent, from UploadResult on the controller), indexes it,
// checks it and moves it into the repository's object database, and checks that a received
// commit is a proper result on top of its base. A pack is stored whole or not at all: a refused,
// corrupt or abandoned pack leaves no object and no file behind.
//
// Not here: refs (the caller sets them once a pack is in) and the RPCs.
#pragma once

#include <git2.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "git/git_util.h"
#include "git/pack_builder.h"

namespace harness::git {

// One incoming pack. Not thread-safe; `repo` must outlive the receiver. Several receivers may
// work on one repository at once (each with its own repository handle if on other threads).
//
// How: the data is indexed as it arrives (libgit2's git_indexer) into a quarantine folder,
// objects/harness-incoming-XXXXXX, never into memory. Commit checks that every object the pack's
// new objects name is in the pack or already in the repository, fsyncs the pack and its index,
// and only then renames them into objects/pack, so other readers never see a partial or
// unchecked pack, and a stored commit is durable and complete.
class PackReceiver {
 public:
  // Starts a pack for `repo` (a work tree, linked worktree or bare repository; the objects go to
  // the common object database). A pack longer than `max_bytes` is refused at Append.
  static absl::StatusOr<std::unique_ptr<PackReceiver>> Begin(git_repository* repo,
                                                             uint64_t max_bytes);

  // Discards the data (and the quarantine folder) unless Commit succeeded.
  ~PackReceiver();
  PackReceiver(const PackReceiver&) = delete;
  PackReceiver& operator=(const PackReceiver&) = delete;

  // Adds the next chunk. ResourceExhausted "pack is larger than the limit of N bytes" when the
  // total passes max_bytes; InvalidArgument "corrupt pack: ..." when the data is already seen to
  // be broken. After any error the partial pack is discarded and every later call fails with
  // the same status.
  absl::Status Append(absl::string_view chunk);

  // Finishes the pack and makes its objects part of the repository (visible to every handle of
  // it; this one's object database is refreshed). A corrupt or truncated pack, or one whose
  // objects name objects that neither it nor the repository has, gives InvalidArgument
  // "corrupt pack: ..." and leaves the repository as it was. With no data appended at all, or
  // the empty pack BuildPack sends when there is nothing to send, it stores nothing and returns
  // 0 objects. Storing a pack the repository already has (a retried upload) is fine.
  // Call at most once.
  absl::StatusOr<PackStats> Commit();

  // Bytes appended so far.
  uint64_t received_bytes() const { return received_; }

 private:
  PackReceiver(git_repository* repo, uint64_t max_bytes) : repo_(repo), max_bytes_(max_bytes) {}
  // Frees the indexer, removes the quarantine folder, and makes `status` the answer to every
  // later call.
  absl::Status Fail(absl::Status status);
  void Discard();

  git_repository* repo_;
  uint64_t max_bytes_;
  Odb odb_;
  std::string objects_dir_;     // ".../objects/", with the slash
  std::string quarantine_dir_;  // objects/harness-incoming-XXXXXX; "" once removed
  git_indexer* indexer_ = nullptr;
  git_indexer_progress progress_{};
  uint64_t received_ = 0;
  std::string head_;  // the first bytes, to recognise the empty pack
  absl::Status failed_;
  bool done_ = false;
};

// Removes the quarantine folders (objects/harness-incoming-*) that receivers of a crashed
// process left behind; returns how many. Call at start, before any PackReceiver of this
// repository exists in any process.
absl::StatusOr<int> RemoveAbandonedIncomingPacks(git_repository* repo);

// Checks that `commit` is a proper result on top of `base`: both ids are well formed, `commit`
// exists in `repo` and is a commit, `base` exists, and `commit` descends from `base`.
// Errors: InvalidArgument for a malformed id, a non-commit object, or a commit that does not
// descend from base; NotFound for a commit or base missing from `repo`; FailedPrecondition
// "no change: ..." when commit == base.
absl::Status VerifyDescends(git_repository* repo, const std::string& commit,
                            const std::string& base);

}  // namespace harness::git
