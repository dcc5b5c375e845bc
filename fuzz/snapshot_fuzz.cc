// Fuzzes recovery from a tampered snapshot (core/store.cc LoadSnapshot: frames of
// store::Snapshot, each item applied through ItemTable::Apply): any bytes as the snapshot of a
// state dir, opened as a controller opens it at start. A snapshot is written atomically, so
// recovery refuses a damaged one (saying so); it must not crash, and a second start must agree
// with the first (state_dir_fixture.h).
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
  harness::fuzz::ResetDir(state);
  harness::fuzz::WriteFileOrDie(paths.SnapshotFile(),
                                absl::string_view(reinterpret_cast<const char*>(data), size));
  (void)harness::fuzz::RecoverTwice(state, "");
  return 0;
}
