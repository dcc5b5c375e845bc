// Fuzzes recovery from a tampered or torn journal (core/journal.h, core/record_io.h, the
// JournalRecord protos and ItemTable::Apply): any bytes as the one journal segment of a state
// dir, opened as a controller opens it at start. Recovery may refuse the dir (saying so) or
// quarantine what it cannot read; it must not crash, and a second start must agree with the
// first (state_dir_fixture.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/paths.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/state_dir_fixture.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string state = harness::fuzz::ScratchDir() + "/state";
  harness::StatePaths paths(state);
  harness::fuzz::ResetDir(paths.JournalDir());
  harness::fuzz::WriteFileOrDie(paths.SegmentFile(1),
                                absl::string_view(reinterpret_cast<const char*>(data), size));
  (void)harness::fuzz::RecoverTwice(state, "");
  return 0;
}
