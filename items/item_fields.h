// Reading item objects out of parsed YAML or JSON: the field rules of harness's item format
// (item_file.h lists them) and the helpers that name a value's kind and an error's place.
// Shared by item files (item_file.cc) and work source output (source_items.cc), so the two
// read items the same way; internal to items/ (callers use item_file.h or source_items.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "harness/v1/types.pb.h"

namespace harness::items {

// What a YAML node holds. JSON strings are always quoted, so they are kString; a plain YAML
// scalar is resolved as YAML 1.2's core schema does (null, booleans, numbers, else a string).
enum class Kind { kNull, kBool, kInt, kFloat, kString, kList, kObject };

Kind KindOf(const YAML::Node& n);

// "the number 5", "the string \"5\"", "a list"... for type errors.
std::string Describe(const YAML::Node& n);

// Names the place of an error: "FILE:LINE: item #N (\"id\"): ".
struct Where {
  absl::string_view file;
  int index = 0;   // 1-based
  std::string id;  // "" until known (or when it is not a valid string)

  absl::Status Error(const YAML::Mark& mark, absl::string_view message) const;
};

// A string field (UTF-8), or InvalidArgument naming the field and what it got.
absl::Status WantString(const Where& w, absl::string_view field, const YAML::Node& v,
                        std::string* out);
// An integer field within [min, max].
absl::Status WantInt(const Where& w, absl::string_view field, const YAML::Node& v, int64_t min,
                     int64_t max, int64_t* out);

// One item object in harness's item format; prompt_file paths are relative to `base_dir`.
// Sets w.id as soon as the object's id is known, so that every message names the item.
absl::StatusOr<v1::ItemSpec> ParseItemNode(Where& w, const YAML::Node& node,
                                           const std::string& base_dir);

// Every YAML document of `text` (JSON is one). JSON's escaped surrogate pairs, which yaml-cpp
// refuses, are read as the characters they encode. Errors name `name`, the line and column.
absl::StatusOr<std::vector<YAML::Node>> LoadDocuments(absl::string_view text,
                                                      absl::string_view name);

}  // namespace harness::items
