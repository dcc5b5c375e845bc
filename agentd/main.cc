// agentd: one harness worker. Parses the command line, wires the gRPC client, the agent loop
// and the signal handling together, and exits 0 (drained or stopped), 1 (fatal runtime error)
// or 2 (bad command line). The logic lives in the harness_agentd library.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "agentd/agent.h"
#include "agentd/command_split.h"
#include "agentd/controller_client.h"
#include "config/flags.h"
#include "core/ids.h"
#include "core/log.h"

namespace {

constexpr char kUsage[] =
    "usage: agentd --id ID --controller HOST:PORT [--workdir DIR] [--command CMD] [--token T]\n"
    "              [--shutdown-grace S] [--kill-grace S]\n"
    "\n"
    "One harness worker: registers with the controller, keeps a heartbeat stream open, takes one\n"
    "work item at a time, runs the agent command for it in <workdir>/work and reports the\n"
    "outcome. Survives controller restarts: it reconnects with backoff and carries on with the\n"
    "item it holds.\n"
    "\n"
    "--command is split into words like a shell would (blanks separate words; '...', \"...\" and\n"
    "backslashes quote) but nothing is expanded, or it is a JSON array of strings when it starts\n"
    "with '['. {prompt}, {id} and {title} in any word are replaced by the item's values, each\n"
    "word staying one argument. Without --command the controller's agent.command is used.\n"
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

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists (gRPC starts some): SIGTERM and SIGINT are taken by sigwait on
  // the signal thread below only. Children get an empty mask (CommandRunner).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string id, controller, workdir, command, token;
  double shutdown_grace_s = 30, kill_grace_s = 10;
  harness::FlagParser flags("agentd", kUsage);
  flags.AddString("id", &id, "this agent's id: [A-Za-z0-9][A-Za-z0-9._-]{0,63} (required)");
  flags.AddString("controller", &controller, "the controller's HOST:PORT (required)");
  flags.AddString("workdir", &workdir,
                  "where work, logs and prompts go (default ./harness-agent-<id>)");
  flags.AddString("command", &command, "the agent command (default: the controller's)");
  flags.AddString("token", &token, "bearer token for the controller");
  flags.AddDouble("shutdown-grace", &shutdown_grace_s,
                  "seconds the current item may run on after SIGTERM (default 30)", 0, 86400);
  flags.AddDouble("kill-grace", &kill_grace_s,
                  "seconds between SIGTERM and SIGKILL to a command (default 10)", 0, 3600);
  std::vector<std::string> positional = flags.ParseOrExit(argc, argv);
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
  if (workdir.empty()) workdir = absl::StrCat("./harness-agent-", id);

  harness::agentd::ControllerClientOptions client_options;
  client_options.address = controller;
  client_options.agent_id = id;
  client_options.token = token;
  std::unique_ptr<harness::agentd::ControllerApi> client =
      harness::agentd::NewControllerClient(client_options);

  harness::agentd::AgentOptions options;
  options.agent_id = id;
  options.work_root = workdir;
  options.command = command_argv;
  options.shutdown_grace = absl::Seconds(shutdown_grace_s);
  options.kill_grace = absl::Seconds(kill_grace_s);
  harness::agentd::Agent agent(options, client.get());

  harness::LogInfo(absl::StrCat("agentd ", harness::HarnessVersion(), " starting as agent ", id,
                                ": controller ", controller, ", work dir ", workdir, ", command ",
                                command_argv.empty()
                                    ? std::string("from the controller")
                                    : absl::StrCat("[", absl::StrJoin(command_argv, ", "), "]")));

  std::atomic<bool> done{false};
  std::thread signal_thread([&] {
    while (!done.load()) {
      timespec wait = {0, 200'000'000};
      int sig = sigtimedwait(&stop_signals, nullptr, &wait);
      if (sig == SIGTERM || sig == SIGINT) {
        agent.RequestStop(sig == SIGTERM ? "received SIGTERM" : "received SIGINT");
      }
    }
  });
  int code = agent.Run();
  done.store(true);
  signal_thread.join();
  client.reset();
  return code;
}
