// LoadAllYaml: YAML::LoadAll for text from outside (harness.yaml, `harnessctl submit --file`),
// safe from a bug of yaml-cpp 0.7 (Debian 12's): on some malformed input, a stray ',' or a
// flow end where a document should start (",", ",}", ", p]"), LoadAll never returns and
// allocates a null document per turn until the process is killed (jbeder/yaml-cpp#1040,
// fixed upstream after 0.8 by PR #1319). Found by fuzz/item_file_fuzz (docs/FUZZING.md).
//
// How: the text is first run through yaml-cpp's event parser, which calls no builder; a
// document that starts where the previous one started (the parser consumed nothing) is the
// loop, and is refused with a ParserException at that place. Only then is the text loaded.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace harness {

// Every document of `text`, as YAML::LoadAll gives them. Throws YAML::ParserException (with
// the mark of the offending token) where LoadAll would, and where LoadAll would loop forever.
std::vector<YAML::Node> LoadAllYaml(const std::string& text);

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
// yaml-cpp passes any bytes through in a plain scalar, but a YAML file is UTF-8, and its
// emitter writes bytes that are not as U+FFFD: a value that is not UTF-8 would not survive
// DescribeConfig. Found by fuzz/config_fuzz.
bool IsValidUtf8(const std::string& s);

}  // namespace harness
