// harness.yaml (CONTRACT.md, "Configuration"): the contract's example and defaults, unknown and
// duplicate keys named with their 1-based line, bad values named with file, line, key and value,
// the HARNESS_* overrides, fractional durations and DescribeConfig reading back to the same Config.
#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::Msg;
using ::harness::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// The example of CONTRACT.md, verbatim.
constexpr char kContractExample[] = R"(harness:
  listen: 127.0.0.1:7070
  state_dir: ./state
  parallel_agents: 3            # target pool size (harnessctl scale changes it at run time)
  agent_startup_stagger: 5
  agent_restart_delay: 10
  repo:
    path: .                     # the repository agents work on
    base_branch: ""             # empty: the repository's HEAD branch
    setup: []                   # argv run in a fresh worktree before the agent command (e.g. ["npm", "ci"])
  agent:
    launcher: process           # process | docker | swarm | none
    binary: ""                  # agentd to launch; empty: the agentd beside the controller binary
    command: ["claude", "-p", "{prompt}", "--output-format", "stream-json"]
    item_timeout: 3600
  health_check:
    heartbeat_interval: 5
    heartbeat_timeout: 30       # silent this long: dead
    lease_ttl: 30
  coordinator:
    max_agent_failures: 3       # deaths of one slot within failure_window before it stops respawning
    failure_window: 600
    on_alert: []                # command run with HARNESS_ALERT in its env
  resource_limits:
    max_session_memory_mb: 8192
    max_cpu_seconds: 36000
    nice: 10
)";

// Every key set to something other than its default.
constexpr char kEveryKey[] = R"(harness:
  listen: "0.0.0.0:9090"
  state_dir: /var/lib/harness
  parallel_agents: 12
  agent_startup_stagger: 0.5
  agent_restart_delay: 2.25
  repo:
    path: ../project
    base_branch: main
    setup: [npm, ci]
  agent:
    launcher: none
    binary: /usr/local/bin/agentd
    command:
      - my-agent
      - --task
      - "{prompt}"
    item_timeout: 90.5
    stall_timeout: 45
    docker:
      socket: /run/user/1000/docker.sock
      image: my-agent:2
      cpus: 1.5
    swarm:
      service: my-agents
  health_check:
    heartbeat_interval: 0.25
    heartbeat_timeout: 1.5
    lease_ttl: 2
  coordinator:
    max_agent_failures: 7
    failure_window: 120
    on_alert: ["notify-send", "harness"]
  resource_limits:
    max_session_memory_mb: 1024
    max_cpu_seconds: 0
    nice: -5
  queue:
    max_attempts: 5
    max_prompt_bytes: 2048
    snapshot_after_mb: 8
    sources:
      - name: bd
        command: [bd, ready, --json]
        interval: 30
        timeout: 10
        max_output_mb: 2
    on_done: [bd, close, "{id}"]
  limits:
    max_message_mb: 16
    max_items_per_submit: 500
    max_queued_items: 20000
    max_labels: 8
    max_label_key_bytes: 40
    max_label_value_bytes: 200
    max_sessions_per_peer: 32
    max_log_bytes_per_attempt: 4096
  auth:
    admin_token_file: secrets/admin
    read_token_file: secrets/read
    agent_token_file: secrets/agent
  tls:
    cert: certs/server.pem
    key: certs/server.key
    client_ca: certs/ca.pem
  http:
    listen: 127.0.0.1:9100
)";

class ConfigTest : public ::testing::Test {
 protected:
  // Writes `text` to <tmp>/harness.yaml and returns the path.
  std::string Write(const std::string& text, const std::string& name = "harness.yaml") {
    std::string path = dir_.Sub(name);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
  }
  absl::StatusOr<Config> Load(const std::string& text) { return LoadConfigFile(Write(text)); }
  // The error LoadConfigFile gives for `text`; fails the test if it loads.
  std::string LoadError(const std::string& text) {
    absl::StatusOr<Config> c = Load(text);
    EXPECT_FALSE(c.ok()) << "loaded without error:\n" << text;
    if (c.ok()) return "";
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
    return Msg(c.status());
  }
  // "<tmp>/harness.yaml:<line>: "
  std::string At(int line) { return absl::StrCat(dir_.Sub("harness.yaml"), ":", line, ": "); }

  TempDir dir_;
};

Config EveryKeyConfig() {
  Config c;
  c.listen = "0.0.0.0:9090";
  c.state_dir = "/var/lib/harness";
  c.parallel_agents = 12;
  c.agent_startup_stagger = 0.5;
  c.agent_restart_delay = 2.25;
  c.repo = {"../project", "main", {"npm", "ci"}};
  c.agent.launcher = "none";
  c.agent.binary = "/usr/local/bin/agentd";
  c.agent.command = {"my-agent", "--task", "{prompt}"};
  c.agent.item_timeout = 90.5;
  c.agent.stall_timeout = 45;
  c.agent.docker.socket = "/run/user/1000/docker.sock";
  c.agent.docker.image = "my-agent:2";
  c.agent.docker.cpus = 1.5;
  c.agent.swarm.service = "my-agents";
  c.health_check = {0.25, 1.5, 2};
  c.coordinator = {7, 120, {"notify-send", "harness"}};
  c.resource_limits = {1024, 0, -5};
  c.queue = {5, 2048, 8, {{"bd", {"bd", "ready", "--json"}, 30, 10, 2}}, {"bd", "close", "{id}"}};
  c.limits = {16, 500, 20000, 8, 40, 200, 32, 4096};
  c.auth = {"secrets/admin", "secrets/read", "secrets/agent"};
  c.tls = {"certs/server.pem", "certs/server.key", "certs/ca.pem"};
  c.http.listen = "127.0.0.1:9100";
  return c;
}

// ---------------------------------------------------------------------------------------------
// Values and defaults

TEST_F(ConfigTest, DefaultsAreTheContractValues) {
  Config c;
  EXPECT_EQ(c.listen, "127.0.0.1:7070");
  EXPECT_EQ(c.state_dir, "./state");
  EXPECT_EQ(c.parallel_agents, 3);
  EXPECT_EQ(c.agent_startup_stagger, 5);
  EXPECT_EQ(c.agent_restart_delay, 10);
  EXPECT_EQ(c.repo.path, ".");
  EXPECT_EQ(c.repo.base_branch, "");
  EXPECT_THAT(c.repo.setup, IsEmpty());
  EXPECT_EQ(c.agent.launcher, "process");
  EXPECT_EQ(c.agent.binary, "");
  EXPECT_THAT(c.agent.command,
              ElementsAre("claude", "-p", "{prompt}", "--output-format", "stream-json"));
  EXPECT_EQ(c.agent.item_timeout, 3600);
  EXPECT_EQ(c.agent.stall_timeout, 900);
  EXPECT_EQ(c.agent.docker.socket, "/var/run/docker.sock");
  EXPECT_EQ(c.agent.docker.image, "");
  EXPECT_EQ(c.agent.docker.cpus, 0);
  EXPECT_EQ(c.agent.swarm.service, "harness-agents");
  EXPECT_EQ(c.health_check.heartbeat_interval, 5);
  EXPECT_EQ(c.health_check.heartbeat_timeout, 30);
  EXPECT_EQ(c.health_check.lease_ttl, 30);
  EXPECT_EQ(c.coordinator.max_agent_failures, 3);
  EXPECT_EQ(c.coordinator.failure_window, 600);
  EXPECT_THAT(c.coordinator.on_alert, IsEmpty());
  EXPECT_EQ(c.resource_limits.max_session_memory_mb, 8192);
  EXPECT_EQ(c.resource_limits.max_cpu_seconds, 36000);
  EXPECT_EQ(c.resource_limits.nice, 10);
  EXPECT_EQ(c.queue.max_attempts, 3);
  EXPECT_EQ(c.queue.max_prompt_bytes, 1048576);
  EXPECT_EQ(c.queue.snapshot_after_mb, 64);
  EXPECT_EQ(c.limits.max_message_mb, 64);
  EXPECT_EQ(c.limits.max_items_per_submit, 100000);
  EXPECT_EQ(c.limits.max_queued_items, 1000000);
  EXPECT_EQ(c.limits.max_labels, 64);
  EXPECT_EQ(c.limits.max_label_key_bytes, 128);
  EXPECT_EQ(c.limits.max_label_value_bytes, 1024);
  EXPECT_EQ(c.limits.max_sessions_per_peer, 10000);
  EXPECT_EQ(c.limits.max_log_bytes_per_attempt, 65536);
  EXPECT_EQ(c.auth.admin_token_file, "");
  EXPECT_EQ(c.auth.read_token_file, "");
  EXPECT_EQ(c.auth.agent_token_file, "");
  EXPECT_EQ(c.tls.cert, "");
  EXPECT_EQ(c.tls.key, "");
  EXPECT_EQ(c.tls.client_ca, "");
  EXPECT_OK(ValidateConfig(c));
}

TEST_F(ConfigTest, ContractExampleParsesToTheContractValues) {
  absl::StatusOr<Config> c = Load(kContractExample);
  ASSERT_OK(c);
  EXPECT_EQ(*c, Config{});
  EXPECT_EQ(c->listen, "127.0.0.1:7070");
  EXPECT_THAT(c->agent.command,
              ElementsAre("claude", "-p", "{prompt}", "--output-format", "stream-json"));
  EXPECT_EQ(c->health_check.HeartbeatTimeout(), absl::Seconds(30));
  EXPECT_EQ(c->resource_limits.nice, 10);
}

TEST_F(ConfigTest, EveryKeyIsReadFromTheFile) {
  absl::StatusOr<Config> c = Load(kEveryKey);
  ASSERT_OK(c);
  EXPECT_EQ(*c, EveryKeyConfig());
}

TEST_F(ConfigTest, EmptyFileGivesTheDefaults) {
  absl::StatusOr<Config> c = Load("");
  ASSERT_OK(c);
  EXPECT_EQ(*c, Config{});
}

TEST_F(ConfigTest, FileWithOnlyTheRootKeyGivesTheDefaults) {
  for (const char* text : {"harness:\n", "harness:", "# comment\nharness:  # nothing yet\n",
                           "# only a comment\n", "harness: {}\n"}) {
    absl::StatusOr<Config> c = Load(text);
    ASSERT_OK(c) << text;
    EXPECT_EQ(*c, Config{}) << text;
  }
}

TEST_F(ConfigTest, EmptySectionsAndEmptyValuesGiveDefaultsAndEmptyStrings) {
  absl::StatusOr<Config> c = Load(
      "harness:\n  repo:\n  health_check: {}\n  agent:\n    binary:\n  coordinator:\n"
      "    on_alert:\n  auth:\n    admin_token_file: ~\n");
  ASSERT_OK(c);
  EXPECT_EQ(*c, Config{});
}

TEST_F(ConfigTest, FractionalDurationsAreKeptExactly) {
  absl::StatusOr<Config> c = Load(
      "harness:\n  agent_startup_stagger: 0.1\n  agent_restart_delay: 1e-3\n"
      "  agent:\n    item_timeout: 0.75\n"
      "  health_check:\n    heartbeat_interval: 0.2\n    heartbeat_timeout: 1.5\n"
      "    lease_ttl: 2.5\n  coordinator:\n    failure_window: 30.125\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->agent_startup_stagger, 0.1);
  EXPECT_EQ(c->AgentStartupStagger(), absl::Milliseconds(100));
  EXPECT_EQ(c->AgentRestartDelay(), absl::Milliseconds(1));
  EXPECT_EQ(c->agent.ItemTimeout(), absl::Milliseconds(750));
  EXPECT_EQ(c->health_check.HeartbeatInterval(), absl::Milliseconds(200));
  EXPECT_EQ(c->health_check.HeartbeatTimeout(), absl::Milliseconds(1500));
  EXPECT_EQ(c->health_check.LeaseTtl(), absl::Milliseconds(2500));
  EXPECT_EQ(c->coordinator.FailureWindow(), absl::Milliseconds(30125));
}

TEST_F(ConfigTest, SecondsHelperTurnsFractionalSecondsIntoDurations) {
  EXPECT_EQ(Seconds(0), absl::ZeroDuration());
  EXPECT_EQ(Seconds(2.5), absl::Milliseconds(2500));
  EXPECT_EQ(Seconds(0.001), absl::Milliseconds(1));
  EXPECT_EQ(Seconds(3600), absl::Hours(1));
}

TEST_F(ConfigTest, RelativePathsAreKeptAsWrittenAndResolvedAgainstTheFilesFolder) {
  absl::StatusOr<Config> c = Load("harness:\n  state_dir: data/state\n  repo:\n    path: ..\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->state_dir, "data/state");
  EXPECT_EQ(c->repo.path, "..");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", "./state"), "/etc/harness/state");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", "data/state"), "/etc/harness/data/state");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", "."), "/etc/harness");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", "../repo/"), "/etc/repo");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", "/srv/repo"), "/srv/repo");
  EXPECT_EQ(ResolveAgainst("conf/harness.yaml", "state"), "conf/state");
  EXPECT_EQ(ResolveAgainst("harness.yaml", "./state"), "./state");
  EXPECT_EQ(ResolveAgainst("/etc/harness/harness.yaml", ""), "");
}

TEST_F(ConfigTest, PathsHandedToLaunchedAgentsAreMadeAbsoluteAgainstTheWorkingFolder) {
  const std::string here = std::filesystem::current_path().string();
  EXPECT_EQ(AbsoluteFromHere("."), here);
  EXPECT_EQ(AbsoluteFromHere("./state"), here + "/state");
  EXPECT_EQ(AbsoluteFromHere("state/"), here + "/state");
  EXPECT_EQ(AbsoluteFromHere("/srv/repo"), "/srv/repo");
  EXPECT_EQ(AbsoluteFromHere(""), "");
}

// ---------------------------------------------------------------------------------------------
// Unknown and duplicate keys

TEST_F(ConfigTest, UnknownKeyInASectionIsNamedWithTheSectionAndItsLine) {
  // The example of the brief: line 12, key foo, section harness.agent.
  std::string text = R"(harness:
  listen: 127.0.0.1:7070
  state_dir: ./state
  parallel_agents: 3
  repo:
    path: .
    base_branch: ""
  agent:
    launcher: process
    binary: ""
    item_timeout: 3600
    foo: 1
)";
  EXPECT_EQ(LoadError(text), At(12) + "unknown key \"foo\" in harness.agent");
}

TEST_F(ConfigTest, UnknownKeyDirectlyUnderHarnessIsNamedWithItsLine) {
  EXPECT_EQ(LoadError("harness:\n  listen: 127.0.0.1:7070\n  colour: blue\n"),
            At(3) + "unknown key \"colour\" in harness");
}

TEST_F(ConfigTest, UnknownTopLevelKeyBesideHarnessIsNamedWithItsLine) {
  EXPECT_THAT(LoadError("harness:\n  parallel_agents: 2\n\nlogging:\n  level: debug\n"),
              AllOf(StartsWith(At(4)), HasSubstr("unknown key \"logging\" at the top level")));
}

TEST_F(ConfigTest, WrongRootKeyIsNamedWithItsLineAndTheRightOne) {
  EXPECT_EQ(LoadError("# settings\n\nharnes:\n  listen: 127.0.0.1:7070\n"),
            At(3) + "unknown key \"harnes\" at the top level; the root key must be \"harness\"");
  EXPECT_THAT(LoadError("controller:\n  listen: :0\n"),
              AllOf(StartsWith(At(1)), HasSubstr("\"controller\""), HasSubstr("\"harness\"")));
}

TEST_F(ConfigTest, UnknownKeyIsNamedInEverySection) {
  const std::vector<std::string> sections = {"repo",  "agent",  "health_check", "coordinator",
                                             "resource_limits", "queue", "limits", "auth", "tls"};
  for (const std::string& s : sections) {
    std::string text = absl::StrCat("harness:\n  parallel_agents: 1\n  ", s, ":\n    bogus: 1\n");
    EXPECT_EQ(LoadError(text), At(4) + "unknown key \"bogus\" in harness." + s);
  }
}

TEST_F(ConfigTest, UnknownKeyInAFlowMapIsNamedWithItsLine) {
  EXPECT_THAT(
      LoadError("harness:\n  health_check: {lease_ttl: 30,\n    lease_ttI: 3}\n"),
      AllOf(StartsWith(At(3)), HasSubstr("unknown key \"lease_ttI\" in harness.health_check")));
}

TEST_F(ConfigTest, MisspelledKeySuggestsTheKeyItResembles) {
  EXPECT_THAT(LoadError("harness:\n  health_check:\n    heartbeat_intervall: 5\n"),
              AllOf(StartsWith(At(3)),
                    HasSubstr("unknown key \"heartbeat_intervall\" in harness.health_check"),
                    HasSubstr("did you mean \"heartbeat_interval\"?")));
  // Nothing alike: no suggestion.
  EXPECT_THAT(LoadError("harness:\n  agent:\n    zzz: 1\n"),
              ::testing::Not(HasSubstr("did you mean")));
}

// yaml-cpp 0.7's LoadAll loops forever (allocating) on these; found by fuzz/item_file_fuzz.
TEST_F(ConfigTest, AStrayCommaOrFlowEndIsASyntaxErrorNotAnEndlessLoop) {
  EXPECT_EQ(LoadError(",}\n"), At(1) +
                                   "YAML syntax error at column 1: unexpected character where "
                                   "a document should start");
  EXPECT_THAT(LoadError("harness:\n  listen: :0\n...\n, p]\n"),
              ::testing::StartsWith(At(4) + "YAML syntax error"));
}

// yaml-cpp keeps such bytes but writes them back as U+FFFD, so DescribeConfig's document
// loaded to another config; found by fuzz/config_fuzz.
TEST_F(ConfigTest, AValueThatIsNotUtf8IsRefusedWithItsKey) {
  EXPECT_EQ(
      LoadError("harness:\n  tls:\n    key: s\xed\xff\n"),
      At(3) + "harness.tls.key is not valid UTF-8 (a YAML file is UTF-8), got \"s\\355\\377\"");
  EXPECT_THAT(LoadError("harness:\n  agent:\n    command: [a, b\xff]\n"),
              ::testing::HasSubstr("harness.agent.command[1] is not valid UTF-8"));
}

TEST_F(ConfigTest, DuplicateKeyIsRefusedWithBothLines) {
  EXPECT_EQ(LoadError("harness:\n  parallel_agents: 3\n  listen: :0\n  parallel_agents: 5\n"),
            At(4) + "duplicate key \"parallel_agents\" in harness (first at line 2)");
}

TEST_F(ConfigTest, DuplicateKeyInANestedSectionIsRefused) {
  EXPECT_EQ(LoadError("harness:\n  agent:\n    launcher: process\n    item_timeout: 5\n"
                      "    launcher: none\n"),
            At(5) + "duplicate key \"launcher\" in harness.agent (first at line 3)");
}

TEST_F(ConfigTest, DuplicateSectionOrRootKeyIsRefused) {
  EXPECT_EQ(LoadError("harness:\n  repo:\n    path: a\n  repo:\n    path: b\n"),
            At(4) + "duplicate key \"repo\" in harness (first at line 2)");
  EXPECT_EQ(LoadError("harness:\n  listen: :1\nharness:\n  listen: :2\n"),
            At(3) + "duplicate key \"harness\" at the top level (first at line 1)");
}

// ---------------------------------------------------------------------------------------------
// Bad values: each names the file, the line, the key and the value.

struct BadValue {
  std::string name;  // the test's name
  std::string text;  // the file
  int line;
  std::vector<std::string> says;  // substrings of the message (key, value, rule)
};

// Test names and failure output show the case's name, not its bytes.
void PrintTo(const BadValue& b, std::ostream* os) { *os << b.name; }

class ConfigBadValueTest : public ConfigTest, public ::testing::WithParamInterface<BadValue> {};

TEST_P(ConfigBadValueTest, IsRefusedNamingFileLineKeyAndValue) {
  const BadValue& b = GetParam();
  std::string message = LoadError(b.text);
  EXPECT_THAT(message, StartsWith(At(b.line)));
  for (const std::string& s : b.says) EXPECT_THAT(message, HasSubstr(s));
}

std::vector<BadValue> BadValues() {
  const std::string h = "harness:\n";
  return {
      {"ParallelAgentsBelowZero",
       h + "  parallel_agents: -1\n",
       2,
       {"harness.parallel_agents", "between 0 and 10000", "got -1"}},
      {"ParallelAgentsAboveTenThousand",
       h + "  listen: :0\n  parallel_agents: 10001\n",
       3,
       {"harness.parallel_agents", "got 10001"}},
      {"ParallelAgentsNotANumber",
       h + "  parallel_agents: many\n",
       2,
       {"harness.parallel_agents must be an integer", "\"many\""}},
      {"ParallelAgentsFractional",
       h + "  parallel_agents: 2.5\n",
       2,
       {"harness.parallel_agents must be an integer", "\"2.5\""}},
      {"ParallelAgentsQuoted",
       h + "  parallel_agents: \"4\"\n",
       2,
       {"harness.parallel_agents must be an integer", "the string \"4\""}},
      {"ParallelAgentsAList",
       h + "  parallel_agents: [1]\n",
       2,
       {"harness.parallel_agents must be an integer", "a list"}},
      {"NegativeStartupStagger",
       h + "  agent_startup_stagger: -1\n",
       2,
       {"harness.agent_startup_stagger", "0 or more seconds", "got -1"}},
      {"NegativeRestartDelay",
       h + "  agent_restart_delay: -0.5\n",
       2,
       {"harness.agent_restart_delay", "got -0.5"}},
      {"DurationWithAUnit",
       h + "  agent_restart_delay: 10s\n",
       2,
       {"harness.agent_restart_delay must be a number of seconds", "\"10s\""}},
      {"InfiniteDuration",
       h + "  agent:\n    item_timeout: .inf\n",
       3,
       {"harness.agent.item_timeout", "\".inf\""}},
      {"ZeroItemTimeout",
       h + "  agent:\n    item_timeout: 0\n",
       3,
       {"harness.agent.item_timeout must be more than 0 seconds", "got 0"}},
      {"NegativeItemTimeout",
       h + "  agent:\n    item_timeout: -5\n",
       3,
       {"harness.agent.item_timeout", "got -5"}},
      {"ZeroStallTimeout",
       h + "  agent:\n    stall_timeout: 0\n",
       3,
       {"harness.agent.stall_timeout must be more than 0 seconds", "got 0"}},
      {"UnknownLauncher",
       h + "  agent:\n    launcher: kubernetes\n",
       3,
       {"harness.agent.launcher must be one of process, docker, swarm, none", "\"kubernetes\""}},
      {"DockerSocketNotAbsolute",
       h + "  agent:\n    launcher: docker\n    docker:\n      socket: docker.sock\n",
       5,
       {"harness.agent.docker.socket must be the absolute path", "\"docker.sock\""}},
      {"DockerCpusNegative",
       h + "  agent:\n    launcher: docker\n    docker:\n      cpus: -1\n",
       5,
       {"harness.agent.docker.cpus must be a number of CPUs from 0 (no limit) to 4096", "got -1"}},
      {"DockerCpusNotANumber",
       h + "  agent:\n    launcher: docker\n    docker:\n      cpus: two\n",
       5,
       {"harness.agent.docker.cpus must be a number (e.g. 2 or 0.5)", "two"}},
      {"SwarmServiceNotAName",
       h + "  agent:\n    launcher: swarm\n    swarm:\n      service: \"my agents\"\n",
       5,
       {"harness.agent.swarm.service must match", "\"my agents\""}},
      {"DockerUnknownKey",
       h + "  agent:\n    docker:\n      sockit: /x\n",
       4,
       {"sockit"}},
      {"EmptyCommandList",
       h + "  agent:\n    binary: x\n    command: []\n",
       4,
       {"harness.agent.command", "empty list"}},
      {"CommandWithEmptyProgram",
       h + "  agent:\n    command: [\"\", x]\n",
       3,
       {"harness.agent.command[0]", "must not be empty"}},
      {"CommandAsOneString",
       h + "  agent:\n    command: claude -p {prompt}\n",
       3,
       {"harness.agent.command must be a list of strings", "\"claude -p {prompt}\""}},
      {"CommandWithUnquotedPlaceholder",
       h + "  agent:\n    command: [claude, -p, {prompt}]\n",
       3,
       {"harness.agent.command[2] must be a string", "a map", "\"{prompt}\""}},
      {"CommandElementOnItsOwnLine",
       h + "  agent:\n    command:\n      - claude\n      - [x]\n",
       5,
       {"harness.agent.command[1] must be a string", "a list"}},
      {"SetupAsOneString",
       h + "  repo:\n    setup: npm ci\n",
       3,
       {"harness.repo.setup must be a list of strings", "\"npm ci\""}},
      {"OnAlertAsAMap",
       h + "  coordinator:\n    on_alert: {cmd: x}\n",
       3,
       {"harness.coordinator.on_alert must be a list of strings", "a map"}},
      {"ListenWithoutPort",
       h + "  listen: localhost\n",
       2,
       {"harness.listen must be HOST:PORT", "\"localhost\"", "no port"}},
      {"ListenWithEmptyPort",
       h + "  listen: \"127.0.0.1:\"\n",
       2,
       {"harness.listen", "\"127.0.0.1:\"", "no port"}},
      {"ListenPortTooLarge",
       h + "  listen: 127.0.0.1:70000\n",
       2,
       {"harness.listen", "\"127.0.0.1:70000\"", "0 to 65535"}},
      {"ListenUnbracketedIPv6",
       h + "  listen: \"::1:7070\"\n",
       2,
       {"harness.listen", "\"::1:7070\"", "brackets"}},
      {"HttpListenWithoutPort",
       h + "  http:\n    listen: localhost\n",
       3,
       {"harness.http.listen must be HOST:PORT", "\"localhost\"", "no port"}},
      {"HttpListenPortTooLarge",
       h + "  http:\n    listen: 127.0.0.1:70000\n",
       3,
       {"harness.http.listen", "\"127.0.0.1:70000\"", "0 to 65535"}},
      {"HttpUnknownKey",
       h + "  http:\n    port: 80\n",
       3,
       {"unknown key \"port\" in harness.http"}},
      {"ListenAsAMap",
       h + "  listen: {host: x}\n",
       2,
       {"harness.listen must be a string", "a map"}},
      {"EmptyStateDir", h + "  state_dir: \"\"\n", 2, {"harness.state_dir must not be empty"}},
      {"EmptyRepoPath", h + "  repo:\n    path:\n", 3, {"harness.repo.path must not be empty"}},
      {"HeartbeatTimeoutEqualToInterval",
       h + "  health_check:\n    heartbeat_interval: 10\n    heartbeat_timeout: 10\n",
       4,
       {"harness.health_check.heartbeat_timeout (10) must be greater than "
        "harness.health_check.heartbeat_interval (10)"}},
      // Only the interval is in the file: the line is the interval's.
      {"HeartbeatIntervalAboveTheDefaultTimeout",
       h + "  listen: :0\n  health_check:\n    heartbeat_interval: 45\n",
       4,
       {"harness.health_check.heartbeat_timeout (30) must be greater than "
        "harness.health_check.heartbeat_interval (45)"}},
      {"ZeroHeartbeatInterval",
       h + "  health_check:\n    heartbeat_interval: 0\n",
       3,
       {"harness.health_check.heartbeat_interval must be more than 0 seconds", "got 0"}},
      {"ZeroLeaseTtl",
       h + "  health_check:\n    lease_ttl: 0\n",
       3,
       {"harness.health_check.lease_ttl must be more than 0 seconds", "got 0"}},
      {"NegativeLeaseTtl",
       h + "  health_check:\n    lease_ttl: -30\n",
       3,
       {"harness.health_check.lease_ttl", "got -30"}},
      {"LeaseTtlNotAboveHeartbeatInterval",
       h + "  health_check:\n    heartbeat_interval: 5\n    lease_ttl: 4\n",
       4,
       {"harness.health_check.lease_ttl (4) must be greater than "
        "harness.health_check.heartbeat_interval (5)"}},
      {"ZeroMaxAgentFailures",
       h + "  coordinator:\n    max_agent_failures: 0\n",
       3,
       {"harness.coordinator.max_agent_failures", "got 0"}},
      {"NegativeFailureWindow",
       h + "  coordinator:\n    failure_window: -1\n",
       3,
       {"harness.coordinator.failure_window", "got -1"}},
      {"NiceOutOfRange",
       h + "  resource_limits:\n    nice: 25\n",
       3,
       {"harness.resource_limits.nice must be between -20 and 19", "got 25"}},
      {"NegativeMemoryLimit",
       h + "  resource_limits:\n    max_session_memory_mb: -1\n",
       3,
       {"harness.resource_limits.max_session_memory_mb", "got -1"}},
      {"ZeroMaxAttempts",
       h + "  queue:\n    max_attempts: 0\n",
       3,
       {"harness.queue.max_attempts must be between 1 and 1000", "got 0"}},
      {"ZeroMaxPromptBytes",
       h + "  queue:\n    max_prompt_bytes: 0\n",
       3,
       {"harness.queue.max_prompt_bytes", "got 0"}},
      {"ZeroSnapshotSize",
       h + "  queue:\n    snapshot_after_mb: 0\n",
       3,
       {"harness.queue.snapshot_after_mb", "got 0"}},
      {"ZeroItemsPerSubmit",
       h + "  limits:\n    max_items_per_submit: 0\n",
       3,
       {"harness.limits.max_items_per_submit must be between 1 and 1000000", "got 0"}},
      {"HugeMessageSize",
       h + "  limits:\n    max_message_mb: 4096\n",
       3,
       {"harness.limits.max_message_mb must be between 1 and 1024", "got 4096"}},
      {"ZeroSessionsPerPeer",
       h + "  limits:\n    max_sessions_per_peer: 0\n",
       3,
       {"harness.limits.max_sessions_per_peer", "got 0"}},
      {"TokenFileAsAList",
       h + "  auth:\n    admin_token_file: [a, b]\n",
       3,
       {"harness.auth.admin_token_file must be a string", "a list"}},
      {"TheOldTokenKey",
       h + "  auth:\n    token: s3cret\n",
       3,
       {"unknown key \"token\" in harness.auth"}},
      {"TlsCertWithoutKey",
       h + "  tls:\n    cert: server.pem\n",
       3,
       {"harness.tls.cert (\"server.pem\") and harness.tls.key (\"\") go together"}},
      {"ClientCaWithoutTls",
       h + "  tls:\n    client_ca: ca.pem\n",
       3,
       {"harness.tls.client_ca (\"ca.pem\") needs TLS"}},
      {"TlsCertAsAMap",
       h + "  tls:\n    cert: {file: x}\n",
       3,
       {"harness.tls.cert must be a string", "a map"}},
      {"SectionAsAScalar",
       h + "  parallel_agents: 1\n  repo: .\n",
       3,
       {"harness.repo must be a map of settings", "\".\""}},
      {"HarnessAsAList",
       "\n" + h + "  - listen\n",
       3,
       {"harness must be a map of settings", "a list"}},
      {"TopLevelAList", "- harness\n", 1, {"the top level must be a map", "a list"}},
  };
}

INSTANTIATE_TEST_SUITE_P(Config, ConfigBadValueTest, ::testing::ValuesIn(BadValues()),
                         [](const ::testing::TestParamInfo<BadValue>& info) {
                           return info.param.name;
                         });

// ---------------------------------------------------------------------------------------------
// Files that cannot be read or parsed

TEST_F(ConfigTest, MissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<Config> c = LoadConfigFile(dir_.Sub("nope.yaml"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(c.status()),
              AllOf(HasSubstr(dir_.Sub("nope.yaml")), HasSubstr("No such file or directory")));
}

TEST_F(ConfigTest, DirectoryInsteadOfAFileIsRefused) {
  absl::StatusOr<Config> c = LoadConfigFile(dir_.path());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Msg(c.status()), AllOf(HasSubstr(dir_.path()), HasSubstr("directory")));
}

TEST_F(ConfigTest, YamlSyntaxErrorIsOneLineWithFileAndLine) {
  std::string message = LoadError(
      "harness:\n  listen: :0\n  agent:\n    command: [claude, -p\n"
      "  health_check:\n    lease_ttl: 3\n");
  EXPECT_THAT(message,
              AllOf(StartsWith(dir_.Sub("harness.yaml") + ":"), HasSubstr("YAML syntax error")));
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_THAT(LoadError("harness:\n  listen: :0\n    bad_indent: 1\n"),
              AllOf(StartsWith(At(3)), HasSubstr("YAML syntax error at column")));
}

TEST_F(ConfigTest, SecondYamlDocumentIsRefused) {
  EXPECT_THAT(
      LoadError("harness:\n  listen: :0\n---\nharness:\n  listen: :1\n"),
      AllOf(StartsWith(dir_.Sub("harness.yaml") + ":"), HasSubstr("only one YAML document")));
}

// ---------------------------------------------------------------------------------------------
// Environment overrides

class FakeEnv {
 public:
  FakeEnv(std::initializer_list<std::pair<const std::string, std::string>> vars) : vars_(vars) {}
  std::function<const char*(const char*)> Fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

TEST_F(ConfigTest, EnvironmentOverridesTheFileValues) {
  absl::StatusOr<Config> c = Load(kEveryKey);
  ASSERT_OK(c);
  FakeEnv env({{"HARNESS_LISTEN", "127.0.0.1:0"},
               {"HARNESS_STATE_DIR", "/tmp/state"},
               {"HARNESS_PARALLEL_AGENTS", "40"},
               {"HARNESS_HEARTBEAT_INTERVAL", "0.5"},
               {"HARNESS_HEARTBEAT_TIMEOUT", "2.5"},
               {"HARNESS_LEASE_TTL", "4"},
               {"HARNESS_UNRELATED", "x"}});
  ASSERT_OK(ApplyEnvOverrides(&*c, env.Fn()));
  Config want = EveryKeyConfig();
  want.listen = "127.0.0.1:0";
  want.state_dir = "/tmp/state";
  want.parallel_agents = 40;
  want.health_check = {0.5, 2.5, 4};
  EXPECT_EQ(*c, want);
  EXPECT_EQ(c->health_check.LeaseTtl(), absl::Seconds(4));
}

TEST_F(ConfigTest, LogFormatAndLevelComeFromTheFileOrTheEnvironmentAndBadOnesAreRefused) {
  EXPECT_EQ(Config().log.format, "text");
  EXPECT_EQ(Config().log.level, "info");
  absl::StatusOr<Config> c = Load("harness:\n  log:\n    format: json\n    level: warning\n");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->log.format, "json");
  EXPECT_EQ(c->log.level, "warning");
  absl::StatusOr<Config> again = LoadConfigFile(Write(DescribeConfig(*c)));
  ASSERT_OK(again.status());
  EXPECT_EQ(again->log, c->log);
  EXPECT_EQ(LoadError("harness:\n  log:\n    format: xml\n"),
            At(3) + "harness.log.format must be one of text, json, got \"xml\"");
  EXPECT_EQ(LoadError("harness:\n  log:\n    level: verbose\n"),
            At(3) + "harness.log.level must be one of debug, info, warning, error, got \"verbose\"");
  Config e;
  FakeEnv env({{"HARNESS_LOG_FORMAT", "json"}, {"HARNESS_LOG_LEVEL", "debug"}});
  ASSERT_OK(ApplyEnvOverrides(&e, env.Fn()));
  EXPECT_EQ(e.log.format, "json");
  EXPECT_EQ(e.log.level, "debug");
  FakeEnv bad({{"HARNESS_LOG_LEVEL", "loud"}});
  absl::Status s = ApplyEnvOverrides(&e, bad.Fn());
  EXPECT_EQ(Msg(s), "HARNESS_LOG_LEVEL=\"loud\": harness.log.level must be one of debug, info, "
                    "warning, error, got \"loud\"");
}

TEST_F(ConfigTest, UnsetOrEmptyEnvironmentVariablesChangeNothing) {
  Config c = EveryKeyConfig();
  FakeEnv env({{"HARNESS_LISTEN", ""}, {"HARNESS_PARALLEL_AGENTS", ""}});
  ASSERT_OK(ApplyEnvOverrides(&c, env.Fn()));
  EXPECT_EQ(c, EveryKeyConfig());
}

TEST_F(ConfigTest, BadEnvironmentValueNamesTheVariableAndValueAndChangesNothing) {
  struct Case {
    std::string var, value;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"HARNESS_PARALLEL_AGENTS", "lots", {"must be an integer"}},
      {"HARNESS_PARALLEL_AGENTS", "-2", {"harness.parallel_agents must be between 0 and 10000"}},
      {"HARNESS_PARALLEL_AGENTS", "20000", {"got 20000"}},
      {"HARNESS_LISTEN", "localhost", {"harness.listen must be HOST:PORT", "no port"}},
      {"HARNESS_HEARTBEAT_INTERVAL", "5s", {"must be a number of seconds"}},
      {"HARNESS_HEARTBEAT_INTERVAL", "0", {"must be more than 0 seconds"}},
      {"HARNESS_HEARTBEAT_TIMEOUT", "2", {"heartbeat_timeout (2) must be greater than"}},
      {"HARNESS_LEASE_TTL", "-1", {"harness.health_check.lease_ttl", "got -1"}},
      {"HARNESS_LEASE_TTL", "inf", {"must be a number of seconds"}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.var + "=" + k.value);
    Config c;
    FakeEnv env({{k.var, k.value}, {"HARNESS_STATE_DIR", "/elsewhere"}});
    absl::Status s = ApplyEnvOverrides(&c, env.Fn());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(s), StartsWith(k.var + "=\"" + k.value + "\": "));
    for (const std::string& say : k.says) EXPECT_THAT(Msg(s), HasSubstr(say));
    EXPECT_EQ(c, Config{});
  }
}

TEST_F(ConfigTest, EnvironmentValueThatClashesWithTheFileNamesTheVariable) {
  // The file's interval is 0.25 s; a lease of 0.2 s would expire between heartbeats.
  absl::StatusOr<Config> c = Load(kEveryKey);
  ASSERT_OK(c);
  FakeEnv env({{"HARNESS_LEASE_TTL", "0.2"}});
  absl::Status s = ApplyEnvOverrides(&*c, env.Fn());
  EXPECT_THAT(Msg(s), AllOf(StartsWith("HARNESS_LEASE_TTL=\"0.2\": "),
                            HasSubstr("lease_ttl (0.2) must be greater than")));
}

// ---------------------------------------------------------------------------------------------
// ValidateConfig, DescribeConfig

TEST_F(ConfigTest, ValidateConfigAppliesTheCrossFieldChecksToValuesFromAnywhere) {
  Config c;
  c.health_check.heartbeat_timeout = 5;
  c.health_check.heartbeat_interval = 5;
  EXPECT_THAT(Msg(ValidateConfig(c)),
              HasSubstr("harness.health_check.heartbeat_timeout (5) must be greater than "
                        "harness.health_check.heartbeat_interval (5)"));
  c = Config{};
  c.parallel_agents = 10001;  // as a flag could set it
  EXPECT_THAT(Msg(ValidateConfig(c)), HasSubstr("harness.parallel_agents"));
  c = Config{};
  c.agent.command.clear();
  EXPECT_THAT(Msg(ValidateConfig(c)), HasSubstr("harness.agent.command"));
  EXPECT_OK(ValidateConfig(EveryKeyConfig()));
}

TEST_F(ConfigTest, ListenAddressesWithAPortAreAccepted) {
  for (const char* ok : {"127.0.0.1:7070", ":0", "localhost:1", "[::1]:7070", "[::]:0",
                         "0.0.0.0:65535", "harness.internal:443"}) {
    EXPECT_OK(ValidateListenAddress(ok)) << ok;
  }
  for (const char* bad : {"", "7070", "localhost", "host:", "[::1]", "[]:1", "::1:7070", "host:-1",
                          "host:65536", "host:12a", "a b:1", "unix:/tmp/sock"}) {
    absl::Status s = ValidateListenAddress(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(Msg(s), HasSubstr(absl::StrCat("\"", bad, "\""))) << bad;
  }
  // Bytes outside printable ASCII are refused and shown escaped.
  EXPECT_THAT(Msg(ValidateListenAddress("h\xc3\xa9:1")), HasSubstr("\"h\\303\\251:1\""));
  EXPECT_FALSE(ValidateListenAddress(std::string("a\0b:1", 6)).ok());
}

TEST_F(ConfigTest, TheHttpListenerIsOffByDefaultAndAnEmptyAddressKeepsItOff) {
  EXPECT_EQ(Config{}.http.listen, "");
  absl::StatusOr<Config> c = Load("harness:\n  http:\n    listen: \"\"\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->http.listen, "");
  c = Load("harness:\n  http:\n    listen: 127.0.0.1:0\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->http.listen, "127.0.0.1:0");
}

TEST_F(ConfigTest, DescribeConfigOfTheDefaultsReadsBackToTheDefaults) {
  std::string yaml = DescribeConfig(Config{});
  EXPECT_THAT(yaml, HasSubstr("harness:"));
  absl::StatusOr<Config> c = LoadConfigFile(Write(yaml, "described.yaml"));
  ASSERT_OK(c) << yaml;
  EXPECT_EQ(*c, Config{}) << yaml;
}

TEST_F(ConfigTest, DescribeConfigOfEveryKeyReadsBackToTheSameConfig) {
  Config want = EveryKeyConfig();
  want.agent.command = {"sh",         "-c",       "echo \"{title}\" # not a comment: {id}",
                        "",           "ünï",      "- x",
                        "key: value", "null",     "~",
                        "5",          "'single'", "tab\there"};
  want.repo.base_branch = "feature/x";
  want.agent_startup_stagger = 0.1;
  want.health_check.heartbeat_interval = 1.0 / 3;
  want.coordinator.failure_window = 1e-7;
  want.auth.admin_token_file = "tok: #en";
  std::string yaml = DescribeConfig(want);
  absl::StatusOr<Config> c = LoadConfigFile(Write(yaml, "described.yaml"));
  ASSERT_OK(c) << yaml;
  EXPECT_EQ(*c, want) << yaml;
}

TEST_F(ConfigTest, DescribeConfigNamesTheTokenFiles) {
  Config c;
  c.auth.agent_token_file = "/etc/harness/agent.token";
  EXPECT_THAT(DescribeConfig(c), HasSubstr("agent_token_file: \"/etc/harness/agent.token\""));
}

}  // namespace
}  // namespace harness
