// Names the calling thread (what `top -H`, `ps -L`, perf and gdb show), so that an operator can
// tell the committer from the fsync workers and the lander. Linux keeps at most 15 characters;
// longer names are cut.
#pragma once

#include "absl/strings/string_view.h"

namespace harness {

void NameThisThread(absl::string_view name);

}  // namespace harness
