// Reading item objects from YAML/JSON nodes (see item_fields.h).
#include "items/item_fields.h"

#include <cmath>
#include <cstdint>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/yaml_load.h"
#include "core/ids.h"
#include "items/item_file.h"

namespace harness::items {
namespace {

constexpr const char* kFields[] = {"id",       "title",        "prompt",    "prompt_file",
                                   "priority", "max_attempts", "timeout_s", "labels"};

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool IsPlainInt(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return AllDigits(s);
}

bool IsPlainFloat(absl::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN") {
    return true;
  }
  absl::string_view mantissa = s, exponent;
  if (size_t e = s.find_first_of("eE"); e != absl::string_view::npos) {
    mantissa = s.substr(0, e);
    exponent = s.substr(e + 1);
    if (!exponent.empty() && (exponent[0] == '-' || exponent[0] == '+')) exponent.remove_prefix(1);
    if (!AllDigits(exponent)) return false;
  }
  size_t dot = mantissa.find('.');
  if (dot == absl::string_view::npos) return AllDigits(mantissa);
  absl::string_view whole = mantissa.substr(0, dot), frac = mantissa.substr(dot + 1);
  if (whole.empty() && frac.empty()) return false;
  return (whole.empty() || AllDigits(whole)) && (frac.empty() || AllDigits(frac));
}

absl::Status WantPositiveNumber(const Where& w, absl::string_view field, const YAML::Node& v,
                                double* out) {
  Kind k = KindOf(v);
  double d;
  if ((k != Kind::kInt && k != Kind::kFloat) || !absl::SimpleAtod(v.Scalar(), &d)) {
    return w.Error(v.Mark(),
                   absl::StrCat(field, " must be a number of seconds, got ", Describe(v)));
  }
  if (!std::isfinite(d) || d <= 0) {
    return w.Error(v.Mark(),
                   absl::StrCat(field, " must be a positive number of seconds, got ", v.Scalar()));
  }
  *out = d;
  return absl::OkStatus();
}

absl::Status ParseLabels(const Where& w, const YAML::Node& v, v1::ItemSpec* spec) {
  if (KindOf(v) != Kind::kObject) {
    return w.Error(v.Mark(),
                   absl::StrCat("labels must be an object of strings, got ", Describe(v)));
  }
  auto* labels = spec->mutable_labels();
  for (const auto& kv : v) {
    // A key is text whatever YAML would make of it (`2024: x` is the label "2024").
    if (!kv.first.IsScalar() || kv.first.Scalar().empty() || !IsValidUtf8(kv.first.Scalar())) {
      return w.Error(kv.first.Mark(), "labels: a key must be a non-empty UTF-8 string");
    }
    const std::string& key = kv.first.Scalar();
    std::string value;
    if (absl::Status s = WantString(w, absl::StrCat("labels.", key), kv.second, &value); !s.ok()) {
      return s;
    }
    if (!labels->insert({key, value}).second) {
      return w.Error(kv.first.Mark(),
                     absl::StrCat("labels: key ", QuoteForMessage(key), " is given twice"));
    }
  }
  return absl::OkStatus();
}

// Writes code point `cp` as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out) {
  out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
  out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
  out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
  out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
}

bool ParseHex4(absl::string_view s, size_t at, uint32_t* out) {
  if (s.size() < at + 4) return false;
  uint32_t v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    char c = s[i];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0) return false;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  *out = v;
  return true;
}

// JSON writes characters outside the Basic Multilingual Plane as an escaped surrogate pair
// ("\ud83d\ude00", Python's json.dumps does by default), which yaml-cpp refuses. Replaces every
// such pair by the character's UTF-8 bytes; everything else is copied unchanged.
std::string CombineEscapedSurrogates(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 >= text.size()) {
      out.push_back(text[i]);
      continue;
    }
    uint32_t hi, lo;
    if (text[i + 1] == 'u' && ParseHex4(text, i + 2, &hi) && hi >= 0xD800 && hi <= 0xDBFF &&
        text.substr(i + 6, 2) == "\\u" && ParseHex4(text, i + 8, &lo) && lo >= 0xDC00 &&
        lo <= 0xDFFF) {
      AppendUtf8(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), &out);
      i += 11;
    } else {  // any other escape, "\\" included, is copied whole
      out.push_back(text[i]);
      out.push_back(text[++i]);
    }
  }
  return out;
}

}  // namespace

Kind KindOf(const YAML::Node& n) {
  if (n.IsNull()) return Kind::kNull;
  if (n.IsSequence()) return Kind::kList;
  if (n.IsMap()) return Kind::kObject;
  // Quoted and block scalars carry the non-specific tag "!"; an explicit !!str is a string too.
  const std::string& tag = n.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return Kind::kString;
  const std::string& s = n.Scalar();
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Kind::kNull;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return Kind::kBool;
  }
  if (IsPlainInt(s)) return Kind::kInt;
  if (IsPlainFloat(s)) return Kind::kFloat;
  return Kind::kString;
}

// "the number 5", "the string \"5\"", "a list"... for type errors.
std::string Describe(const YAML::Node& n) {
  switch (KindOf(n)) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return n.Scalar();
    case Kind::kInt:
    case Kind::kFloat:
      return absl::StrCat("the number ", n.Scalar());
    case Kind::kString:
      return absl::StrCat("the string ", QuoteForMessage(n.Scalar()));
    case Kind::kList:
      return "a list";
    case Kind::kObject:
      return "an object";
  }
  return "a value";
}

absl::Status Where::Error(const YAML::Mark& mark, absl::string_view message) const {
  std::string place = mark.is_null() ? std::string(file) : absl::StrCat(file, ":", mark.line + 1);
  std::string who = id.empty() ? absl::StrCat("item #", index)
                               : absl::StrCat("item #", index, " (", QuoteForMessage(id), ")");
  return absl::InvalidArgumentError(absl::StrCat(place, ": ", who, ": ", message));
}

absl::Status WantString(const Where& w, absl::string_view field, const YAML::Node& v,
                        std::string* out) {
  Kind k = KindOf(v);
  if (k != Kind::kString) {
    std::string hint = (k == Kind::kInt || k == Kind::kFloat || k == Kind::kBool)
                           ? " (in YAML, quote it to make it a string)"
                           : "";
    return w.Error(v.Mark(), absl::StrCat(field, " must be a string, got ", Describe(v), hint));
  }
  // ItemSpec's strings are proto3 strings: the controller could not read one that is not UTF-8.
  if (!IsValidUtf8(v.Scalar())) {
    return w.Error(v.Mark(),
                   absl::StrCat(field, " is not valid UTF-8, got ", QuoteForMessage(v.Scalar())));
  }
  *out = v.Scalar();
  return absl::OkStatus();
}

absl::Status WantInt(const Where& w, absl::string_view field, const YAML::Node& v, int64_t min,
                     int64_t max, int64_t* out) {
  if (KindOf(v) != Kind::kInt) {
    return w.Error(v.Mark(), absl::StrCat(field, " must be an integer, got ", Describe(v)));
  }
  int64_t n;
  if (!absl::SimpleAtoi(v.Scalar(), &n) || n < min || n > max) {
    return w.Error(v.Mark(), absl::StrCat(field, " must be between ", min, " and ", max, ", got ",
                                          v.Scalar()));
  }
  *out = n;
  return absl::OkStatus();
}

absl::StatusOr<v1::ItemSpec> ParseItemNode(Where& w, const YAML::Node& node,
                                           const std::string& base_dir) {
  if (KindOf(node) != Kind::kObject) {
    return w.Error(node.Mark(),
                   absl::StrCat("expected an object with fields (", absl::StrJoin(kFields, ", "),
                                "), got ", Describe(node)));
  }
  // Name the item by its id in every message, even one about a field before "id".
  for (const auto& kv : node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == "id" && KindOf(kv.second) == Kind::kString &&
        !kv.second.Scalar().empty()) {
      w.id = kv.second.Scalar();
    }
  }
  v1::ItemSpec spec;
  std::set<std::string> seen;
  std::string prompt_file;
  YAML::Mark prompt_file_mark;
  bool has_prompt = false;
  for (const auto& kv : node) {
    const YAML::Node& key = kv.first;
    const YAML::Node& value = kv.second;
    std::string field = key.IsScalar() ? key.Scalar() : std::string();
    if (!key.IsScalar() || !seen.insert(field).second) {
      if (key.IsScalar()) {
        return w.Error(key.Mark(),
                       absl::StrCat("field ", QuoteForMessage(field), " is given twice"));
      }
      return w.Error(key.Mark(), "a field name must be a string");
    }
    if (KindOf(value) == Kind::kNull) continue;  // null: as if absent
    absl::Status s;
    if (field == "id") {
      s = WantString(w, field, value, spec.mutable_id());
      if (s.ok()) {
        if (absl::Status v = ValidateItemId(spec.id()); !v.ok()) {
          Where unnamed = w;
          unnamed.id.clear();
          return unnamed.Error(value.Mark(), v.message());
        }
      }
    } else if (field == "title") {
      s = WantString(w, field, value, spec.mutable_title());
    } else if (field == "prompt") {
      s = WantString(w, field, value, spec.mutable_prompt());
      has_prompt = true;
    } else if (field == "prompt_file") {
      s = WantString(w, field, value, &prompt_file);
      prompt_file_mark = value.Mark();
      if (s.ok() && prompt_file.empty()) s = w.Error(value.Mark(), "prompt_file is empty");
    } else if (field == "priority") {
      int64_t n = 0;
      s = WantInt(w, field, value, INT64_MIN, INT64_MAX, &n);
      spec.set_priority(n);
    } else if (field == "max_attempts") {
      int64_t n = 0;
      s = WantInt(w, field, value, 1, INT32_MAX, &n);
      spec.set_max_attempts(static_cast<int32_t>(n));
    } else if (field == "timeout_s") {
      double d = 0;
      s = WantPositiveNumber(w, field, value, &d);
      spec.set_timeout_s(d);
    } else if (field == "labels") {
      s = ParseLabels(w, value, &spec);
    } else {
      s = w.Error(key.Mark(), absl::StrCat("unknown field ", QuoteForMessage(field),
                                           " (known: ", absl::StrJoin(kFields, ", "), ")"));
    }
    if (!s.ok()) return s;
  }
  if (spec.title().empty()) return w.Error(node.Mark(), "title is required");
  if (has_prompt && !prompt_file.empty()) {
    return w.Error(prompt_file_mark, "give prompt or prompt_file, not both");
  }
  if (!prompt_file.empty()) {
    std::string path =
        prompt_file[0] == '/' ? prompt_file : absl::StrCat(base_dir, "/", prompt_file);
    absl::StatusOr<std::string> text = ReadPromptFile(path);
    if (!text.ok()) {
      return w.Error(prompt_file_mark, absl::StrCat("prompt_file ", QuoteForMessage(prompt_file),
                                                    ": ", text.status().message()));
    }
    if (!IsValidUtf8(*text)) {
      return w.Error(prompt_file_mark, absl::StrCat("prompt_file ", QuoteForMessage(prompt_file),
                                                    " is not UTF-8 text"));
    }
    spec.set_prompt(*std::move(text));
  }
  if (spec.prompt().empty()) {
    return w.Error(node.Mark(),
                   has_prompt ? "prompt is empty" : "prompt (or prompt_file) is required");
  }
  if (spec.prompt().size() > kMaxPromptBytes) {
    return w.Error(node.Mark(), absl::StrCat("prompt is too large: ", spec.prompt().size(),
                                             " bytes, at most ", kMaxPromptBytes));
  }
  return spec;
}

absl::StatusOr<std::vector<YAML::Node>> LoadDocuments(absl::string_view text,
                                                      absl::string_view name) {
  std::string input(text);
  for (int pass = 0;; ++pass) {
    try {
      return LoadAllYaml(input);
    } catch (const YAML::Exception& e) {
      if (pass == 0 && absl::StartsWith(e.msg, "invalid unicode")) {
        input = CombineEscapedSurrogates(text);
        continue;
      }
      std::string place = e.mark.is_null()
                              ? std::string(name)
                              : absl::StrCat(name, ":", e.mark.line + 1, ":", e.mark.column + 1);
      return absl::InvalidArgumentError(absl::StrCat(place, ": not valid JSON or YAML: ", e.msg));
    }
  }
}

}  // namespace harness::items
