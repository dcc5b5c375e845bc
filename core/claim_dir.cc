// Claims on disk (see claim_dir.h).
#include "core/claim_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/container/flat_hash_set.h"
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

// Slots beyond this many are opened per write instead of holding a descriptor each: a busy
// controller holds about one slot per agent working at once.
constexpr size_t kMaxOpenSlots = 256;

ClaimDir::~ClaimDir() {
  std::vector<Slot> slots;
  {
    absl::MutexLock l(&slot_mu_);
    slots.swap(slots_);
  }
  for (const Slot& slot : slots) {
    struct stat st;
    if (::fstatat(leases_fd_.get(), slot.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_nlink <= 1) {
      ::unlinkat(leases_fd_.get(), slot.name.c_str(), 0);
    }
    if (slot.fd >= 0) ::close(slot.fd);
  }
}

absl::StatusOr<std::pair<size_t, ClaimDir::Slot>> ClaimDir::TakeSlot() {
  uint64_t n;
  {
    absl::MutexLock l(&slot_mu_);
    if (!free_.empty()) {
      size_t index = free_.back();
      free_.pop_back();
      return std::make_pair(index, slots_[index]);
    }
    n = next_slot_name_++;
  }
  // A new slot. O_EXCL: never take over a file of an earlier run (a claim may link to it).
  Slot slot;
  int fd = -1;
  for (int tries = 0; tries < 1000; ++tries) {
    slot.name = StatePaths::SlotName(n);
    fd = ::openat(leases_fd_.get(), slot.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0644);
    if (fd >= 0 || errno != EEXIST) break;
    absl::MutexLock l(&slot_mu_);
    n = next_slot_name_++;
  }
  if (fd < 0) {
    return ErrnoStatus(errno, "cannot create lease record", paths_.LeasesDir() + "/" + slot.name);
  }
  leases_dirty_.store(true, std::memory_order_release);
  absl::MutexLock l(&slot_mu_);
  if (slots_.size() >= kMaxOpenSlots) {
    ::close(fd);
    fd = -1;
  }
  slot.fd = fd;
  slots_.push_back(slot);
  return std::make_pair(slots_.size() - 1, slot);
}

namespace {
// Writes `content` over the start of the file; cuts what follows it if the file held `old_size`
// bytes, more than `content`.
bool WriteInPlace(int fd, absl::string_view content, size_t old_size) {
  if (::pwrite(fd, content.data(), content.size(), 0) != static_cast<ssize_t>(content.size())) {
    return false;
  }
  return content.size() >= old_size || ::ftruncate(fd, static_cast<off_t>(content.size())) == 0;
}
}  // namespace

bool ClaimDir::WriteSlot(size_t index, const Slot& slot, absl::string_view content) {
  int fd = slot.fd;
  if (fd < 0) fd = ::openat(leases_fd_.get(), slot.name.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && WriteInPlace(fd, content, slot.size);
  int err = errno;
  if (slot.fd < 0 && fd >= 0) ::close(fd);
  absl::MutexLock l(&slot_mu_);
  // A failed write may have changed the file's size: truncate on the next one.
  slots_[index].size = ok ? content.size() : std::max(slot.size, content.size());
  errno = err;
  return ok;
}

void ClaimDir::FreeSlot(size_t index) {
  absl::MutexLock l(&slot_mu_);
  free_.push_back(index);
}

void ClaimDir::Unheld(absl::string_view item_id, std::optional<uint64_t> token) {
  absl::MutexLock l(&slot_mu_);
  if (token.has_value()) {
    // Absent: a claim of an earlier run, or another process's.
    if (auto it = held_.find(std::make_pair(std::string(item_id), *token)); it != held_.end()) {
      free_.push_back(it->second);
      held_.erase(it);
    }
    return;
  }
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->first.first == item_id) {
      free_.push_back(it->second);
      held_.erase(it++);
    } else {
      ++it;
    }
  }
}

absl::Status ClaimDir::Claim(const store::LeaseRecord& lease) {
  if (absl::Status s = ValidateItemId(lease.item_id()); !s.ok()) return s;
  std::string content = EncodeLeaseRecord(lease);
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::pair<size_t, Slot>> taken = TakeSlot();
    if (!taken.ok()) return taken.status();
    auto& [index, slot] = *taken;
    if (!WriteSlot(index, slot, content)) {
      int err = errno;
      FreeSlot(index);
      return ErrnoStatus(err, "cannot write lease record", paths_.LeasesDir() + "/" + slot.name);
    }
    if (::linkat(leases_fd_.get(), slot.name.c_str(), claims_fd_.get(), lease.item_id().c_str(),
                 0) == 0) {
      claims_dirty_.store(true, std::memory_order_release);
      absl::MutexLock l(&slot_mu_);
      held_[std::make_pair(lease.item_id(), lease.token())] = index;
      return absl::OkStatus();
    }
    int err = errno;
    if (err == ENOENT && attempt == 0) continue;  // the slot's file was removed: take a new one
    FreeSlot(index);
    if (err != EEXIST) {
      return ErrnoStatus(err, "cannot link claim", paths_.ClaimFile(lease.item_id()));
    }
    std::string holder;
    if (absl::StatusOr<store::LeaseRecord> cur = Read(lease.item_id()); cur.ok()) {
      holder = absl::StrFormat(" by agent %s (lease token %d)", QuoteForMessage(cur->agent()),
                               cur->token());
    }
    return absl::AlreadyExistsError(
        absl::StrCat("item ", QuoteForMessage(lease.item_id()), " is already claimed", holder));
  }
}

std::vector<std::function<absl::Status()>> ClaimDir::SyncTasks() {
  std::vector<std::function<absl::Status()>> tasks;
  auto task = [](std::atomic<bool>* dirty, int fd, std::string path) {
    return [dirty, fd, path = std::move(path)]() -> absl::Status {
      absl::Status s = FsyncFd(fd, path);
      if (!s.ok()) dirty->store(true);
      return s;
    };
  };
  if (leases_dirty_.exchange(false, std::memory_order_acq_rel)) {
    tasks.push_back(task(&leases_dirty_, leases_fd_.get(), paths_.LeasesDir()));
  }
  if (claims_dirty_.exchange(false, std::memory_order_acq_rel)) {
    tasks.push_back(task(&claims_dirty_, claims_fd_.get(), paths_.ClaimsDir()));
  }
  return tasks;
}

absl::Status ClaimDir::Sync() {
  absl::Status result;
  for (std::function<absl::Status()>& task : SyncTasks()) result.Update(task());
  return result;
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

absl::Status ClaimDir::Unlink(absl::string_view item_id, std::optional<uint64_t> token) {
  std::string item(item_id);
  if (::unlinkat(claims_fd_.get(), item.c_str(), 0) != 0) {
    return ErrnoStatus(errno, "cannot remove claim", paths_.ClaimFile(item_id));
  }
  claims_dirty_.store(true, std::memory_order_release);
  Unheld(item_id, token);
  return absl::OkStatus();
}

absl::Status ClaimDir::Release(absl::string_view item_id, uint64_t token) {
  if (absl::Status s = ValidateItemId(item_id); !s.ok()) return s;
  return WithRemovalLock([&]() -> absl::Status {
    absl::StatusOr<store::LeaseRecord> cur = Read(item_id);
    if (absl::IsNotFound(cur.status())) {
      return absl::NotFoundError(
          absl::StrCat("item ", QuoteForMessage(item_id), " is not claimed"));
    }
    if (!cur.ok() && !absl::IsDataLoss(cur.status())) return cur.status();
    if (!cur.ok() || cur->item_id() != item_id || cur->token() != token) {
      std::string holder = cur.ok() ? absl::StrCat("it is held with lease token ", cur->token())
                                    : "its lease record is unreadable";
      return absl::FailedPreconditionError(absl::StrCat("lease token ", token, " for item ",
                                                        QuoteForMessage(item_id),
                                                        " is not the current claim (", holder,
                                                        ")"));
    }
    return Unlink(item_id, token);
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
    // A torn record's lease is unknown here: its slot stays taken until this ClaimDir closes.
    std::optional<uint64_t> token = cur.ok() ? std::optional<uint64_t>(cur->token()) : 0;
    if (absl::Status s = Unlink(item_id, token); !s.ok()) return s;
    if (cur.ok()) return *cur;
    store::LeaseRecord broken;
    broken.set_item_id(std::string(item_id));
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
  for (const std::string& name : *claims) {
    Entry e;
    e.item_id = name;
    absl::StatusOr<store::LeaseRecord> lease = Read(name);
    // A slot's record that never reached the disk leaves the claim torn, or naming the lease
    // its slot held before (perhaps of another item).
    if (lease.ok() && lease->item_id() == name) {
      e.token = lease->token();
      e.lease = *lease;
    } else if (!lease.ok() && !absl::IsDataLoss(lease.status())) {
      return lease.status();
    }
    out.push_back(std::move(e));
  }
  return out;
}

void ClaimDir::Drop(absl::string_view item_id, uint64_t token) {
  std::string item(item_id);
  if (::unlinkat(claims_fd_.get(), item.c_str(), 0) == 0) Unheld(item_id, token);
}

absl::Status ClaimDir::Rewrite(const store::LeaseRecord& lease) {
  if (absl::Status s = ValidateItemId(lease.item_id()); !s.ok()) return s;
  std::string content = EncodeLeaseRecord(lease);
  UniqueFd fd(::openat(claims_fd_.get(), lease.item_id().c_str(),
                       O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot open claim", paths_.ClaimFile(lease.item_id()));
  if (!WriteInPlace(fd.get(), content, SIZE_MAX)) {
    return ErrnoStatus(errno, "cannot write lease record", paths_.ClaimFile(lease.item_id()));
  }
  return absl::OkStatus();
}

absl::Status ClaimDir::RemoveUnchecked(absl::string_view item_id) {
  absl::Status s = Unlink(item_id, std::nullopt);  // nobody claims meanwhile
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
}

absl::StatusOr<int> ClaimDir::RemoveOrphanLeaseFiles() {
  absl::StatusOr<std::vector<std::string>> leases = ListDir(paths_.LeasesDir());
  if (!leases.ok()) return leases.status();
  absl::flat_hash_set<std::string> mine;
  {
    absl::MutexLock l(&slot_mu_);
    for (const Slot& slot : slots_) mine.insert(slot.name);
  }
  int removed = 0;
  for (const std::string& name : *leases) {
    if (name == ".lock" || mine.contains(name)) continue;
    struct stat st;
    if (::fstatat(leases_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_nlink <= 1 && ::unlinkat(leases_fd_.get(), name.c_str(), 0) == 0) ++removed;
  }
  if (removed > 0) leases_dirty_.store(true, std::memory_order_release);
  return removed;
}

}  // namespace harness
