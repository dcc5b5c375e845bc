// SpoolFile: a temp file without a name, for data too large to hold in memory that lives only
// as long as one request (the pack a FetchBase stream sends). It is created in a folder and has
// no name there (O_TMPFILE, or a name unlinked at once where the file system lacks it), so its
// space returns to the file system when the last holder closes it, whatever ends the request or
// the process. ClearSpoolDir removes what the fallback can leave: a name, if the process died
// between creating and unlinking it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/file_util.h"

namespace harness {

class SpoolFile {
 public:
  // A new, empty file in `dir` (which must exist).
  static absl::StatusOr<std::unique_ptr<SpoolFile>> Create(const std::string& dir);

  // Appends `data` (one writer at a time; not with reads in flight).
  absl::Status Append(absl::string_view data);
  // Bytes appended so far.
  uint64_t size() const { return size_; }
  // Up to `max` bytes from `offset` (fewer at the end, none past it). Safe from any number of
  // threads once the appends are done.
  absl::StatusOr<std::string> ReadAt(uint64_t offset, size_t max) const;

 private:
  SpoolFile(UniqueFd fd, std::string dir) : fd_(std::move(fd)), dir_(std::move(dir)) {}
  UniqueFd fd_;
  std::string dir_;  // for messages
  uint64_t size_ = 0;
};

// Creates `dir` if missing and removes every entry in it (names the fallback of Create left
// behind when a process died between creating and unlinking them). Call it only while no
// SpoolFile of `dir` is being created (at start-up). Returns how many entries were removed.
absl::StatusOr<int> ClearSpoolDir(const std::string& dir);

}  // namespace harness
