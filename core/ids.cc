// Identifier validation (see ids.h).
#include "core/ids.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace harness {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

absl::Status ValidateName(absl::string_view kind, absl::string_view id, size_t max_len) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(kind, " is empty"));
  if (id.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s is too long: %d characters, at most %d", kind, QuoteForMessage(id),
                        id.size(), max_len));
  }
  if (!IsAlnum(id[0])) {
    return absl::InvalidArgumentError(absl::StrCat(
        kind, " ", QuoteForMessage(id), " is invalid: it must start with a letter or digit"));
  }
  for (char c : id) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat(kind, " ", QuoteForMessage(id),
                       " is invalid: only letters, digits, '.', '_' and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string QuoteForMessage(absl::string_view value) {
  constexpr size_t kMaxShown = 80;
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : value) {
    if (shown++ == kMaxShown) {
      absl::StrAppend(&out, "...");
      break;
    }
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  out.push_back('"');
  return out;
}

absl::Status ValidateItemId(absl::string_view id) {
  if (absl::Status s = ValidateName("item id", id, kMaxItemIdLength); !s.ok()) return s;
  if (id.find("..") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "item id ", QuoteForMessage(id), " is invalid: \"..\" is not allowed in a git ref"));
  }
  if (id.back() == '.') {
    return absl::InvalidArgumentError(absl::StrCat("item id ", QuoteForMessage(id),
                                                   " is invalid: a git ref cannot end with \".\""));
  }
  if (id.size() >= 5 && id.substr(id.size() - 5) == ".lock") {
    return absl::InvalidArgumentError(absl::StrCat(
        "item id ", QuoteForMessage(id), " is invalid: a git ref cannot end with \".lock\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateAgentId(absl::string_view id) {
  return ValidateName("agent id", id, kMaxAgentIdLength);
}

}  // namespace harness
