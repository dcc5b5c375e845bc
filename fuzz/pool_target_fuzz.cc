// Fuzzes the reader of <state>/pool.target (core/pool_target.h), the pool size a restarted
// controller keeps from the last `harnessctl scale`: any bytes as the file. The target it
// chooses is never negative, and is the configured value unless the file was written for it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "core/pool_target.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  harness::fuzz::MemFile file(absl::string_view(reinterpret_cast<const char*>(data), size));
  for (int configured : {0, 3}) {
    auto choice = harness::LoadPoolTarget(file.path(), configured);
    if (!choice.ok()) continue;
    if (choice->target < 0 || choice->why.empty()) std::abort();
  }
  return 0;
}
