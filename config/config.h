// Config: the controller's settings from harness.yaml (CONTRACT.md, "Configuration"), the
// HARNESS_* environment overrides and the checks they all share. Precedence is
// flags > env > file > defaults: a caller loads the file (or starts from `Config{}`), applies
// ApplyEnvOverrides, applies its own flags, then calls ValidateConfig once more.
//
// Not here: resolving relative paths (see ResolveAgainst) and acting on any value. Every key is
// documented in docs/CONFIG.md; keep the two in step.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace harness {

// Durations in the file are seconds and may be fractional. Finite values only.
absl::Duration Seconds(double seconds);

struct RepoConfig {
  std::string path = ".";          // the repository agents work on
  std::string base_branch;         // empty: the repository's HEAD branch
  std::vector<std::string> setup;  // argv run in a fresh worktree before the agent command
  int64_t max_pack_mb = 1024;      // largest pack an agent may upload (MiB)

  bool operator==(const RepoConfig&) const = default;
};

// agent.docker: the docker and swarm launchers' daemon (swarm: a manager's) and image (read
// with launcher: docker or swarm only).
struct DockerConfig {
  std::string socket = "/var/run/docker.sock";  // the Docker daemon's unix socket
  std::string image;  // the agent image; empty: harness-agent:<this controller's version>
  double cpus = 0;    // each agent container's CPU limit in CPUs (docker --cpus); 0: none
  bool operator==(const DockerConfig&) const = default;
};

// agent.swarm: the swarm launcher's service (read with launcher: swarm only).
struct SwarmConfig {
  std::string service = "harness-agents";  // the Swarm service whose tasks are the agents
  bool operator==(const SwarmConfig&) const = default;
};

struct AgentConfig {
  std::string launcher = "process";  // process | docker | swarm | none
  std::string binary;                // empty: the agentd beside the controller binary
  std::vector<std::string> command = {"claude", "-p", "{prompt}", "--output-format", "stream-json"};
  double item_timeout = 3600;  // seconds
  double stall_timeout = 900;  // seconds without output or file change: the command is stopped
  DockerConfig docker;
  SwarmConfig swarm;
  // What the agents the controller launches present (docs/SECURITY.md): the CA they trust for
  // the controller's certificate (needed with tls.cert), and their client certificate and key
  // (needed with tls.client_ca). Paths on the controller's host; checked at start.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;

  absl::Duration ItemTimeout() const { return Seconds(item_timeout); }
  absl::Duration StallTimeout() const { return Seconds(stall_timeout); }
  bool operator==(const AgentConfig&) const = default;
};

struct HealthCheckConfig {
  double heartbeat_interval = 5;  // seconds
  double heartbeat_timeout = 30;  // silent this long: dead
  double lease_ttl = 30;          // seconds a lease lives without a renewal

  absl::Duration HeartbeatInterval() const { return Seconds(heartbeat_interval); }
  absl::Duration HeartbeatTimeout() const { return Seconds(heartbeat_timeout); }
  absl::Duration LeaseTtl() const { return Seconds(lease_ttl); }
  bool operator==(const HealthCheckConfig&) const = default;
};

struct CoordinatorConfig {
  int64_t max_agent_failures = 3;     // deaths of one slot within failure_window
  double failure_window = 600;        // seconds
  std::vector<std::string> on_alert;  // argv run with HARNESS_ALERT in its env

  absl::Duration FailureWindow() const { return Seconds(failure_window); }
  bool operator==(const CoordinatorConfig&) const = default;
};

struct ResourceLimitsConfig {
  int64_t max_session_memory_mb = 8192;  // 0: no limit
  int64_t max_cpu_seconds = 36000;       // 0: no limit
  int64_t nice = 10;                     // -20..19

  bool operator==(const ResourceLimitsConfig&) const = default;
};

// One work source (queue.sources, docs/SOURCES.md): a command the controller runs every
// `interval` seconds, whose standard output is a JSON array of items to add.
struct SourceConfig {
  std::string name;                  // [A-Za-z0-9][A-Za-z0-9._-]{0,63}, unique; the `source` label
  std::vector<std::string> command;  // argv, run without a shell
  double interval = 60;              // seconds from the end of one run to the start of the next
  double timeout = 60;               // seconds a run may take before it is killed
  int64_t max_output_mb = 16;        // a run printing more (stdout) is killed and refused

  absl::Duration Interval() const { return Seconds(interval); }
  absl::Duration Timeout() const { return Seconds(timeout); }
  bool operator==(const SourceConfig&) const = default;
};

struct QueueConfig {
  int64_t max_attempts = 3;            // default for items submitted without max_attempts
  int64_t max_prompt_bytes = 1048576;  // larger prompts are refused
  int64_t snapshot_after_mb = 64;      // journal size that triggers a snapshot
  std::vector<SourceConfig> sources;   // work sources (docs/SOURCES.md)
  std::vector<std::string> on_done;    // argv run when an item from a source ends done ({id})

  bool operator==(const QueueConfig&) const = default;
};

// What one peer may send the controller or make it keep (docs/SECURITY.md, "Limits"; the
// rules are core/limits.h). queue.max_prompt_bytes and repo.max_pack_mb are limits too.
struct LimitsConfig {
  int64_t max_message_mb = 64;               // gRPC receive size of one message (server)
  int64_t max_items_per_submit = 100000;     // items in one submit call
  int64_t max_queued_items = 1000000;        // items not yet ended (pending + leased)
  int64_t max_labels = 64;                   // labels of one item
  int64_t max_label_key_bytes = 128;         // one label key
  int64_t max_label_value_bytes = 1024;      // one label value
  int64_t max_sessions_per_peer = 10000;     // open agent Session streams from one host
  int64_t max_log_bytes_per_attempt = 65536; // log tail kept per attempt (the end is kept)

  bool operator==(const LimitsConfig&) const = default;
};

// Files holding the bearer tokens (one token each; a trailing newline is dropped). All empty:
// no token is asked for. HARNESS_ADMIN_TOKEN, HARNESS_READ_TOKEN and HARNESS_AGENT_TOKEN (read
// by the controller, not by ApplyEnvOverrides) override them. See docs/SECURITY.md.
struct AuthConfig {
  std::string admin_token_file;  // the control service's mutating calls, and all reads
  std::string read_token_file;   // status, list, get, agents, watch
  std::string agent_token_file;  // the agent service only

  bool operator==(const AuthConfig&) const = default;
};

struct TlsConfig {
  std::string cert;       // PEM files; cert and key both empty: no TLS
  std::string key;
  std::string client_ca;  // set: every client must present a certificate it signed (mTLS)

  bool operator==(const TlsConfig&) const = default;
};

// http: the controller's HTTP listener (/metrics, the JSON API; docs/HTTP.md).
struct HttpConfig {
  std::string listen;  // HOST:PORT (port 0: a free one); empty: no HTTP listener

  bool operator==(const HttpConfig&) const = default;
};

// log: the controller's own log lines on stderr (docs/CONFIG.md, docs/CONTROLLER.md). The
// controller passes both to the agents it launches (agentd --log-format, --log-level).
struct LogConfig {
  std::string format = "text";  // text | json (one JSON object per line)
  std::string level = "info";   // debug | info | warning | error

  bool operator==(const LogConfig&) const = default;
};

struct Config {
  std::string listen = "127.0.0.1:7070";
  std::string state_dir = "./state";  // kept as written; see ResolveAgainst
  int64_t parallel_agents = 3;        // target pool size
  double agent_startup_stagger = 5;   // seconds
  double agent_restart_delay = 10;    // seconds
  RepoConfig repo;
  AgentConfig agent;
  HealthCheckConfig health_check;
  CoordinatorConfig coordinator;
  ResourceLimitsConfig resource_limits;
  QueueConfig queue;
  LimitsConfig limits;
  AuthConfig auth;
  TlsConfig tls;
  HttpConfig http;
  LogConfig log;

  absl::Duration AgentStartupStagger() const { return Seconds(agent_startup_stagger); }
  absl::Duration AgentRestartDelay() const { return Seconds(agent_restart_delay); }
  bool operator==(const Config&) const = default;
};

// Reads harness.yaml. The root key is `harness:`; an empty file, or one holding only
// `harness:`, gives the defaults. Errors (InvalidArgument; NotFound for a missing file) are one
// line naming the file, the 1-based line, the key path and the value:
//   harness.yaml:12: unknown key "foo" in harness.agent
//   harness.yaml:4: harness.parallel_agents must be between 0 and 10000, got 20000
// Unknown keys, duplicate keys, wrong types and out-of-range values are all errors, and so is
// anything ValidateConfig refuses. Relative paths are returned as written.
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

// Applies HARNESS_LISTEN, HARNESS_STATE_DIR, HARNESS_PARALLEL_AGENTS,
// HARNESS_HEARTBEAT_INTERVAL, HARNESS_HEARTBEAT_TIMEOUT, HARNESS_LEASE_TTL, HARNESS_LOG_FORMAT
// and HARNESS_LOG_LEVEL. A variable that is unset or empty changes nothing. On a bad value
// (InvalidArgument, naming the variable and
// the value) `config` is left unchanged.
absl::Status ApplyEnvOverrides(Config* config,
                               const std::function<const char*(const char*)>& getenv = ::getenv);

// Every check on values, per key and across keys (heartbeat_timeout > heartbeat_interval,
// lease_ttl > heartbeat_interval, ...). Messages name the key path and the value. Call it after
// applying flags.
absl::Status ValidateConfig(const Config& config);

// The effective config as a harness.yaml document that LoadConfigFile reads back to the same
// Config. It holds no secret (tokens live in files or the environment).
std::string DescribeConfig(const Config& config);

// `path` as seen from the folder of `config_file`: absolute paths and empty strings are
// returned as they are; relative ones are joined to the file's folder and normalised
// ("/etc/h/harness.yaml", "./state" -> "/etc/h/state"). A config file with no folder part
// leaves `path` relative to the working directory.
std::string ResolveAgainst(const std::string& config_file, const std::string& path);

// PATH made absolute against the working folder ("./state" -> "/srv/x/state"); an absolute or
// empty path is returned as it is.
std::string AbsoluteFromHere(const std::string& path);

// Checks a listen address: HOST:PORT, [IPv6]:PORT or :PORT (all interfaces), port 0-65535
// (0 picks a free port). Shared with the controller's --listen flag.
absl::Status ValidateListenAddress(const std::string& address);

}  // namespace harness
