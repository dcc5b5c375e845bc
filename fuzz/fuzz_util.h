// Shared pieces of the libFuzzer targets (docs/FUZZING.md): a scratch folder on tmpfs for the
// targets whose parser reads files, an in-memory file for the ones that take a path, and a
// quiet log. Not a parser of anything: every target calls the real code of harness.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace harness::fuzz {

// A folder of this process (under $HARNESS_FUZZ_SCRATCH if set, else /dev/shm when it exists,
// else $TMPDIR or /tmp), made on first use and removed at exit (not after a crash: hence
// scripts/fuzz.sh gives each run a folder of its own and removes it). Targets put their state
// dirs and repositories inside it.
const std::string& ScratchDir();

// Removes `path` and everything under it; creates it again empty.
void ResetDir(const std::string& path);

// Writes `content` to `path` (a plain write, no fsync: tmpfs, and the parsers under test read
// back what a crash or a person left, which is any bytes at all). Aborts on failure: the
// target cannot go on without its input.
void WriteFileOrDie(const std::string& path, absl::string_view content);

// Sends harness's log lines nowhere: a recovery that repairs logs every repair, which would
// drown libFuzzer's own output. Call from LLVMFuzzerInitialize.
void SilenceLog();

// A file that lives in memory (memfd) for parsers that take a path; path() is
// /proc/self/fd/N. Closed when destroyed.
class MemFile {
 public:
  explicit MemFile(absl::string_view content);
  ~MemFile();
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace harness::fuzz
