// harnessctl's subcommands (see commands.h).
#include "client/commands.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/controller_client.h"
#include "client/event_render.h"
#include "client/render.h"
#include "client/stop_signals.h"
#include "config/flags.h"
#include "core/ids.h"
#include "items/item_file.h"
#include "rpc/client_auth.h"

namespace harness::client {
namespace {

constexpr char kDefaultController[] = "127.0.0.1:7070";

constexpr char kMainUsage[] =
    "usage: harnessctl [--controller ADDR] [--token T | --token-file F] [--ca F [--cert F --key F]]\n"
    "                  [--timeout S] COMMAND [ARGS...]\n"
    "\n"
    "The operator's CLI of the harness controller.\n"
    "\n"
    "commands:\n"
    "  status [--json] [--watch] [--interval S]   controller, agents, queue and metrics\n"
    "  scale N [--force]                          set the target number of agents\n"
    "  submit --title T (--prompt P | --prompt-file F) [--id ID] [--priority P]\n"
    "         [--max-attempts K] [--timeout S] [--label k=v]...   enqueue one item\n"
    "  submit --file FILE                         enqueue a JSON array or YAML list of items\n"
    "  items [--state S] [--json]                 list items\n"
    "  show ID [--json]                           one item with its attempts, result and log\n"
    "  logs ID [--attempt N] [-f]                 an attempt's output; -f follows it live\n"
    "  cancel ID [--reason R]                     cancel a pending or leased item\n"
    "  retry ID                                   put a failed or parked item back to pending\n"
    "  agents [--json]                            the agents with health and current item\n"
    "  drain AGENT                                let an agent finish its item and take no more\n"
    "  stop AGENT                                 stop an agent now; its item goes back\n"
    "  events [-f] [--json]                       item and agent state changes; -f follows\n"
    "\n"
    "`harnessctl COMMAND --help` describes a command. The controller's address comes from\n"
    "--controller, else $HARNESS_CONTROLLER, else 127.0.0.1:7070; the token from --token, else\n"
    "--token-file, else $HARNESS_TOKEN; TLS is used when --ca (or $HARNESS_CA) names the CA of\n"
    "the controller's certificate, with --cert/--key ($HARNESS_CERT/$HARNESS_KEY) for mTLS.\n"
    "The global flags may also follow the command (except --timeout after\n"
    "`submit`, where it is the item's timeout).\n"
    "\n"
    "exit status: 0 success, 1 runtime error (controller refused or unreachable, bad file),\n"
    "2 usage error.";

struct GlobalOptions {
  std::string controller;
  ClientAuthFlags auth;
  double timeout_s = 10;
};

void AddGlobalFlags(FlagParser& p, GlobalOptions* g, bool with_timeout) {
  p.AddString("controller", &g->controller,
              "controller address HOST:PORT (default $HARNESS_CONTROLLER, else 127.0.0.1:7070)");
  p.AddString("token", &g->auth.token, "bearer token (default $HARNESS_TOKEN)");
  p.AddString("token-file", &g->auth.token_file, "file holding the bearer token");
  p.AddString("ca", &g->auth.ca, "CA of the controller's certificate: dial with TLS ($HARNESS_CA)");
  p.AddString("cert", &g->auth.cert, "client certificate for mTLS ($HARNESS_CERT)");
  p.AddString("key", &g->auth.key, "its private key ($HARNESS_KEY)");
  if (with_timeout) {
    p.AddDouble("timeout", &g->timeout_s, "deadline of each call to the controller, seconds (10)",
                0.001, 86400);
  }
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The shared state of one harnessctl run: the global flags and the output helpers.
class Cli {
 public:
  explicit Cli(FlagParser* global) : global_(global) {}

  GlobalOptions& globals() { return globals_; }

  // A parser for `harnessctl <command>` that also accepts the global flags.
  FlagParser Parser(const std::string& command, const std::string& usage,
                    bool with_timeout = true) {
    FlagParser p(absl::StrCat("harnessctl ", command), usage);
    AddGlobalFlags(p, &globals_, with_timeout);
    return p;
  }

  // Applies the environment and defaults once every parser has run; exits 2 on a bad value.
  ClientOptions Options(const FlagParser& sub) {
    bool given = global_->WasSet("controller") || sub.WasSet("controller");
    if (!given) globals_.controller = Getenv("HARNESS_CONTROLLER");
    if (globals_.controller.empty()) {
      if (given) sub.Fail("--controller is empty");
      globals_.controller = kDefaultController;
    }
    absl::StatusOr<ClientAuth> auth = ResolveClientAuth(globals_.auth);
    if (!auth.ok()) sub.Fail(std::string(auth.status().message()));
    ClientOptions o;
    o.address = globals_.controller;
    o.token = auth->token;
    o.tls = auth->tls;
    o.timeout = absl::Seconds(globals_.timeout_s);
    return o;
  }

 private:
  FlagParser* global_;
  GlobalOptions globals_;
};

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Prints "harnessctl: <message>" and returns exit code 1.
int Error(absl::string_view message) {
  std::fprintf(stderr, "harnessctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return 1;
}
int Error(const absl::Status& status) { return Error(status.message()); }

// Exits 2 unless exactly `n` positional arguments were given.
void WantArgs(const FlagParser& p, const std::vector<std::string>& args, size_t n,
              absl::string_view what) {
  if (args.size() < n) p.Fail(absl::StrCat("missing ", what));
  if (args.size() > n) p.Fail(absl::StrCat("unexpected argument \"", args[n], "\""));
}

// `-f` is `--follow` (logs, events): FlagParser knows long flags only.
std::vector<std::string> ExpandShortFollow(const std::vector<std::string>& argv) {
  std::vector<std::string> out = argv;
  for (std::string& a : out) {
    if (a == "--") break;
    if (a == "-f") a = "--follow";
  }
  return out;
}

// The ID argument of show/cancel/retry, checked locally for a clear message.
std::string ItemIdArg(const FlagParser& p, const std::vector<std::string>& args) {
  WantArgs(p, args, 1, "item ID");
  if (absl::Status s = ValidateItemId(args[0]); !s.ok()) p.Fail(std::string(s.message()));
  return args[0];
}

// --- status ----------------------------------------------------------------------------------

int Status(Cli& cli, const std::vector<std::string>& argv) {
  bool json = false, watch = false;
  double interval_s = 1;
  FlagParser p = cli.Parser("status",
                            "usage: harnessctl status [--json] [--watch] [--interval S]\n\n"
                            "The controller, its agents, the queue counts and the metrics.\n"
                            "--watch redraws on every update until Ctrl-C (one snapshot per\n"
                            "update when stdout is not a terminal; one JSON line each with\n"
                            "--json).");
  p.AddBool("json", &json, "print one JSON document");
  p.AddBool("watch", &watch, "follow the status (WatchStatus) until Ctrl-C");
  p.AddDouble("interval", &interval_s, "seconds between updates with --watch (1)", 0.1, 3600);
  WantArgs(p, p.ParseOrExit(argv), 0, "");
  if (p.WasSet("interval") && !watch) p.Fail("--interval needs --watch");
  ClientOptions options = cli.Options(p);

  if (!watch) {
    ControllerClient client(options);
    absl::StatusOr<v1::StatusSnapshot> s = client.Status();
    if (!s.ok()) return Error(s.status());
    Print(json ? RenderStatusJson(*s, /*pretty=*/true) : RenderStatusText(*s));
    return 0;
  }
  BlockStopSignals();  // before the channel starts gRPC's threads
  ControllerClient client(options);
  const bool tty = isatty(STDOUT_FILENO) == 1;
  bool first = true;
  absl::Status s = client.Watch(absl::Seconds(interval_s), [&](const v1::StatusSnapshot& snap) {
    if (json) {
      Print(RenderStatusJson(snap, /*pretty=*/false));
    } else if (tty) {
      struct winsize ws {};
      const size_t width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0;
      Print(RedrawInPlace(RenderStatusText(snap, /*progress=*/true, width)));
    } else {
      Print(absl::StrCat(first ? "" : "\n", RenderStatusText(snap, /*progress=*/true)));
    }
    first = false;
  });
  return s.ok() ? 0 : Error(s);
}

// --- scale -----------------------------------------------------------------------------------

int Scale(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("scale",
                            "usage: harnessctl scale N [--force]\n\n"
                            "Sets the target number of agents (0 stops every launched agent)\n"
                            "and prints `target: OLD -> NEW`. The surplus is drained (each\n"
                            "finishes its item); --force stops it at once and puts its items\n"
                            "back in the queue.");
  bool force = false;
  p.AddBool("force", &force, "stop the surplus at once instead of draining it");
  for (const std::string& a : argv) {  // "-1" would otherwise read as an unknown flag
    int64_t n;
    if (a.size() > 1 && a[0] == '-' && absl::SimpleAtoi(a, &n)) {
      p.Fail(absl::StrCat("N must be a non-negative integer, got ", a));
    }
  }
  std::vector<std::string> args = p.ParseOrExit(argv);
  WantArgs(p, args, 1, "the target number N");
  int32_t target;
  if (!absl::SimpleAtoi(args[0], &target) || target < 0) {
    p.Fail(absl::StrCat("N must be a non-negative integer, got \"", args[0], "\""));
  }
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::ScaleResponse> r = client.Scale(target, force);
  if (!r.ok()) return Error(r.status());
  Print(absl::StrCat("target: ", r->old_target(), " -> ", r->new_target(), "\n"));
  return 0;
}

// --- submit ----------------------------------------------------------------------------------

// What `submit --file` prints on stderr while it works, when stderr is a terminal: one line
// redrawn in place, ended by a newline. Nothing otherwise.
class SubmitProgress {
 public:
  explicit SubmitProgress(bool on) : on_(on) {}
  void Parsed(size_t items, size_t skipped) {
    Show(absl::StrCat("parsed ", items, " items",
                      skipped > 0 ? absl::StrCat(" (skipping the first ", skipped, ")") : ""));
  }
  void Sending(size_t batch, size_t batches, size_t sent, size_t total) {
    Show(absl::StrCat("sending batch ", batch, "/", batches, ": ", sent, "/", total,
                      " items in the queue"));
  }
  void Done(size_t sent, size_t batches) {
    if (!on_) return;
    Show(absl::StrCat(sent, " items in the queue (", batches, batches == 1 ? " call" : " calls",
                      ")"));
    std::fputs("\n", stderr);
  }
  // Before ids go to stdout (the same terminal, maybe): the progress line is taken away.
  void Clear() {
    if (on_) std::fputs("\r\x1b[K", stderr);
  }

 private:
  void Show(const std::string& line) {
    if (on_) std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
  }
  const bool on_;
};

// `submit --file --batch N`: one Submit call per N items, in file order, each all or none. Ids
// are printed as each call lands; the first failure stops the run and says how to resume.
int SubmitInBatches(ControllerClient& client, std::vector<v1::ItemSpec> specs, int64_t batch,
                    int64_t skipped, SubmitProgress& progress) {
  const size_t n = static_cast<size_t>(batch);
  const size_t batches = (specs.size() + n - 1) / n;
  size_t sent = 0;
  for (size_t b = 0; b < batches; ++b) {
    v1::SubmitRequest request;
    for (size_t i = b * n; i < specs.size() && i < (b + 1) * n; ++i) {
      *request.add_items() = std::move(specs[i]);
    }
    progress.Sending(b + 1, batches, sent, specs.size());
    absl::StatusOr<v1::SubmitResponse> r = client.Submit(request);
    if (!r.ok()) {
      progress.Done(sent, b);
      const size_t in = static_cast<size_t>(skipped) + sent;
      return Error(absl::StrCat(
          "batch ", b + 1, " of ", batches, " (", request.items_size(), " items) was refused, none ",
          "of it is in the queue: ", r.status().message(), "; the file's first ", in,
          " items are in the queue (their ids are printed above); resume with --skip ", in));
    }
    std::string out;
    for (const std::string& id : r->ids()) absl::StrAppend(&out, id, "\n");
    progress.Clear();
    Print(out);
    sent += static_cast<size_t>(r->ids_size());
  }
  progress.Done(sent, batches);
  return 0;
}

int Submit(Cli& cli, const std::vector<std::string>& argv) {
  std::string title, prompt, prompt_file, id, file;
  int64_t priority = 0, max_attempts = 0;
  double timeout_s = 0;
  std::vector<std::string> labels;
  FlagParser p = cli.Parser(
      "submit",
      "usage: harnessctl submit --title T (--prompt P | --prompt-file F) [--id ID]\n"
      "                         [--priority P] [--max-attempts K] [--timeout S] [--label k=v]...\n"
      "       harnessctl submit --file FILE [--batch N] [--skip K]\n\n"
      "Enqueues one item and prints its id, or every item of FILE (a JSON array or a YAML list\n"
      "of objects with id, title, prompt | prompt_file, priority, max_attempts, timeout_s,\n"
      "labels) and prints their ids one per line: all of them or, on any error, none.\n"
      "--batch N sends them N per call, each call all or none; a failure stops there, says how\n"
      "many items are in, and --skip K resumes after them. Progress goes to stderr when it is\n"
      "a terminal.\n"
      "Here --timeout is the item's timeout; put the call deadline before the command\n"
      "(harnessctl --timeout S submit ...).",
      /*with_timeout=*/false);
  p.AddString("title", &title, "one line describing the item (required)");
  p.AddString("prompt", &prompt, "the instructions for the agent");
  p.AddString("prompt-file", &prompt_file, "read the prompt from this file (- for stdin)");
  p.AddString("id", &id, "the item's id (default: assigned by the controller)");
  p.AddInt("priority", &priority, "higher runs first (default 0)", INT64_MIN, INT64_MAX);
  p.AddInt("max-attempts", &max_attempts, "attempts before the item is parked (default 3)", 1,
           INT32_MAX);
  p.AddDouble("timeout", &timeout_s, "seconds one run may take (default: the controller's)", 0.001,
              1e9);
  p.AddRepeated("label", &labels, "a label KEY=VALUE (repeatable)");
  p.AddString("file", &file, "submit every item of this JSON or YAML file instead");
  int64_t batch = 0, skip = 0;
  p.AddInt("batch", &batch, "with --file: items per call, each all or none (default: one call)",
           1, INT32_MAX);
  p.AddInt("skip", &skip, "with --file: leave out its first K items (resuming a --batch run)", 0,
           INT64_MAX);
  WantArgs(p, p.ParseOrExit(argv), 0, "");
  if (!p.WasSet("file")) {
    for (const char* f : {"batch", "skip"}) {
      if (p.WasSet(f)) p.Fail(absl::StrCat("--", f, " needs --file"));
    }
  }

  v1::SubmitRequest request;
  if (p.WasSet("file")) {
    for (const char* f :
         {"title", "prompt", "prompt-file", "id", "priority", "max-attempts", "timeout", "label"}) {
      if (p.WasSet(f)) p.Fail(absl::StrCat("--file cannot be combined with --", f));
    }
    ClientOptions options = cli.Options(p);
    SubmitProgress progress(isatty(STDERR_FILENO) == 1);
    absl::StatusOr<std::vector<v1::ItemSpec>> specs = LoadItemFile(file);
    if (!specs.ok()) return Error(specs.status());
    if (static_cast<size_t>(skip) > specs->size()) {
      return Error(absl::StrCat("--skip ", skip, ": ", file, " has only ", specs->size(),
                                " items"));
    }
    specs->erase(specs->begin(), specs->begin() + skip);
    progress.Parsed(specs->size() + skip, skip);
    ControllerClient client(options);
    if (batch > 0) return SubmitInBatches(client, *std::move(specs), batch, skip, progress);
    for (v1::ItemSpec& spec : *specs) *request.add_items() = std::move(spec);
    progress.Sending(1, 1, 0, request.items_size());
    absl::StatusOr<v1::SubmitResponse> r = client.Submit(request);
    if (r.ok()) progress.Done(r->ids_size(), 1);
    progress.Clear();
    if (!r.ok()) {
      // gRPC's own size check ("Received message larger than max (N vs. M)") names no key; the
      // controller's limits (items per submit, queued items) name theirs.
      if (absl::IsResourceExhausted(r.status()) &&
          absl::StrContains(r.status().message(), "larger than max")) {
        return Error(absl::StrCat(
            "the ", request.items_size(), " items of ", file, " make a request of ",
            request.ByteSizeLong(), " bytes, more than the controller takes in one message (",
            r.status().message(),
            "; its limits.max_message_mb): submit fewer items per file, or --batch N"));
      }
      return Error(r.status());
    }
    std::string out;
    for (const std::string& submitted : r->ids()) absl::StrAppend(&out, submitted, "\n");
    Print(out);
    return 0;
  }

  if (!p.WasSet("title")) p.Fail("--title is required (or --file)");
  if (title.empty()) p.Fail("--title is empty");
  if (p.WasSet("prompt") && p.WasSet("prompt-file")) {
    p.Fail("give --prompt or --prompt-file, not both");
  }
  if (!p.WasSet("prompt") && !p.WasSet("prompt-file")) {
    p.Fail("--prompt or --prompt-file is required");
  }
  if (p.WasSet("prompt") && prompt.empty()) p.Fail("--prompt is empty");
  if (prompt.size() > kMaxPromptBytes) {
    p.Fail(absl::StrCat("--prompt is too large: ", prompt.size(), " bytes, at most ",
                        kMaxPromptBytes));
  }
  if (p.WasSet("id")) {
    if (absl::Status s = ValidateItemId(id); !s.ok()) p.Fail(absl::StrCat("--id: ", s.message()));
  }
  v1::ItemSpec* spec = request.add_items();
  for (const std::string& label : labels) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (label.find('=') == std::string::npos || kv.first.empty()) {
      p.Fail(absl::StrCat("--label wants KEY=VALUE, got \"", label, "\""));
    }
    if (!spec->mutable_labels()->insert({kv.first, kv.second}).second) {
      p.Fail(absl::StrCat("--label ", kv.first, " is given twice"));
    }
  }
  ClientOptions options = cli.Options(p);
  if (p.WasSet("prompt-file")) {
    if (prompt_file.empty()) p.Fail("--prompt-file is empty");
    absl::StatusOr<std::string> text = ReadPromptFile(prompt_file);
    if (!text.ok()) return Error(absl::StrCat("--prompt-file: ", text.status().message()));
    prompt = *std::move(text);
  }
  spec->set_id(id);
  spec->set_title(title);
  spec->set_prompt(prompt);
  spec->set_priority(priority);
  spec->set_max_attempts(static_cast<int32_t>(max_attempts));
  spec->set_timeout_s(timeout_s);
  ControllerClient client(options);
  absl::StatusOr<v1::SubmitResponse> r = client.Submit(request);
  if (!r.ok()) return Error(r.status());
  if (r->ids_size() != 1) {
    return Error(absl::StrCat("the controller answered ", r->ids_size(), " ids for one item"));
  }
  Print(absl::StrCat(r->ids(0), "\n"));
  return 0;
}

// --- items, show -----------------------------------------------------------------------------

int Items(Cli& cli, const std::vector<std::string>& argv) {
  bool json = false;
  std::string state_flag;
  FlagParser p = cli.Parser("items",
                            "usage: harnessctl items [--state S] [--json]\n\n"
                            "Lists the items, oldest first, without their prompts. S is one of\n"
                            "pending, leased, done, failed, parked, cancelled, or several\n"
                            "separated by commas.");
  p.AddString("state", &state_flag, "only items in this state (or comma-separated states)");
  p.AddBool("json", &json, "print one JSON document");
  WantArgs(p, p.ParseOrExit(argv), 0, "");
  std::vector<v1::ItemState> states;
  if (p.WasSet("state")) {
    for (absl::string_view name : absl::StrSplit(state_flag, ',')) {
      v1::ItemState s;
      if (!ParseItemState(name, &s)) {
        p.Fail(
            absl::StrCat("--state must be pending, leased, done, failed, parked or cancelled, "
                         "got \"",
                         name, "\""));
      }
      states.push_back(s);
    }
  }
  ControllerClient client(cli.Options(p));
  auto items = client.ListAll(states);
  if (!items.ok()) return Error(items.status());
  Print(json ? RenderItemsJson(*items, /*pretty=*/true) : RenderItemsText(*items));
  return 0;
}

int Show(Cli& cli, const std::vector<std::string>& argv) {
  bool json = false;
  FlagParser p = cli.Parser("show",
                            "usage: harnessctl show ID [--json]\n\n"
                            "One item in full: state, attempts, result, error, prompt and the\n"
                            "tail of its log.");
  p.AddBool("json", &json, "print one JSON document");
  std::string id = ItemIdArg(p, p.ParseOrExit(argv));
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::Item> item = client.Get(id);
  if (!item.ok()) return Error(item.status());
  Print(json ? RenderItemJson(*item, /*pretty=*/true) : RenderItemText(*item));
  return 0;
}

// --- cancel, retry ---------------------------------------------------------------------------

int Cancel(Cli& cli, const std::vector<std::string>& argv) {
  std::string reason;
  FlagParser p = cli.Parser("cancel",
                            "usage: harnessctl cancel ID [--reason R]\n\n"
                            "Cancels a pending or leased item (its agent is told to stop) and\n"
                            "prints `ID: OLD -> cancelled`.");
  p.AddString("reason", &reason, "recorded as the item's error (default: cancelled by operator)");
  std::string id = ItemIdArg(p, p.ParseOrExit(argv));
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::CancelResponse> r = client.Cancel(id, reason);
  if (!r.ok()) return Error(r.status());
  std::string out =
      r->previous_state() == v1::ITEM_STATE_CANCELLED
          ? absl::StrCat(id, ": already cancelled")
          : absl::StrCat(id, ": ", ItemStateName(r->previous_state()), " -> cancelled");
  if (!r->agent().empty()) absl::StrAppend(&out, " (agent ", r->agent(), " told to stop)");
  Print(absl::StrCat(out, "\n"));
  return 0;
}

int Retry(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("retry",
                            "usage: harnessctl retry ID\n\n"
                            "Puts a failed or parked item back to pending with a fresh budget of\n"
                            "attempts and prints `ID: OLD -> pending`.");
  std::string id = ItemIdArg(p, p.ParseOrExit(argv));
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::RetryResponse> r = client.Retry(id);
  if (!r.ok()) return Error(r.status());
  Print(absl::StrCat(id, ": ", ItemStateName(r->previous_state()), " -> pending\n"));
  return 0;
}

// --- agents, drain ---------------------------------------------------------------------------

int Agents(Cli& cli, const std::vector<std::string>& argv) {
  bool json = false;
  FlagParser p = cli.Parser("agents",
                            "usage: harnessctl agents [--json]\n\n"
                            "The agents the controller knows, with state, health, current item\n"
                            "and when it last heard from them.");
  p.AddBool("json", &json, "print one JSON document");
  WantArgs(p, p.ParseOrExit(argv), 0, "");
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::ListAgentsResponse> r = client.ListAgents();
  if (!r.ok()) return Error(r.status());
  Print(json ? RenderAgentsJson(r->agents(), /*pretty=*/true) : RenderAgentsText(r->agents()));
  return 0;
}

int Drain(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("drain",
                            "usage: harnessctl drain AGENT\n\n"
                            "The agent finishes its current item, takes no more and exits.\n"
                            "Prints `AGENT: STATE` (draining, or stopped if it already was).");
  std::vector<std::string> args = p.ParseOrExit(argv);
  WantArgs(p, args, 1, "AGENT");
  if (absl::Status s = ValidateAgentId(args[0]); !s.ok()) p.Fail(std::string(s.message()));
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::DrainResponse> r = client.Drain(args[0]);
  if (!r.ok()) return Error(r.status());
  Print(absl::StrCat(args[0], ": ", AgentStateName(r->agent().state()), "\n"));
  return 0;
}

int Stop(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("stop",
                            "usage: harnessctl stop AGENT\n\n"
                            "Stops the agent now: its item goes back to the queue (not counted\n"
                            "as an attempt). An agent the controller launched is replaced by a\n"
                            "fresh one. Prints `AGENT: stopping`.");
  std::vector<std::string> args = p.ParseOrExit(argv);
  WantArgs(p, args, 1, "AGENT");
  if (absl::Status s = ValidateAgentId(args[0]); !s.ok()) p.Fail(std::string(s.message()));
  ControllerClient client(cli.Options(p));
  absl::StatusOr<v1::StopAgentResponse> r = client.StopAgent(args[0]);
  if (!r.ok()) return Error(r.status());
  Print(absl::StrCat(args[0], ": stopping\n"));
  return 0;
}

// --- logs, events ----------------------------------------------------------------------------

int Logs(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("logs",
                            "usage: harnessctl logs ID [--attempt N] [-f]\n\n"
                            "Prints an attempt's log: the output of the agent's command, as\n"
                            "the controller keeps it (its last limits.max_log_bytes_per_attempt\n"
                            "bytes). The newest attempt unless --attempt. With -f (--follow)\n"
                            "keeps printing new output until the attempt ends (exit 0) or\n"
                            "Ctrl-C; following an item that has not started waits for it.");
  int64_t attempt = 0;
  bool follow = false;
  p.AddInt("attempt", &attempt, "the attempt (1, 2, ...); default the newest", 1, 1000000);
  p.AddBool("follow", &follow, "keep printing until the attempt ends (also -f)");
  std::vector<std::string> args = p.ParseOrExit(ExpandShortFollow(argv));
  const std::string id = ItemIdArg(p, args);
  ClientOptions options = cli.Options(p);
  if (follow) BlockStopSignals();  // before the channel starts gRPC's threads
  ControllerClient client(options);
  v1::FollowLogRequest request;
  request.set_id(id);
  request.set_attempt(static_cast<int32_t>(attempt));
  request.set_follow(follow);
  absl::Status s = client.FollowLog(request, [](const v1::LogChunk& c) {
    if (c.skipped_bytes() > 0) {
      std::fprintf(stderr, "harnessctl: %lld bytes of the log were not kept (skipped)\n",
                   static_cast<long long>(c.skipped_bytes()));
    }
    Print(c.data());
  });
  return s.ok() ? 0 : Error(s);
}

int Events(Cli& cli, const std::vector<std::string>& argv) {
  FlagParser p = cli.Parser("events",
                            "usage: harnessctl events [-f] [--json] [--recent N]\n\n"
                            "Prints recent item and agent state changes (submitted, leased,\n"
                            "done, failed, expired, released, cancelled; agent registered,\n"
                            "suspect, dead, drained, stopped; pool slot failed), oldest first.\n"
                            "With -f (--follow) keeps printing them as they happen until\n"
                            "Ctrl-C. --json prints one JSON object per line.");
  bool follow = false, json = false;
  int64_t recent = 0;
  p.AddBool("follow", &follow, "keep printing events as they happen (also -f)");
  p.AddBool("json", &json, "one JSON object per line");
  p.AddInt("recent", &recent, "how many recent events to print first (100)", 1, 1000000);
  WantArgs(p, p.ParseOrExit(ExpandShortFollow(argv)), 0, "");
  ClientOptions options = cli.Options(p);
  if (follow) BlockStopSignals();
  ControllerClient client(options);
  v1::WatchEventsRequest request;
  request.set_follow(follow);
  request.set_recent(static_cast<int32_t>(recent));
  absl::Status s = client.WatchEvents(request, [json](const v1::Event& e) {
    Print(json ? absl::StrCat(RenderEventJson(e), "\n") : RenderEventText(e));
  });
  return s.ok() ? 0 : Error(s);
}

struct Command {
  const char* name;
  int (*run)(Cli&, const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"status", Status}, {"scale", Scale}, {"submit", Submit}, {"items", Items}, {"show", Show},
    {"cancel", Cancel}, {"retry", Retry}, {"agents", Agents}, {"drain", Drain},
    {"stop", Stop}, {"logs", Logs}, {"events", Events},
};

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace

int RunHarnessctl(int argc, char** argv) {
  FlagParser global("harnessctl", kMainUsage);
  Cli cli(&global);
  AddGlobalFlags(global, &cli.globals(), /*with_timeout=*/true);
  std::vector<std::string> args = global.ParseOrExit(argc, argv, /*stop_at_first_positional=*/true);
  if (args.empty()) global.Fail("missing command");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "help") {  // `harnessctl help [COMMAND]`
    if (rest.empty()) {
      std::fputs(global.Usage().c_str(), stdout);
      return 0;
    }
    const Command* c = FindCommand(rest[0]);
    if (c == nullptr) global.Fail(absl::StrCat("unknown command \"", rest[0], "\""));
    return c->run(cli, {"--help"});  // prints the command's usage and exits 0
  }
  const Command* c = FindCommand(args[0]);
  if (c == nullptr) global.Fail(absl::StrCat("unknown command \"", args[0], "\""));
  return c->run(cli, rest);
}

}  // namespace harness::client
