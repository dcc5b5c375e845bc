// NameThisThread (see thread_name.h).
#include "core/thread_name.h"

#include <sys/prctl.h>

#include <string>

namespace harness {

void NameThisThread(absl::string_view name) {
  std::string cut(name.substr(0, 15));
  prctl(PR_SET_NAME, cut.c_str(), 0, 0, 0);
}

}  // namespace harness
