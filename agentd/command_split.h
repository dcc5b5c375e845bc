// Turning `agentd --command CMD` into an argv. Two forms:
//   * words, split as a POSIX shell splits them: blanks separate words; '...' keeps everything
//     literally; "..." keeps everything but lets a backslash escape " \ $ ` and newline; a
//     backslash outside quotes keeps the next character (backslash-newline joins lines).
//     Nothing is ever expanded: no variables, globs, ~, $(...) or redirections. The result is
//     an argv, never a shell script.
//   * a JSON array of strings, when the value starts with '[' (leading blanks ignored):
//     `["claude", "-p", "{prompt}"]`.
// Placeholders such as {prompt} pass through untouched; CommandRunner substitutes them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace harness::agentd {

// The argv, or InvalidArgument saying what is wrong and where (an unbalanced quote, a trailing
// backslash, malformed JSON, an empty command).
absl::StatusOr<std::vector<std::string>> SplitCommand(absl::string_view command);

// Shell-like words only (the first form above), without the JSON detection.
absl::StatusOr<std::vector<std::string>> SplitShellWords(absl::string_view text);

// The JSON form only: a JSON array of strings.
absl::StatusOr<std::vector<std::string>> ParseJsonStringArray(absl::string_view json);

}  // namespace harness::agentd
