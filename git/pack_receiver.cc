// Pack receiving: libgit2's indexer into a quarantine folder, a connectivity check, then a
// durable move into objects/pack; and the descent check (see pack_receiver.h).
//
// Why not the indexer's own connectivity check (git_indexer_options.verify): libgit2 1.5.1
// leaks the parsed object for every received object the repository already has, which a
// retried upload or an overlapping pack hits for every object.
#include "git/pack_receiver.h"

#include <fcntl.h>
#include <git2/sys/odb_backend.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"

namespace harness::git {
namespace {

// The empty pack (version 2, no objects, and the SHA-1 of those 12 bytes), which BuildPack
// sends when the receiver has everything. Storing it would only add an empty pack file.
constexpr absl::string_view kEmptyPack(
    "PACK\x00\x00\x00\x02\x00\x00\x00\x00"
    "\x02\x9d\x08\x82\x3b\xd8\xa8\xea\xb5\x10\xad\x6a\xc7\x5c\x82\x3c\xfd\x3e\xd3\x1e",
    32);

constexpr char kQuarantinePrefix[] = "harness-incoming-";

std::string LastGitMessage() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

// The fewest bytes one object takes in a pack: a 1-byte type and size, then a zlib stream of
// at least 8 bytes (2 of header, an empty final block of 2, the 4-byte checksum). A pack is a
// 12-byte header, its objects and a 20-byte checksum.
constexpr uint64_t kMinObjectBytes = 9;
constexpr uint64_t kPackFrameBytes = 12 + 20;

// The object count of a pack header ("PACK", version, count; big endian).
uint32_t HeaderObjectCount(absl::string_view head) {
  const auto* b = reinterpret_cast<const unsigned char*>(head.data());
  return (uint32_t{b[8]} << 24) | (uint32_t{b[9]} << 16) | (uint32_t{b[10]} << 8) | b[11];
}

absl::Status Corrupt() {
  return absl::InvalidArgumentError(absl::StrCat("corrupt pack: ", LastGitMessage()));
}

bool Has(git_odb* odb, const git_oid& oid) {
  return git_odb_exists_ext(odb, &oid, GIT_ODB_LOOKUP_NO_REFRESH) == 1;
}

// Every object the new objects of the pack at `index_file` name must be in the pack or in
// `repo_odb`. Objects the repository already has are taken as complete (as git does).
absl::Status CheckConnectivity(const std::string& index_file, git_odb* repo_odb) {
  git_odb* pack_raw = nullptr;
  absl::Status s = GitStatus(git_odb_new(&pack_raw), "create an object database");
  if (!s.ok()) return s;
  Odb pack_odb(pack_raw);
  git_odb_backend* backend = nullptr;
  s = GitStatus(git_odb_backend_one_pack(&backend, index_file.c_str()), "open the received pack");
  if (!s.ok()) return s;
  if (int rc = git_odb_add_backend(pack_odb.get(), backend, 1); rc < 0) {
    backend->free(backend);
    return GitStatus(rc, "open the received pack");
  }
  // A repository over the pack alone, to parse its commits, trees and tags.
  git_repository* view_raw = nullptr;
  s = GitStatus(git_repository_wrap_odb(&view_raw, pack_odb.get()), "open the received pack");
  if (!s.ok()) return s;
  Repository view(view_raw);

  std::vector<git_oid> ids;
  s = GitStatus(git_odb_foreach(
                    pack_odb.get(),
                    [](const git_oid* id, void* payload) {
                      static_cast<std::vector<git_oid>*>(payload)->push_back(*id);
                      return 0;
                    },
                    &ids),
                "list the received pack");
  if (!s.ok()) return s;

  size_t missing = 0;
  std::string example;
  auto need = [&](const git_oid& id, const char* kind, const git_object* by) {
    if (Has(pack_odb.get(), id) || Has(repo_odb, id)) return;
    if (missing++ == 0) {
      example = absl::StrCat(kind, " ", OidHex(id), ", named by ",
                             git_object_type2string(git_object_type(by)), " ",
                             OidHex(*git_object_id(by)));
    }
  };
  for (const git_oid& id : ids) {
    if (Has(repo_odb, id)) continue;
    size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    s = GitStatus(git_odb_read_header(&size, &type, pack_odb.get(), &id),
                  absl::StrCat("read object ", OidHex(id)));
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("corrupt pack: ", s.message()));
    if (type == GIT_OBJECT_BLOB) continue;
    git_object* obj = nullptr;
    if (git_object_lookup(&obj, view.get(), &id, type) < 0) return Corrupt();
    Object owned(obj);
    if (type == GIT_OBJECT_COMMIT) {
      const git_commit* c = reinterpret_cast<const git_commit*>(obj);
      need(*git_commit_tree_id(c), "tree", obj);
      for (unsigned i = 0; i < git_commit_parentcount(c); ++i) {
        need(*git_commit_parent_id(c, i), "commit", obj);
      }
    } else if (type == GIT_OBJECT_TREE) {
      const git_tree* t = reinterpret_cast<const git_tree*>(obj);
      for (size_t i = 0; i < git_tree_entrycount(t); ++i) {
        const git_tree_entry* e = git_tree_entry_byindex(t, i);
        if (git_tree_entry_filemode(e) == GIT_FILEMODE_COMMIT) continue;  // a submodule
        need(*git_tree_entry_id(e), git_object_type2string(git_tree_entry_type(e)), obj);
      }
    } else if (type == GIT_OBJECT_TAG) {
      need(*git_tag_target_id(reinterpret_cast<const git_tag*>(obj)), "object", obj);
    }
  }
  if (missing > 0) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt pack: ", missing,
                                                   " objects it needs are neither in it nor in "
                                                   "the repository (",
                                                   example, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ObjectsDir(git_repository* repo) {
  git_buf buf = GIT_BUF_INIT;
  absl::Status s = GitStatus(git_repository_item_path(&buf, repo, GIT_REPOSITORY_ITEM_OBJECTS),
                             "find the objects folder");
  if (!s.ok()) return s;
  std::string dir = buf.ptr;
  git_buf_dispose(&buf);
  if (dir.empty() || dir.back() != '/') dir += '/';
  return dir;
}

absl::Status SyncFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "open", path);
  return FsyncFd(fd.get(), path);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PackReceiver>> PackReceiver::Begin(git_repository* repo,
                                                                  uint64_t max_bytes) {
  EnsureInit();
  std::unique_ptr<PackReceiver> r(new PackReceiver(repo, max_bytes));

  git_odb* odb = nullptr;
  absl::Status s = GitStatus(git_repository_odb(&odb, repo), "open object database");
  if (!s.ok()) return s;
  r->odb_.reset(odb);

  absl::StatusOr<std::string> objects = ObjectsDir(repo);
  if (!objects.ok()) return objects.status();
  r->objects_dir_ = *std::move(objects);

  std::string tmpl = absl::StrCat(r->objects_dir_, kQuarantinePrefix, "XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus(errno, "create folder", tmpl);
  r->quarantine_dir_ = tmpl;

  git_indexer_options opts = GIT_INDEXER_OPTIONS_INIT;
  // The odb lets the indexer complete a thin pack from objects the repository has.
  s = GitStatus(git_indexer_new(&r->indexer_, r->quarantine_dir_.c_str(), 0, r->odb_.get(), &opts),
                absl::StrCat("start a pack in ", r->quarantine_dir_));
  if (!s.ok()) return s;  // the destructor removes the folder
  return r;
}

PackReceiver::~PackReceiver() { Discard(); }

void PackReceiver::Discard() {
  if (indexer_ != nullptr) {
    git_indexer_free(indexer_);
    indexer_ = nullptr;
  }
  if (!quarantine_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(quarantine_dir_, ec);
    quarantine_dir_.clear();
  }
}

absl::Status PackReceiver::Fail(absl::Status status) {
  Discard();
  failed_ = status;
  return status;
}

absl::Status PackReceiver::Append(absl::string_view chunk) {
  if (!failed_.ok()) return failed_;
  if (done_) return absl::FailedPreconditionError("pack already committed");
  if (chunk.size() > max_bytes_ - received_) {
    return Fail(absl::ResourceExhaustedError(
        absl::StrCat("pack is larger than the limit of ", max_bytes_, " bytes")));
  }
  const bool had_header = head_.size() >= 12;
  if (head_.size() < kEmptyPack.size()) {
    head_.append(chunk.data(), std::min(chunk.size(), kEmptyPack.size() - head_.size()));
  }
  if (!had_header && head_.size() >= 12) {
    // libgit2's indexer allocates 8 bytes per object the header announces before any object
    // arrives: a 24-byte upload claiming 2^31 objects asked it for 21 GB (found by
    // fuzz/pack_fuzz). A count that cannot fit in max_bytes is damage: refuse it here.
    uint64_t count = HeaderObjectCount(head_);
    uint64_t room =
        max_bytes_ > kPackFrameBytes ? (max_bytes_ - kPackFrameBytes) / kMinObjectBytes : 0;
    if (count > room) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat("corrupt pack: its header announces ", count,
                                                  " objects, more than a pack within the "
                                                  "limit of ",
                                                  max_bytes_, " bytes can hold (", room, ")")));
    }
  }
  received_ += chunk.size();
  if (chunk.empty()) return absl::OkStatus();
  if (git_indexer_append(indexer_, chunk.data(), chunk.size(), &progress_) < 0) {
    return Fail(Corrupt());
  }
  return absl::OkStatus();
}

absl::StatusOr<PackStats> PackReceiver::Commit() {
  if (!failed_.ok()) return failed_;
  if (done_) return absl::FailedPreconditionError("pack already committed");
  done_ = true;
  PackStats stats;
  stats.bytes = received_;
  if (received_ == 0 || (received_ == kEmptyPack.size() && head_ == kEmptyPack)) {
    Discard();
    return stats;
  }
  if (git_indexer_commit(indexer_, &progress_) < 0) return Fail(Corrupt());
  stats.objects = progress_.indexed_objects;
  const std::string base = absl::StrCat("pack-", git_indexer_name(indexer_));
  git_indexer_free(indexer_);
  indexer_ = nullptr;

  const std::string from = absl::StrCat(quarantine_dir_, "/", base);
  absl::Status s = CheckConnectivity(from + ".idx", odb_.get());
  if (!s.ok()) return Fail(s);

  // Durable before visible: the files, then the renames (the index last: readers find packs by
  // their index), then the folder. A pack of that name is the same content: keep the old one.
  const std::string pack_dir = objects_dir_ + "pack";
  const std::string to = absl::StrCat(pack_dir, "/", base);
  if (!PathExists(to + ".pack") || !PathExists(to + ".idx")) {
    for (const char* ext : {".pack", ".idx"}) {
      s = SyncFile(from + ext);
      if (!s.ok()) return Fail(s);
    }
    for (const char* ext : {".pack", ".idx"}) {
      if (::rename((from + ext).c_str(), (to + ext).c_str()) != 0) {
        return Fail(ErrnoStatus(errno, "move pack into", pack_dir));
      }
    }
    s = FsyncDir(pack_dir);
    if (!s.ok()) return Fail(s);
  }
  Discard();

  // Other handles notice the new pack on their own (a failed lookup refreshes); this makes
  // the objects visible to this one at once.
  s = GitStatus(git_odb_refresh(odb_.get()), "refresh the object database");
  if (!s.ok()) return s;
  return stats;
}

absl::StatusOr<int> RemoveAbandonedIncomingPacks(git_repository* repo) {
  EnsureInit();
  absl::StatusOr<std::string> objects = ObjectsDir(repo);
  if (!objects.ok()) return objects.status();
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(*objects, ec)) {
    if (!entry.path().filename().string().starts_with(kQuarantinePrefix)) continue;
    std::filesystem::remove_all(entry.path(), ec);
    if (ec) return ErrnoStatus(ec.value(), "remove", entry.path().string());
    ++removed;
  }
  if (ec) return ErrnoStatus(ec.value(), "list", *objects);
  return removed;
}

absl::Status VerifyDescends(git_repository* repo, const std::string& commit,
                            const std::string& base) {
  EnsureInit();
  absl::StatusOr<git_oid> commit_oid = ParseOid(commit);
  if (!commit_oid.ok()) return commit_oid.status();
  absl::StatusOr<git_oid> base_oid = ParseOid(base);
  if (!base_oid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("base: ", base_oid.status().message()));
  }

  // Both must be commits in this repository.
  for (const auto& [id, oid, role] : {std::tuple(&commit, &*commit_oid, "commit"),
                                      std::tuple(&base, &*base_oid, "base commit")}) {
    git_object* obj = nullptr;
    int rc = git_object_lookup(&obj, repo, oid, GIT_OBJECT_ANY);
    if (rc == GIT_ENOTFOUND) {
      git_error_clear();
      return absl::NotFoundError(absl::StrCat(role, " ", *id, " is not in the repository"));
    }
    if (rc < 0) return GitStatus(rc, absl::StrCat("look up ", role, " ", *id));
    Object owned(obj);
    if (git_object_type(obj) != GIT_OBJECT_COMMIT) {
      return absl::InvalidArgumentError(absl::StrCat(role, " ", *id, " is a ",
                                                     git_object_type2string(git_object_type(obj)),
                                                     ", not a commit"));
    }
  }

  if (git_oid_equal(&*commit_oid, &*base_oid)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no change: commit ", commit, " is the base commit itself"));
  }
  int rc = git_graph_descendant_of(repo, &*commit_oid, &*base_oid);
  if (rc < 0) {
    return GitStatus(rc, absl::StrCat("check that ", commit, " descends from ", base));
  }
  if (rc == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("commit ", commit, " does not descend from base commit ", base));
  }
  return absl::OkStatus();
}

}  // namespace harness::git
