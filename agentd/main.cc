// agentd: one harness worker. Parses the command line, wires the gRPC client, the agent loop
// and the signal handling together, and exits 0 (drained or stopped), 1 (fatal runtime error)
// or 2 (bad command line). The logic lives in the harness_agentd library.
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/agent.h"
#include "agentd/command_split.h"
#include "agentd/controller_client.h"
#include "agentd/resource_limits.h"
#include "agentd/workspace.h"
#include "config/flags.h"
#include "core/ids.h"
#include "core/log.h"
#include "rpc/client_auth.h"
#include "rpc/tls_lifetime.h"

namespace {

constexpr char kUsage[] =
    "usage: agentd --id ID --controller HOST:PORT [--repo PATH_OR_URL] [--workdir DIR]\n"
    "              [--command CMD] [--token T | --token-file F] [--ca F [--cert F --key F]]\n"
    "              [--author-name NAME] [--author-email EMAIL]\n"
    "              [--shutdown-grace S] [--kill-grace S] [--log-format text|json]\n"
    "              [--log-level debug|info|warning|error]\n"
    "\n"
    "One harness worker: registers with the controller, keeps a heartbeat stream open, takes one\n"
    "work item at a time, runs the agent command for it in a clean worktree at the item's base\n"
    "commit, commits what the command changed and reports the outcome with the commit. Survives\n"
    "controller restarts: it reconnects with backoff and carries on with the item it holds.\n"
    "\n"
    "--repo PATH: a linked worktree of that local repository (the controller's) at\n"
    "<workdir>/worktree, removed when agentd exits. --repo URL (\"://\", \"file:\" or host:path):\n"
    "a clone at <workdir>/clone fetching the base from that URL. No --repo: the same clone, the\n"
    "base fetched from the controller. Without a local repository, results are uploaded to the\n"
    "controller. A lease without a base commit (a controller without a repository) runs in\n"
    "<workdir>/work, emptied before each item.\n"
    "\n"
    "--command is split into words like a shell would (blanks separate words; '...', \"...\" and\n"
    "backslashes quote) but nothing is expanded, or it is a JSON array of strings when it starts\n"
    "with '['. {prompt}, {id} and {title} in any word are replaced by the item's values, each\n"
    "word staying one argument. Without --command the controller's agent.command is used.\n"
    "--log-format and --log-level default to $HARNESS_LOG_FORMAT and $HARNESS_LOG_LEVEL, else\n"
    "text and info (the controller passes its log.format and log.level to agents it launches).\n"
    "SIGTERM/SIGINT: take no more items, let the current one finish within --shutdown-grace,\n"
    "else stop it and release its lease; a second signal stops it at once.";

// A relative program path on the command line means "from here", as in a shell; the command
// itself runs in the work dir, so make it absolute now.
void AnchorProgram(std::vector<std::string>* argv) {
  std::string& program = (*argv)[0];
  if (program.find('/') == std::string::npos || program[0] == '/') return;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) != nullptr) program = absl::StrCat(cwd, "/", program);
}

// Removes the variable `name` and overwrites its value where the process started with it: the
// kernel shows that block in /proc/<pid>/environ, which the item's command (same user) could
// read. The command's own environment is scrubbed by the CommandRunner.
void ForgetEnvironmentSecret(const char* name) {
  if (char* value = getenv(name); value != nullptr) memset(value, 0, strlen(value));
  unsetenv(name);
}

// The value of an environment variable, or `fallback` when it is unset or empty.
std::string EnvOr(const char* name, const char* fallback) {
  const char* v = getenv(name);
  return v == nullptr || *v == '\0' ? std::string(fallback) : std::string(v);
}

}  // namespace

int main(int argc, char** argv) {
  harness::KeepTlsLibraryUntilExit();  // before anything initialises OpenSSL
  // Debian's Abseil is built with deadlock detection on, which costs on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Before any thread exists (gRPC starts some): SIGTERM and SIGINT are taken by sigwait on
  // the signal thread below only, and SIGUSR2, which ends that thread (it sleeps until a signal
  // comes, never waking on a timer). Children get an empty mask (CommandRunner).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string id, controller, workdir, command, repo, author_name, author_email;
  double shutdown_grace_s = 30, kill_grace_s = 10;
  harness::FlagParser flags("agentd", kUsage);
  flags.AddString("id", &id, "this agent's id: [A-Za-z0-9][A-Za-z0-9._-]{0,63} (required)");
  flags.AddString("controller", &controller, "the controller's HOST:PORT (required)");
  flags.AddString("workdir", &workdir,
                  "where work, logs and prompts go (default ./harness-agent-<id>)");
  flags.AddString("command", &command, "the agent command (default: the controller's)");
  harness::ClientAuthFlags auth_flags;
  flags.AddString("token", &auth_flags.token,
                  "the controller's agent token (default $HARNESS_TOKEN)");
  flags.AddString("token-file", &auth_flags.token_file, "file holding the agent token");
  flags.AddString("ca", &auth_flags.ca,
                  "CA of the controller's certificate: dial with TLS (default $HARNESS_CA)");
  flags.AddString("cert", &auth_flags.cert,
                  "this agent's certificate, for mTLS (default $HARNESS_CERT)");
  flags.AddString("key", &auth_flags.key, "its private key (default $HARNESS_KEY)");
  flags.AddString("repo", &repo,
                  "local repository or URL to get the base from (default: the controller)");
  flags.AddString("author-name", &author_name,
                  "result commits' author (default \"Harness Agent <id>\")");
  flags.AddString("author-email", &author_email,
                  "result commits' email (default <id>@harness.local)");
  flags.AddDouble("shutdown-grace", &shutdown_grace_s,
                  "seconds the current item may run on after SIGTERM (default 30)", 0, 86400);
  flags.AddDouble("kill-grace", &kill_grace_s,
                  "seconds between SIGTERM and SIGKILL to a command (default 10)", 0, 3600);
  std::string log_format = EnvOr("HARNESS_LOG_FORMAT", "text");
  std::string log_level = EnvOr("HARNESS_LOG_LEVEL", "info");
  flags.AddString("log-format", &log_format,
                  "text or json: one JSON object per line (default $HARNESS_LOG_FORMAT, text)");
  flags.AddString("log-level", &log_level,
                  "debug, info, warning or error (default $HARNESS_LOG_LEVEL, info)");
  std::vector<std::string> positional = flags.ParseOrExit(argc, argv);
  // First: every line from here on is in the chosen format.
  if (absl::StatusOr<harness::LogFormat> f = harness::ParseLogFormat(log_format); f.ok()) {
    harness::SetLogFormat(*f);
  } else {
    flags.Fail(absl::StrCat(flags.WasSet("log-format") ? "--log-format" : "HARNESS_LOG_FORMAT",
                            ": ", f.status().message()));
  }
  if (absl::StatusOr<harness::LogLevel> l = harness::ParseLogLevel(log_level); l.ok()) {
    harness::SetLogLevel(*l);
  } else {
    flags.Fail(absl::StrCat(flags.WasSet("log-level") ? "--log-level" : "HARNESS_LOG_LEVEL",
                            ": ", l.status().message()));
  }
  if (!positional.empty()) {
    flags.Fail(absl::StrCat("unexpected argument ", harness::QuoteForMessage(positional[0])));
  }
  if (!flags.WasSet("id")) flags.Fail("--id is required");
  if (absl::Status s = harness::ValidateAgentId(id); !s.ok()) {
    flags.Fail(absl::StrCat("--id: ", s.message()));
  }
  if (controller.empty()) flags.Fail("--controller is required");
  std::vector<std::string> command_argv;
  if (flags.WasSet("command")) {
    absl::StatusOr<std::vector<std::string>> split = harness::agentd::SplitCommand(command);
    if (!split.ok()) flags.Fail(std::string(split.status().message()));
    command_argv = *std::move(split);
    AnchorProgram(&command_argv);
  }
  // libgit2 refuses such a signature; say so now rather than at the first commit.
  for (const auto& [flag, value] :
       {std::pair{"author-name", &author_name}, std::pair{"author-email", &author_email}}) {
    if (value->find_first_of("<>\n\r") != std::string::npos) {
      flags.Fail(absl::StrCat("--", flag, ": ", harness::QuoteForMessage(*value),
                              " must not contain '<', '>' or a line break"));
    }
  }
  if (workdir.empty()) workdir = absl::StrCat("./harness-agent-", id);
  if (flags.WasSet("repo") && repo.empty()) flags.Fail("--repo is empty");
  const harness::agentd::RepoMode repo_mode = harness::agentd::ClassifyRepo(repo);
  if (repo_mode == harness::agentd::RepoMode::kLocal) {
    // Before anything registers or changes: a bad --repo is a bad command line.
    if (absl::Status s = harness::agentd::CheckLocalRepository(repo); !s.ok()) {
      flags.Fail(std::string(s.message()));
    }
  }

  absl::StatusOr<harness::ClientAuth> auth = harness::ResolveClientAuth(auth_flags);
  if (!auth.ok()) flags.Fail(std::string(auth.status().message()));
  ForgetEnvironmentSecret("HARNESS_TOKEN");  // read once, above; the TLS files are read too

  harness::agentd::ControllerClientOptions client_options;
  client_options.address = controller;
  client_options.agent_id = id;
  client_options.token = auth->token;
  client_options.tls = auth->tls;
  client_options.repo_access = harness::agentd::RepoAccessOf(repo_mode);
  std::unique_ptr<harness::agentd::ControllerApi> client =
      harness::agentd::NewControllerClient(client_options);

  harness::agentd::AgentOptions options;
  options.agent_id = id;
  options.work_root = workdir;
  options.command = command_argv;
  options.repo = repo;
  options.author_name = author_name;
  options.author_email = author_email;
  options.shutdown_grace = absl::Seconds(shutdown_grace_s);
  options.kill_grace = absl::Seconds(kill_grace_s);
  // Probed once: which mechanism enforces the leases' memory limits (removed at exit).
  std::unique_ptr<harness::agentd::MemoryCgroups> cgroups = harness::agentd::MemoryCgroups::Probe();
  options.cgroups = cgroups.get();
  harness::agentd::Agent agent(options, client.get());

  harness::LogInfo(absl::StrCat(
      "agentd ", harness::HarnessVersion(), " starting as agent ", id, ": controller ", controller,
      ", work dir ", workdir, repo.empty() ? std::string() : absl::StrCat(", repo ", repo),
      ", command ",
      command_argv.empty() ? std::string("from the controller")
                           : absl::StrCat("[", absl::StrJoin(command_argv, ", "), "]")));
  harness::LogInfo(harness::agentd::DescribeLimitMechanisms(cgroups.get()));

  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    while (!done.load()) {
      int sig = sigwaitinfo(&stop_signals, nullptr);
      if (sig == SIGTERM || sig == SIGINT) {
        agent.RequestStop(sig == SIGTERM ? "received SIGTERM" : "received SIGINT");
      }
    }
  });
  int code = agent.Run();
  done.store(true);
  pthread_kill(signal_thread.native_handle(), SIGUSR2);  // blocked, so only sigwaitinfo sees it
  signal_thread.join();
  client.reset();
  return code;
}
