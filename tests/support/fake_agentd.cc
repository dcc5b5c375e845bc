// fake_agentd: stands in for agentd in launcher tests (no controller needed). It takes agentd's
// flags, writes what it sees to <cwd>/report (atomically: tests wait for the file) and then
// behaves as its --mode says:
//   sleep        (default) sleeps until SIGTERM, then exits 0
//   ignore-term  ignores SIGTERM and sleeps
//   exit3        exits with status 3 at once (no report)
//   fork         forks a grandchild (same process group); both ignore SIGTERM and sleep
// Report lines: pid=, pgid=, cwd=, stdin= (its target), fds= (open fds other than 0-2),
// grandchild= (fork mode), arg= (one per argv word), env:NAME= (the HARNESS_* variables).
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

extern char** environ;

namespace {

volatile sig_atomic_t g_term = 0;
void OnTerm(int) { g_term = 1; }

std::string Link(const char* path) {
  char buf[4096];
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  return n < 0 ? std::string("?") : std::string(buf, static_cast<size_t>(n));
}

std::string OpenFds() {
  std::string out;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return "?";
  int self = dirfd(d);
  while (struct dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    int fd = atoi(de->d_name);
    if (fd <= 2 || fd == self) continue;
    out += std::string(out.empty() ? "" : ",") + de->d_name;
  }
  closedir(d);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "sleep";
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
  }
  printf("fake_agentd %d starting, mode %s\n", static_cast<int>(getpid()), mode.c_str());
  fflush(stdout);
  if (mode == "exit3") return 3;
  if (mode == "ignore-term" || mode == "fork") {
    signal(SIGTERM, SIG_IGN);
  } else {
    signal(SIGTERM, OnTerm);
  }
  pid_t grandchild = 0;
  if (mode == "fork") {
    grandchild = fork();
    if (grandchild == 0) {
      for (;;) pause();
    }
  }
  std::string report = "pid=" + std::to_string(getpid()) + "\npgid=" + std::to_string(getpgid(0)) +
                       "\ncwd=" + Link("/proc/self/cwd") + "\nstdin=" + Link("/proc/self/fd/0") +
                       "\nfds=" + OpenFds() + "\n";
  if (grandchild > 0) report += "grandchild=" + std::to_string(grandchild) + "\n";
  for (int i = 0; i < argc; ++i) report += std::string("arg=") + argv[i] + "\n";
  for (char** e = environ; *e != nullptr; ++e) {
    if (strncmp(*e, "HARNESS_", 8) == 0) report += std::string("env:") + *e + "\n";
  }
  FILE* f = fopen("report.tmp", "w");
  if (f == nullptr) return 1;
  fputs(report.c_str(), f);
  fclose(f);
  if (rename("report.tmp", "report") != 0) return 1;
  while (!g_term) pause();
  printf("fake_agentd %d: SIGTERM, exiting\n", static_cast<int>(getpid()));
  return 0;
}
