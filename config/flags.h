// FlagParser: the command-line flags of the three binaries, with the contract's behaviour:
// --help prints usage and exits 0, --version prints the version and exits 0, an unknown flag
// or a bad value prints one clear line to stderr and exits 2. Accepts `--name value` and
// `--name=value`; bool flags take no value (`--json`). Arguments that are not flags are
// returned in order (subcommands, ids).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace harness {

// The version all binaries print.
const char* HarnessVersion();

class FlagParser {
 public:
  // usage: the synopsis lines printed first by --help (e.g. "usage: agentd --id ID ...").
  FlagParser(std::string program, std::string usage);

  void AddString(const std::string& name, std::string* out, const std::string& help);
  // A flag that may be given several times (`--label k=v --label k2=v2`).
  void AddRepeated(const std::string& name, std::vector<std::string>* out, const std::string& help);
  void AddInt(const std::string& name, int64_t* out, const std::string& help, int64_t min,
              int64_t max);
  // Seconds or other non-negative decimals.
  void AddDouble(const std::string& name, double* out, const std::string& help, double min,
                 double max);
  void AddBool(const std::string& name, bool* out, const std::string& help);

  // Parses argv[1..]; exits as described above. Returns the positional arguments. With
  // `stop_at_first_positional`, everything from the first positional argument on is returned
  // unparsed (for CLIs whose subcommands have flags of their own).
  std::vector<std::string> ParseOrExit(int argc, char** argv,
                                       bool stop_at_first_positional = false);
  // Same over an explicit list (argv without the program name).
  std::vector<std::string> ParseOrExit(const std::vector<std::string>& args,
                                       bool stop_at_first_positional = false);

  // Whether a flag was given on the command line (flags win over env and file).
  bool WasSet(const std::string& name) const { return set_.count(name) > 0; }
  // The --help text.
  std::string Usage() const;
  // Prints "<program>: <message>" to stderr and exits 2.
  [[noreturn]] void Fail(const std::string& message) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    bool takes_value = true;
    // Returns an error message, or "" on success.
    std::function<std::string(const std::string&)> set;
  };
  const Flag* Find(const std::string& name) const;

  std::string program_;
  std::string usage_;
  std::vector<Flag> flags_;
  std::set<std::string> set_;
};

}  // namespace harness
