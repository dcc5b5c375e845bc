// Claims on disk (see claim_dir.h).
#include "core/claim_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/ids.h"
#include "core/record_io.h"

namespace harness {

std::string EncodeLeaseRecord(const store::LeaseRecord& lease) {
  return EncodeFrame(lease.SerializeAsString());
}

absl::StatusOr<std::unique_ptr<ClaimDir>> ClaimDir::Open(const StatePaths& paths) {
  for (const std::string& dir : {paths.ClaimsDir(), paths.LeasesDir()}) {
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  }
  absl::StatusOr<UniqueFd> claims = OpenDir(paths.ClaimsDir());
  if (!claims.ok()) return claims.status();
  absl::StatusOr<UniqueFd> leases = OpenDir(paths.LeasesDir());
  if (!leases.ok()) return leases.status();
  // The lock file lives in leases/, not claims/, so claims/ holds nothing but claims.
  std::string lock_path = paths.LeasesDir() + "/.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid()) return ErrnoStatus(errno, "cannot open", lock_path);
  return std::unique_ptr<ClaimDir>(
      new ClaimDir(paths, std::move(*claims), std::move(*leases), std::move(lock)));
}

template <typename Fn>
auto ClaimDir::WithRemovalLock(Fn fn) {
  absl::MutexLock l(&removal_mu_);
  while (::flock(lock_fd_.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  auto result = fn();
  ::flock(lock_fd_.get(), LOCK_UN);
  return result;
}

absl::Status ClaimDir::Claim(const store::LeaseRecord& lease) {
  if (absl::Status s = ValidateItemId(lease.item_id()); !s.ok()) return s;
  std::string lease_name = StatePaths::LeaseName(lease.item_id(), lease.token());
  std::string content = EncodeLeaseRecord(lease);
  if (!ReuseSpare(lease_name, content)) {
    int fd = ::openat(leases_fd_.get(), lease_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                      0644);
    if (fd < 0)
      return ErrnoStatus(errno, "cannot create lease record",
                         paths_.LeaseFile(lease.item_id(), lease.token()));
    absl::Status written = WriteAll(fd, content, lease_name);
    ::close(fd);
    if (!written.ok()) {
      ::unlinkat(leases_fd_.get(), lease_name.c_str(), 0);
      return written;
    }
  }
  dirty_.store(true, std::memory_order_release);
  if (::linkat(leases_fd_.get(), lease_name.c_str(), claims_fd_.get(), lease.item_id().c_str(),
               0) != 0) {
    int err = errno;
    ::unlinkat(leases_fd_.get(), lease_name.c_str(), 0);
    if (err != EEXIST)
      return ErrnoStatus(err, "cannot link claim", paths_.ClaimFile(lease.item_id()));
    std::string holder;
    if (absl::StatusOr<store::LeaseRecord> cur = Read(lease.item_id()); cur.ok()) {
      holder = absl::StrFormat(" by agent %s (lease token %d)", QuoteForMessage(cur->agent()),
                               cur->token());
    }
    return absl::AlreadyExistsError(
        absl::StrCat("item ", QuoteForMessage(lease.item_id()), " is already claimed", holder));
  }
  return absl::OkStatus();
}

std::vector<std::function<absl::Status()>> ClaimDir::SyncTasks() {
  std::vector<std::function<absl::Status()>> tasks;
  if (!dirty_.exchange(false, std::memory_order_acq_rel)) return tasks;
  auto fsync = [this](int fd, std::string path) -> absl::Status {
    absl::Status s = FsyncFd(fd, path);
    if (!s.ok()) dirty_.store(true);
    return s;
  };
  tasks.push_back([this, fsync] { return fsync(leases_fd_.get(), paths_.LeasesDir()); });
  tasks.push_back([this, fsync] { return fsync(claims_fd_.get(), paths_.ClaimsDir()); });
  return tasks;
}

absl::Status ClaimDir::Sync() {
  if (!dirty_.exchange(false, std::memory_order_acq_rel)) return absl::OkStatus();
  absl::Status s = FsyncFd(leases_fd_.get(), paths_.LeasesDir());
  if (s.ok()) s = FsyncFd(claims_fd_.get(), paths_.ClaimsDir());
  if (!s.ok()) dirty_.store(true);
  return s;
}

absl::StatusOr<store::LeaseRecord> ClaimDir::Read(absl::string_view item_id) const {
  std::string path = paths_.ClaimFile(item_id);
  absl::StatusOr<std::string> content = ReadFile(path);
  if (!content.ok()) return content.status();
  absl::string_view payload;
  store::LeaseRecord lease;
  if (!DecodeSingleFrame(*content, &payload) ||
      !lease.ParseFromArray(payload.data(), payload.size())) {
    return absl::DataLossError(absl::StrCat("lease record ", path, " is torn or corrupt"));
  }
  return lease;
}

absl::StatusOr<bool> ClaimDir::ClaimIs(absl::string_view item_id, uint64_t token) const {
  struct stat claim_st, lease_st;
  std::string item(item_id);
  if (::fstatat(claims_fd_.get(), item.c_str(), &claim_st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus(errno, "no claim at", paths_.ClaimFile(item_id));
  }
  std::string lease_name = StatePaths::LeaseName(item_id, token);
  if (::fstatat(leases_fd_.get(), lease_name.c_str(), &lease_st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return ErrnoStatus(errno, "cannot stat", paths_.LeaseFile(item_id, token));
  }
  return claim_st.st_ino == lease_st.st_ino && claim_st.st_dev == lease_st.st_dev;
}

absl::Status ClaimDir::Release(absl::string_view item_id, uint64_t token) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  return WithRemovalLock([&]() -> absl::Status {
    absl::StatusOr<bool> is = ClaimIs(item_id, token);
    if (!is.ok()) {
      if (absl::IsNotFound(is.status())) {
        return absl::NotFoundError(
            absl::StrCat("item ", QuoteForMessage(item_id), " is not claimed"));
      }
      return is.status();
    }
    if (!*is) {
      std::string holder;
      if (absl::StatusOr<store::LeaseRecord> cur = Read(item_id); cur.ok()) {
        holder = absl::StrCat(" (it is held with lease token ", cur->token(), ")");
      }
      return absl::FailedPreconditionError(absl::StrCat("lease token ", token, " for item ",
                                                        QuoteForMessage(item_id),
                                                        " is not the current claim", holder));
    }
    std::string item(item_id);
    if (::unlinkat(claims_fd_.get(), item.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "cannot remove claim", paths_.ClaimFile(item_id));
    }
    ::unlinkat(leases_fd_.get(), StatePaths::LeaseName(item_id, token).c_str(), 0);
    return absl::OkStatus();
  });
}

absl::StatusOr<store::LeaseRecord> ClaimDir::BreakIfExpired(absl::string_view item_id,
                                                            absl::Time now) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  return WithRemovalLock([&]() -> absl::StatusOr<store::LeaseRecord> {
    absl::StatusOr<store::LeaseRecord> cur = Read(item_id);
    if (!cur.ok() && !absl::IsDataLoss(cur.status())) return cur.status();
    if (cur.ok() && absl::FromUnixMillis(cur->expires_unix_ms()) > now) {
      return absl::FailedPreconditionError(
          absl::StrFormat("item %s is claimed by agent %s (lease token %d) until %s",
                          QuoteForMessage(item_id), QuoteForMessage(cur->agent()), cur->token(),
                          absl::FormatTime(absl::FromUnixMillis(cur->expires_unix_ms()))));
    }
    std::string item(item_id);
    if (::unlinkat(claims_fd_.get(), item.c_str(), 0) != 0) {
      return ErrnoStatus(errno, "cannot remove claim", paths_.ClaimFile(item_id));
    }
    store::LeaseRecord broken;
    if (cur.ok()) {
      broken = *cur;
      ::unlinkat(leases_fd_.get(), StatePaths::LeaseName(item_id, cur->token()).c_str(), 0);
    } else {
      broken.set_item_id(item);
    }
    return broken;
  });
}

namespace {
// Names in a folder, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return ErrnoStatus(errno, "cannot list", path);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    absl::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  return names;
}
}  // namespace

absl::StatusOr<std::vector<ClaimDir::Entry>> ClaimDir::Scan() const {
  absl::StatusOr<std::vector<std::string>> claims = ListDir(paths_.ClaimsDir());
  if (!claims.ok()) return claims.status();
  std::vector<Entry> out;
  std::vector<size_t> torn;
  for (const std::string& name : *claims) {
    Entry e;
    e.item_id = name;
    absl::StatusOr<store::LeaseRecord> lease = Read(name);
    // A record is the claim's only if it names this item and the lease file of its token is
    // the claim's inode (a reused spare may still hold a record of the lease it served before).
    if (lease.ok() && lease->item_id() == name && ClaimIs(name, lease->token()).value_or(false)) {
      e.token = lease->token();
      e.lease = *lease;
    } else if (lease.ok() || absl::IsDataLoss(lease.status())) {
      torn.push_back(out.size());
    } else {
      return lease.status();
    }
    out.push_back(std::move(e));
  }
  if (!torn.empty()) {
    // Identify torn claims by inode: the lease file they link to is named <item>.<token>.
    absl::StatusOr<std::vector<std::string>> leases = ListDir(paths_.LeasesDir());
    if (!leases.ok()) return leases.status();
    for (size_t i : torn) {
      struct stat cst;
      if (::fstatat(claims_fd_.get(), out[i].item_id.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0)
        continue;
      for (const std::string& lname : *leases) {
        std::optional<StatePaths::ParsedLease> parsed = StatePaths::ParseLeaseName(lname);
        if (!parsed || parsed->item_id != out[i].item_id) continue;
        struct stat lst;
        if (::fstatat(leases_fd_.get(), lname.c_str(), &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
            lst.st_ino == cst.st_ino && lst.st_dev == cst.st_dev) {
          out[i].token = parsed->token;
          break;
        }
      }
    }
  }
  return out;
}

constexpr size_t kMaxSpares = 256;

void ClaimDir::Drop(absl::string_view item_id, uint64_t token) {
  std::string item(item_id);
  ::unlinkat(claims_fd_.get(), item.c_str(), 0);
  std::string lease_name = StatePaths::LeaseName(item_id, token);
  {
    absl::MutexLock l(&spare_mu_);
    if (spares_.size() < kMaxSpares) {
      std::string spare = absl::StrCat(".spare-", next_spare_++);
      if (::renameat2(leases_fd_.get(), lease_name.c_str(), leases_fd_.get(), spare.c_str(),
                      RENAME_NOREPLACE) == 0) {
        spares_.push_back(std::move(spare));
        return;
      }
    }
  }
  ::unlinkat(leases_fd_.get(), lease_name.c_str(), 0);
}

bool ClaimDir::ReuseSpare(const std::string& name, absl::string_view content) {
  std::string spare;
  {
    absl::MutexLock l(&spare_mu_);
    if (spares_.empty()) return false;
    spare = std::move(spares_.back());
    spares_.pop_back();
  }
  // NOREPLACE: like O_EXCL, never overwrite a lease file that exists.
  if (::renameat2(leases_fd_.get(), spare.c_str(), leases_fd_.get(), name.c_str(),
                  RENAME_NOREPLACE) != 0) {
    ::unlinkat(leases_fd_.get(), spare.c_str(), 0);  // gone (recovery) or unusable
    return false;
  }
  // Until this write reaches the disk the file may hold the record of the lease it served
  // before; Scan() checks a record against the file name, so such a claim counts as torn.
  int fd = ::openat(leases_fd_.get(), name.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && ::pwrite(fd, content.data(), content.size(), 0) ==
                           static_cast<ssize_t>(content.size()) &&
            ::ftruncate(fd, static_cast<off_t>(content.size())) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok) ::unlinkat(leases_fd_.get(), name.c_str(), 0);
  return ok;
}

absl::Status ClaimDir::RemoveUnchecked(absl::string_view item_id) {
  std::string item(item_id);
  if (::unlinkat(claims_fd_.get(), item.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus(errno, "cannot remove claim", paths_.ClaimFile(item_id));
  }
  dirty_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<int> ClaimDir::RemoveOrphanLeaseFiles() {
  absl::StatusOr<std::vector<std::string>> leases = ListDir(paths_.LeasesDir());
  if (!leases.ok()) return leases.status();
  int removed = 0;
  for (const std::string& name : *leases) {
    if (name == ".lock") continue;
    struct stat st;
    if (::fstatat(leases_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_nlink <= 1 && ::unlinkat(leases_fd_.get(), name.c_str(), 0) == 0) ++removed;
  }
  if (removed > 0) dirty_.store(true, std::memory_order_release);
  return removed;
}

}  // namespace harness
