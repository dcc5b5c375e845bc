// Item files for `harnessctl submit --file` (see item_file.h).
#include "items/item_file.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "items/item_fields.h"

namespace harness {

using items::Describe;
using items::Kind;
using items::KindOf;
using items::Where;

absl::StatusOr<std::string> ReadPromptFile(const std::string& path) {
  std::string text;
  if (path == "-") {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) {
      text.append(buf, n);
      if (text.size() > kMaxPromptBytes) break;
    }
    if (std::ferror(stdin)) {
      return absl::InternalError(
          absl::StrCat("cannot read standard input: ", std::strerror(errno)));
    }
  } else {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "cannot read", path);
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
    }
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxPromptBytes) {
      return absl::InvalidArgumentError(absl::StrCat("the prompt is too large: ", st.st_size,
                                                     " bytes, at most ", kMaxPromptBytes));
    }
    absl::StatusOr<std::string> read = ReadFile(path);
    if (!read.ok()) return read.status();
    text = *std::move(read);
  }
  if (text.size() > kMaxPromptBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt is too large: more than ", kMaxPromptBytes, " bytes"));
  }
  if (text.empty()) return absl::InvalidArgumentError("the prompt file is empty");
  return text;
}

absl::StatusOr<std::vector<v1::ItemSpec>> ParseItemFile(absl::string_view text,
                                                        absl::string_view name,
                                                        const std::string& base_dir) {
  absl::StatusOr<std::vector<YAML::Node>> docs = items::LoadDocuments(text, name);
  if (!docs.ok()) return docs.status();
  if (docs->empty() || (docs->size() == 1 && KindOf((*docs)[0]) == Kind::kNull)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": the file is empty; expected a list of items"));
  }
  if (docs->size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the file holds ", docs->size(),
                                                   " YAML documents; put every item in one list"));
  }
  const YAML::Node& root = (*docs)[0];
  if (KindOf(root) != Kind::kList) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ":", root.Mark().line + 1, ": expected a list of items, got ", Describe(root)));
  }
  if (root.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the list of items is empty"));
  }
  std::vector<v1::ItemSpec> specs;
  std::set<std::string> ids;
  int index = 0;
  for (const YAML::Node& node : root) {
    Where w{name, ++index, ""};
    absl::StatusOr<v1::ItemSpec> spec = items::ParseItemNode(w, node, base_dir);
    if (!spec.ok()) return spec.status();
    if (!spec->id().empty() && !ids.insert(spec->id()).second) {
      return w.Error(node.Mark(), "this id is used by an earlier item of the file");
    }
    specs.push_back(*std::move(spec));
  }
  return specs;
}

absl::StatusOr<std::vector<v1::ItemSpec>> LoadItemFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  size_t slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "."
                         : slash == 0               ? "/"
                                                    : path.substr(0, slash);
  return ParseItemFile(*text, path, base_dir);
}

}  // namespace harness
