// --command splitting (see command_split.h).
#include "agentd/command_split.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace harness::agentd {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

absl::Status JsonError(size_t pos, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("--command is not a valid JSON array of strings: ", what, " at offset ", pos));
}

// A small JSON reader for exactly one array of strings.
class JsonArrayReader {
 public:
  explicit JsonArrayReader(absl::string_view text) : s_(text) {}

  absl::StatusOr<std::vector<std::string>> Read() {
    std::vector<std::string> out;
    SkipBlanks();
    if (!Consume('[')) return JsonError(i_, "expected '['");
    SkipBlanks();
    if (!Consume(']')) {
      while (true) {
        SkipBlanks();
        if (i_ >= s_.size() || s_[i_] != '"') {
          return JsonError(i_, absl::StrCat("element ", out.size(), " is not a string"));
        }
        absl::StatusOr<std::string> str = ReadString();
        if (!str.ok()) return str.status();
        out.push_back(*std::move(str));
        SkipBlanks();
        if (Consume(']')) break;
        if (!Consume(',')) return JsonError(i_, "expected ',' or ']'");
      }
    }
    SkipBlanks();
    if (i_ != s_.size()) return JsonError(i_, "unexpected text after the array");
    return out;
  }

 private:
  void SkipBlanks() {
    while (i_ < s_.size() && IsBlank(s_[i_])) ++i_;
  }
  bool Consume(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool ReadHex4(uint32_t* out) {
    if (i_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    *out = v;
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  absl::StatusOr<std::string> ReadString() {
    size_t start = i_++;  // the opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) return JsonError(start, "unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) {
        return JsonError(i_ - 1, "control character in a string");
      }
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) return JsonError(start, "unterminated string");
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!ReadHex4(&cp)) return JsonError(i_, "bad \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (!Consume('\\') || !Consume('u') || !ReadHex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) {
              return JsonError(i_, "unpaired UTF-16 surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return JsonError(i_, "unpaired UTF-16 surrogate in a \\u escape");
          }
          AppendUtf8(cp, &out);
          break;
        }
        default:
          return JsonError(i_ - 1, absl::StrCat("unknown escape \\", std::string(1, e)));
      }
    }
  }

  absl::string_view s_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitShellWords(absl::string_view s) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started (possibly empty, as with '')
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (IsBlank(c)) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t close = s.find('\'', i + 1);
      if (close == absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("--command has an unbalanced single quote at offset ", i));
      }
      word.append(s.data() + i + 1, close - i - 1);
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      size_t open = i++;
      while (true) {
        if (i >= s.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--command has an unbalanced double quote at offset ", open));
        }
        char d = s[i];
        if (d == '"') {
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < s.size()) {
          char e = s[i + 1];
          if (e == '"' || e == '\\' || e == '$' || e == '`') {
            word.push_back(e);
            i += 2;
            continue;
          }
          if (e == '\n') {  // line continuation
            i += 2;
            continue;
          }
        }
        word.push_back(d);
        ++i;
      }
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) {
        return absl::InvalidArgumentError("--command ends with a lone backslash");
      }
      if (s[i + 1] != '\n') {  // backslash-newline joins lines
        word.push_back(s[i + 1]);
        in_word = true;
      }
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

absl::StatusOr<std::vector<std::string>> ParseJsonStringArray(absl::string_view json) {
  return JsonArrayReader(json).Read();
}

absl::StatusOr<std::vector<std::string>> SplitCommand(absl::string_view command) {
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(command);
  absl::StatusOr<std::vector<std::string>> argv = !trimmed.empty() && trimmed[0] == '['
                                                      ? ParseJsonStringArray(trimmed)
                                                      : SplitShellWords(command);
  if (!argv.ok()) return argv.status();
  if (argv->empty()) return absl::InvalidArgumentError("--command is empty");
  if ((*argv)[0].empty()) return absl::InvalidArgumentError("--command names an empty program");
  return argv;
}

}  // namespace harness::agentd
