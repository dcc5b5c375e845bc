// CRC-32C (Castagnoli) used to detect torn or corrupt records on disk.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace harness {

uint32_t Crc32c(absl::string_view data, uint32_t crc = 0);

}  // namespace harness
