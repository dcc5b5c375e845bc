// Durable store with group commit (see store.h).
#include "core/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/record_io.h"
#include "core/thread_name.h"

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

// Applies the items of a snapshot (one or more frames, each a store::Snapshot) to *table.
absl::Status LoadSnapshot(const StatePaths& paths, ItemTable* table, Store::Recovery* recovery,
                          uint64_t* first_segment) {
  absl::StatusOr<std::string> data = ReadFile(paths.SnapshotFile());
  if (!data.ok()) return data.status();
  // Snapshots are replaced atomically, so a crash cannot tear one: anything wrong is damage.
  auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(
        "snapshot ", paths.SnapshotFile(), " is corrupt (", what,
        "); refusing to start rather than lose items. Move it aside to start from the journal "
        "alone"));
  };
  FrameReader reader(*data);
  absl::string_view payload;
  FrameStatus st;
  int frames = 0;
  while ((st = reader.Next(&payload)) == FrameStatus::kOk) {
    store::Snapshot part;
    if (!part.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      return corrupt(absl::StrCat("frame ", frames + 1, " does not parse"));
    }
    ++frames;
    for (const store::ItemRecord& item : part.items()) {
      store::JournalRecord rec;
      *rec.mutable_submitted() = item;
      if (absl::Status s = table->Apply(rec); !s.ok()) {
        return absl::DataLossError(
            absl::StrCat("snapshot ", paths.SnapshotFile(), ": ", s.message()));
      }
    }
    recovery->snapshot_items += static_cast<uint64_t>(part.items_size());
    *first_segment = std::max<uint64_t>(*first_segment, part.first_segment());
    if (part.next_token() > 0) {
      recovery->max_token = std::max(recovery->max_token, part.next_token() - 1);
    }
  }
  if (st != FrameStatus::kEnd) return corrupt("checksum mismatch");
  if (frames == 0) return corrupt("empty");
  return absl::OkStatus();
}

}  // namespace

std::string Store::EncodeSnapshot(const store::Snapshot& header, const ItemTable& table) {
  constexpr size_t kFrameTarget = 8u << 20;  // items per frame: about this many bytes
  std::string out;
  store::Snapshot part = header;
  part.clear_items();
  size_t bytes = 0;
  table.ForEach([&](const store::ItemRecord& item) {
    if (bytes > 0 && bytes + item.ByteSizeLong() > kFrameTarget) {
      AppendFrame(part.SerializeAsString(), &out);
      part.Clear();
      bytes = 0;
    }
    *part.add_items() = item;
    bytes += item.ByteSizeLong() + 8;
  });
  AppendFrame(part.SerializeAsString(), &out);
  return out;
}

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
  if (absl::Status s = store->Load(table, recovery); !s.ok()) return s;

  uint64_t segment = recovery->next_segment;
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Create(paths, segment);
  if (!journal.ok()) return journal.status();
  store->journal_ = std::move(*journal);
  {
    absl::MutexLock l(&store->mu_);
    store->planned_segment_ = segment;
    store->durable_at_ = Position{segment, 0};
    // The journal since the last snapshot counts towards the next one, across restarts too.
    store->bytes_since_snapshot_ = recovery->journal_bytes;
  }
  store->committer_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

absl::Status Store::Load(ItemTable* table, Recovery* recovery) {
  *recovery = Recovery();
  RemoveTempFiles(paths_.root(), &recovery->repairs);
  RemoveTempFiles(paths_.QuarantineDir(), &recovery->repairs);

  uint64_t first_segment = 1;
  if (PathExists(paths_.SnapshotFile())) {
    if (absl::Status s = LoadSnapshot(paths_, table, recovery, &first_segment); !s.ok()) return s;
  }
  // A record that does not fit the items rebuilt so far (an unknown or existing item, a state it
  // cannot come from) is set aside by the replay; one of an unknown kind (a newer version's)
  // stops the start.
  absl::StatusOr<ReplayReport> replay =
      ReplayJournal(paths_, first_segment, [&](const store::JournalRecord& rec) {
        absl::Status s = table->Apply(rec);
        if (absl::IsNotFound(s) || absl::IsAlreadyExists(s) || absl::IsInvalidArgument(s)) {
          return absl::FailedPreconditionError(s.message());
        }
        return s;
      });
  if (!replay.ok()) return replay.status();
  recovery->journal_records = replay->records;
  for (std::string& r : replay->repairs) recovery->repairs.push_back(std::move(r));
  recovery->max_token = std::max(recovery->max_token, table->max_token());

  absl::StatusOr<std::vector<ClaimDir::Entry>> scan = claims_->Scan();
  if (!scan.ok()) return scan.status();
  recovery->claims = std::move(*scan);
  for (const ClaimDir::Entry& e : recovery->claims) {
    recovery->max_token = std::max(recovery->max_token, e.token);
  }
  recovery->next_segment = std::max(replay->last_segment + 1, first_segment);
  recovery->journal_bytes = replay->bytes;
  return absl::OkStatus();
}

Store::~Store() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (committer_.joinable()) committer_.join();
}

uint64_t Store::Append(const store::JournalRecord& record, std::optional<ClaimRef> unclaim) {
  Entry e;
  AppendFrame(record.SerializeAsString(), &e.bytes);
  ClaimOp drop;
  if (unclaim) {
    drop.lease.set_item_id(std::string(unclaim->item_id));
    drop.lease.set_token(unclaim->token);
    drop.remove = true;
  }
  absl::MutexLock l(&mu_);
  // Queued with the record, under one lock: the committer takes both in the same round.
  if (unclaim) claim_ops_.push_back(std::move(drop));
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

uint64_t Store::last_ticket() const {
  absl::MutexLock l(&mu_);
  return next_ticket_ - 1;
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

absl::Status Store::Claim(store::LeaseRecord lease) {
  if (absl::Status s = ValidateItemId(lease.item_id()); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  if (!serving_) return last_failure_;
  claim_ops_.push_back(ClaimOp{std::move(lease), false});
  return absl::OkStatus();
}

absl::Status Store::ApplyClaimOps(std::vector<ClaimOp>& claim_ops) {
  for (const ClaimOp& op : claim_ops) {
    if (op.remove) {
      claims_->Drop(op.lease.item_id(), op.lease.token());
    } else if (absl::Status s = claims_->Claim(op.lease); !s.ok()) {
      return s;
    }
  }
  claim_ops.clear();
  return absl::OkStatus();
}

absl::Status Store::health() const {
  absl::MutexLock l(&mu_);
  return serving_ ? absl::OkStatus() : last_failure_;
}

absl::Status Store::Unavailable(const absl::Status& cause) const {
  return absl::UnavailableError(
      absl::StrCat("state dir ", paths_.root(), " cannot take writes (", cause.message(),
                   "); the change was not made, and changes are refused until a write succeeds "
                   "again"));
}

std::optional<absl::Status> Store::LostError(uint64_t ticket) const {
  auto it = lost_.upper_bound(ticket);
  if (it == lost_.begin()) return std::nullopt;
  --it;
  if (ticket > it->second.first) return std::nullopt;
  return it->second.second;
}

absl::Status Store::WaitDurable(uint64_t ticket) {
  absl::MutexLock l(&mu_);
  for (;;) {
    if (std::optional<absl::Status> lost = LostError(ticket)) return *lost;
    if (durable_ >= ticket) return absl::OkStatus();
    durable_cv_.Wait(&mu_);
  }
}

bool Store::EarlierToAnswer(uint64_t ticket) const {
  return answering_ || (!callbacks_.empty() && callbacks_.begin()->first <= ticket);
}

void Store::WhenDurable(uint64_t ticket, std::function<void(absl::Status)> done) {
  absl::Status now;
  {
    absl::MutexLock l(&mu_);
    if (std::optional<absl::Status> lost = LostError(ticket)) {
      now = *lost;
    } else if (durable_ < ticket) {
      callbacks_.emplace(ticket, std::move(done));
      return;
    }
    // Ready now; but not ahead of a callback registered before it for this ticket or an
    // earlier one (a listener hears of an end before the caller answers about it).
    if (EarlierToAnswer(ticket)) {
      callbacks_.emplace(ticket, std::move(done));  // the committer's Answer takes it
      return;
    }
  }
  done(now);
}

void Store::Answer() {
  for (;;) {
    std::vector<std::pair<std::function<void(absl::Status)>, absl::Status>> ready;
    {
      absl::MutexLock l(&mu_);
      // Tickets are answered in order: one that is neither durable nor lost has not been
      // committed yet, and neither has any after it.
      auto it = callbacks_.begin();
      for (; it != callbacks_.end(); ++it) {
        if (std::optional<absl::Status> lost = LostError(it->first)) {
          ready.emplace_back(std::move(it->second), *lost);
        } else if (it->first <= durable_) {
          ready.emplace_back(std::move(it->second), absl::OkStatus());
        } else {
          break;
        }
      }
      callbacks_.erase(callbacks_.begin(), it);
      if (ready.empty()) {
        answering_ = false;
        return;
      }
    }
    for (auto& [fn, status] : ready) fn(status);
  }
}

absl::Status Store::CommitBatch(std::vector<Entry>& batch, std::vector<ClaimOp>& claim_ops,
                                uint64_t* durable_ticket, Position* durable_at) {
  *durable_ticket = 0;
  *durable_at = Position{journal_->segment(), journal_->segment_bytes()};
  uint64_t previous = 0;  // the ticket of the entry before the current one
  for (Entry& e : batch) {
    switch (e.kind) {
      case Entry::kRecord:
        journal_->AddEncoded(e.bytes);
        break;
      case Entry::kRotate: {
        if (absl::Status s = ApplyClaimOps(claim_ops); !s.ok()) return s;
        if (absl::Status s = claims_->Sync(); !s.ok()) return s;
        absl::StatusOr<uint64_t> seg = journal_->Rotate();
        if (!seg.ok()) return seg.status();
        if (*seg != e.segment) {
          return absl::InternalError(
              absl::StrCat("journal rotated to segment ", *seg, ", expected ", e.segment));
        }
        *durable_ticket = e.ticket;
        *durable_at = Position{*seg, 0};
        break;
      }
      case Entry::kSnapshot: {
        if (absl::Status s = journal_->Flush(); !s.ok()) return s;
        if (absl::Status s = ApplyClaimOps(claim_ops); !s.ok()) return s;
        if (absl::Status s = claims_->Sync(); !s.ok()) return s;
        *durable_ticket = previous;
        *durable_at = Position{journal_->segment(), journal_->segment_bytes()};
        if (absl::Status s = WriteFileAtomically(paths_.SnapshotFile(), e.bytes); !s.ok()) return s;
        absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
        if (segs.ok()) {
          for (uint64_t seg : *segs) {
            if (seg < e.segment) ::unlink(paths_.SegmentFile(seg).c_str());
          }
        }
        *durable_ticket = e.ticket;
        break;
      }
    }
    previous = e.ticket;
  }
  // The journal's write and fdatasync beside the claims' links and the folders' fsyncs:
  // recovery copes with either being durable without the other, and nobody is answered before
  // all of them are.
  std::vector<SyncPool::Task> tasks;
  if (claim_ops.empty()) {
    tasks = claims_->SyncTasks();
  } else {
    tasks.push_back([this, &claim_ops] {
      if (absl::Status s = ApplyClaimOps(claim_ops); !s.ok()) return s;
      return claims_->Sync();
    });
  }
  if (!batch.empty()) tasks.insert(tasks.begin(), [this] { return journal_->Flush(); });
  const absl::Time sync_start = absl::Now();
  absl::Status synced = syncs_.RunAll(std::move(tasks));
  sync_latency_.Observe(absl::Now() - sync_start);
  if (!synced.ok()) return synced;
  if (batch.empty()) return absl::OkStatus();  // claims only: no ticket of their own
  *durable_ticket = batch.back().ticket;
  *durable_at = Position{journal_->segment(), journal_->segment_bytes()};
  return absl::OkStatus();
}

void Store::CommitLoop() {
  NameThisThread("committer");
  for (;;) {
    std::vector<Entry> batch;
    std::vector<ClaimOp> claim_ops;
    absl::Status failed;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](Store* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return ((!s->queue_.empty() || !s->claim_ops_.empty()) && s->holds_ == 0) ||
                   s->stopping_;
          },
          this));
      if (queue_.empty() && claim_ops_.empty()) return;  // stopping, and everything is committed
      if (options_.group_commit) {
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
      } else if (!queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      // Every claim queued so far: one whose record is in a later batch is only made sooner.
      claim_ops.swap(claim_ops_);
      failed = failed_;
    }
    const absl::Time round_start = absl::Now();
    uint64_t durable_ticket = 0;
    Position durable_at;
    absl::Status status =
        failed.ok() ? CommitBatch(batch, claim_ops, &durable_ticket, &durable_at) : failed;
    bool newly_failed = false;
    std::function<void()> on_failure;
    {
      absl::MutexLock l(&mu_);
      ++rounds_;
      if (failed.ok()) durable_at_ = durable_at;
      durable_ = std::max(durable_, durable_ticket);
      if (!status.ok()) {
        if (failed_.ok()) {
          failed_ = Unavailable(status);
          last_failure_ = failed_;
          serving_ = false;
          newly_failed = true;
          on_failure = on_failure_;
        }
        uint64_t first = 0;
        for (const Entry& e : batch) {
          if (e.ticket > durable_ticket) {
            first = e.ticket;
            break;
          }
        }
        auto prev = lost_.empty() ? lost_.end() : std::prev(lost_.end());
        if (first == 0) {
          // Nothing of the batch was lost (it held claims only, or all of it was durable).
        } else if (prev != lost_.end() && prev->second.first + 1 == first &&
                   prev->second.second == failed_) {
          prev->second.first = batch.back().ticket;  // extends the range before
        } else {
          lost_.emplace(first, std::make_pair(batch.back().ticket, failed_));
        }
      }
      // Set with durable_ and lost_: a callback that became ready here is run by Answer below,
      // and one registered before that runs after it (WhenDurable).
      answering_ = true;
    }
    if (newly_failed) {
      LogError(absl::StrCat("store: a commit failed, refusing changes until a write succeeds: ",
                            status.message()));
    }
    durable_cv_.SignalAll();
    Answer();
    round_latency_.Observe(absl::Now() - round_start);
    if (on_failure) on_failure();
  }
}

absl::Status Store::Repair() {
  Position at;
  {
    absl::MutexLock l(&mu_);
    if (failed_.ok()) return absl::OkStatus();
    at = durable_at_;
  }
  journal_.reset();  // never written again: its pages since `at` are not to be trusted
  std::vector<std::string> repairs;
  RemoveTempFiles(paths_.root(), &repairs);  // a snapshot that was being written
  absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
  if (!segs.ok()) return segs.status();
  for (uint64_t seg : *segs) {
    if (seg <= at.segment) continue;
    if (::unlink(paths_.SegmentFile(seg).c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, "cannot remove uncommitted journal segment",
                         paths_.SegmentFile(seg));
    }
  }
  std::string path = paths_.SegmentFile(at.segment);
  if (PathExists(path)) {
    if (::truncate(path.c_str(), static_cast<off_t>(at.offset)) != 0) {
      return ErrnoStatus(errno, "cannot cut uncommitted records off", path);
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoStatus(errno, "cannot open", path);
    if (absl::Status s = FsyncFd(fd.get(), path); !s.ok()) return s;
  }
  if (absl::Status s = FsyncDir(paths_.JournalDir()); !s.ok()) return s;
  if (absl::Status s = FsyncDir(paths_.root()); !s.ok()) return s;
  return claims_->Sync();
}

absl::Status Store::Resume(const store::JournalRecord& probe) {
  uint64_t segment = 0;
  {
    absl::MutexLock l(&mu_);
    if (failed_.ok()) return absl::OkStatus();
    segment = std::max(planned_segment_, durable_at_.segment) + 1;
  }
  absl::StatusOr<std::vector<uint64_t>> segs = ListSegments(paths_);
  if (!segs.ok()) return segs.status();
  if (!segs->empty()) segment = std::max(segment, segs->back() + 1);
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Create(paths_, segment);
  if (!journal.ok()) return journal.status();
  (*journal)->Add(probe);
  if (absl::Status s = (*journal)->Flush(); !s.ok()) {
    journal->reset();
    ::unlink(paths_.SegmentFile(segment).c_str());  // a torn probe at most; recovery copes
    FsyncDir(paths_.JournalDir()).IgnoreError();
    return s;
  }
  journal_ = std::move(*journal);
  absl::MutexLock l(&mu_);
  // Claims queued before the failure belong to changes that were refused or lost: none may
  // be made now (recovery already reconciled the claims on disk with the journal).
  claim_ops_.clear();
  planned_segment_ = segment;
  durable_at_ = Position{segment, journal_->segment_bytes()};
  bytes_since_snapshot_ += journal_->segment_bytes();
  failed_ = absl::OkStatus();
  LogInfo(absl::StrCat("store: writes succeed again (journal segment ", segment, ")"));
  return absl::OkStatus();
}

void Store::Serve() {
  absl::MutexLock l(&mu_);
  serving_ = true;
  last_failure_ = absl::OkStatus();
}

}  // namespace harness
