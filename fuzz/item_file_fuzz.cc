// Fuzzes the item file parser of `harnessctl submit --file` (items/item_file.h): any bytes as
// a JSON or YAML file. Relative prompt_file paths resolve in a folder holding one prompt file,
// so the prompt_file path is exercised too. A parse that succeeds must give items the file's
// own rules allow (a title, a prompt within the limit, ids unique) that the controller can
// read (they survive protobuf's serialization and parsing).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "items/item_file.h"
#include "fuzz/fuzz_util.h"

namespace {

const std::string& BaseDir() {
  static const std::string* dir = [] {
    auto* d = new std::string(harness::fuzz::ScratchDir() + "/items");
    harness::fuzz::ResetDir(*d);
    harness::fuzz::WriteFileOrDie(*d + "/prompt.md", "Fix the login page.\n");
    return d;
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  BaseDir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto items = harness::ParseItemFile(text, "items.yaml", BaseDir());
  if (!items.ok()) return 0;
  std::set<std::string> ids;
  for (const auto& spec : *items) {
    if (spec.title().empty() || spec.prompt().empty() ||
        spec.prompt().size() > harness::kMaxPromptBytes) {
      std::abort();
    }
    if (!spec.id().empty() && !ids.insert(spec.id()).second) std::abort();
    // What harnessctl sends, the controller reads back (proto3 strings must be UTF-8).
    harness::v1::ItemSpec again;
    if (!again.ParseFromString(spec.SerializeAsString())) std::abort();
  }
  return 0;
}
