// Pack building with libgit2's packbuilder (see pack_builder.h).
#include "git/pack_builder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "git/git_util.h"

namespace harness::git {
namespace {

// Collects the packbuilder's output into chunks of at most `limit` bytes for the sink.
struct ChunkWriter {
  size_t limit;
  const std::function<absl::Status(absl::string_view)>* sink;
  std::string buffer;
  uint64_t total = 0;
  absl::Status status;

  bool Flush() {
    if (buffer.empty()) return true;
    status = (*sink)(buffer);
    buffer.clear();
    return status.ok();
  }

  // Returns false (stop) once the sink has failed.
  bool Write(const char* data, size_t size) {
    total += size;
    while (size > 0) {
      size_t n = std::min(size, limit - buffer.size());
      buffer.append(data, n);
      data += n;
      size -= n;
      if (buffer.size() == limit && !Flush()) return false;
    }
    return true;
  }

  static int Callback(void* data, size_t size, void* payload) {
    auto* self = static_cast<ChunkWriter*>(payload);
    return self->Write(static_cast<const char*>(data), size) ? 0 : GIT_EUSER;
  }
};

}  // namespace

absl::Status BuildPack(git_repository* repo, const std::vector<std::string>& wants,
                       const std::vector<std::string>& haves, size_t chunk_bytes,
                       const std::function<absl::Status(absl::string_view chunk)>& sink,
                       PackStats* stats) {
  EnsureInit();
  if (wants.empty()) return absl::InvalidArgumentError("a pack needs at least one wanted commit");
  if (chunk_bytes == 0) return absl::InvalidArgumentError("chunk size must be positive");

  git_revwalk* walk_raw = nullptr;
  absl::Status s = GitStatus(git_revwalk_new(&walk_raw, repo), "create revision walk");
  if (!s.ok()) return s;
  Revwalk walk(walk_raw);

  for (const std::string& want : wants) {
    absl::StatusOr<git_oid> oid = ParseOid(want);
    if (!oid.ok())
      return absl::InvalidArgumentError(absl::StrCat("want: ", oid.status().message()));
    git_object* obj = nullptr;
    int rc = git_object_lookup(&obj, repo, &*oid, GIT_OBJECT_ANY);
    if (rc == GIT_ENOTFOUND) {
      return absl::NotFoundError(absl::StrCat("wanted commit ", want, " is not in the repository"));
    }
    if (rc < 0) return GitStatus(rc, absl::StrCat("look up wanted commit ", want));
    Object owned(obj);
    if (git_object_type(obj) != GIT_OBJECT_COMMIT) {
      return absl::InvalidArgumentError(absl::StrCat("wanted object ", want, " is a ",
                                                     git_object_type2string(git_object_type(obj)),
                                                     ", not a commit"));
    }
    s = GitStatus(git_revwalk_push(walk.get(), &*oid), absl::StrCat("walk from ", want));
    if (!s.ok()) return s;
  }

  for (const std::string& have : haves) {
    absl::StatusOr<git_oid> oid = ParseOid(have);
    if (!oid.ok())
      return absl::InvalidArgumentError(absl::StrCat("have: ", oid.status().message()));
    // Only commits we know can be hidden; anything else the other side has is of no use here.
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, repo, &*oid, GIT_OBJECT_COMMIT) < 0) {
      git_error_clear();
      continue;
    }
    Object owned(obj);
    s = GitStatus(git_revwalk_hide(walk.get(), &*oid), absl::StrCat("hide ", have));
    if (!s.ok()) return s;
  }

  git_packbuilder* pb_raw = nullptr;
  s = GitStatus(git_packbuilder_new(&pb_raw, repo), "create packbuilder");
  if (!s.ok()) return s;
  Packbuilder pb(pb_raw);
  // Delta search is most of a first pack's time; use every core (0 = as many as there are).
  git_packbuilder_set_threads(pb.get(), 0);

  // Every commit the walk yields, with its tree, minus the trees of the hidden commits.
  s = GitStatus(git_packbuilder_insert_walk(pb.get(), walk.get()), "collect objects for the pack");
  if (!s.ok()) return s;

  ChunkWriter writer{chunk_bytes, &sink, {}, 0, absl::OkStatus()};
  writer.buffer.reserve(std::min<size_t>(chunk_bytes, 4 << 20));
  int rc = git_packbuilder_foreach(pb.get(), &ChunkWriter::Callback, &writer);
  if (!writer.status.ok()) return writer.status;
  s = GitStatus(rc, "write pack");
  if (!s.ok()) return s;
  if (!writer.Flush()) return writer.status;

  if (stats != nullptr) {
    stats->objects = git_packbuilder_object_count(pb.get());
    stats->bytes = writer.total;
  }
  return absl::OkStatus();
}

}  // namespace harness::git
