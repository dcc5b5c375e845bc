// The git CLI for tests: building fixture repositories and inspecting what harness did. Product
// code never shells out to git; tests may. Header-only.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace harness::testing {

// `s` as one single-quoted shell word.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `cmd` in a shell; returns its stdout as it is. The exit status goes to *status if given;
// else a non-zero one fails the test.
inline std::string Sh(const std::string& cmd, int* status = nullptr) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "cannot run " << cmd;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (status != nullptr) {
    *status = code;
  } else {
    EXPECT_EQ(code, 0) << cmd << "\n" << out;
  }
  return out;
}

// Runs `git -C dir args...` with a fixed identity and no user or system config; returns stdout
// (and stderr) without its trailing newline. The exit status goes to *status if given; else a
// non-zero one fails the test.
inline std::string Git(const std::string& dir, const std::vector<std::string>& args,
                       int* status = nullptr) {
  std::string cmd = absl::StrCat(
      "GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -C ", ShellQuote(dir),
      " -c user.name=Tester -c user.email=tester@example.com -c init.defaultBranch=main"
      " -c core.autocrlf=false -c gc.auto=0");
  for (const std::string& a : args) absl::StrAppend(&cmd, " ", ShellQuote(a));
  absl::StrAppend(&cmd, " 2>&1");
  std::string out = Sh(cmd, status);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Commits everything in the work tree of `dir`; returns the new commit id.
inline std::string CommitAll(const std::string& dir, const std::string& message) {
  Git(dir, {"add", "-A"});
  Git(dir, {"commit", "-q", "-m", message});
  return Git(dir, {"rev-parse", "HEAD"});
}

// Text that compresses like source code does, different for each seed.
inline std::string SourceText(int seed, int lines) {
  std::string s;
  for (int i = 0; i < lines; ++i) {
    absl::StrAppend(&s, "int function_", seed, "_", i, "(int x) { return x * ",
                    (seed * 31 + i) % 97, "; }\n");
  }
  return s;
}

}  // namespace harness::testing
