// Command-line flags (see flags.h).
#include "config/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#ifndef HARNESS_VERSION_STRING
#define HARNESS_VERSION_STRING "0.0.0"
#endif

namespace harness {

const char* HarnessVersion() { return HARNESS_VERSION_STRING; }

FlagParser::FlagParser(std::string program, std::string usage)
    : program_(std::move(program)), usage_(std::move(usage)) {}

void FlagParser::AddString(const std::string& name, std::string* out, const std::string& help) {
  flags_.push_back({name, help, true, [out](const std::string& v) {
                      *out = v;
                      return std::string();
                    }});
}

void FlagParser::AddRepeated(const std::string& name, std::vector<std::string>* out,
                             const std::string& help) {
  flags_.push_back({name, help, true, [out](const std::string& v) {
                      out->push_back(v);
                      return std::string();
                    }});
}

void FlagParser::AddInt(const std::string& name, int64_t* out, const std::string& help, int64_t min,
                        int64_t max) {
  flags_.push_back({name, help, true, [=](const std::string& v) {
                      int64_t n;
                      if (!absl::SimpleAtoi(v, &n)) {
                        return absl::StrCat("--", name, " wants an integer, got \"", v, "\"");
                      }
                      if (n < min || n > max) {
                        return absl::StrCat("--", name, " must be between ", min, " and ", max,
                                            ", got ", n);
                      }
                      *out = n;
                      return std::string();
                    }});
}

void FlagParser::AddDouble(const std::string& name, double* out, const std::string& help,
                           double min, double max) {
  flags_.push_back({name, help, true, [=](const std::string& v) {
                      double d;
                      if (!absl::SimpleAtod(v, &d) || std::isnan(d)) {
                        return absl::StrCat("--", name, " wants a number, got \"", v, "\"");
                      }
                      if (d < min || d > max) {
                        return absl::StrCat("--", name, " must be between ", min, " and ", max,
                                            ", got ", v);
                      }
                      *out = d;
                      return std::string();
                    }});
}

void FlagParser::AddBool(const std::string& name, bool* out, const std::string& help) {
  flags_.push_back({name, help, false, [out](const std::string&) {
                      *out = true;
                      return std::string();
                    }});
}

const FlagParser::Flag* FlagParser::Find(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string FlagParser::Usage() const {
  std::string out = usage_;
  if (!out.empty() && out.back() != '\n') out += "\n";
  out += "\nflags:\n";
  for (const Flag& f : flags_) {
    std::string lhs = absl::StrCat("  --", f.name, f.takes_value ? " VALUE" : "");
    absl::StrAppendFormat(&out, "%-26s %s\n", lhs, f.help);
  }
  absl::StrAppendFormat(&out, "%-26s %s\n", "  --help", "print this help and exit");
  absl::StrAppendFormat(&out, "%-26s %s\n", "  --version", "print the version and exit");
  return out;
}

void FlagParser::Fail(const std::string& message) const {
  std::fprintf(stderr, "%s: %s (see %s --help)\n", program_.c_str(), message.c_str(),
               program_.c_str());
  std::exit(2);
}

std::vector<std::string> FlagParser::ParseOrExit(int argc, char** argv,
                                                 bool stop_at_first_positional) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return ParseOrExit(args, stop_at_first_positional);
}

std::vector<std::string> FlagParser::ParseOrExit(const std::vector<std::string>& args,
                                                 bool stop_at_first_positional) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      if (stop_at_first_positional) {
        positional.insert(positional.end(), args.begin() + static_cast<long>(i), args.end());
        break;
      }
      positional.push_back(a);
      continue;
    }
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (name == "help" || name == "h") {
      std::fputs(Usage().c_str(), stdout);
      std::exit(0);
    }
    if (name == "version") {
      std::printf("%s %s\n", program_.c_str(), HarnessVersion());
      std::exit(0);
    }
    const Flag* f = Find(name);
    if (f == nullptr) Fail(absl::StrCat("unknown flag --", name));
    if (f->takes_value) {
      if (!has_value) {
        if (i + 1 >= args.size()) Fail(absl::StrCat("--", name, " needs a value"));
        value = args[++i];
      }
    } else if (has_value) {
      Fail(absl::StrCat("--", name, " takes no value"));
    }
    if (std::string err = f->set(value); !err.empty()) Fail(err);
    set_.insert(name);
  }
  return positional;
}

}  // namespace harness
