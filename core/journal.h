// Journal: the append-only log of item transitions, in numbered segments under journal/.
//
// Writing: records are framed (record_io.h) and buffered by Add(); Flush() writes what is
// buffered and fdatasyncs it, so one fsync covers every record added since the last one (group
// commit is the Store's policy; the journal just makes it possible). A new segment is begun on
// every open, so a torn tail left by a crash is never appended to.
//
// Reading: ReplayJournal() reads segments in order, repairs a torn tail of the last segment (the
// tail is copied to quarantine/ and cut off, with a log line) and quarantines the rest of any
// segment with a corrupt record, so nothing is silently dropped.
//
// Not thread-safe: the Store serializes access.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "core/records.pb.h"

namespace harness {

class Journal {
 public:
  // Creates segment `segment` (which must not exist) and makes its name durable.
  static absl::StatusOr<std::unique_ptr<Journal>> Create(const StatePaths& paths, uint64_t segment);

  // Buffers a framed record; nothing reaches the file before Flush().
  void Add(const store::JournalRecord& record);
  void AddEncoded(absl::string_view framed) { buffer_.append(framed.data(), framed.size()); }
  bool HasBuffered() const { return !buffer_.empty(); }

  // Writes the buffer and fdatasyncs. On failure the journal is unusable (whether the data
  // reached the disk is unknown): the Store drops it, cuts the segment back to its last durable
  // length and starts a new segment (Store::Repair, Store::Resume).
  absl::Status Flush();

  // Flushes, then starts segment segment()+1. Returns the new segment number.
  absl::StatusOr<uint64_t> Rotate();

  uint64_t segment() const { return segment_; }
  uint64_t segment_bytes() const { return segment_bytes_; }

 private:
  Journal(StatePaths paths, uint64_t segment, UniqueFd fd)
      : paths_(std::move(paths)), segment_(segment), fd_(std::move(fd)) {}

  StatePaths paths_;
  uint64_t segment_;
  UniqueFd fd_;
  std::string buffer_;
  uint64_t segment_bytes_ = 0;
};

// What replay found and did, beyond the records themselves.
struct ReplayReport {
  uint64_t records = 0;
  uint64_t last_segment = 0;         // highest segment seen (0 if none)
  uint64_t bytes = 0;                // bytes of the segments replayed (after repairs)
  std::vector<std::string> repairs;  // one human line per repair or quarantine
};

// Segment numbers present in journal/, ascending.
absl::StatusOr<std::vector<uint64_t>> ListSegments(const StatePaths& paths);

// Calls fn for every record of segments >= first_segment, in order. Segments below
// first_segment (already covered by a snapshot) are deleted. What cannot be read is copied to
// quarantine/, cut out of its segment (the segment is replaced without it) and reported: a
// torn tail; a corrupt frame whose length still leads to a good frame (only that frame); else
// the rest of the segment from the damage on. A record fn refuses with FailedPrecondition (it
// does not fit the state rebuilt so far, e.g. its item was lost to damage before it) is set
// aside the same way and replay goes on; any other error of fn aborts the replay.
absl::StatusOr<ReplayReport> ReplayJournal(
    const StatePaths& paths, uint64_t first_segment,
    const std::function<absl::Status(const store::JournalRecord&)>& fn);

// Copies bytes into quarantine/<name>.<unix-ms> and makes it durable; returns the path.
absl::StatusOr<std::string> Quarantine(const StatePaths& paths, absl::string_view name,
                                       absl::string_view bytes);

}  // namespace harness
