// The last output line of a running command (see output_line.h).
#include "core/output_line.h"

#include <cstdint>

namespace harness {
namespace {

// Raw bytes kept of a line in progress: enough for kMaxOutputLineBytes once escapes are gone.
constexpr size_t kMaxPartialBytes = 4 * kMaxOutputLineBytes;

}  // namespace

size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t min = 0, cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

std::string SanitizeOutputLine(absl::string_view text, size_t max_bytes) {
  std::string out;
  bool cut = false;
  for (size_t i = 0; i < text.size() && !cut;) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0x1B) {  // ESC: CSI (ESC [ ... final 0x40-0x7E), OSC (ESC ] ... BEL or ESC \)
      ++i;
      if (i < text.size() && text[i] == '[') {
        for (++i; i < text.size(); ++i) {
          const unsigned char f = static_cast<unsigned char>(text[i]);
          if (f >= 0x40 && f <= 0x7E) { ++i; break; }
        }
      } else if (i < text.size() && text[i] == ']') {
        for (++i; i < text.size(); ++i) {
          if (text[i] == '\x07') { ++i; break; }
          if (text[i] == '\x1b' && i + 1 < text.size() && text[i + 1] == '\\') { i += 2; break; }
        }
      } else if (i < text.size()) {
        ++i;  // a two-byte escape
      }
      continue;
    }
    absl::string_view piece;
    size_t n = 1;
    if (c < 0x20 || c == 0x7F) {
      piece = " ";
    } else if ((n = Utf8SequenceLength(text, i)) == 0) {
      piece = "\xEF\xBF\xBD";  // U+FFFD
      n = 1;
    } else {
      piece = text.substr(i, n);
    }
    if (out.size() + piece.size() > max_bytes) {
      cut = true;
      break;
    }
    out.append(piece.data(), piece.size());
    i += n;
  }
  size_t b = out.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = out.find_last_not_of(' ');
  out = out.substr(b, e - b + 1);
  if (cut) {
    // Room for "..." on a character boundary.
    while (out.size() + 3 > max_bytes && !out.empty()) {
      size_t k = out.size() - 1;
      while (k > 0 && (static_cast<unsigned char>(out[k]) & 0xC0) == 0x80) --k;
      out.resize(k);
    }
    out += "...";
  }
  return out;
}

void OutputLine::Append(absl::string_view text) {
  for (char ch : text) {
    if (ch == '\n' || ch == '\r') {
      if (std::string line = SanitizeOutputLine(partial_); !line.empty()) complete_ = line;
      partial_.clear();
    } else if (partial_.size() < kMaxPartialBytes) {
      partial_.push_back(ch);
    }
  }
}

std::string OutputLine::Last() const {
  if (std::string line = SanitizeOutputLine(partial_); !line.empty()) return line;
  return complete_;
}

void OutputLine::Clear() {
  partial_.clear();
  complete_.clear();
}

}  // namespace harness
