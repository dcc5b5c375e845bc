// Rendering of events (see event_render.h).
#include "client/event_render.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/json_writer.h"
#include "client/render.h"

namespace harness::client {

std::string RenderEventText(const v1::Event& e) {
  std::string out = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(e.at_unix_ms()),
                                     absl::UTCTimeZone());
  absl::StrAppend(&out, " ", SanitizeForTerminal(e.kind(), true));
  auto field = [&](const char* name, const std::string& value) {
    if (!value.empty()) absl::StrAppend(&out, " ", name, "=", SanitizeForTerminal(value, true));
  };
  field("item", e.item());
  field("agent", e.agent());
  if (e.lease_token() != 0) absl::StrAppend(&out, " token=", e.lease_token());
  if (e.attempt() != 0) absl::StrAppend(&out, " attempt=", e.attempt());
  field("state", e.state());
  field("outcome", e.outcome());
  if (!e.message().empty()) absl::StrAppend(&out, " -- ", SanitizeForTerminal(e.message(), true));
  out.push_back('\n');
  return out;
}

std::string RenderEventJson(const v1::Event& e) {
  JsonWriter w;
  w.BeginObject();
  w.Key("seq").Uint(e.seq());
  w.Key("at_unix_ms").Int(e.at_unix_ms());
  w.Key("kind").String(e.kind());
  w.Key("item").String(e.item());
  w.Key("agent").String(e.agent());
  w.Key("lease_token").Uint(e.lease_token());
  w.Key("attempt").Int(e.attempt());
  w.Key("state").String(e.state());
  w.Key("outcome").String(e.outcome());
  w.Key("message").String(e.message());
  w.EndObject();
  return w.str();
}

}  // namespace harness::client
