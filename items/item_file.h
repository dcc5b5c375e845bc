// Item files, as `harnessctl submit --file FILE` reads them: a JSON array or a YAML list of
// item objects (yaml-cpp reads both), turned into harness.v1 ItemSpecs and checked locally
// before anything is sent, so that a bad file is refused as a whole with one clear message naming the item
// (by its 1-based index and id), the field and the line. Not the controller's validation,
// which stays authoritative (limits of its config, ids already in the queue). The same item
// objects come from work sources (source_items.h).
//
// An item object has these fields; any other is an error:
//   id            string, optional; [A-Za-z0-9][A-Za-z0-9._-]{0,127}, a valid git ref component
//   title         string, required
//   prompt        string  } exactly one of the two; prompt_file is read as the prompt, and a
//   prompt_file   string  } relative path is relative to the folder of FILE
//   priority      integer, default 0
//   max_attempts  integer >= 1, default: the controller's (3)
//   timeout_s     number of seconds > 0, default: the controller's (`agent.item_timeout`)
//   labels        map of string to string
// A field set to null counts as absent. Strings must be strings: in YAML, quote a title like
// `2024` or `true`, which YAML would otherwise read as a number or a boolean.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/v1/types.pb.h"

namespace harness {

// The largest prompt the controller accepts (ItemSpec.prompt): 1 MiB.
inline constexpr size_t kMaxPromptBytes = 1 << 20;

// Reads and parses FILE. Errors (InvalidArgument, or the I/O error) start with the file name
// and, when known, its line: `items.yaml:7: item #2 ("fix-login"): unknown field "promt" ...`.
absl::StatusOr<std::vector<v1::ItemSpec>> LoadItemFile(const std::string& path);

// Parses the text of an item file. `name` is used in messages; prompt_file paths are relative
// to `base_dir`.
absl::StatusOr<std::vector<v1::ItemSpec>> ParseItemFile(absl::string_view text,
                                                        absl::string_view name,
                                                        const std::string& base_dir);

// Reads a prompt file: at most kMaxPromptBytes, not empty. "-" reads standard input.
absl::StatusOr<std::string> ReadPromptFile(const std::string& path);

}  // namespace harness
