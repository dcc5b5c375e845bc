// Fuzzes the reader of a work source's output (items/source_items.h, config `queue.sources`):
// any bytes as what `bd ready --json` or another source command printed. A run that is read
// must give items the controller can take: each with a valid id, a title, a prompt within the
// limit, the source label, ids unique, and each surviving protobuf's serialization (proto3
// strings must be UTF-8).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "core/ids.h"
#include "fuzz/fuzz_util.h"
#include "items/item_file.h"
#include "items/source_items.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto out = harness::ParseSourceOutput(text, "bd");
  if (!out.ok()) return 0;
  std::set<std::string> ids;
  for (const auto& spec : out->items) {
    if (!harness::ValidateItemId(spec.id()).ok() || spec.title().empty() ||
        spec.prompt().empty() || spec.prompt().size() > harness::kMaxPromptBytes) {
      std::abort();
    }
    auto label = spec.labels().find(harness::kSourceLabel);
    if (label == spec.labels().end() || label->second != "bd") std::abort();
    if (!ids.insert(spec.id()).second) std::abort();
    harness::v1::ItemSpec again;
    if (!again.ParseFromString(spec.SerializeAsString())) std::abort();
  }
  return 0;
}
