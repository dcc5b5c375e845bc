// Fuzzes the config file parser (config/config.h, LoadConfigFile): any bytes as harness.yaml.
// A config that loads passes ValidateConfig, and DescribeConfig's document loads back to the
// same Config (the contract of DescribeConfig).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "config/config.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness::fuzz::SilenceLog();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  harness::fuzz::MemFile file(absl::string_view(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<harness::Config> config = harness::LoadConfigFile(file.path());
  if (!config.ok()) return 0;
  if (!harness::ValidateConfig(*config).ok()) std::abort();
  std::string described = harness::DescribeConfig(*config);
  harness::fuzz::MemFile again_file(described);
  absl::StatusOr<harness::Config> again = harness::LoadConfigFile(again_file.path());
  if (!again.ok()) {
    std::fprintf(stderr, "DescribeConfig's output does not load: %s\n%s\n",
                 std::string(again.status().message()).c_str(), described.c_str());
    std::abort();
  }
  if (!(*again == *config)) {
    std::fprintf(stderr, "DescribeConfig's output loads to another config:\n%s\n",
                 described.c_str());
    std::abort();
  }
  return 0;
}
