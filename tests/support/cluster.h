// Real processes for integration tests: a controller on 127.0.0.1 with an OS-chosen port and
// its own state dir, agentd workers, and gRPC stubs to talk to them. Everything started here is
// stopped by pid when its object goes away. A new integration test is ten lines.
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "harness/v1/agent.grpc.pb.h"
#include "harness/v1/control.grpc.pb.h"
#include "rpc/tls_files.h"
#include "tests/support/process.h"

namespace harness::testing {

// Paths of the binaries under test (set by CMake).
std::string ControllerBin();
std::string AgentdBin();
std::string HarnessctlBin();

// A port on 127.0.0.1 that was free a moment ago (for a controller that must restart on the
// same address).
int FreePort();

// Polls `cond` every 20 ms until it holds or `timeout` passes; returns its last value.
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout);

struct ControllerConfig {
  std::string state_dir;               // required
  std::string listen = "127.0.0.1:0";  // a fixed port (FreePort) survives a restart
  double lease_ttl = 3;                // short, for tests (yet safe on a loaded CI machine)
  double heartbeat_interval = 0.2;
  double heartbeat_timeout = 1.5;
  std::vector<std::string> command;  // agent.command; empty: the contract's default
  std::string repo_path;             // repo.path; empty: none (a plain work dir per agent)
  std::string base_branch;           // repo.base_branch
  int64_t max_pack_mb = 0;           // repo.max_pack_mb; 0: the default
  // agent.launcher: tests start their agents themselves unless they test the managed pool.
  std::string launcher = "none";
  int64_t parallel_agents = 0;
  std::string agent_yaml;  // more keys under `agent:`, each line indented by 4 spaces
  std::string extra_yaml;  // more keys under `harness:`, each line indented by 2 spaces
  double stall_timeout = 0;          // agent.stall_timeout; 0: the default
  std::vector<std::string> resource_limits;  // "key: value" lines under resource_limits
  std::vector<std::string> extra_args;
  std::string config_file;  // written from the fields above if empty
  // Put before the controller's argv, e.g. {"/usr/bin/nsenter", "--net=/var/run/netns/N"} to
  // run it in a network namespace (the program must exec it: the pid stays the controller's).
  std::vector<std::string> wrapper;
  // harness.tls and harness.auth (paths; empty: not set). The test's own stubs (control(),
  // agent()) dial with `client_tls` (TLS when its CA is set); tokens go on each call.
  std::string tls_cert, tls_key, tls_client_ca;
  std::string admin_token_file, read_token_file, agent_token_file;
  ClientTls client_tls;
};

class ControllerProcess {
 public:
  // Starts the controller and waits (up to 20 s) until it serves. Fails the test otherwise.
  static std::unique_ptr<ControllerProcess> Start(const ControllerConfig& config,
                                                  const std::string& log_dir);
  ~ControllerProcess();

  const std::string& address() const { return address_; }
  pid_t pid() const { return process_->pid(); }
  void Signal(int sig) { process_->Signal(sig); }
  // Waits for exit; returns the raw wait status.
  int Wait() { return process_->Wait(); }
  v1::ControlService::Stub& control() { return *control_; }
  v1::AgentService::Stub& agent() { return *agent_; }
  const std::string& log_file() const { return log_; }

 private:
  ControllerProcess() = default;
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  std::string log_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ControlService::Stub> control_;
  std::unique_ptr<v1::AgentService::Stub> agent_;
};

// agentd --id ID --controller ADDR --workdir DIR [--command CMD] [extra...]
std::unique_ptr<ChildProcess> StartAgent(const std::string& id, const std::string& controller,
                                         const std::string& workdir, const std::string& command,
                                         const std::string& log_file,
                                         const std::vector<std::string>& extra = {});

// Control-service helpers (deadline 10 s). They fail the test on an RPC error.
std::vector<std::string> Submit(v1::ControlService::Stub& stub,
                                const std::vector<v1::ItemSpec>& items);
v1::ItemSpec MakeItem(const std::string& id, const std::string& prompt, int64_t priority = 0);
v1::StatusSnapshot GetStatus(v1::ControlService::Stub& stub);
v1::Item GetItem(v1::ControlService::Stub& stub, const std::string& id);
grpc::Status CallGet(v1::ControlService::Stub& stub, const std::string& id, v1::Item* out);
std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10));
// A context that carries `token` as `authorization: Bearer <token>` (deadline 10 s).
std::unique_ptr<grpc::ClientContext> TokenCtx(const std::string& token);

// Writes `token` and a line break to `path` (a token file).
void WriteTokenFile(const std::string& path, const std::string& token);
// Runs scripts/make-certs.sh into `dir` (extra: its flags); fails the test if it fails.
void MakeCerts(const std::string& dir, const std::vector<std::string>& extra = {});
// The TLS material of a client: the CA of `dir`, and `name`.pem/.key when `name` is set.
ClientTls ClientTlsFrom(const std::string& dir, const std::string& name = "");

// Runs a command (argv) to completion; returns its exit status and puts stdout/stderr in *out.
int RunCommand(const std::vector<std::string>& argv, std::string* out,
               const std::vector<std::string>& env = {});

}  // namespace harness::testing
