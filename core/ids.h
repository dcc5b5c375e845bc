// Validation of every identifier that comes from input and may become a file or ref name:
// item ids (also git ref components) and agent ids. Nothing named by input touches the disk
// before passing through here.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace harness {

inline constexpr size_t kMaxItemIdLength = 128;
inline constexpr size_t kMaxAgentIdLength = 64;

// `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`, and a valid git ref component: no "..", no trailing "."
// and no trailing ".lock". InvalidArgument names the value and the rule it breaks.
absl::Status ValidateItemId(absl::string_view id);

// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`.
absl::Status ValidateAgentId(absl::string_view id);

// Quotes a value for an error message: printable ASCII as is, anything else as \xNN, and
// long values cut, so a message is always one readable line.
std::string QuoteForMessage(absl::string_view value);

}  // namespace harness
