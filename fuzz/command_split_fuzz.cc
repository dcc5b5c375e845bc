// Fuzzes the --command splitter of agentd (agentd/command_split.h): any bytes as the command,
// in both forms (shell-like words, a JSON array of strings). A split that succeeds gives a
// non-empty argv; the words form never expands anything, so its words, each put in single
// quotes (when it holds none) and joined with blanks, split back to the same argv.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "agentd/command_split.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto argv = harness::agentd::SplitCommand(text);
  if (argv.ok() && argv->empty()) std::abort();
  (void)harness::agentd::ParseJsonStringArray(text);
  auto words = harness::agentd::SplitShellWords(text);
  if (!words.ok() || words->empty()) return 0;
  std::string joined;
  for (const std::string& w : *words) {
    if (w.find('\'') != std::string::npos) return 0;
    if (!joined.empty()) joined += ' ';
    joined += "'" + w + "'";
  }
  auto again = harness::agentd::SplitShellWords(joined);
  if (!again.ok() || *again != *words) std::abort();
  return 0;
}
