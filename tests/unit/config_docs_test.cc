// docs/CONFIG.md cannot drift from the code: every key the config has (DescribeConfig, which
// writes every key) is in one of its key tables and every key a table names exists, and the
// "full file, with every default" block is exactly the defaults (same keys, same values).
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace harness {
namespace {

std::string ReadDoc() {
  std::ifstream f(std::string(HARNESS_SOURCE_DIR) + "/docs/CONFIG.md");
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Dotted paths of the leaves; a list of maps contributes "<path>[].<key>" for its first map.
void Leaves(const YAML::Node& n, const std::string& path, std::set<std::string>* out) {
  if (n.IsMap()) {
    for (const auto& kv : n) Leaves(kv.second, path + "." + kv.first.as<std::string>(), out);
  } else if (n.IsSequence() && n.size() > 0 && n[0].IsMap()) {
    Leaves(n[0], path + "[]", out);
  } else {
    out->insert(path.substr(1));
  }
}

// Keys named by the tables of the "## Keys" part: "### `harness.x`" sets the prefix, a row's
// first cell names keys (a dotted one is taken from `harness`), "Each element of `queue.sources`"
// starts the rows of a source's keys.
std::set<std::string> DocumentedKeys(const std::string& doc) {
  std::set<std::string> keys;
  std::string prefix;
  bool in_keys = false;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    if (absl::StartsWith(line, "## ")) in_keys = line == "## Keys";
    if (!in_keys) continue;
    if (absl::StartsWith(line, "### `")) {
      line.remove_prefix(5);
      prefix = std::string(line.substr(0, line.find('`')));
    } else if (absl::StartsWith(line, "Each element of `queue.sources`")) {
      prefix = "harness.queue.sources[]";
    } else if (absl::StartsWith(line, "| `")) {
      std::vector<absl::string_view> cells = absl::StrSplit(line, '|');
      std::vector<absl::string_view> parts = absl::StrSplit(cells[1], '`');
      for (size_t i = 1; i < parts.size(); i += 2) {
        std::string key(parts[i]);
        keys.insert(absl::StrContains(key, '.') ? absl::StrCat("harness.", key)
                                                : absl::StrCat(prefix, ".", key));
      }
    }
  }
  return keys;
}

// The yaml block after "## The full file, with every default".
YAML::Node FullFileBlock(const std::string& doc) {
  size_t at = doc.find("## The full file, with every default");
  if (at == std::string::npos) return YAML::Node();
  size_t begin = doc.find("```yaml\n", at);
  size_t end = doc.find("```", begin + 8);
  if (begin == std::string::npos || end == std::string::npos) return YAML::Node();
  return YAML::Load(doc.substr(begin + 8, end - begin - 8));
}

// Compares two documents key by key; scalars as their text, lists element by element.
void Compare(const YAML::Node& doc, const YAML::Node& code, const std::string& path,
             std::vector<std::string>* diffs) {
  if (code.IsMap()) {
    if (!doc.IsMap()) {
      diffs->push_back(absl::StrCat(path, ": a map in the code"));
      return;
    }
    for (const auto& kv : code) {
      std::string key = kv.first.as<std::string>();
      if (!doc[key]) {
        diffs->push_back(absl::StrCat(path, ".", key, ": missing from the docs"));
      } else {
        Compare(doc[key], kv.second, path + "." + key, diffs);
      }
    }
    for (const auto& kv : doc) {
      std::string key = kv.first.as<std::string>();
      if (!code[key]) diffs->push_back(absl::StrCat(path, ".", key, ": not a key of the code"));
    }
  } else if (code.IsSequence()) {
    if (!doc.IsSequence() || doc.size() != code.size()) {
      diffs->push_back(absl::StrCat(path, ": the list differs"));
      return;
    }
    for (size_t i = 0; i < code.size(); ++i) {
      Compare(doc[i], code[i], absl::StrCat(path, "[", i, "]"), diffs);
    }
  } else if (!doc.IsScalar() || doc.as<std::string>() != code.as<std::string>()) {
    diffs->push_back(absl::StrCat(path, ": the docs say ", YAML::Dump(doc), ", the code ",
                                  code.as<std::string>()));
  }
}

TEST(ConfigDocs, EveryKeyOfTheCodeIsInATableAndEveryTableKeyExists) {
  Config config;
  SourceConfig source;
  source.name = "bd";
  source.command = {"bd", "ready", "--json"};
  config.queue.sources.push_back(source);
  std::set<std::string> code;
  Leaves(YAML::Load(DescribeConfig(config)), "", &code);
  std::set<std::string> documented = DocumentedKeys(ReadDoc());
  ASSERT_GT(code.size(), 40u);
  for (const std::string& k : code) EXPECT_TRUE(documented.count(k)) << k << " is not documented";
  for (const std::string& k : documented) {
    // A list of maps (queue.sources) is a key too; its elements' keys have their own table.
    auto element = code.lower_bound(k + "[].");
    bool is_list = element != code.end() && absl::StartsWith(*element, k + "[].");
    EXPECT_TRUE(code.count(k) || is_list) << k << " is not a key";
  }
}

TEST(ConfigDocs, TheFullFileShowsExactlyTheDefaults) {
  YAML::Node doc = FullFileBlock(ReadDoc());
  ASSERT_TRUE(doc.IsMap()) << "no yaml block after \"## The full file, with every default\"";
  std::vector<std::string> diffs;
  Compare(doc, YAML::Load(DescribeConfig(Config{})), "", &diffs);
  EXPECT_THAT(diffs, ::testing::IsEmpty());
}

}  // namespace
}  // namespace harness
