// harness.yaml, HARNESS_* overrides and their checks (see config.h). One table of range checks
// (Check) serves the file, the environment and the flags; the loader and ApplyEnvOverrides only
// add where a bad value came from (file:line, or the variable).
#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "config/yaml_load.h"
#include "core/log.h"

namespace harness {
namespace {

// A swarm service or work source name (the agent id rule).
bool ValidSwarmService(const std::string& s) {
  if (s.empty() || s.size() > 64 || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ||
           ch == '-';
  });
}

constexpr double kMaxDurationSeconds = 1e9;  // about 31 years; keeps conversions finite
constexpr int64_t kMaxParallelAgents = 10000;
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// The shortest decimal that reads back as `v` (5, 0.25, 1e-07).
std::string FormatNumber(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) {
    return absl::StrCat(static_cast<int64_t>(v));
  }
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }

// ---------------------------------------------------------------------------------------------
// Checks on values, shared by the file, the environment and the flags.

struct Issue {
  std::vector<std::string> keys;  // key paths involved, the most likely culprit first
  std::string message;
};

// Why `address` is not HOST:PORT, or "" if it is.
std::string ListenProblem(const std::string& address) {
  if (address.empty()) return "it is empty";
  for (char c : address) {
    if (c == '\0' || (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
                      std::strchr(".-_:[]%", c) == nullptr)) {
      return absl::StrCat("it holds ", Quote(std::string(1, c)),
                          ", which has no place in HOST:PORT");
    }
  }
  std::string port;
  if (address[0] == '[') {
    size_t close = address.find("]:");
    if (close == std::string::npos) return "no port after the bracketed IPv6 address";
    if (close == 1) return "empty IPv6 address";
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return "no port";
    if (address.find(':') != colon) return "put an IPv6 address in brackets, e.g. [::1]:7070";
    port = address.substr(colon + 1);
  }
  if (port.empty()) return "no port";
  int value = 0;
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &value) || value > 65535) {
    return absl::StrCat("port ", Quote(port), " is not a number from 0 to 65535");
  }
  return "";
}

std::string ListenMessage(absl::string_view what, const std::string& address,
                          const std::string& problem) {
  return absl::StrCat(what, " must be HOST:PORT (e.g. 127.0.0.1:7070, or :0 for a free port), got ",
                      Quote(address), ": ", problem);
}

class Checker {
 public:
  explicit Checker(const Config& c) : c_(c) {}

  std::optional<Issue> Run() {
    const Config& c = c_;
    if (std::string p = ListenProblem(c.listen); !p.empty()) {
      Fail({"harness.listen"}, ListenMessage("harness.listen", c.listen, p));
    }
    NotEmpty("harness.state_dir", c.state_dir);
    IntRange("harness.parallel_agents", c.parallel_agents, 0, kMaxParallelAgents);
    Duration("harness.agent_startup_stagger", c.agent_startup_stagger, /*zero_ok=*/true);
    Duration("harness.agent_restart_delay", c.agent_restart_delay, true);

    NotEmpty("harness.repo.path", c.repo.path);
    Argv("harness.repo.setup", c.repo.setup, /*empty_ok=*/true);
    IntRange("harness.repo.max_pack_mb", c.repo.max_pack_mb, 1, 1 << 20);

    if (c.agent.launcher != "process" && c.agent.launcher != "docker" &&
        c.agent.launcher != "swarm" && c.agent.launcher != "none") {
      Fail({"harness.agent.launcher"},
           absl::StrCat("harness.agent.launcher must be one of process, docker, swarm, none, got ",
                        Quote(c.agent.launcher)));
    }
    if ((c.agent.launcher == "docker" || c.agent.launcher == "swarm") &&
        (c.agent.docker.socket.empty() || c.agent.docker.socket[0] != '/')) {
      Fail({"harness.agent.docker.socket"},
           absl::StrCat("harness.agent.docker.socket must be the absolute path of the Docker "
                        "daemon's unix socket (e.g. /var/run/docker.sock), got ",
                        Quote(c.agent.docker.socket)));
    }
    if (c.agent.docker.cpus < 0 || c.agent.docker.cpus > 4096) {
      Fail({"harness.agent.docker.cpus"},
           absl::StrCat("harness.agent.docker.cpus must be a number of CPUs from 0 (no limit) to "
                        "4096, got ",
                        c.agent.docker.cpus));
    }
    if (c.agent.launcher == "swarm" && !ValidSwarmService(c.agent.swarm.service)) {
      Fail({"harness.agent.swarm.service"},
           absl::StrCat("harness.agent.swarm.service must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}, "
                        "got ",
                        Quote(c.agent.swarm.service)));
    }
    Argv("harness.agent.command", c.agent.command, /*empty_ok=*/false);
    Duration("harness.agent.item_timeout", c.agent.item_timeout, false);
    Duration("harness.agent.stall_timeout", c.agent.stall_timeout, false);

    const HealthCheckConfig& h = c.health_check;
    Duration("harness.health_check.heartbeat_interval", h.heartbeat_interval, false);
    Duration("harness.health_check.heartbeat_timeout", h.heartbeat_timeout, false);
    Duration("harness.health_check.lease_ttl", h.lease_ttl, false);
    Greater("harness.health_check.heartbeat_timeout", h.heartbeat_timeout,
            "harness.health_check.heartbeat_interval", h.heartbeat_interval,
            "an agent would be declared dead between two heartbeats");
    Greater("harness.health_check.lease_ttl", h.lease_ttl,
            "harness.health_check.heartbeat_interval", h.heartbeat_interval,
            "leases are renewed by heartbeats and would expire between two of them");

    IntRange("harness.coordinator.max_agent_failures", c.coordinator.max_agent_failures, 1,
             1000000);
    Duration("harness.coordinator.failure_window", c.coordinator.failure_window, false);
    Argv("harness.coordinator.on_alert", c.coordinator.on_alert, true);

    const ResourceLimitsConfig& r = c.resource_limits;
    IntRange("harness.resource_limits.max_session_memory_mb", r.max_session_memory_mb, 0,
             int64_t{1} << 30);
    IntRange("harness.resource_limits.max_cpu_seconds", r.max_cpu_seconds, 0, int64_t{1} << 40);
    IntRange("harness.resource_limits.nice", r.nice, -20, 19);

    IntRange("harness.queue.max_attempts", c.queue.max_attempts, 1, 1000);
    IntRange("harness.queue.max_prompt_bytes", c.queue.max_prompt_bytes, 1, int64_t{64} << 20);
    IntRange("harness.queue.snapshot_after_mb", c.queue.snapshot_after_mb, 1, int64_t{1} << 20);
    Sources(c.queue.sources);
    Argv("harness.queue.on_done", c.queue.on_done, /*empty_ok=*/true);

    const LimitsConfig& l = c.limits;
    IntRange("harness.limits.max_message_mb", l.max_message_mb, 1, 1024);
    IntRange("harness.limits.max_items_per_submit", l.max_items_per_submit, 1, 1000000);
    IntRange("harness.limits.max_queued_items", l.max_queued_items, 1, int64_t{1} << 40);
    IntRange("harness.limits.max_labels", l.max_labels, 0, 100000);
    IntRange("harness.limits.max_label_key_bytes", l.max_label_key_bytes, 1, 1 << 20);
    IntRange("harness.limits.max_label_value_bytes", l.max_label_value_bytes, 0, 1 << 20);
    IntRange("harness.limits.max_sessions_per_peer", l.max_sessions_per_peer, 1, 1000000);
    IntRange("harness.limits.max_log_bytes_per_attempt", l.max_log_bytes_per_attempt, 0,
             int64_t{1} << 30);

    CheckHttp(c.http);
    if (!ParseLogFormat(c.log.format).ok()) {
      Fail({"harness.log.format"},
           absl::StrCat("harness.log.format must be one of text, json, got ", Quote(c.log.format)));
    }
    if (!ParseLogLevel(c.log.level).ok()) {
      Fail({"harness.log.level"},
           absl::StrCat("harness.log.level must be one of debug, info, warning, error, got ",
                        Quote(c.log.level)));
    }
    if (c.tls.cert.empty() != c.tls.key.empty()) {
      Fail({"harness.tls.cert", "harness.tls.key"},
           absl::StrCat("harness.tls.cert (", Quote(c.tls.cert), ") and harness.tls.key (",
                        Quote(c.tls.key), ") go together: set both for TLS, or neither"));
    }
    if (c.agent.tls_cert.empty() != c.agent.tls_key.empty()) {
      Fail({"harness.agent.tls_cert", "harness.agent.tls_key"},
           absl::StrCat("harness.agent.tls_cert (", Quote(c.agent.tls_cert),
                        ") and harness.agent.tls_key (", Quote(c.agent.tls_key),
                        ") go together: set both for mTLS, or neither"));
    }
    if (!c.tls.client_ca.empty() && c.tls.cert.empty()) {
      Fail({"harness.tls.client_ca"},
           absl::StrCat("harness.tls.client_ca (", Quote(c.tls.client_ca),
                        ") needs TLS: set harness.tls.cert and harness.tls.key too"));
    }
    return std::move(issue_);
  }

 private:
  void CheckHttp(const HttpConfig& h) {
    if (h.listen.empty()) return;  // off
    if (std::string p = ListenProblem(h.listen); !p.empty()) {
      Fail({"harness.http.listen"}, ListenMessage("harness.http.listen", h.listen, p));
    }
  }
  void Fail(std::vector<std::string> keys, std::string message) {
    if (!issue_) issue_ = Issue{std::move(keys), std::move(message)};
  }
  void NotEmpty(const std::string& key, const std::string& v) {
    if (v.empty()) Fail({key}, absl::StrCat(key, " must not be empty"));
  }
  void IntRange(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      Fail({key}, absl::StrCat(key, " must be between ", lo, " and ", hi, ", got ", v));
    }
  }
  void Duration(const std::string& key, double v, bool zero_ok) {
    if (!std::isfinite(v)) {
      Fail({key}, absl::StrCat(key, " must be a finite number of seconds, got ", FormatNumber(v)));
    } else if (v < 0 || (!zero_ok && v == 0)) {
      Fail({key}, absl::StrCat(
                      key, zero_ok ? " must be 0 or more seconds" : " must be more than 0 seconds",
                      ", got ", FormatNumber(v)));
    } else if (v > kMaxDurationSeconds) {
      Fail({key}, absl::StrCat(key, " must be at most ", FormatNumber(kMaxDurationSeconds),
                               " seconds, got ", FormatNumber(v)));
    }
  }
  void Greater(const std::string& key, double v, const std::string& other_key, double other,
               absl::string_view why) {
    if (!(v > other)) {
      Fail({key, other_key}, absl::StrCat(key, " (", FormatNumber(v), ") must be greater than ",
                                          other_key, " (", FormatNumber(other), "): ", why));
    }
  }
  void Argv(const std::string& key, const std::vector<std::string>& argv, bool empty_ok) {
    if (argv.empty()) {
      if (!empty_ok) Fail({key}, absl::StrCat(key, " must name a program: got an empty list"));
    } else if (argv[0].empty()) {
      Fail({key}, absl::StrCat(key, "[0] (the program) must not be empty"));
    }
  }

  // queue.sources: each a unique safe name, a program, positive interval and timeout.
  void Sources(const std::vector<SourceConfig>& sources) {
    std::map<std::string, size_t> names;
    for (size_t i = 0; i < sources.size(); ++i) {
      const SourceConfig& s = sources[i];
      const std::string key = absl::StrCat("harness.queue.sources[", i, "]");
      if (!ValidSwarmService(s.name)) {
        Fail({key + ".name", key},
             absl::StrCat(key, ".name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got ",
                          Quote(s.name)));
      } else if (auto [first, inserted] = names.emplace(s.name, i); !inserted) {
        Fail({key + ".name", key}, absl::StrCat(key, ".name ", Quote(s.name), " is also the name "
                                                "of harness.queue.sources[", first->second, "]"));
      }
      if (s.command.empty()) {
        Fail({key + ".command", key},
             absl::StrCat(key, ".command must name a program, e.g. [\"bd\", \"ready\", "
                          "\"--json\"]"));
      }
      Argv(key + ".command", s.command, /*empty_ok=*/true);
      Duration(key + ".interval", s.interval, /*zero_ok=*/false);
      Duration(key + ".timeout", s.timeout, /*zero_ok=*/false);
      IntRange(key + ".max_output_mb", s.max_output_mb, 1, 1024);
    }
  }

  const Config& c_;
  std::optional<Issue> issue_;
};

std::optional<Issue> Check(const Config& c) { return Checker(c).Run(); }

// ---------------------------------------------------------------------------------------------
// Reading the file.

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// How a node reads in a message: "5" (quoted), a map, a list, nothing.
std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return n.Tag() == "?" ? Quote(n.Scalar()) : absl::StrCat("the string ", Quote(n.Scalar()));
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  absl::Status Load(const YAML::Node& root, Config* c) {
    if (root.IsNull()) return absl::OkStatus();
    if (!root.IsMap()) {
      return Error(root, absl::StrCat("the top level must be a map with the single key "
                                      "\"harness\", got ",
                                      Describe(root)));
    }
    return Section(root, "", {{"harness", [&](const YAML::Node& v, const std::string& key) {
                                 return Harness(v, key, c);
                               }}});
  }

  // 1-based line of each key path seen in the file.
  const std::map<std::string, int>& lines() const { return lines_; }

 private:
  using FieldFn = std::function<absl::Status(const YAML::Node& value, const std::string& key)>;
  using Fields = std::vector<std::pair<std::string, FieldFn>>;

  absl::Status Harness(const YAML::Node& v, const std::string& key, Config* c) {
    return Section(
        v, key,
        {{"listen", Str(&c->listen)},
         {"state_dir", Str(&c->state_dir)},
         {"parallel_agents", Int(&c->parallel_agents)},
         {"agent_startup_stagger", Secs(&c->agent_startup_stagger)},
         {"agent_restart_delay", Secs(&c->agent_restart_delay)},
         {"repo", Sub({{"path", Str(&c->repo.path)},
                       {"base_branch", Str(&c->repo.base_branch)},
                       {"setup", List(&c->repo.setup)},
                       {"max_pack_mb", Int(&c->repo.max_pack_mb)}})},
         {"agent", Sub({{"launcher", Str(&c->agent.launcher)},
                        {"binary", Str(&c->agent.binary)},
                        {"command", List(&c->agent.command)},
                        {"item_timeout", Secs(&c->agent.item_timeout)},
                        {"stall_timeout", Secs(&c->agent.stall_timeout)},
                        {"docker", Sub({{"socket", Str(&c->agent.docker.socket)},
                                        {"image", Str(&c->agent.docker.image)},
                                        {"cpus", Num(&c->agent.docker.cpus)}})},
                        {"swarm", Sub({{"service", Str(&c->agent.swarm.service)}})},
                        {"tls_ca", Str(&c->agent.tls_ca)},
                        {"tls_cert", Str(&c->agent.tls_cert)},
                        {"tls_key", Str(&c->agent.tls_key)}})},
         {"health_check", Sub({{"heartbeat_interval", Secs(&c->health_check.heartbeat_interval)},
                               {"heartbeat_timeout", Secs(&c->health_check.heartbeat_timeout)},
                               {"lease_ttl", Secs(&c->health_check.lease_ttl)}})},
         {"coordinator", Sub({{"max_agent_failures", Int(&c->coordinator.max_agent_failures)},
                              {"failure_window", Secs(&c->coordinator.failure_window)},
                              {"on_alert", List(&c->coordinator.on_alert)}})},
         {"resource_limits",
          Sub({{"max_session_memory_mb", Int(&c->resource_limits.max_session_memory_mb)},
               {"max_cpu_seconds", Int(&c->resource_limits.max_cpu_seconds)},
               {"nice", Int(&c->resource_limits.nice)}})},
         {"queue", Sub({{"max_attempts", Int(&c->queue.max_attempts)},
                        {"max_prompt_bytes", Int(&c->queue.max_prompt_bytes)},
                        {"snapshot_after_mb", Int(&c->queue.snapshot_after_mb)},
                        {"sources", Sources(&c->queue.sources)},
                        {"on_done", List(&c->queue.on_done)}})},
         {"limits", Sub({{"max_message_mb", Int(&c->limits.max_message_mb)},
                         {"max_items_per_submit", Int(&c->limits.max_items_per_submit)},
                         {"max_queued_items", Int(&c->limits.max_queued_items)},
                         {"max_labels", Int(&c->limits.max_labels)},
                         {"max_label_key_bytes", Int(&c->limits.max_label_key_bytes)},
                         {"max_label_value_bytes", Int(&c->limits.max_label_value_bytes)},
                         {"max_sessions_per_peer", Int(&c->limits.max_sessions_per_peer)},
                         {"max_log_bytes_per_attempt",
                          Int(&c->limits.max_log_bytes_per_attempt)}})},
         {"auth", Sub({{"admin_token_file", Str(&c->auth.admin_token_file)},
                       {"read_token_file", Str(&c->auth.read_token_file)},
                       {"agent_token_file", Str(&c->auth.agent_token_file)}})},
         {"tls", Sub({{"cert", Str(&c->tls.cert)},
                      {"key", Str(&c->tls.key)},
                      {"client_ca", Str(&c->tls.client_ca)}})},
         {"http", HttpFields(&c->http)},
         {"log", Sub({{"format", Str(&c->log.format)}, {"level", Str(&c->log.level)}})}});
  }

  FieldFn HttpFields(HttpConfig* h) { return Sub({{"listen", Str(&h->listen)}}); }

  // A map whose keys must all be in `fields`, each at most once. `path` is "" at the top.
  absl::Status Section(const YAML::Node& node, const std::string& path, const Fields& fields) {
    if (node.IsNull()) return absl::OkStatus();  // `repo:` with nothing under it
    if (!node.IsMap()) {
      return Error(node, absl::StrCat(path, " must be a map of settings, got ", Describe(node)));
    }
    std::map<std::string, int> seen;
    for (const auto& pair : node) {
      const YAML::Node k = pair.first;  // copies: the iterator hands out temporaries
      const YAML::Node value = pair.second;
      if (!k.IsScalar()) {
        return Error(k, absl::StrCat("keys must be plain names, got ", Describe(k), " in ",
                                     path.empty() ? "the top level" : path));
      }
      const std::string name = k.Scalar();
      const std::string where = path.empty() ? "at the top level" : absl::StrCat("in ", path);
      if (auto [prev, inserted] = seen.emplace(name, Line(k)); !inserted) {
        return Error(k, absl::StrCat("duplicate key ", Quote(name), " ", where, " (first at line ",
                                     prev->second, ")"));
      }
      auto field = std::find_if(fields.begin(), fields.end(),
                                [&](const auto& f) { return f.first == name; });
      if (field == fields.end()) return Error(k, UnknownKey(name, where, path, fields));
      const std::string key = path.empty() ? name : absl::StrCat(path, ".", name);
      lines_[key] = Line(k);
      if (absl::Status s = field->second(value, key); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::string UnknownKey(const std::string& name, const std::string& where, const std::string& path,
                         const Fields& fields) {
    std::string message = absl::StrCat("unknown key ", Quote(name), " ", where);
    if (path.empty()) return absl::StrCat(message, "; the root key must be \"harness\"");
    std::string best;
    size_t best_distance = 3;  // suggest only close misspellings
    for (const auto& f : fields) {
      size_t d = EditDistance(name, f.first);
      if (d < best_distance && d < std::max<size_t>(f.first.size() / 2, 1)) {
        best = f.first;
        best_distance = d;
      }
    }
    if (!best.empty()) absl::StrAppend(&message, " (did you mean ", Quote(best), "?)");
    return message;
  }

  FieldFn Sub(Fields fields) {
    return [this, fields = std::move(fields)](const YAML::Node& v, const std::string& key) {
      return Section(v, key, fields);
    };
  }

  FieldFn Str(std::string* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      if (v.IsNull()) {
        out->clear();
      } else if (v.IsScalar()) {
        if (!IsValidUtf8(v.Scalar())) {
          return Error(v, absl::StrCat(key, " is not valid UTF-8 (a YAML file is UTF-8), got ",
                                       Quote(v.Scalar())));
        }
        *out = v.Scalar();
      } else {
        return Error(v, absl::StrCat(key, " must be a string, got ", Describe(v)));
      }
      return absl::OkStatus();
    };
  }

  // A plain scalar, as numbers are written. Quoted "5" is a string and refused.
  static bool IsPlainNumber(const YAML::Node& v) {
    return v.IsScalar() && (v.Tag() == "?" || v.Tag() == "tag:yaml.org,2002:int" ||
                            v.Tag() == "tag:yaml.org,2002:float");
  }

  FieldFn Int(int64_t* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      if (!IsPlainNumber(v) || !absl::SimpleAtoi(v.Scalar(), out)) {
        return Error(v, absl::StrCat(key, " must be an integer, got ", Describe(v)));
      }
      return absl::OkStatus();
    };
  }

  FieldFn Secs(double* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      double d = 0;
      if (!IsPlainNumber(v) || !absl::SimpleAtod(v.Scalar(), &d) || !std::isfinite(d)) {
        return Error(v, absl::StrCat(key, " must be a number of seconds (e.g. 5 or 0.5), got ",
                                     Describe(v)));
      }
      *out = d;
      return absl::OkStatus();
    };
  }

  // A plain number (e.g. 2 or 0.5).
  FieldFn Num(double* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      double d = 0;
      if (!IsPlainNumber(v) || !absl::SimpleAtod(v.Scalar(), &d) || !std::isfinite(d)) {
        return Error(v, absl::StrCat(key, " must be a number (e.g. 2 or 0.5), got ", Describe(v)));
      }
      *out = d;
      return absl::OkStatus();
    };
  }

  // An argv: a list of strings. `command: claude -p` is refused (no shell splitting here).
  FieldFn List(std::vector<std::string>* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      out->clear();
      if (v.IsNull()) return absl::OkStatus();
      if (!v.IsSequence()) {
        return Error(v, absl::StrCat(key,
                                     " must be a list of strings such as [\"npm\", \"ci\"], "
                                     "got ",
                                     Describe(v)));
      }
      for (size_t i = 0; i < v.size(); ++i) {
        const YAML::Node& e = v[i];
        if (e.IsScalar() && !IsValidUtf8(e.Scalar())) {
          return Error(
              e.Mark().is_null() ? v : e,
              absl::StrCat(key, "[", i, "] is not valid UTF-8 (a YAML file is UTF-8), got ",
                           Quote(e.Scalar())));
        }
        if (e.IsScalar()) {
          out->push_back(e.Scalar());
          continue;
        }
        std::string message = absl::StrCat(key, "[", i, "] must be a string, got ", Describe(e));
        // `[claude, {prompt}]` reads {prompt} as a map: say how to write it.
        if (e.IsMap() && e.size() == 1 && e.begin()->first.IsScalar() &&
            e.begin()->second.IsNull()) {
          absl::StrAppend(&message, " (write it quoted: \"{", e.begin()->first.Scalar(), "}\")");
        }
        return Error(e.Mark().is_null() ? v : e, message);
      }
      return absl::OkStatus();
    };
  }

  // queue.sources: a list of maps, each read as a section of its own (unknown keys refused).
  FieldFn Sources(std::vector<SourceConfig>* out) {
    return [this, out](const YAML::Node& v, const std::string& key) {
      out->clear();
      if (v.IsNull()) return absl::OkStatus();
      if (!v.IsSequence()) {
        return Error(v, absl::StrCat(key, " must be a list of sources such as [{name: bd, "
                                          "command: [bd, ready, --json], interval: 60}], got ",
                                     Describe(v)));
      }
      for (size_t i = 0; i < v.size(); ++i) {
        const YAML::Node e = v[i];
        const std::string at = absl::StrCat(key, "[", i, "]");
        if (!e.IsMap()) {
          return Error(e.Mark().is_null() ? v : e,
                       absl::StrCat(at, " must be a map with name, command and interval, got ",
                                    Describe(e)));
        }
        lines_[at] = Line(e);
        SourceConfig& s = out->emplace_back();
        absl::Status st = Section(e, at,
                                  {{"name", Str(&s.name)},
                                   {"command", List(&s.command)},
                                   {"interval", Secs(&s.interval)},
                                   {"timeout", Secs(&s.timeout)},
                                   {"max_output_mb", Int(&s.max_output_mb)}});
        if (!st.ok()) return st;
      }
      return absl::OkStatus();
    };
  }

  static int Line(const YAML::Node& n) { return n.Mark().is_null() ? 0 : n.Mark().line + 1; }

  absl::Status Error(const YAML::Node& at, absl::string_view message) const {
    int line = Line(at);
    if (line == 0) return absl::InvalidArgumentError(absl::StrCat(file_, ": ", message));
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", line, ": ", message));
  }

  std::string file_;
  std::map<std::string, int> lines_;
};

// ---------------------------------------------------------------------------------------------
// Writing it back.

void EmitHttp(YAML::Emitter& out, const HttpConfig& h) {
  out << YAML::Key << "http" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << YAML::DoubleQuoted << h.listen;
  out << YAML::EndMap;
}

void EmitArgv(YAML::Emitter& out, const std::vector<std::string>& argv) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const std::string& a : argv) out << YAML::DoubleQuoted << a;
  out << YAML::EndSeq;
}

}  // namespace

absl::Duration Seconds(double seconds) {
  if (std::isnan(seconds)) return absl::ZeroDuration();
  if (std::isinf(seconds)) {
    return seconds > 0 ? absl::InfiniteDuration() : -absl::InfiniteDuration();
  }
  return absl::Seconds(seconds);
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read config file ", Quote(path), ": it is a directory"));
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string message = absl::StrCat("cannot read config file ", Quote(path), ": ",
                                       err != 0 ? std::strerror(err) : "cannot open");
    if (err == ENOENT) return absl::NotFoundError(message);
    return absl::InvalidArgumentError(message);
  }
  std::string text;
  {
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  }
  if (text.size() > kMaxConfigFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", Quote(path), " is larger than ",
                                                   kMaxConfigFileBytes, " bytes"));
  }

  std::vector<YAML::Node> docs;
  try {
    docs = LoadAllYaml(text);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1,
                                                   ": YAML syntax error at column ",
                                                   e.mark.column + 1, ": ", e.msg));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot parse YAML: ", e.what()));
  }
  if (docs.size() > 1) {
    int line = docs[1].Mark().is_null() ? 0 : docs[1].Mark().line + 1;
    return absl::InvalidArgumentError(
        absl::StrCat(path, line > 0 ? absl::StrCat(":", line) : "",
                     ": only one YAML document is allowed in a config file"));
  }

  Config config;
  Loader loader(path);
  try {
    if (!docs.empty()) {
      if (absl::Status s = loader.Load(docs[0], &config); !s.ok()) return s;
    }
  } catch (const YAML::Exception& e) {  // not expected: every access checks its type first
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }

  if (std::optional<Issue> issue = Check(config)) {
    for (const std::string& key : issue->keys) {
      auto line = loader.lines().find(key);
      if (line != loader.lines().end() && line->second > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", line->second, ": ", issue->message));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", issue->message));
  }
  return config;
}

absl::Status ApplyEnvOverrides(Config* config,
                               const std::function<const char*(const char*)>& getenv) {
  Config next = *config;
  std::map<std::string, std::string> from;  // key path -> `NAME="value"`
  auto value = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  auto named = [](const char* name, const std::string& v) {
    return absl::StrCat(name, "=", Quote(v));
  };
  auto str = [&](const char* name, const char* key, std::string* out) {
    if (auto v = value(name)) {
      *out = *v;
      from[key] = named(name, *v);
    }
  };
  auto seconds = [&](const char* name, const char* key, double* out) -> absl::Status {
    if (auto v = value(name)) {
      double d = 0;
      if (!absl::SimpleAtod(*v, &d) || !std::isfinite(d)) {
        return absl::InvalidArgumentError(absl::StrCat(
            named(name, *v), ": ", key, " must be a number of seconds (e.g. 5 or 0.5)"));
      }
      *out = d;
      from[key] = named(name, *v);
    }
    return absl::OkStatus();
  };

  str("HARNESS_LISTEN", "harness.listen", &next.listen);
  str("HARNESS_STATE_DIR", "harness.state_dir", &next.state_dir);
  str("HARNESS_LOG_FORMAT", "harness.log.format", &next.log.format);
  str("HARNESS_LOG_LEVEL", "harness.log.level", &next.log.level);
  if (auto v = value("HARNESS_PARALLEL_AGENTS")) {
    if (!absl::SimpleAtoi(*v, &next.parallel_agents)) {
      return absl::InvalidArgumentError(absl::StrCat(named("HARNESS_PARALLEL_AGENTS", *v),
                                                     ": harness.parallel_agents must be an "
                                                     "integer"));
    }
    from["harness.parallel_agents"] = named("HARNESS_PARALLEL_AGENTS", *v);
  }
  for (absl::Status s :
       {seconds("HARNESS_HEARTBEAT_INTERVAL", "harness.health_check.heartbeat_interval",
                &next.health_check.heartbeat_interval),
        seconds("HARNESS_HEARTBEAT_TIMEOUT", "harness.health_check.heartbeat_timeout",
                &next.health_check.heartbeat_timeout),
        seconds("HARNESS_LEASE_TTL", "harness.health_check.lease_ttl",
                &next.health_check.lease_ttl)}) {
    if (!s.ok()) return s;
  }

  if (std::optional<Issue> issue = Check(next)) {
    for (const std::string& key : issue->keys) {
      auto it = from.find(key);
      if (it != from.end()) {
        return absl::InvalidArgumentError(absl::StrCat(it->second, ": ", issue->message));
      }
    }
    return absl::InvalidArgumentError(issue->message);
  }
  *config = std::move(next);
  return absl::OkStatus();
}

absl::Status ValidateConfig(const Config& config) {
  if (std::optional<Issue> issue = Check(config)) {
    return absl::InvalidArgumentError(issue->message);
  }
  return absl::OkStatus();
}

absl::Status ValidateListenAddress(const std::string& address) {
  if (std::string p = ListenProblem(address); !p.empty()) {
    return absl::InvalidArgumentError(ListenMessage("the listen address", address, p));
  }
  return absl::OkStatus();
}

std::string DescribeConfig(const Config& c) {
  YAML::Emitter out;
  auto str = [&](const char* key, const std::string& v) {
    out << YAML::Key << key << YAML::Value << YAML::DoubleQuoted << v;
  };
  auto num = [&](const char* key, double v) {
    out << YAML::Key << key << YAML::Value << FormatNumber(v);
  };
  auto integer = [&](const char* key, int64_t v) {
    out << YAML::Key << key << YAML::Value << absl::StrCat(v);
  };
  auto argv = [&](const char* key, const std::vector<std::string>& v) {
    out << YAML::Key << key << YAML::Value;
    EmitArgv(out, v);
  };
  auto begin = [&](const char* key) { out << YAML::Key << key << YAML::Value << YAML::BeginMap; };

  out << YAML::Comment(
      "harness: the effective configuration (file, then HARNESS_* env, then flags)");
  out << YAML::BeginMap;
  begin("harness");
  str("listen", c.listen);
  str("state_dir", c.state_dir);
  integer("parallel_agents", c.parallel_agents);
  num("agent_startup_stagger", c.agent_startup_stagger);
  num("agent_restart_delay", c.agent_restart_delay);
  begin("repo");
  str("path", c.repo.path);
  str("base_branch", c.repo.base_branch);
  argv("setup", c.repo.setup);
  integer("max_pack_mb", c.repo.max_pack_mb);
  out << YAML::EndMap;
  begin("agent");
  str("launcher", c.agent.launcher);
  str("binary", c.agent.binary);
  argv("command", c.agent.command);
  num("item_timeout", c.agent.item_timeout);
  num("stall_timeout", c.agent.stall_timeout);
  begin("docker");
  str("socket", c.agent.docker.socket);
  str("image", c.agent.docker.image);
  num("cpus", c.agent.docker.cpus);
  out << YAML::EndMap;
  begin("swarm");
  str("service", c.agent.swarm.service);
  out << YAML::EndMap;
  str("tls_ca", c.agent.tls_ca);
  str("tls_cert", c.agent.tls_cert);
  str("tls_key", c.agent.tls_key);
  out << YAML::EndMap;
  begin("health_check");
  num("heartbeat_interval", c.health_check.heartbeat_interval);
  num("heartbeat_timeout", c.health_check.heartbeat_timeout);
  num("lease_ttl", c.health_check.lease_ttl);
  out << YAML::EndMap;
  begin("coordinator");
  integer("max_agent_failures", c.coordinator.max_agent_failures);
  num("failure_window", c.coordinator.failure_window);
  argv("on_alert", c.coordinator.on_alert);
  out << YAML::EndMap;
  begin("resource_limits");
  integer("max_session_memory_mb", c.resource_limits.max_session_memory_mb);
  integer("max_cpu_seconds", c.resource_limits.max_cpu_seconds);
  integer("nice", c.resource_limits.nice);
  out << YAML::EndMap;
  begin("queue");
  integer("max_attempts", c.queue.max_attempts);
  integer("max_prompt_bytes", c.queue.max_prompt_bytes);
  integer("snapshot_after_mb", c.queue.snapshot_after_mb);
  out << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const SourceConfig& s : c.queue.sources) {
    out << YAML::BeginMap;
    str("name", s.name);
    argv("command", s.command);
    num("interval", s.interval);
    num("timeout", s.timeout);
    integer("max_output_mb", s.max_output_mb);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  argv("on_done", c.queue.on_done);
  out << YAML::EndMap;
  begin("limits");
  integer("max_message_mb", c.limits.max_message_mb);
  integer("max_items_per_submit", c.limits.max_items_per_submit);
  integer("max_queued_items", c.limits.max_queued_items);
  integer("max_labels", c.limits.max_labels);
  integer("max_label_key_bytes", c.limits.max_label_key_bytes);
  integer("max_label_value_bytes", c.limits.max_label_value_bytes);
  integer("max_sessions_per_peer", c.limits.max_sessions_per_peer);
  integer("max_log_bytes_per_attempt", c.limits.max_log_bytes_per_attempt);
  out << YAML::EndMap;
  begin("auth");
  str("admin_token_file", c.auth.admin_token_file);
  str("read_token_file", c.auth.read_token_file);
  str("agent_token_file", c.auth.agent_token_file);
  out << YAML::EndMap;
  begin("tls");
  str("cert", c.tls.cert);
  str("key", c.tls.key);
  str("client_ca", c.tls.client_ca);
  out << YAML::EndMap;
  EmitHttp(out, c.http);
  begin("log");
  str("format", c.log.format);
  str("level", c.log.level);
  out << YAML::EndMap;
  out << YAML::EndMap;  // harness
  out << YAML::EndMap;
  return absl::StrCat(out.c_str(), "\n");
}

std::string ResolveAgainst(const std::string& config_file, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) return path;
  fs::path dir = fs::path(config_file).parent_path();
  if (dir.empty()) return path;
  std::string joined = (dir / path).lexically_normal().string();
  while (joined.size() > 1 && joined.back() == '/') joined.pop_back();
  return joined;
}

std::string AbsoluteFromHere(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty() || fs::path(path).is_absolute()) return path;
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(path), ec);
  if (ec) return path;
  std::string joined = abs.lexically_normal().string();
  while (joined.size() > 1 && joined.back() == '/') joined.pop_back();
  return joined;
}

}  // namespace harness
