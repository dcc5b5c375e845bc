// Reading a work source's output (see source_items.h).
#include "items/source_items.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"
#include "items/item_fields.h"

namespace harness {
namespace {

using items::Describe;
using items::Kind;
using items::KindOf;
using items::Where;

constexpr int64_t kBdDefaultPriority = 2;

bool IsBdIssue(const YAML::Node& node) {
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) continue;
    const std::string& k = kv.first.Scalar();
    if (k == "description" || k == "status" || k == "issue_type") return true;
  }
  return false;
}

// The value of field `name` of an object, or an undefined node.
YAML::Node Field(const YAML::Node& node, absl::string_view name) {
  for (const auto& kv : node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == name) return kv.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

bool Present(const YAML::Node& v) { return v.IsDefined() && KindOf(v) != Kind::kNull; }

// A bd issue as an item; `skip` is set (and no item returned) for a status that is not to run.
absl::StatusOr<v1::ItemSpec> ParseBdIssue(Where& w, const YAML::Node& node, bool* skip) {
  v1::ItemSpec spec;
  YAML::Node id = Field(node, "id");
  if (!Present(id)) return w.Error(node.Mark(), "bd issue has no id");
  if (absl::Status s = items::WantString(w, "id", id, spec.mutable_id()); !s.ok()) return s;
  w.id = spec.id();
  if (absl::Status s = ValidateItemId(spec.id()); !s.ok()) {
    return w.Error(id.Mark(), absl::StrCat("the bd id is not a valid harness item id (",
                                           s.message(), "); the issue is not added"));
  }
  YAML::Node status = Field(node, "status");
  if (Present(status)) {
    std::string st;
    if (absl::Status s = items::WantString(w, "status", status, &st); !s.ok()) return s;
    if (st != "open" && st != "in_progress") {
      *skip = true;
      return spec;
    }
  }
  YAML::Node title = Field(node, "title");
  if (Present(title)) {
    if (absl::Status s = items::WantString(w, "title", title, spec.mutable_title()); !s.ok()) {
      return s;
    }
  }
  if (absl::StripAsciiWhitespace(spec.title()).empty()) {
    return w.Error(node.Mark(), "title is required");
  }
  YAML::Node description = Field(node, "description");
  if (Present(description)) {
    if (absl::Status s = items::WantString(w, "description", description, spec.mutable_prompt());
        !s.ok()) {
      return s;
    }
  }
  if (absl::StripAsciiWhitespace(spec.prompt()).empty()) spec.set_prompt(spec.title());
  int64_t priority = kBdDefaultPriority;
  YAML::Node p = Field(node, "priority");
  if (Present(p)) {
    if (absl::Status s = items::WantInt(w, "priority", p, 0, 4, &priority); !s.ok()) return s;
  }
  spec.set_priority(PriorityFromBd(priority));
  YAML::Node labels = Field(node, "labels");
  if (Present(labels)) {
    if (KindOf(labels) != Kind::kList) {
      return w.Error(labels.Mark(),
                     absl::StrCat("labels must be a list of strings, got ", Describe(labels)));
    }
    for (size_t i = 0; i < labels.size(); ++i) {
      std::string label;
      if (absl::Status s = items::WantString(w, absl::StrCat("labels[", i, "]"), labels[i], &label);
          !s.ok()) {
        return s;
      }
      if (label.empty()) return w.Error(labels[i].Mark(), absl::StrCat("labels[", i, "] is empty"));
      (*spec.mutable_labels())[label] = "";
    }
  }
  return spec;
}

}  // namespace

int64_t PriorityFromBd(int64_t bd_priority) { return 4 - bd_priority; }

absl::StatusOr<SourceOutput> ParseSourceOutput(absl::string_view text,
                                               absl::string_view source_name) {
  const std::string name = absl::StrCat("work source ", source_name);
  SourceOutput out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  absl::StatusOr<std::vector<YAML::Node>> docs = items::LoadDocuments(text, name);
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": printed ", docs->size(),
                                                   " documents; expected one JSON array"));
  }
  const YAML::Node& root = (*docs)[0];
  if (KindOf(root) == Kind::kNull) return out;
  if (KindOf(root) != Kind::kList) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": expected a JSON array of items, got ", Describe(root)));
  }
  std::set<std::string> ids;
  int index = 0;
  for (const YAML::Node& node : root) {
    Where w{name, ++index, ""};
    absl::StatusOr<v1::ItemSpec> spec;
    bool skip = false;
    if (KindOf(node) != Kind::kObject) {
      spec = w.Error(node.Mark(), absl::StrCat("expected an object, got ", Describe(node)));
    } else if (IsBdIssue(node)) {
      spec = ParseBdIssue(w, node, &skip);
    } else if (node["prompt_file"].IsDefined()) {
      // The controller would read that file into a prompt: a source's output could make it
      // read any file it can (its tokens, keys). Item files are read by harnessctl, as its user.
      spec = w.Error(node["prompt_file"].Mark(),
                     "prompt_file is not read from a source's output (it would make the "
                     "controller read a file of its host); give the prompt itself");
    } else {
      spec = items::ParseItemNode(w, node, ".");
      if (spec.ok() && spec->id().empty()) {
        spec = w.Error(node.Mark(),
                       "an item from a source needs an id (without one it would be added again "
                       "on every run)");
      }
    }
    if (!spec.ok()) {
      out.refused.emplace_back(spec.status().message());
      continue;
    }
    if (skip) {
      out.skipped.push_back(spec->id());
      continue;
    }
    if (!ids.insert(spec->id()).second) {
      out.refused.emplace_back(
          w.Error(node.Mark(), "this id is given by an earlier element of the same run").message());
      continue;
    }
    (*spec->mutable_labels())[kSourceLabel] = std::string(source_name);
    out.items.push_back(*std::move(spec));
  }
  return out;
}

}  // namespace harness
