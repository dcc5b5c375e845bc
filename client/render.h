// Rendering of harness.v1 messages for harnessctl: the human text (tables and blocks) and the
// `--json` documents, with the field names and lower-case state names of CONTRACT.md. Pure
// functions of the messages (and, for relative times, nothing but them): no gRPC, no I/O, so
// every format is unit-tested (tests/unit/render_test.cc). The controller's HTTP API serves the
// same JSON documents (http/api_routes.cc), so the CLI and the API share one shape.
//
// JSON conventions: enums are lower-case names without their prefix ("pending", "working");
// 64-bit integers are JSON numbers; times are RFC 3339 UTC strings in `*_at` members next to
// the raw `*_at_unix_ms` numbers (null / 0 when unset); an API "" that means "none" (an agent's
// item, a commit) is null.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "harness/v1/types.pb.h"

namespace harness::client {

// Lower-case names without the enum prefix: "pending", "working", "healthy", "expired"...
// UNSPECIFIED (or a value newer than this client) is "unspecified" / "unknown(N)".
std::string ItemStateName(v1::ItemState state);
std::string AgentStateName(v1::AgentState state);
std::string HealthName(v1::Health health);
std::string OutcomeName(v1::AttemptOutcome outcome);

// Parses a name as printed by ItemStateName ("pending" ... "cancelled"; any case); false
// otherwise (also for "unspecified").
bool ParseItemState(absl::string_view name, v1::ItemState* state);

// RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.250Z"); "" for 0 (unset).
std::string FormatUnixMs(int64_t unix_ms);

// `harnessctl status`, exactly the layout of CONTRACT.md:
//   Controller: pid 12345 | uptime 3600s | 127.0.0.1:7070
//   Agents (3/3):                              (active/target)
//     agent-1  working  item-123  healthy      (id, state, item or -, health)
//   Queue: 15 total | 12 pending | 3 leased | 40 done | 1 failed | 0 parked
//   Metrics: 3 active | 2 working | 4.2 items/h | success 97%
// "working" counts agents in state working that are not dead.
//
// With `progress` (status --watch), each agent row that holds an item adds how long it has run
// and the last line its command printed, cut so the row fits `width` columns (0: no limit):
//     agent-1  working  item-123  healthy  3m05s  Running tests: 41/120 passed
std::string RenderStatusText(const v1::StatusSnapshot& status, bool progress = false,
                             size_t width = 0);
// `status --json`: controller, agents, queue, pool, metrics (see CONTRACT.md).
std::string RenderStatusJson(const v1::StatusSnapshot& status, bool pretty);

// `harnessctl agents`: a table (ID STATE HEALTH ITEM LAST-SEEN PID HOST VERSION).
std::string RenderAgentsText(const google::protobuf::RepeatedPtrField<v1::AgentInfo>& agents);
// `agents --json`: {"agents": [ ...the agent objects of status --json, plus version... ]}.
std::string RenderAgentsJson(const google::protobuf::RepeatedPtrField<v1::AgentInfo>& agents,
                             bool pretty);

// `harnessctl items`: a table (ID STATE PRIORITY ATTEMPTS AGENT TITLE), or "no items".
std::string RenderItemsText(const google::protobuf::RepeatedPtrField<v1::ItemSummary>& items);
// `items --json`: {"items": [{id, title, state, priority, attempt_count, max_attempts, agent,
// labels, error, result_commit, submitted_at(_unix_ms), updated_at(_unix_ms)}]}, and
// "next_page_token" after the items when one is given (the HTTP API's paging; harnessctl reads
// every page and never sets it).
std::string RenderItemsJson(const google::protobuf::RepeatedPtrField<v1::ItemSummary>& items,
                            bool pretty, absl::string_view next_page_token = "");

// `harnessctl show ID`: a readable block with the attempts, the result ("no changes" when
// done without a commit), the error, the prompt and the log tail.
std::string RenderItemText(const v1::Item& item);
// `show ID --json`: id, title, state, priority, prompt, labels, max_attempts, timeout_s, agent,
// submitted_at, updated_at, attempts [{number, agent, lease_token, started_at, ended_at,
// exit_code, outcome, error, commit, base}], result {branch, commit, base} (null unless done),
// error (null when none), log_tail.
std::string RenderItemJson(const v1::Item& item, bool pretty);

// Makes text from the controller safe to print on a terminal: control characters other than
// newline and tab (escape sequences included) become "\xNN"; with `single_line`, newlines and
// tabs become spaces too. Invalid UTF-8 bytes are shown as "\xNN" as well.
std::string SanitizeForTerminal(absl::string_view text, bool single_line);

// `text` cut to at most `columns` display columns (one per code point), "..." ending a cut one.
std::string FitColumns(absl::string_view text, size_t columns);

// A frame of `status --watch` on a terminal: drawn from the top-left corner over the previous
// one, each line cleared to its end and everything below the frame cleared, so the screen is
// redrawn in place without a blank flash.
std::string RedrawInPlace(absl::string_view frame);

}  // namespace harness::client
