// The HTTP listener's routes (see api_routes.h).
#include "http/api_routes.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/json_writer.h"
#include "client/render.h"
#include "controller/read_api.h"
#include "http/admin_actions.h"
#include "http/metrics_page.h"
#include "http/ui_assets.h"

namespace harness::http {
namespace {

constexpr char kJson[] = "application/json";
constexpr char kPromText[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr absl::string_view kItemsPrefix = "/api/v1/items/";
constexpr int kDefaultSseRecentEvents = 100;

HttpAnswer Json(std::string body) { return HttpAnswer{200, kJson, std::move(body), ""}; }

// The only query parameters `path` takes; another one is a 400 (a typo is not ignored).
absl::Status CheckParams(const HttpRequest& r, const std::set<std::string>& allowed) {
  for (const auto& [name, value] : r.params) {
    if (!allowed.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path, " takes no query parameter \"", name, "\""));
    }
    if (r.params.count(name) > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("query parameter \"", name, "\" is given more than once"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int HttpStatusOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpAnswer ErrorAnswer(const absl::Status& status) {
  client::JsonWriter w;
  w.BeginObject().Key("error").String(status.message()).EndObject();
  return HttpAnswer{HttpStatusOf(status), kJson, absl::StrCat(w.str(), "\n"), ""};
}

HttpAnswer HttpApi::Handle(const HttpRequest& r) const {
  if (const UiAsset* asset = FindUiAsset(r.path)) {
    // The pages hold no data (they fetch it with the user's token): served to anyone.
    if (r.method != "GET" && r.method != "HEAD") {
      HttpAnswer a = ErrorAnswer(absl::InvalidArgumentError(
          absl::StrCat(r.method, " ", r.path, ": a page of the dashboard, use GET")));
      a.status = 405;
      a.allow = "GET, HEAD";
      return a;
    }
    return HttpAnswer{200, std::string(asset->content_type), std::string(asset->body), ""};
  }
  if (IsActionPath(r.path)) return Action(r);
  const bool known = r.path == "/metrics" || r.path == "/api/v1/status" ||
                     r.path == "/api/v1/items" || r.path == "/api/v1/agents" ||
                     r.path == "/api/v1/status/stream" || r.path == "/api/v1/series" ||
                     r.path == "/api/v1/whoami" ||
                     r.path == "/api/v1/events" ||
                     (absl::StartsWith(r.path, kItemsPrefix) && r.path.size() > kItemsPrefix.size());
  if (!known) {
    return ErrorAnswer(absl::NotFoundError(absl::StrCat(
        "no such path: ", r.path, " (see docs/HTTP.md: /metrics and /api/v1/...)")));
  }
  if (r.method != "GET" && r.method != "HEAD") {
    HttpAnswer a = ErrorAnswer(absl::InvalidArgumentError(
        absl::StrCat(r.method, " ", r.path, ": this path is read-only, use GET")));
    a.status = 405;
    a.allow = "GET, HEAD";
    return a;
  }
  if (r.path == "/api/v1/whoami") return WhoAmI(r);
  if (absl::Status s =
          access_->CheckRole(absl::StrCat("GET ", r.path), Role::kRead, r.authorization);
      !s.ok()) {
    return ErrorAnswer(s);
  }
  if (r.path == "/api/v1/items") return Items(r);
  if (r.path == "/api/v1/events") return Events(r);
  if (absl::Status s = CheckParams(r, {}); !s.ok()) return ErrorAnswer(s);
  if (r.path == "/metrics") {
    return HttpAnswer{200, kPromText, RenderMetricsPage(*controller_), ""};
  }
  if (r.path == "/api/v1/status") {
    return Json(client::RenderStatusJson(controller_->Status(), /*pretty=*/false));
  }
  if (r.path == "/api/v1/status/stream") {
    HttpAnswer a{200, "text/event-stream", "", ""};
    a.stream_status = true;
    return a;
  }
  if (r.path == "/api/v1/series") return Series();
  if (r.path == "/api/v1/agents") {
    v1::ListAgentsResponse agents;
    for (v1::AgentInfo& a : controller_->AgentInfos()) *agents.add_agents() = std::move(a);
    return Json(client::RenderAgentsJson(agents.agents(), /*pretty=*/false));
  }
  return Item(r.path.substr(kItemsPrefix.size()));
}

HttpAnswer HttpApi::Items(const HttpRequest& r) const {
  if (absl::Status s = CheckParams(r, {"state", "page_size", "page_token"}); !s.ok()) {
    return ErrorAnswer(s);
  }
  v1::ListRequest req;
  if (auto it = r.params.find("state"); it != r.params.end()) {
    for (absl::string_view name : absl::StrSplit(it->second, ',')) {
      v1::ItemState state;
      if (!client::ParseItemState(name, &state)) {
        return ErrorAnswer(absl::InvalidArgumentError(
            absl::StrCat("state must be pending, leased, done, failed, parked or cancelled "
                         "(or several, comma-separated), got \"",
                         name, "\"")));
      }
      req.add_states(state);
    }
  }
  if (auto it = r.params.find("page_size"); it != r.params.end()) {
    int size = 0;
    if (!absl::SimpleAtoi(it->second, &size) || size < 1) {
      return ErrorAnswer(absl::InvalidArgumentError(absl::StrCat(
          "page_size must be a number from 1 to ", kMaxListPageSize, ", got \"", it->second,
          "\"")));
    }
    req.set_page_size(size);
  }
  if (auto it = r.params.find("page_token"); it != r.params.end()) {
    req.set_page_token(it->second);
  }
  absl::StatusOr<v1::ListResponse> list = ListItems(*controller_, req);
  if (!list.ok()) return ErrorAnswer(list.status());
  return Json(client::RenderItemsJson(list->items(), /*pretty=*/false, list->next_page_token()));
}

HttpAnswer HttpApi::Events(const HttpRequest& r) const {
  if (absl::Status s = CheckParams(r, {"recent"}); !s.ok()) return ErrorAnswer(s);
  EventFeed& feed = controller_->events();
  HttpAnswer a{200, "text/event-stream", "", ""};
  a.event_stream = &feed;
  uint64_t after = 0;
  if (r.last_event_id.has_value() && absl::SimpleAtoi(*r.last_event_id, &after)) {
    a.events_after = std::min(after, feed.last_seq());  // a reconnecting EventSource resumes
    return a;
  }
  int recent = kDefaultSseRecentEvents;
  if (auto it = r.params.find("recent"); it != r.params.end()) {
    if (!absl::SimpleAtoi(it->second, &recent) || recent < 0 ||
        recent > static_cast<int>(EventFeed::kDefaultCapacity)) {
      return ErrorAnswer(absl::InvalidArgumentError(
          absl::StrCat("recent must be a number from 0 to ", EventFeed::kDefaultCapacity,
                       ", got \"", it->second, "\"")));
    }
  }
  std::vector<Event> first = feed.Recent(static_cast<size_t>(recent));
  a.events_after = first.empty() ? feed.last_seq() : first.front().seq - 1;
  return a;
}

HttpAnswer HttpApi::Item(const std::string& id) const {
  absl::StatusOr<v1::Item> item = GetItem(*controller_, id);
  if (!item.ok()) return ErrorAnswer(item.status());
  return Json(client::RenderItemJson(*item, /*pretty=*/false));
}

HttpAnswer HttpApi::Series() const {
  const std::vector<MinutePoint> points = controller_->series().Last(controller_->clock()->Now());
  client::JsonWriter w;
  w.BeginObject().Key("minutes").Int(static_cast<int64_t>(points.size())).Key("points");
  w.BeginArray();
  for (const MinutePoint& p : points) {
    w.BeginObject().Key("at_unix_ms").Int(p.minute * 60000);
    w.Key("done").Int(p.done).Key("failed").Int(p.failed);
    w.Key("avg_duration_s");
    if (p.durations > 0) {
      w.Double(p.duration_sum_s / static_cast<double>(p.durations));
    } else {
      w.Null();
    }
    w.Key("max_duration_s");
    if (p.durations > 0) {
      w.Double(p.duration_max_s);
    } else {
      w.Null();
    }
    w.Key("pending");
    if (p.pending >= 0) {
      w.Int(p.pending);
    } else {
      w.Null();
    }
    w.Key("leased");
    if (p.leased >= 0) {
      w.Int(p.leased);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
  return Json(w.str());
}

HttpAnswer HttpApi::WhoAmI(const HttpRequest& r) const {
  if (absl::Status s = CheckParams(r, {}); !s.ok()) return ErrorAnswer(s);
  const char* role = "none";
  if (!access_->enabled()) {
    role = "open";
  } else if (access_->CheckRole("GET /api/v1/whoami", Role::kAdmin, r.authorization).ok()) {
    role = "admin";
  } else if (access_->CheckRole("GET /api/v1/whoami", Role::kRead, r.authorization).ok()) {
    role = "read";
  }
  client::JsonWriter w;
  w.BeginObject().Key("role").String(role).Key("tokens").Bool(access_->enabled()).EndObject();
  return Json(w.str());
}

}  // namespace harness::http
