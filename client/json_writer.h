// JsonWriter: a tiny streaming JSON writer for harnessctl's `--json` output. It produces one
// syntactically valid document (RFC 8259): strings are escaped (quotes, backslashes, control
// characters), valid UTF-8 passes through as is and invalid bytes become U+FFFD, so the output
// is always valid UTF-8. Not a parser, and no DOM: callers write values in order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace harness::client {

class JsonWriter {
 public:
  // pretty: two-space indentation and one member per line; otherwise one compact line.
  explicit JsonWriter(bool pretty = false) : pretty_(pretty) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The name of the next member; must be inside an object, followed by exactly one value.
  JsonWriter& Key(absl::string_view key);

  JsonWriter& String(absl::string_view value);
  // A string, or null when `value` is empty (the API's "" means "none").
  JsonWriter& StringOrNull(absl::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  // Finite numbers in their shortest round-trip form, always with a fraction or an exponent
  // (1.0, not 1) so typed readers see a float; NaN and infinities are written as null.
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // The document so far. Complete once every object and array is closed.
  const std::string& str() const { return out_; }
  bool complete() const { return stack_.empty() && has_root_; }

 private:
  enum class Scope { kObject, kArray };
  struct Frame {
    Scope scope;
    bool empty = true;
  };
  // Writes the separator and indentation due before a value (or before a key in an object).
  void BeforeValue();
  void Newline(size_t depth);

  bool pretty_;
  std::string out_;
  std::vector<Frame> stack_;
  bool after_key_ = false;
  bool has_root_ = false;
};

// Appends `value` to `out` as a quoted, escaped JSON string.
void AppendJsonString(absl::string_view value, std::string* out);

}  // namespace harness::client
