// Test processes (see cluster.h).
#include "tests/support/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"

extern char** environ;

namespace harness::testing {

std::string ControllerBin() { return HARNESS_CONTROLLER_BIN; }
std::string AgentdBin() { return HARNESS_AGENTD_BIN; }
std::string HarnessctlBin() { return HARNESS_HARNESSCTL_BIN; }

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  absl::Time end = absl::Now() + timeout;
  while (true) {
    if (cond()) return true;
    if (absl::Now() > end) return cond();
    absl::SleepFor(absl::Milliseconds(20));
  }
}

namespace {
std::string YamlList(const std::vector<std::string>& v) {
  std::vector<std::string> q;
  for (const std::string& s : v) {
    std::string e = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') e += '\\';
      e += c;
    }
    q.push_back(e + "\"");
  }
  return absl::StrCat("[", absl::StrJoin(q, ", "), "]");
}
}  // namespace

std::unique_ptr<ControllerProcess> ControllerProcess::Start(const ControllerConfig& config,
                                                            const std::string& log_dir) {
  auto c = std::unique_ptr<ControllerProcess>(new ControllerProcess());
  std::string cfg = config.config_file;
  if (cfg.empty()) {
    cfg = log_dir + "/harness.yaml";
    std::ofstream f(cfg);
    f << "harness:\n  listen: " << config.listen << "\n  state_dir: " << config.state_dir << "\n"
      << "  health_check:\n    heartbeat_interval: " << config.heartbeat_interval
      << "\n    heartbeat_timeout: " << config.heartbeat_timeout
      << "\n    lease_ttl: " << config.lease_ttl << "\n";
    f << "  parallel_agents: " << config.parallel_agents << "\n";
    f << "  agent:\n    launcher: " << config.launcher << "\n" << config.agent_yaml;
    if (!config.command.empty()) f << "    command: " << YamlList(config.command) << "\n";
    if (config.stall_timeout > 0) f << "    stall_timeout: " << config.stall_timeout << "\n";
    if (!config.resource_limits.empty()) f << "  resource_limits:\n";
    for (const std::string& line : config.resource_limits) f << "    " << line << "\n";
    f << config.extra_yaml;
    if (!config.tls_cert.empty()) {
      f << "  tls:\n    cert: " << config.tls_cert << "\n    key: " << config.tls_key << "\n";
      if (!config.tls_client_ca.empty()) f << "    client_ca: " << config.tls_client_ca << "\n";
    }
    if (!config.admin_token_file.empty() || !config.read_token_file.empty() ||
        !config.agent_token_file.empty()) {
      f << "  auth:\n";
      if (!config.admin_token_file.empty()) {
        f << "    admin_token_file: " << config.admin_token_file << "\n";
      }
      if (!config.read_token_file.empty()) {
        f << "    read_token_file: " << config.read_token_file << "\n";
      }
      if (!config.agent_token_file.empty()) {
        f << "    agent_token_file: " << config.agent_token_file << "\n";
      }
    }
    if (!config.repo_path.empty()) {
      f << "  repo:\n    path: " << config.repo_path << "\n";
      if (!config.base_branch.empty()) f << "    base_branch: " << config.base_branch << "\n";
      if (config.max_pack_mb > 0) f << "    max_pack_mb: " << config.max_pack_mb << "\n";
    }
  }
  static int n = 0;
  c->log_ = absl::StrCat(log_dir, "/controller-", n++, ".log");
  std::string out = c->log_ + ".out";
  ::unlink(out.c_str());
  std::vector<std::string> argv = config.wrapper;
  argv.insert(argv.end(), {ControllerBin(), "--config", cfg});
  argv.insert(argv.end(), config.extra_args.begin(), config.extra_args.end());
  c->process_ = std::make_unique<ChildProcess>(ChildProcess::Spawn(argv, out, c->log_));
  bool up = WaitFor(
      [&] {
        absl::StatusOr<std::string> s = ReadFile(out);
        if (!s.ok()) return false;
        size_t p = s->find("listening on ");
        if (p == std::string::npos || s->find('\n', p) == std::string::npos) return false;
        c->address_ = s->substr(p + 13, s->find('\n', p) - p - 13);
        return true;
      },
      absl::Seconds(20));
  if (!up) {
    absl::StatusOr<std::string> log = ReadFile(c->log_);
    ADD_FAILURE() << "controller did not start: " << (log.ok() ? *log : "(no log)");
    return nullptr;
  }
  ChannelOptions channel_options;
  channel_options.tls = config.client_tls;
  c->channel_ = MakeControllerChannel(c->address_, channel_options);
  c->control_ = v1::ControlService::NewStub(c->channel_);
  c->agent_ = v1::AgentService::NewStub(c->channel_);
  return c;
}

ControllerProcess::~ControllerProcess() = default;

std::unique_ptr<ChildProcess> StartAgent(const std::string& id, const std::string& controller,
                                         const std::string& workdir, const std::string& command,
                                         const std::string& log_file,
                                         const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {AgentdBin(), "--id",      id,     "--controller",
                                   controller,  "--workdir", workdir};
  if (!command.empty()) {
    argv.push_back("--command");
    argv.push_back(command);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<ChildProcess>(ChildProcess::Spawn(argv, log_file, log_file));
}

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout) { return MakeContext(timeout); }

std::unique_ptr<grpc::ClientContext> TokenCtx(const std::string& token) {
  return MakeContext(absl::Seconds(10), token);
}

void WriteTokenFile(const std::string& path, const std::string& token) {
  std::ofstream(path) << token << "\n";
}

void MakeCerts(const std::string& dir, const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {std::string(HARNESS_SOURCE_DIR) + "/scripts/make-certs.sh",
                                   dir};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  int status = RunCommand(argv, &out);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
}

ClientTls ClientTlsFrom(const std::string& dir, const std::string& name) {
  absl::StatusOr<ClientTls> tls =
      LoadClientTls(dir + "/ca.pem", name.empty() ? "" : dir + "/" + name + ".pem",
                    name.empty() ? "" : dir + "/" + name + ".key");
  EXPECT_TRUE(tls.ok()) << tls.status();
  return tls.ok() ? *tls : ClientTls{};
}

v1::ItemSpec MakeItem(const std::string& id, const std::string& prompt, int64_t priority) {
  v1::ItemSpec s;
  s.set_id(id);
  s.set_title("test item " + id);
  s.set_prompt(prompt);
  s.set_priority(priority);
  return s;
}

std::vector<std::string> Submit(v1::ControlService::Stub& stub,
                                const std::vector<v1::ItemSpec>& items) {
  v1::SubmitRequest req;
  for (const v1::ItemSpec& s : items) *req.add_items() = s;
  v1::SubmitResponse resp;
  grpc::Status st = stub.Submit(Ctx().get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return {resp.ids().begin(), resp.ids().end()};
}

v1::StatusSnapshot GetStatus(v1::ControlService::Stub& stub) {
  v1::StatusSnapshot s;
  grpc::Status st = stub.Status(Ctx().get(), v1::StatusRequest(), &s);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return s;
}

grpc::Status CallGet(v1::ControlService::Stub& stub, const std::string& id, v1::Item* out) {
  v1::GetRequest req;
  req.set_id(id);
  v1::GetResponse resp;
  grpc::Status st = stub.Get(Ctx().get(), req, &resp);
  *out = resp.item();
  return st;
}

v1::Item GetItem(v1::ControlService::Stub& stub, const std::string& id) {
  v1::Item item;
  grpc::Status st = CallGet(stub, id, &item);
  EXPECT_TRUE(st.ok()) << id << ": " << st.error_message();
  return item;
}

int RunCommand(const std::vector<std::string>& argv, std::string* out,
               const std::vector<std::string>& env) {
  char tmpl[] = "/tmp/harness-cmd-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return -1;
  ::close(fd);
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  envs.insert(envs.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, tmpl, O_WRONLY | O_TRUNC, 0);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  absl::StatusOr<std::string> s = ReadFile(tmpl);
  *out = s.ok() ? *s : "";
  ::unlink(tmpl);
  return status;
}

}  // namespace harness::testing
