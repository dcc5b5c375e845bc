// The output of one run of a work source (config `queue.sources`, docs/SOURCES.md): a JSON
// array whose elements are each read as either
//   * a harness item, in the format of `harnessctl submit --file` (item_file.h), or
//   * a Beads issue as `bd ready --json` (or `bd list --json`) prints it: id, title,
//     description, priority 0-4 (0 most urgent), status, labels (a list); other fields of bd
//     (issue_type, created_at, assignee...) are ignored.
// An element with a `description`, `status` or `issue_type` field is a bd issue (harness's
// format has none of these fields); any other is a harness item.
//
// A bd issue becomes: id -> id (refused if it is not a valid harness item id), title -> title,
// description -> prompt (the title when the description is empty or absent), priority p ->
// 4 - p (bd's 0 runs first; absent: bd's default 2), each label L -> the label L with an empty
// value. Issues whose status is set and is neither `open` nor `in_progress` are skipped.
// Every item gets the label `source` = the source's name (replacing one it carries).
//
// Unlike an item file, one bad element does not refuse the run: it is refused alone (with a
// message naming it) and the others are read. Not here: whether an item is already in the queue.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/v1/types.pb.h"

namespace harness {

// The label naming the source an item came from.
inline constexpr char kSourceLabel[] = "source";

struct SourceOutput {
  std::vector<v1::ItemSpec> items;   // each with an id and the source label
  std::vector<std::string> refused;  // one message per refused element, naming it
  std::vector<std::string> skipped;  // ids of bd issues skipped for their status
};

// Reads a run's standard output. Empty output and `null` are an empty list. The run as a whole
// is refused (InvalidArgument, naming the source and the place) when the text is not JSON or
// YAML or is not a list. Messages start with `work source NAME:LINE: item #N ("id"): `.
absl::StatusOr<SourceOutput> ParseSourceOutput(absl::string_view text,
                                               absl::string_view source_name);

// bd's priority (0 most urgent .. 4 backlog) as harness's (higher runs first): 4 - p.
int64_t PriorityFromBd(int64_t bd_priority);

}  // namespace harness
