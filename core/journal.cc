// Journal segments (see journal.h).
#include "core/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/log.h"
#include "core/record_io.h"

namespace harness {

absl::StatusOr<std::unique_ptr<Journal>> Journal::Create(const StatePaths& paths,
                                                         uint64_t segment) {
  if (absl::Status s = MakeDirs(paths.JournalDir()); !s.ok()) return s;
  std::string path = paths.SegmentFile(segment);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus(errno, "cannot create journal segment", path);
  if (absl::Status s = FsyncDir(paths.JournalDir()); !s.ok()) return s;
  return std::unique_ptr<Journal>(new Journal(paths, segment, std::move(fd)));
}

void Journal::Add(const store::JournalRecord& record) {
  AppendFrame(record.SerializeAsString(), &buffer_);
}

absl::Status Journal::Flush() {
  if (buffer_.empty()) return absl::OkStatus();
  std::string path = paths_.SegmentFile(segment_);
  if (absl::Status s = WriteAll(fd_.get(), buffer_, path); !s.ok()) return s;
  segment_bytes_ += buffer_.size();
  buffer_.clear();
  if (::fdatasync(fd_.get()) != 0) return ErrnoStatus(errno, "fdatasync failed for", path);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Journal::Rotate() {
  if (absl::Status s = Flush(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Journal>> next = Create(paths_, segment_ + 1);
  if (!next.ok()) return next.status();
  fd_ = std::move((*next)->fd_);
  segment_ += 1;
  segment_bytes_ = 0;
  return segment_;
}

absl::StatusOr<std::vector<uint64_t>> ListSegments(const StatePaths& paths) {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(paths.JournalDir().c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return out;
    return ErrnoStatus(errno, "cannot list", paths.JournalDir());
  }
  while (dirent* e = ::readdir(d)) {
    if (std::optional<uint64_t> n = StatePaths::ParseSegmentName(e->d_name)) out.push_back(*n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::string> Quarantine(const StatePaths& paths, absl::string_view name,
                                       absl::string_view bytes) {
  if (absl::Status s = MakeDirs(paths.QuarantineDir()); !s.ok()) return s;
  std::string path =
      absl::StrCat(paths.QuarantineDir(), "/", name, ".", absl::ToUnixMillis(absl::Now()));
  if (absl::Status s = WriteFileAtomically(path, bytes); !s.ok()) return s;
  return path;
}

absl::StatusOr<ReplayReport> ReplayJournal(
    const StatePaths& paths, uint64_t first_segment,
    const std::function<absl::Status(const store::JournalRecord&)>& fn) {
  ReplayReport report;
  absl::StatusOr<std::vector<uint64_t>> segments = ListSegments(paths);
  if (!segments.ok()) return segments.status();
  for (size_t i = 0; i < segments->size(); ++i) {
    uint64_t seg = (*segments)[i];
    report.last_segment = std::max(report.last_segment, seg);
    std::string path = paths.SegmentFile(seg);
    if (seg < first_segment) {
      // Covered by the snapshot; a crash interrupted its deletion.
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, "cannot remove old journal segment", path);
      }
      continue;
    }
    absl::StatusOr<std::string> data = ReadFile(path);
    if (!data.ok()) return data.status();
    const bool last = i + 1 == segments->size();
    // The segment as it is to stay: every frame that was read and applied. Built only once
    // something is taken out; then the segment is replaced by it.
    std::string kept;
    bool repaired = false;
    size_t kept_from = 0;  // start of the frames not yet copied to `kept`
    // Moves [from, to) of the segment aside, logs and reports `what`.
    auto set_aside = [&](size_t from, size_t to, absl::string_view label, std::string what,
                         bool error) -> absl::Status {
      absl::string_view bytes = absl::string_view(*data).substr(from, to - from);
      absl::StatusOr<std::string> q =
          Quarantine(paths, absl::StrCat("journal-", seg, "-", label, "-", from), bytes);
      if (!q.ok()) return q.status();
      kept.append(*data, kept_from, from - kept_from);
      kept_from = to;
      repaired = true;
      std::string line = absl::StrCat("journal ", path, ": ", what, " at offset ", from, ", ",
                                      bytes.size(), " bytes moved to ", *q, " and cut off");
      Log(error ? LogLevel::kError : LogLevel::kWarning, line);
      report.repairs.push_back(std::move(line));
      return absl::OkStatus();
    };
    FrameReader reader(*data);
    absl::string_view payload;
    FrameStatus st;
    while (true) {
      const size_t at = reader.offset();
      st = reader.Next(&payload);
      if (st == FrameStatus::kOk) {
        store::JournalRecord rec;
        if (!rec.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
          // A checksum that holds over bytes that are not a record: edited on purpose.
          if (absl::Status s = set_aside(at, reader.offset(), "at", "unparsable record", true);
              !s.ok()) {
            return s;
          }
          continue;
        }
        if (absl::Status s = fn(rec); !s.ok()) {
          if (!absl::IsFailedPrecondition(s)) {
            return absl::Status(s.code(), absl::StrCat("replaying ", path, " at offset ", at,
                                                       ": ", s.message()));
          }
          // It does not fit the items as rebuilt so far (what it acts on was lost to damage
          // before it, or the file was edited): kept aside, the rest goes on.
          if (absl::Status q = set_aside(at, reader.offset(), "record",
                                         absl::StrCat("record that does not apply (", s.message(),
                                                      ")"),
                                         true);
              !q.ok()) {
            return q;
          }
          continue;
        }
        ++report.records;
        continue;
      }
      if (st == FrameStatus::kEnd) break;
      if (st == FrameStatus::kCorrupt && reader.SkipCorrupt()) {
        // One damaged frame whose length still leads to a good frame: only it is lost.
        if (absl::Status s = set_aside(at, reader.offset(), "at", "corrupt record", true);
            !s.ok()) {
          return s;
        }
        continue;
      }
      // Torn (a crash during an append) or unreadable from here on: the rest is set aside.
      const bool torn = st == FrameStatus::kTorn && last;
      if (absl::Status s =
              set_aside(at, data->size(), "at",
                        torn ? "torn tail (a crash during an append)" : "corrupt record", !torn);
          !s.ok()) {
        return s;
      }
      break;
    }
    if (repaired) {
      kept.append(*data, kept_from, std::string::npos);
      if (absl::Status s = WriteFileAtomically(path, kept); !s.ok()) return s;
      report.bytes += kept.size();
    } else {
      report.bytes += reader.offset();
    }
  }
  return report;
}

}  // namespace harness
