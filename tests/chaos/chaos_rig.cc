// The chaos soak's world (see chaos_rig.h).
#include "tests/chaos/chaos_rig.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "launch/pid_file.h"
#include "launch/proc_stat.h"
#include "tests/support/git_cli.h"

namespace harness::testing {

ChaosRig::ChaosRig(const TempDir& tmp, ChaosOptions options) : tmp_(tmp), options_(options) {}

absl::Status ChaosRig::SetUp() {
  repo_ = tmp_.Sub("repo");
  effects_ = tmp_.Sub("effects");
  if (absl::Status s = MakeDirs(effects_); !s.ok()) return s;
  Git(tmp_.path(), {"init", "-q", "-b", "main", repo_});
  std::ofstream(repo_ + "/README.md") << "chaos soak base\n";
  Git(repo_, {"add", "-A"});
  Git(repo_, {"commit", "-q", "-m", "base"});
  base_ = Git(repo_, {"rev-parse", "HEAD"});

  // One run of an item: its side effect (a file named by item, lease token and pid, outside the
  // state dir, so a full disk cannot hide it), then its result in the worktree (the token, so
  // the landed commit names the lease that made it), then as long as the prompt says. A write
  // that fails (the worktree is on the state dir's disk, which the soak fills) fails the run.
  std::string script = tmp_.Sub("item.sh");
  std::ofstream s(script);
  s << "#!/bin/sh\nset -e\n"
    << "echo \"$HARNESS_AGENT_ID\" > " << effects_
    << "/\"$HARNESS_ITEM_ID.$HARNESS_LEASE_TOKEN.$$\"\n"
    << "echo \"$HARNESS_LEASE_TOKEN\" > result.txt\n"
    << "sleep \"$(cat \"$HARNESS_PROMPT_FILE\")\"\n";
  s.close();
  ::chmod(script.c_str(), 0755);

  if (absl::Status s = fs_.Mount(tmp_.Sub("fs"), options_.fs_mib); !s.ok()) return s;
  config_.state_dir = tmp_.Sub("fs/state");
  config_.listen = absl::StrCat("127.0.0.1:", FreePort());
  config_.launcher = "process";
  config_.parallel_agents = options_.agents;
  config_.lease_ttl = options_.lease_ttl;
  config_.heartbeat_interval = 0.25;
  config_.heartbeat_timeout = options_.heartbeat_timeout;
  config_.command = {"/bin/sh", script};
  config_.repo_path = repo_;
  // Fast respawns, and no slot given up on: the soak kills agents on purpose, far more often
  // than the failure threshold is meant for. Small journal segments, so snapshots and segment
  // deletion happen under the faults too.
  config_.extra_yaml =
      "  agent_startup_stagger: 0.1\n"
      "  agent_restart_delay: 0.2\n"
      "  coordinator:\n    max_agent_failures: 100000\n    failure_window: 60\n"
      "  queue:\n    snapshot_after_mb: 1\n";
  return StartController() ? absl::OkStatus()
                           : absl::InternalError("the controller did not start");
}

bool ChaosRig::StartController() {
  started_at_ = absl::Now();
  controller_ = ControllerProcess::Start(config_, tmp_.path());
  return controller_ != nullptr;
}

void ChaosRig::KillController() {
  if (!controller_) return;
  controller_->Signal(SIGKILL);
  controller_->Wait();
  controller_.reset();
}

int ChaosRig::StopController() {
  if (!controller_) return 0;
  controller_->Signal(SIGTERM);
  int status = controller_->Wait();
  controller_.reset();
  return status;
}

std::vector<LaunchedAgent> ChaosRig::LiveAgents() const {
  std::vector<LaunchedAgent> out;
  StatePaths paths(config_.state_dir);
  for (int slot = 1; slot <= options_.agents; ++slot) {
    std::string id = absl::StrCat("agent-", slot);
    absl::StatusOr<std::string> text = ReadFile(paths.AgentPidFile(id));
    if (!text.ok()) continue;
    absl::StatusOr<launch::PidRecord> r = launch::ParsePidRecord(*text, id);
    if (!r.ok() || r->pid <= 0) continue;
    LaunchedAgent a{id, static_cast<pid_t>(r->pid), r->start_ticks};
    if (launch::IsSameLiveProcess(a.pid, a.start_ticks)) out.push_back(a);
  }
  return out;
}

bool ChaosRig::Signal(const LaunchedAgent& agent, int sig) {
  if (!launch::IsSameLiveProcess(agent.pid, agent.start_ticks)) return false;
  return ::kill(agent.pid, sig) == 0;
}

void ChaosRig::KillAllAgents() const {
  for (const LaunchedAgent& a : LiveAgents()) {
    for (pid_t p : launch::ProcessesInSession(a.pid)) ::kill(p, SIGKILL);
  }
}

void ChaosRig::FillDisk() {
  fs_.Fill();
  disk_full_ = true;
}

void ChaosRig::FreeDisk() {
  fs_.Free();
  disk_full_ = false;
}

int64_t ResidentKib(pid_t pid) {
  absl::StatusOr<std::string> s = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!s.ok()) return 0;
  size_t p = s->find("VmRSS:");
  if (p == std::string::npos) return 0;
  size_t end = s->find('\n', p);
  absl::string_view v = absl::string_view(*s).substr(p + 6, end - p - 6);
  v = absl::StripAsciiWhitespace(v);
  absl::ConsumeSuffix(&v, "kB");
  int64_t kib = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(v), &kib) ? kib : 0;
}

}  // namespace harness::testing
