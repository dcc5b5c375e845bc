// Human and JSON rendering of harness.v1 messages (see render.h).
#include "client/render.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/json_writer.h"

namespace harness::client {
namespace {

using google::protobuf::Map;
using google::protobuf::RepeatedPtrField;

// Removes the enum's prefix and lower-cases the rest ("ITEM_STATE_PENDING" -> "pending").
std::string EnumName(const std::string& full, absl::string_view prefix, int value) {
  if (full.empty()) return absl::StrCat("unknown(", value, ")");
  absl::string_view name = full;
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }

// Number of terminal columns of printable UTF-8 text (one per code point: good enough for the
// ids, names and states padded here).
size_t DisplayWidth(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A table whose columns are separated by two spaces and padded to their widest cell; the last
// column is not padded, so no line ends with blanks.
class Table {
 public:
  explicit Table(std::string indent) : indent_(std::move(indent)) {}
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::vector<std::string> Lines() const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
    std::vector<std::string> lines;
    for (const auto& row : rows_) {
      std::string line = indent_;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - DisplayWidth(row[i]) + 2, ' ');
      }
      lines.push_back(std::move(line));
    }
    return lines;
  }
  std::string Render() const {
    std::string out;
    for (const std::string& line : Lines()) absl::StrAppend(&out, line, "\n");
    return out;
  }

 private:
  std::string indent_;
  std::vector<std::vector<std::string>> rows_;
};

// "120ms", "4.5s", "12m05s", "3h02m".
std::string HumanDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return absl::StrCat(ms, "ms");
  if (ms < 60'000) return absl::StrFormat("%.1fs", static_cast<double>(ms) / 1000);
  int64_t s = ms / 1000;
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s / 60) % 60);
}

std::string ShortCommit(absl::string_view commit) { return std::string(commit.substr(0, 12)); }

// Labels in key order (a proto map has none of its own).
std::map<std::string, std::string> SortedLabels(const Map<std::string, std::string>& labels) {
  return std::map<std::string, std::string>(labels.begin(), labels.end());
}

std::string LabelsText(const Map<std::string, std::string>& labels) {
  if (labels.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [k, v] : SortedLabels(labels)) {
    parts.push_back(absl::StrCat(SanitizeForTerminal(k, true), "=", SanitizeForTerminal(v, true)));
  }
  return absl::StrJoin(parts, ", ");
}

// "12.5" or "3600": seconds without a pointless fraction (at most milliseconds).
std::string Seconds(double s) {
  if (s == std::floor(s) && std::fabs(s) < 1e15) return absl::StrCat(static_cast<int64_t>(s));
  std::string t = absl::StrFormat("%.3f", s);
  while (t.back() == '0') t.pop_back();
  if (t.back() == '.') t.pop_back();
  return t;
}

// A multi-line text indented by two spaces, without a trailing blank line.
std::string Indented(absl::string_view text) {
  std::string out;
  absl::string_view t = text;
  while (!t.empty() && t.back() == '\n') t.remove_suffix(1);
  for (absl::string_view line : absl::StrSplit(t, '\n')) {
    absl::StrAppend(&out, line.empty() ? "" : "  ", SanitizeForTerminal(line, false), "\n");
  }
  return out;
}

// --- JSON pieces -----------------------------------------------------------------------------

// "<name>_at": RFC 3339 or null, and "<name>_at_unix_ms": the raw number.
void WriteTime(JsonWriter& w, absl::string_view name, int64_t unix_ms) {
  w.Key(absl::StrCat(name, "_at")).StringOrNull(FormatUnixMs(unix_ms));
  w.Key(absl::StrCat(name, "_at_unix_ms")).Int(unix_ms);
}

void WriteLabels(JsonWriter& w, const Map<std::string, std::string>& labels) {
  w.Key("labels").BeginObject();
  for (const auto& [k, v] : SortedLabels(labels)) w.Key(k).String(v);
  w.EndObject();
}

void WriteAgent(JsonWriter& w, const v1::AgentInfo& a, bool with_version) {
  w.BeginObject();
  w.Key("id").String(a.id());
  w.Key("state").String(AgentStateName(a.state()));
  w.Key("health").String(HealthName(a.health()));
  w.Key("item").StringOrNull(a.item());
  w.Key("item_elapsed_ms").Int(a.item_elapsed_ms());
  w.Key("last_output_line").StringOrNull(a.last_output_line());
  w.Key("last_heartbeat_ms_ago").Int(a.last_heartbeat_ms_ago());
  w.Key("pid").Int(a.pid());
  w.Key("host").String(a.host());
  if (with_version) w.Key("version").String(a.version());
  w.EndObject();
}

std::string Finish(const JsonWriter& w) { return absl::StrCat(w.str(), "\n"); }

}  // namespace

std::string ItemStateName(v1::ItemState state) {
  return EnumName(v1::ItemState_Name(state), "ITEM_STATE_", state);
}
std::string AgentStateName(v1::AgentState state) {
  return EnumName(v1::AgentState_Name(state), "AGENT_STATE_", state);
}
std::string HealthName(v1::Health health) {
  return EnumName(v1::Health_Name(health), "HEALTH_", health);
}
std::string OutcomeName(v1::AttemptOutcome outcome) {
  return EnumName(v1::AttemptOutcome_Name(outcome), "ATTEMPT_OUTCOME_", outcome);
}

bool ParseItemState(absl::string_view name, v1::ItemState* state) {
  for (v1::ItemState s : {v1::ITEM_STATE_PENDING, v1::ITEM_STATE_LEASED, v1::ITEM_STATE_DONE,
                          v1::ITEM_STATE_FAILED, v1::ITEM_STATE_PARKED, v1::ITEM_STATE_CANCELLED}) {
    if (ItemStateName(s) == absl::AsciiStrToLower(name)) {
      *state = s;
      return true;
    }
  }
  return false;
}

std::string FormatUnixMs(int64_t unix_ms) {
  if (unix_ms == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string SanitizeForTerminal(absl::string_view text, bool single_line) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n' || c == '\t') {
      out.push_back(single_line ? ' ' : static_cast<char>(c));
      ++i;
    } else if (c < 0x20 || c == 0x7F) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
      ++i;
    } else if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else {
      // Keep a well-formed multi-byte sequence whole; show a stray byte escaped. C1 controls
      // (U+0080..U+009F, e.g. the 8-bit CSI) are escaped too.
      size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
      bool ok = len > 0 && i + len <= text.size();
      for (size_t k = 1; ok && k < len; ++k) {
        ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
      }
      if (ok && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) ok = false;
      if (ok) {
        out.append(text.data() + i, len);
        i += len;
      } else {
        absl::StrAppendFormat(&out, "\\x%02x", c);
        ++i;
      }
    }
  }
  return out;
}

// --- status ----------------------------------------------------------------------------------

std::string FitColumns(absl::string_view text, size_t columns) {
  if (DisplayWidth(text) <= columns) return std::string(text);
  if (columns < 4) return std::string(columns, '.');
  std::string out;
  size_t used = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80 && ++used > columns - 3) break;
    out.push_back(text[i]);
  }
  return out + "...";
}

std::string RedrawInPlace(absl::string_view frame) {
  std::string out = "\x1b[H";
  while (!frame.empty()) {
    const size_t nl = frame.find('\n');
    absl::StrAppend(&out, frame.substr(0, nl), "\x1b[K\n");
    if (nl == absl::string_view::npos) break;
    frame.remove_prefix(nl + 1);
  }
  return out + "\x1b[J";
}

std::string RenderStatusText(const v1::StatusSnapshot& s, bool progress, size_t width) {
  const v1::ControllerInfo& c = s.controller();
  std::string out = absl::StrCat("Controller: pid ", c.pid(), " | uptime ", c.uptime_s(), "s | ",
                                 SanitizeForTerminal(c.address(), true), "\n");
  if (!c.store_error().empty()) {
    absl::StrAppend(&out, "Store: FAILING since ", FormatUnixMs(c.store_failing_since_unix_ms()),
                    ", changes are refused: ", SanitizeForTerminal(c.store_error(), true), "\n");
  }
  if (c.recovery_repairs_size() > 0) {
    constexpr int kShown = 5;
    absl::StrAppend(&out, "Recovery at start: ", c.recovery_repairs_size(), " repairs\n");
    for (int i = 0; i < c.recovery_repairs_size() && i < kShown; ++i) {
      absl::StrAppend(&out, "  ", SanitizeForTerminal(c.recovery_repairs(i), true), "\n");
    }
    if (c.recovery_repairs_size() > kShown) {
      absl::StrAppend(&out, "  ... and ", c.recovery_repairs_size() - kShown,
                      " more (status --json, or the controller's log)\n");
    }
  }
  absl::StrAppend(&out, "Agents (", s.pool().active(), "/", s.pool().target(), "):\n");
  Table agents("  ");
  int working = 0;
  std::vector<std::string> last_lines;  // per row, with `progress`
  for (const v1::AgentInfo& a : s.agents()) {
    std::vector<std::string> row = {a.id(), AgentStateName(a.state()), OrDash(a.item()),
                                    HealthName(a.health())};
    if (progress && !a.item().empty()) row.push_back(HumanDuration(a.item_elapsed_ms()));
    agents.Add(std::move(row));
    last_lines.push_back(progress && !a.item().empty()
                             ? SanitizeForTerminal(a.last_output_line(), true)
                             : std::string());
    if (a.state() == v1::AGENT_STATE_WORKING && a.health() != v1::HEALTH_DEAD) ++working;
  }
  std::vector<std::string> rows = agents.Lines();
  // Last lines start in one column, after the widest row.
  size_t column = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!last_lines[i].empty()) column = std::max(column, DisplayWidth(rows[i]) + 2);
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string line = rows[i];
    if (!last_lines[i].empty() && (width == 0 || column + 4 <= width)) {
      line.append(column - DisplayWidth(line), ' ');
      line += width == 0 ? last_lines[i] : FitColumns(last_lines[i], width - column);
    }
    absl::StrAppend(&out, line, "\n");
  }
  // Slots are shown when one is not simply running: what the pool is doing, and why.
  std::string slots;
  for (const v1::PoolSlot& slot : s.pool().slots()) {
    if (slot.state() == "running" && slot.failures() == 0) continue;
    absl::StrAppend(&slots, "  slot ", slot.slot(), " (", SanitizeForTerminal(slot.agent(), true),
                    "): ", SanitizeForTerminal(slot.state(), true));
    if (slot.failures() > 0) absl::StrAppend(&slots, ", ", slot.failures(), " failures");
    if (!slot.reason().empty()) {
      absl::StrAppend(&slots, ", last: ", SanitizeForTerminal(slot.reason(), true));
    }
    slots += "\n";
  }
  if (!s.pool().launcher_error().empty()) {
    // The launcher cannot act (its daemon is down): said first, since it explains the slots.
    absl::StrAppend(&out, "Pool (", SanitizeForTerminal(s.pool().launcher(), true),
                    "): ", SanitizeForTerminal(s.pool().launcher_error(), true), "\n", slots);
  } else if (!slots.empty()) {
    absl::StrAppend(&out, "Pool (", s.pool().launcher(), "):\n", slots);
  }
  const v1::QueueCounts& q = s.queue();
  absl::StrAppend(&out, "Queue: ", q.total(), " total | ", q.pending(), " pending | ", q.leased(),
                  " leased | ", q.done(), " done | ", q.failed(), " failed | ", q.parked(),
                  " parked\n");
  double rate = s.metrics().success_rate();
  std::string success =
      std::isfinite(rate) ? absl::StrCat(std::lround(rate * 100), "%") : std::string("-");
  absl::StrAppendFormat(&out, "Metrics: %d active | %d working | %.1f items/h | success %s\n",
                        s.pool().active(), working, s.metrics().items_per_hour(), success);
  return out;
}

std::string RenderStatusJson(const v1::StatusSnapshot& s, bool pretty) {
  JsonWriter w(pretty);
  w.BeginObject();
  w.Key("controller").BeginObject();
  w.Key("pid").Int(s.controller().pid());
  w.Key("uptime_s").Int(s.controller().uptime_s());
  w.Key("address").String(s.controller().address());
  w.Key("version").String(s.controller().version());
  w.Key("store_ok").Bool(s.controller().store_error().empty());
  w.Key("store_error").String(s.controller().store_error());
  w.Key("store_failing_since_unix_ms").Int(s.controller().store_failing_since_unix_ms());
  w.Key("recovery_repairs").BeginArray();
  for (const std::string& r : s.controller().recovery_repairs()) w.String(r);
  w.EndArray();
  w.EndObject();
  w.Key("agents").BeginArray();
  for (const v1::AgentInfo& a : s.agents()) WriteAgent(w, a, /*with_version=*/false);
  w.EndArray();
  const v1::QueueCounts& q = s.queue();
  w.Key("queue").BeginObject();
  w.Key("total").Int(q.total());
  w.Key("pending").Int(q.pending());
  w.Key("leased").Int(q.leased());
  w.Key("done").Int(q.done());
  w.Key("failed").Int(q.failed());
  w.Key("parked").Int(q.parked());
  w.Key("cancelled").Int(q.cancelled());
  w.EndObject();
  w.Key("pool").BeginObject();
  w.Key("target").Int(s.pool().target());
  w.Key("active").Int(s.pool().active());
  w.Key("launcher").String(s.pool().launcher());
  w.Key("launcher_error").StringOrNull(s.pool().launcher_error());
  w.Key("slots").BeginArray();
  for (const v1::PoolSlot& slot : s.pool().slots()) {
    w.BeginObject();
    w.Key("slot").Int(slot.slot());
    w.Key("agent").String(slot.agent());
    w.Key("state").String(slot.state());
    w.Key("failures").Int(slot.failures());
    w.Key("reason").String(slot.reason());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.Key("metrics").BeginObject();
  w.Key("items_per_hour").Double(s.metrics().items_per_hour());
  w.Key("avg_item_s").Double(s.metrics().avg_item_s());
  w.Key("success_rate").Double(s.metrics().success_rate());
  w.EndObject();
  w.EndObject();
  return Finish(w);
}

// --- agents ----------------------------------------------------------------------------------

std::string RenderAgentsText(const RepeatedPtrField<v1::AgentInfo>& agents) {
  if (agents.empty()) return "no agents\n";
  Table t("");
  t.Add({"ID", "STATE", "HEALTH", "ITEM", "LAST-SEEN", "PID", "HOST", "VERSION"});
  for (const v1::AgentInfo& a : agents) {
    t.Add({a.id(), AgentStateName(a.state()), HealthName(a.health()), OrDash(a.item()),
           absl::StrCat(HumanDuration(a.last_heartbeat_ms_ago()), " ago"),
           a.pid() > 0 ? absl::StrCat(a.pid()) : "-", OrDash(SanitizeForTerminal(a.host(), true)),
           OrDash(SanitizeForTerminal(a.version(), true))});
  }
  return t.Render();
}

std::string RenderAgentsJson(const RepeatedPtrField<v1::AgentInfo>& agents, bool pretty) {
  JsonWriter w(pretty);
  w.BeginObject().Key("agents").BeginArray();
  for (const v1::AgentInfo& a : agents) WriteAgent(w, a, /*with_version=*/true);
  w.EndArray().EndObject();
  return Finish(w);
}

// --- items -----------------------------------------------------------------------------------

std::string RenderItemsText(const RepeatedPtrField<v1::ItemSummary>& items) {
  if (items.empty()) return "no items\n";
  Table t("");
  t.Add({"ID", "STATE", "PRIORITY", "ATTEMPTS", "AGENT", "TITLE"});
  for (const v1::ItemSummary& i : items) {
    t.Add({i.id(), ItemStateName(i.state()), absl::StrCat(i.priority()),
           absl::StrCat(i.attempt_count(), "/", i.max_attempts()), OrDash(i.agent()),
           SanitizeForTerminal(i.title(), true)});
  }
  return t.Render();
}

std::string RenderItemsJson(const RepeatedPtrField<v1::ItemSummary>& items, bool pretty,
                            absl::string_view next_page_token) {
  JsonWriter w(pretty);
  w.BeginObject().Key("items").BeginArray();
  for (const v1::ItemSummary& i : items) {
    w.BeginObject();
    w.Key("id").String(i.id());
    w.Key("title").String(i.title());
    w.Key("state").String(ItemStateName(i.state()));
    w.Key("priority").Int(i.priority());
    w.Key("attempt_count").Int(i.attempt_count());
    w.Key("max_attempts").Int(i.max_attempts());
    w.Key("agent").StringOrNull(i.agent());
    WriteLabels(w, i.labels());
    w.Key("error").StringOrNull(i.error());
    w.Key("result_commit").StringOrNull(i.result_commit());
    WriteTime(w, "submitted", i.submitted_at_unix_ms());
    WriteTime(w, "updated", i.updated_at_unix_ms());
    w.EndObject();
  }
  w.EndArray();
  if (!next_page_token.empty()) w.Key("next_page_token").String(next_page_token);
  w.EndObject();
  return Finish(w);
}

// --- one item --------------------------------------------------------------------------------

std::string RenderItemText(const v1::Item& item) {
  std::string out;
  auto field = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppendFormat(&out, "%-14s%s\n", absl::StrCat(name, ":"), value);
  };
  field("ID", item.id());
  field("Title", SanitizeForTerminal(item.title(), true));
  field("State", ItemStateName(item.state()));
  field("Priority", absl::StrCat(item.priority()));
  field("Max attempts", absl::StrCat(item.max_attempts()));
  field("Timeout", absl::StrCat(Seconds(item.timeout_s()), "s"));
  field("Labels", LabelsText(item.labels()));
  field("Submitted", OrDash(FormatUnixMs(item.submitted_at_unix_ms())));
  field("Updated", OrDash(FormatUnixMs(item.updated_at_unix_ms())));
  if (!item.agent().empty()) field("Agent", item.agent());
  if (item.state() == v1::ITEM_STATE_DONE) {
    const v1::ItemResult& r = item.result();
    std::string base = r.base().empty() ? "" : absl::StrCat(" (base ", ShortCommit(r.base()), ")");
    if (r.commit().empty()) {
      field("Result", absl::StrCat("no changes", base));
    } else {
      field("Result", absl::StrCat(OrDash(r.branch()), " at ", r.commit(), base));
    }
  }
  if (!item.error().empty()) field("Error", SanitizeForTerminal(item.error(), true));

  absl::StrAppend(&out, "\nAttempts (", item.attempts_size(), "):\n");
  if (item.attempts().empty()) absl::StrAppend(&out, "  none\n");
  Table t("  ");
  t.Add({"#", "AGENT", "OUTCOME", "EXIT", "STARTED", "TOOK", "TOKEN", "COMMIT"});
  for (const v1::Attempt& a : item.attempts()) {
    std::string took = a.ended_at_unix_ms() == 0
                           ? std::string("-")
                           : HumanDuration(a.ended_at_unix_ms() - a.started_at_unix_ms());
    t.Add({absl::StrCat(a.number()), OrDash(a.agent()), OutcomeName(a.outcome()),
           a.has_exit_code() ? absl::StrCat(a.exit_code().value()) : "-",
           OrDash(FormatUnixMs(a.started_at_unix_ms())), took, absl::StrCat(a.lease_token()),
           OrDash(ShortCommit(a.commit()))});
  }
  if (!item.attempts().empty()) {
    std::vector<std::string> lines = t.Lines();
    absl::StrAppend(&out, lines[0], "\n");
    for (int i = 0; i < item.attempts_size(); ++i) {
      absl::StrAppend(&out, lines[static_cast<size_t>(i) + 1], "\n");
      const std::string& error = item.attempts(i).error();
      if (!error.empty())
        absl::StrAppend(&out, "     error: ", SanitizeForTerminal(error, true), "\n");
    }
  }
  absl::StrAppend(&out, "\nPrompt:\n", Indented(item.prompt()));
  absl::StrAppend(&out, "\nLog tail:\n",
                  item.log_tail().empty() ? "  (empty)\n" : Indented(item.log_tail()));
  return out;
}

std::string RenderItemJson(const v1::Item& item, bool pretty) {
  JsonWriter w(pretty);
  w.BeginObject();
  w.Key("id").String(item.id());
  w.Key("title").String(item.title());
  w.Key("state").String(ItemStateName(item.state()));
  w.Key("priority").Int(item.priority());
  w.Key("prompt").String(item.prompt());
  WriteLabels(w, item.labels());
  w.Key("max_attempts").Int(item.max_attempts());
  w.Key("timeout_s").Double(item.timeout_s());
  w.Key("agent").StringOrNull(item.agent());
  WriteTime(w, "submitted", item.submitted_at_unix_ms());
  WriteTime(w, "updated", item.updated_at_unix_ms());
  w.Key("attempts").BeginArray();
  for (const v1::Attempt& a : item.attempts()) {
    w.BeginObject();
    w.Key("number").Int(a.number());
    w.Key("agent").String(a.agent());
    w.Key("lease_token").Uint(a.lease_token());
    WriteTime(w, "started", a.started_at_unix_ms());
    WriteTime(w, "ended", a.ended_at_unix_ms());
    w.Key("exit_code");
    if (a.has_exit_code()) {
      w.Int(a.exit_code().value());
    } else {
      w.Null();
    }
    w.Key("outcome").String(OutcomeName(a.outcome()));
    w.Key("error").StringOrNull(a.error());
    w.Key("commit").StringOrNull(a.commit());
    w.Key("base").StringOrNull(a.base_commit());
    w.EndObject();
  }
  w.EndArray();
  w.Key("result");
  if (item.state() == v1::ITEM_STATE_DONE) {
    w.BeginObject();
    w.Key("branch").StringOrNull(item.result().branch());
    w.Key("commit").StringOrNull(item.result().commit());
    w.Key("base").StringOrNull(item.result().base());
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("error").StringOrNull(item.error());
  w.Key("log_tail").String(item.log_tail());
  w.EndObject();
  return Finish(w);
}

}  // namespace harness::client
