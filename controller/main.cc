// controller: owns the work queue and the state dir and grants claim leases over gRPC.
//   controller [--config FILE] [--listen ADDR] [--state-dir DIR] [--repo PATH] [--agents N]
//              [--insecure]
// Exit codes: 0 clean stop (SIGINT/SIGTERM), 1 runtime error (e.g. state dir in use), 2 bad
// flags or config (also: a non-loopback listen address without TLS and tokens). SIGHUP checks
// the TLS files again (the server itself re-reads them every kTlsRefreshSeconds).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "config/config.h"
#include "config/flags.h"
#include "controller/agent_credentials.h"
#include "controller/controller.h"
#include "controller/server.h"
#include "controller/server_security.h"
#include "core/file_util.h"
#include "core/log.h"
#include "http/api_routes.h"
#include "http/http_server.h"
#include "rpc/tls_files.h"

namespace harness {
namespace {

// A launched agent told to stop finishes or releases its item within agentd's own shutdown
// grace (30 s) and kills its command 10 s after that; it is killed if still running after this.
constexpr absl::Duration kLaunchedAgentStopGrace = absl::Seconds(45);

// launcher docker: a container's memory limit is resource_limits.max_session_memory_mb plus
// this, for agentd and git beside the item's command.
constexpr int64_t kDockerMemoryHeadroomMb = 512;

// queue.sources and queue.on_done. The commands run in the repository's folder (where
// `bd ready` finds its .beads), or the controller's working directory when that is not a folder.
WorkSourcesOptions SourcesOptions(const Config& config) {
  WorkSourcesOptions out;
  for (const SourceConfig& s : config.queue.sources) {
    out.sources.push_back({s.name, s.command, s.Interval(), s.Timeout(),
                           static_cast<size_t>(s.max_output_mb) << 20});
  }
  out.on_done = config.queue.on_done;
  std::error_code ec;
  if (std::filesystem::is_directory(config.repo.path, ec)) out.work_dir = config.repo.path;
  return out;
}

// agent.binary; if unset, the agentd beside this controller binary (an install), else the one
// of the build tree (build/controller/controller -> build/agentd/agentd). Must be executable.
absl::StatusOr<std::string> AgentdBinary(const std::string& configured) {
  std::vector<std::string> candidates = {configured};
  if (configured.empty()) {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) return absl::InternalError("cannot find this controller's own binary");
    std::string path(self, static_cast<size_t>(n));
    std::string dir = path.substr(0, path.rfind('/'));
    candidates = {dir + "/agentd",
                  std::filesystem::path(dir + "/../agentd/agentd").lexically_normal().string()};
  }
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "harness.agent.binary: ", candidates[0], " is not an executable file (",
      std::strerror(errno),
      configured.empty() ? "; it is where the default looks: beside the controller" : "",
      "); set agent.binary, or agent.launcher: none to start agents yourself"));
}

int Run(int argc, char** argv) {
  std::string config_file, listen, state_dir, repo;
  int64_t agents = -1;
  double lease_ttl = -1, hb_interval = -1, hb_timeout = -1;
  bool print_config = false, insecure = false;
  FlagParser flags(
      "controller",
      "usage: controller [--config FILE] [--listen ADDR] [--state-dir DIR] [--repo PATH] "
      "[--agents N]\n\nOwns the work queue and the state dir; grants claim leases to "
      "agentd workers over gRPC.\nFlags override HARNESS_* environment variables, which "
      "override the config file.");
  flags.AddString("config", &config_file, "harness.yaml to read (default: built-in defaults)");
  flags.AddString("listen", &listen, "address to serve on, HOST:PORT (port 0: any free port)");
  flags.AddString("state-dir", &state_dir, "the state dir (queue, claims, journal)");
  flags.AddString("repo", &repo, "the repository agents work on");
  flags.AddInt("agents", &agents, "target pool size", 0, 10000);
  flags.AddDouble("lease-ttl", &lease_ttl, "seconds a lease lives without renewal", 0.001, 86400);
  flags.AddDouble("heartbeat-interval", &hb_interval, "seconds between agent heartbeats", 0.001,
                  3600);
  flags.AddDouble("heartbeat-timeout", &hb_timeout, "seconds of silence before an agent is dead",
                  0.001, 86400);
  flags.AddBool("print-config", &print_config, "print the effective config and exit");
  flags.AddBool("insecure", &insecure,
                "serve a non-loopback address without TLS or tokens (prints a warning)");
  std::vector<std::string> rest = flags.ParseOrExit(argc, argv);
  if (!rest.empty()) flags.Fail(absl::StrCat("unexpected argument \"", rest[0], "\""));

  Config config;
  bool repo_in_file = false;  // the file names a repository on purpose
  if (!config_file.empty()) {
    absl::StatusOr<Config> loaded = LoadConfigFile(config_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "controller: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    config = *loaded;
    repo_in_file = config.repo.path != Config().repo.path || !config.repo.base_branch.empty();
    config.state_dir = ResolveAgainst(config_file, config.state_dir);
    config.repo.path = ResolveAgainst(config_file, config.repo.path);
    for (std::string* path : {&config.tls.cert, &config.tls.key, &config.tls.client_ca,
                              &config.auth.admin_token_file, &config.auth.read_token_file,
                              &config.auth.agent_token_file, &config.agent.tls_ca,
                              &config.agent.tls_cert, &config.agent.tls_key}) {
      *path = ResolveAgainst(config_file, *path);
    }
  }
  if (absl::Status s = ApplyEnvOverrides(&config); !s.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.WasSet("listen")) config.listen = listen;
  if (flags.WasSet("state-dir")) config.state_dir = state_dir;
  if (flags.WasSet("repo")) config.repo.path = repo;
  if (flags.WasSet("agents")) config.parallel_agents = agents;
  if (flags.WasSet("lease-ttl")) config.health_check.lease_ttl = lease_ttl;
  if (flags.WasSet("heartbeat-interval")) config.health_check.heartbeat_interval = hb_interval;
  if (flags.WasSet("heartbeat-timeout")) config.health_check.heartbeat_timeout = hb_timeout;
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (print_config) {
    std::fputs(DescribeConfig(config).c_str(), stdout);
    return 0;
  }
  // Relative paths are taken from the working folder, once: launched agents work in folders of
  // their own, so what is handed to them must not depend on where they run.
  for (std::string* path :
       {&config.state_dir, &config.repo.path, &config.tls.cert, &config.tls.key,
        &config.tls.client_ca, &config.auth.admin_token_file, &config.auth.read_token_file,
        &config.auth.agent_token_file, &config.agent.tls_ca, &config.agent.tls_cert,
        &config.agent.tls_key}) {
    if (!path->empty()) *path = AbsoluteFromHere(*path);
  }
  SetLogFormat(*ParseLogFormat(config.log.format));  // checked by ValidateConfig
  SetLogLevel(*ParseLogLevel(config.log.level));

  absl::StatusOr<ServerSecurity> security = LoadServerSecurity(config);
  if (!security.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(security.status().message()).c_str());
    return 2;
  }
  if (absl::Status s = CheckListenPolicy(config.listen, *security, insecure); !s.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = CheckHttpListenPolicy(config.http.listen, *security, insecure); !s.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (!IsLoopbackListen(config.listen) && (!security->tls() || !security->tokens.Any())) {
    LogWarning(absl::StrCat("--insecure: serving ", config.listen, " without ",
                            security->tls() ? "tokens" : "TLS",
                            security->tls() || security->tokens.Any() ? "" : " or tokens",
                            ": anyone who can reach this port can take work, change the queue "
                            "and read prompts"));
  }
  if (!config.http.listen.empty() && !IsLoopbackListen(config.http.listen) &&
      (!security->tls() || !security->tokens.Any())) {
    LogWarning(absl::StrCat("--insecure: serving HTTP on ", config.http.listen, " without ",
                            security->tls() ? "tokens" : "TLS",
                            security->tls() || security->tokens.Any() ? "" : " or tokens",
                            ": anyone who can reach this port can read the queue, prompts "
                            "included"));
  }
  absl::StatusOr<launch::AgentCredentials> agent_credentials =
      LaunchedAgentCredentials(config, *security);
  if (!agent_credentials.ok()) {
    std::fprintf(stderr, "controller: %s\n",
                 std::string(agent_credentials.status().message()).c_str());
    return 2;
  }
  if (security->tokens.Any() && security->tokens.agent.empty()) {
    LogWarning("tokens are on but there is no agent token (harness.auth.agent_token_file or "
               "HARNESS_AGENT_TOKEN): no agent can connect");
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ControllerOptions opts;
  opts.queue.state_dir = config.state_dir;
  opts.queue.lease_ttl = config.health_check.LeaseTtl();
  opts.queue.defaults.default_max_attempts = static_cast<int>(config.queue.max_attempts);
  opts.queue.defaults.default_timeout_s = config.agent.item_timeout;
  Limits& limits = opts.queue.limits;  // docs/SECURITY.md, "Limits"
  limits.max_prompt_bytes = static_cast<size_t>(config.queue.max_prompt_bytes);
  limits.max_items_per_submit = static_cast<size_t>(config.limits.max_items_per_submit);
  limits.max_queued_items = static_cast<uint64_t>(config.limits.max_queued_items);
  limits.max_labels = static_cast<size_t>(config.limits.max_labels);
  limits.max_label_key_bytes = static_cast<size_t>(config.limits.max_label_key_bytes);
  limits.max_label_value_bytes = static_cast<size_t>(config.limits.max_label_value_bytes);
  limits.max_sessions_per_peer = static_cast<int>(config.limits.max_sessions_per_peer);
  limits.max_log_bytes_per_attempt = static_cast<size_t>(config.limits.max_log_bytes_per_attempt);
  opts.max_message_bytes = static_cast<int>(config.limits.max_message_mb << 20);
  opts.queue.snapshot_after_bytes = static_cast<uint64_t>(config.queue.snapshot_after_mb) << 20;
  opts.heartbeat_interval = config.health_check.HeartbeatInterval();
  opts.heartbeat_timeout = config.health_check.HeartbeatTimeout();
  opts.agent_command = config.agent.command;
  opts.setup = config.repo.setup;
  // Enforced by each agentd on the item's setup and command (sent with every lease).
  opts.command_limits.stall_timeout = config.agent.StallTimeout();
  opts.command_limits.max_memory_mb = config.resource_limits.max_session_memory_mb;
  opts.command_limits.max_cpu_seconds = config.resource_limits.max_cpu_seconds;
  opts.command_limits.nice = static_cast<int>(config.resource_limits.nice);
  PoolManagerOptions& pool = opts.pool;
  pool.launcher = config.agent.launcher;
  pool.pool.target = static_cast<int>(config.parallel_agents);
  pool.pool.startup_stagger = config.AgentStartupStagger();
  pool.pool.restart_delay = config.AgentRestartDelay();
  pool.pool.max_agent_failures = static_cast<int>(config.coordinator.max_agent_failures);
  pool.pool.failure_window = config.coordinator.FailureWindow();
  pool.pool.stop_grace = kLaunchedAgentStopGrace;
  pool.on_alert = config.coordinator.on_alert;
  pool.agent_credentials = *std::move(agent_credentials);
  pool.agent_args = {"--log-format", config.log.format, "--log-level", config.log.level};
  if (pool.launcher == "process") {
    absl::StatusOr<std::string> binary = AgentdBinary(config.agent.binary);
    if (!binary.ok()) {
      std::fprintf(stderr, "controller: %s\n", std::string(binary.status().message()).c_str());
      return 2;
    }
    pool.binary = *binary;
  } else if (pool.launcher == "docker" || pool.launcher == "swarm") {
    // agent.binary names agentd inside the image (default: agentd on the image's PATH).
    pool.binary = config.agent.binary.empty() ? "agentd" : config.agent.binary;
    pool.docker_socket = config.agent.docker.socket;
    pool.swarm_service = config.agent.swarm.service;
    pool.docker_image = config.agent.docker.image.empty()
                            ? absl::StrCat("harness-agent:", HarnessVersion())
                            : config.agent.docker.image;
    // The item's command is limited by agentd inside (sent with every lease); the container
    // gets that much plus room for agentd itself and git.
    if (config.resource_limits.max_session_memory_mb > 0) {
      pool.docker_memory_bytes =
          (config.resource_limits.max_session_memory_mb + kDockerMemoryHeadroomMb) << 20;
    }
    pool.docker_nano_cpus = static_cast<int64_t>(std::llround(config.agent.docker.cpus * 1e9));
  }
  opts.repo_path = config.repo.path;
  opts.base_branch = config.repo.base_branch;
  // Given on purpose (flag, or a path other than the default "."): it must be a repository.
  opts.repo_required = flags.WasSet("repo") || repo_in_file;
  opts.max_pack_bytes = static_cast<uint64_t>(config.repo.max_pack_mb) << 20;
  opts.sources = SourcesOptions(config);
  absl::StatusOr<std::unique_ptr<Controller>> controller = Controller::Open(opts, Clock::Real());
  if (!controller.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(controller.status().message()).c_str());
    // A bad --repo or base branch is bad input (2); anything else a runtime error (1).
    return absl::IsInvalidArgument(controller.status()) ? 2 : 1;
  }
  absl::StatusOr<std::unique_ptr<ControllerServer>> server =
      ControllerServer::Start(controller->get(), config.listen, *security);
  if (!server.ok()) {
    std::fprintf(stderr, "controller: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  const std::string address = (*server)->address();
  StatePaths paths(config.state_dir);
  // The HTTP listener (http.listen): the same tokens as the gRPC port, on threads of its own.
  const AccessPolicy http_access(security->tokens);
  const http::HttpApi http_api(controller->get(), &http_access);
  std::unique_ptr<http::HttpServer> http_server;
  if (!config.http.listen.empty()) {
    absl::StatusOr<std::unique_ptr<http::HttpServer>> h =
        http::HttpServer::Start(&http_api, config.http.listen, *security);
    if (!h.ok()) {
      std::fprintf(stderr, "controller: %s\n", std::string(h.status().message()).c_str());
      return absl::IsInvalidArgument(h.status()) ? 2 : 1;
    }
    http_server = *std::move(h);
    if (absl::Status s = WriteFileAtomically(paths.HttpAddressFile(), http_server->address() + "\n");
        !s.ok()) {
      LogWarning(absl::StrCat("cannot write ", paths.HttpAddressFile(), ": ", s.message()));
    }
    const std::string url = absl::StrCat(http_server->tls() ? "https://" : "http://",
                                         http_server->address());
    std::printf("http: serving %s/metrics and %s/api/v1/, the dashboard at %s/\n", url.c_str(),
                url.c_str(), url.c_str());
    LogInfo(absl::StrCat("http: serving ", url, " (/metrics, /api/v1/, the dashboard at /)"));
  }
  (*controller)->Start(address);
  if (absl::Status s = WriteFileAtomically(paths.AddressFile(), address + "\n"); !s.ok()) {
    LogWarning(absl::StrCat("cannot write ", paths.AddressFile(), ": ", s.message()));
  }
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  LogInfo(absl::StrCat("controller ", HarnessVersion(), " pid ", ::getpid(), " serving on ",
                       address, ", state dir ", config.state_dir));

  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
    if (!security->tls()) {
      LogInfo("SIGHUP: no TLS files to reload");
      continue;
    }
    // The server's file watcher picks the files up by itself; this says whether it can.
    absl::Status s = CheckServerTlsFiles(security->cert, security->key, security->client_ca);
    LogInfo(s.ok() ? absl::StrCat("SIGHUP: the TLS files are valid; new connections use them "
                                  "within ", kTlsRefreshSeconds, " s (open sessions go on)")
                   : absl::StrCat("SIGHUP: the TLS files are not usable, the previous "
                                  "certificates stay in use: ", s.message()));
  }
  LogInfo(absl::StrCat("signal ", sig, ": stopping (no more grants; leases stay on disk)"));
  (*controller)->StopGranting();
  // Launched agents finish or release their items while the server still answers them.
  (*controller)->pool().Shutdown();
  (*server)->Shutdown(absl::Seconds(2));
  server->reset();
  ::unlink(paths.AddressFile().c_str());
  if (http_server) {
    http_server.reset();
    ::unlink(paths.HttpAddressFile().c_str());
  }
  controller->reset();  // waits for every accepted change to be durable
  LogInfo("controller stopped");
  return 0;
}

}  // namespace
}  // namespace harness

int main(int argc, char** argv) {
  // Debian's Abseil is built with deadlock detection on, which costs on every lock.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // A descriptor per agent's connection and up to 256 kept for lease record slots
  // (core/claim_dir.h): take the hard limit, as a shell's soft 1024 is short of a big pool.
  if (rlimit rl; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  return harness::Run(argc, argv);
}
