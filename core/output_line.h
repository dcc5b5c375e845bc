// OutputLine: the last line an agent's command printed, as its Progress chunks arrive, for
// `harnessctl status --watch` and the dashboard. Bounded (kMaxOutputLineBytes) and made safe to
// show: escape sequences and control characters are removed and bytes that are not UTF-8
// become U+FFFD, so the result is a valid protobuf string. No I/O, no lock (its owner holds
// one).
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace harness {

inline constexpr size_t kMaxOutputLineBytes = 200;

// Length of the valid, shortest-form UTF-8 sequence at s[i]; 0 if there is none.
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// `text` on one line: CSI and OSC escape sequences dropped, other control characters (tabs and
// line breaks included) as one space each, invalid UTF-8 as U+FFFD, blanks at both ends
// trimmed, cut to at most `max_bytes` on a character boundary ("..." ending a cut one).
std::string SanitizeOutputLine(absl::string_view text, size_t max_bytes = kMaxOutputLineBytes);

class OutputLine {
 public:
  // Output of one attempt, in order; chunks may split lines and UTF-8 sequences anywhere.
  void Append(absl::string_view text);
  // The line in progress if it has text, else the last non-blank complete line; sanitized.
  std::string Last() const;
  void Clear();

 private:
  std::string partial_;   // raw bytes since the last line break (at most a bound)
  std::string complete_;  // the last non-blank complete line, sanitized
};

}  // namespace harness
