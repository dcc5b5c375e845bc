// Durable store with group commit (see store.h).
#include "core/store.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/record_io.h"

namespace harness {
namespace {

// Removes leftover temp files of WriteFileAtomically in `dir`; one repair line each.
void RemoveTempFiles(const std::string& dir, std::vector<std::string>* repairs) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> temps;
  while (dirent* e = ::readdir(d)) {
    if (absl::string_view(e->d_name).find(kTempInfix) != absl::string_view::npos) {
      temps.push_back(absl::StrCat(dir, "/", e->d_name));
    }
  }
  ::closedir(d);
  for (const std::string& t : temps) {
    if (::unlink(t.c_str()) == 0) {
      std::string line =
          absl::StrCat("removed unfinished temp file ", t, " (a crash during a write)");
      LogWarning(line);
      repairs->push_back(std::move(line));
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& state_dir, Options options,
                                                   ItemTable* table, Recovery* recovery) {
  StatePaths paths(state_dir);
  if (absl::Status s = MakeDirs(paths.root()); !s.ok()) return s;
  auto store = std::unique_ptr<Store>(new Store(paths, options));
  absl::StatusOr<std::unique_ptr<StateLock>> lock = StateLock::Acquire(paths.LockFile());
  if (!lock.ok()) {
    return absl::Status(lock.status().code(),
                        absl::StrCat("state dir ", paths.root(), ": ", lock.status().message()));
  }
  store->lock_ = std::move(*lock);
  absl::StatusOr<std::unique_ptr<ClaimDir>> claims = ClaimDir::Open(paths);
  if (!claims.ok()) return claims.status();
  store->claims_ = std::move(*claims);

  *recovery = Recovery();
  RemoveTempFiles(paths.root(), &recovery->repairs);
  RemoveTempFiles(paths.QuarantineDir(), &recovery->repairs);

  uint64_t first_segment = 1;
  if (PathExists(paths.SnapshotFile())) {
    absl::StatusOr<std::string> data = ReadFile(paths.SnapshotFile());
    if (!data.ok()) return data.status();
    absl::string_view payload;
    store::Snapshot snap;
    if (!DecodeSingleFrame(*data, &payload) ||
        !snap.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      // Snapshots are replaced atomically, so a crash cannot tear one: this is damage.
      return absl::DataLossError(absl::StrCat(
          "snapshot ", paths.SnapshotFile(),
          " is corrupt (checksum mismatch); refusing to start rather than lose items. Move it "
          "aside to start from the journal alone"));
    }
    for (const store::ItemRecord& item : snap.items()) {
      store::JournalRecord rec;
      *rec.mutable_submitted() = item;
      if (absl::Status s = table->Apply(rec); !s.ok()) {
        return absl::DataLossError(
            absl::StrCat("snapshot ", paths.SnapshotFile(), ": ", s.message()));
      }
    }
    recovery->snapshot_items = static_cast<uint64_t>(snap.items_size());
    first_segment = std::max<uint64_t>(snap.first_segment(), 1);
    recovery->max_token = snap.next_token() > 0 ? snap.next_token() - 1 : 0;
  }

  absl::StatusOr<ReplayReport> replay = ReplayJournal(
      paths, first_segment, [&](const store::JournalRecord& rec) { return table->Apply(rec); });
  if (!replay.ok()) return replay.status();
  recovery->journal_records = replay->records;
  for (std::string& r : replay->repairs) recovery->repairs.push_back(std::move(r));
  recovery->max_token = std::max(recovery->max_token, table->max_token());

  absl::StatusOr<std::vector<ClaimDir::Entry>> scan = store->claims_->Scan();
  if (!scan.ok()) return scan.status();
  recovery->claims = std::move(*scan);
  for (const ClaimDir::Entry& e : recovery->claims) {
    recovery->max_token = std::max(recovery->max_token, e.token);
  }
  uint64_t segment = std::max(replay->last_segment + 1, first_segment);
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Create(paths, segment);
  if (!journal.ok()) return journal.status();
  store->journal_ = std::move(*journal);
  {
    absl::MutexLock l(&store->mu_);
    store->planned_segment_ = segment;
    // The journal since the last snapshot counts towards the next one, across restarts too.
    store->bytes_since_snapshot_ = replay->bytes;
  }
  store->committer_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

Store::~Store() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (committer_.joinable()) committer_.join();
}

uint64_t Store::Append(const store::JournalRecord& record) {
  Entry e;
  AppendFrame(record.SerializeAsString(), &e.bytes);
  absl::MutexLock l(&mu_);
  e.ticket = next_ticket_++;
  bytes_since_snapshot_ += e.bytes.size();
  queue_.push_back(std::move(e));
  return queue_.back().ticket;
}

uint64_t Store::BeginSnapshot() {
  absl::MutexLock l(&mu_);
  Entry e;
  e.kind = Entry::kRotate;
  e.ticket = next_ticket_++;
  e.segment = ++planned_segment_;
  bytes_since_snapshot_ = 0;
  queue_.push_back(std::move(e));
  return planned_segment_;
}

void Store::FinishSnapshot(std::string snapshot_bytes, uint64_t first_segment) {
  absl::MutexLock l(&mu_);
  Entry e;
  e.kind = Entry::kSnapshot;
  e.ticket = next_ticket_++;
  e.segment = first_segment;
  e.bytes = std::move(snapshot_bytes);
  queue_.push_back(std::move(e));
}

uint64_t Store::bytes_since_snapshot() const {
  absl::MutexLock l(&mu_);
  return bytes_since_snapshot_;
}

void Store::Hold() {
  absl::MutexLock l(&mu_);
  ++holds_;
}

void Store::Release() {
  absl::MutexLock l(&mu_);
  --holds_;
}

uint64_t Store::rounds() const {
  absl::MutexLock l(&mu_);
  return rounds_;
}

absl::Status Store::WaitDurable(uint64_t ticket) {
  absl::MutexLock l(&mu_);
  while (durable_ < ticket && failed_.ok()) durable_cv_.Wait(&mu_);
  return durable_ >= ticket ? absl::OkStatus() : failed_;
}

void Store::WhenDurable(uint64_t ticket, std::function<void(absl::Status)> done) {
  absl::Status now;
  {
    absl::MutexLock l(&mu_);
    if (durable_ < ticket && failed_.ok()) {
      callbacks_.emplace(ticket, std::move(done));
      return;
    }
    now = durable_ >= ticket ? absl::OkStatus() : failed_;
  }
  done(now);
}

void Store::RunCallbacks(uint64_t durable, const absl::Status& status) {
  std::vector<std::function<void(absl::Status)>> ready;
  {
    absl::MutexLock l(&mu_);
    auto end = status.ok() ? callbacks_.upper_bound(durable) : callbacks_.end();
    for (auto it = callbacks_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    callbacks_.erase(callbacks_.begin(), end);
  }
  for (auto& fn : ready) fn(status);
}

absl::Status Store::CommitBatch(std::vector<Entry>& batch) {
  for (Entry& e : batch) {
    switch (e.kind) {
      case Entry::kRecord:
        journal_->AddEncoded(e.bytes);
        break;
      case Entry::kRotate: {
        if (absl::Status s = claims_->Sync(); !s.ok()) return s;
        absl::StatusOr<uint64_t> seg = journal_->Rotate();
        if (!seg.ok()) return seg.status();
        if (*seg != e.segment) {
          return absl::InternalError(
              absl::StrCat("journal rotated to segment ", *seg, ", expected ", e.segment));
        }
        break;
      }
      case Entry::kSnapshot: {
        if (absl::Status s = journal_->Flush(); !s.ok()) return s;
        if (absl::Status s = claims_->Sync(); !s.ok()) return s;
        if (absl::Status s = WriteFileAtomically(paths_.SnapshotFile(), e.bytes); !s.ok()) return s;
        absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
        if (segs.ok()) {
          for (uint64_t seg : *segs) {
            if (seg < e.segment) ::unlink(paths_.SegmentFile(seg).c_str());
          }
        }
        break;
      }
    }
  }
  // The journal's fdatasync and the folders' fsyncs at once: recovery copes with either being
  // durable without the other, and nobody is answered before all three are.
  std::vector<SyncPool::Task> tasks = claims_->SyncTasks();
  tasks.insert(tasks.begin(), [this] { return journal_->Flush(); });
  return syncs_.RunAll(std::move(tasks));
}

void Store::CommitLoop() {
  for (;;) {
    std::vector<Entry> batch;
    absl::Status failed;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](Store* s)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
                 return (!s->queue_.empty() && s->holds_ == 0) || s->stopping_;
               },
          this));
      if (queue_.empty()) return;  // stopping, and everything is committed
      if (options_.group_commit) {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
      } else {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      failed = failed_;
    }
    absl::Status status = failed.ok() ? CommitBatch(batch) : failed;
    if (!status.ok() && failed.ok()) {
      LogError(
          absl::StrCat("store failed, no further changes will be accepted: ", status.message()));
    }
    uint64_t durable = batch.back().ticket;
    {
      absl::MutexLock l(&mu_);
      ++rounds_;
      if (status.ok()) {
        durable_ = std::max(durable_, durable);
      } else if (failed_.ok()) {
        failed_ = status;
      }
    }
    durable_cv_.SignalAll();
    RunCallbacks(durable, status);
  }
}

}  // namespace harness
