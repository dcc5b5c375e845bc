// The admin actions of the HTTP API (see admin_actions.h).
#include "http/admin_actions.h"

#include <memory>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/json_writer.h"
#include "client/render.h"
#include "controller/control_actions.h"
#include "http/api_routes.h"

namespace harness::http {
namespace {

// How long a request waits for its change to be durable before it answers 503 (the change
// may still happen: the store is slow or failing, and the status shows which).
constexpr absl::Duration kActionTimeout = absl::Seconds(30);

struct Route {
  std::string kind;    // "cancel", "retry", "scale", "drain"
  std::string target;  // the item or agent id ("" for scale)
};

// {"items", ID, "cancel"} and the like, from the path after /api/v1/.
std::optional<Route> ParseActionPath(absl::string_view path) {
  if (!absl::ConsumePrefix(&path, "/api/v1/")) return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(path, '/');
  if (parts.size() == 2 && parts[0] == "pool" && parts[1] == "scale") return Route{"scale", ""};
  if (parts.size() != 3 || parts[1].empty()) return std::nullopt;
  if (parts[0] == "items" && (parts[2] == "cancel" || parts[2] == "retry")) {
    return Route{parts[2], parts[1]};
  }
  if (parts[0] == "agents" && parts[2] == "drain") return Route{"drain", parts[1]};
  return std::nullopt;
}

HttpAnswer JsonOk(std::string body) {
  return HttpAnswer{200, "application/json", std::move(body), ""};
}

// Runs `start` (which answers through the callback it is given) and waits for the answer.
template <typename T>
absl::StatusOr<T> Await(const std::function<void(std::function<void(absl::StatusOr<T>)>)>& start) {
  struct Shared {
    absl::Notification done;
    absl::StatusOr<T> result = absl::UnknownError("no answer");
  };
  auto shared = std::make_shared<Shared>();
  start([shared](absl::StatusOr<T> r) {
    shared->result = std::move(r);
    shared->done.Notify();
  });
  if (!shared->done.WaitForNotificationWithTimeout(kActionTimeout)) {
    return absl::UnavailableError(absl::StrCat(
        "the change was not durable within ", absl::FormatDuration(kActionTimeout),
        " (see the controller's store status)"));
  }
  return shared->result;
}

absl::Status CheckOnly(const HttpRequest& r, const std::set<std::string>& allowed) {
  for (const auto& [name, value] : r.params) {
    if (!allowed.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(r.path, " takes no query parameter \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsActionPath(absl::string_view path) { return ParseActionPath(path).has_value(); }

HttpAnswer HttpApi::Action(const HttpRequest& r) const {
  std::optional<Route> route = ParseActionPath(r.path);
  if (!route) return ErrorAnswer(absl::NotFoundError(absl::StrCat("no such path: ", r.path)));
  if (r.method != "POST") {
    HttpAnswer a = ErrorAnswer(absl::InvalidArgumentError(
        absl::StrCat(r.method, " ", r.path, ": an admin action, use POST")));
    a.status = 405;
    a.allow = "POST";
    return a;
  }
  const std::string what = absl::StrCat("POST ", r.path);
  if (!access_->enabled()) {
    return ErrorAnswer(absl::PermissionDeniedError(absl::StrCat(
        what, ": admin actions over HTTP need the admin token, and tokens are off (set "
              "harness.auth.admin_token_file; harnessctl acts without one on loopback)")));
  }
  if (absl::Status s = access_->CheckRole(what, Role::kAdmin, r.authorization); !s.ok()) {
    return ErrorAnswer(s);
  }
  Controller& c = *controller_;
  client::JsonWriter w;
  if (route->kind == "cancel") {
    if (absl::Status s = CheckOnly(r, {"reason"}); !s.ok()) return ErrorAnswer(s);
    auto it = r.params.find("reason");
    const std::string reason = it == r.params.end() ? "" : it->second;
    absl::StatusOr<CancelResult> done = Await<CancelResult>(
        [&](auto cb) { CancelItem(c, route->target, reason, std::move(cb)); });
    if (!done.ok()) return ErrorAnswer(done.status());
    w.BeginObject().Key("id").String(route->target);
    w.Key("previous_state").String(client::ItemStateName(done->previous_state));
    w.Key("agent").StringOrNull(done->agent).EndObject();
    return JsonOk(w.str());
  }
  if (route->kind == "retry") {
    if (absl::Status s = CheckOnly(r, {}); !s.ok()) return ErrorAnswer(s);
    absl::StatusOr<v1::ItemState> done =
        Await<v1::ItemState>([&](auto cb) { RetryItem(c, route->target, std::move(cb)); });
    if (!done.ok()) return ErrorAnswer(done.status());
    w.BeginObject().Key("id").String(route->target);
    w.Key("previous_state").String(client::ItemStateName(*done)).EndObject();
    return JsonOk(w.str());
  }
  if (route->kind == "scale") {
    if (absl::Status s = CheckOnly(r, {"target", "force"}); !s.ok()) return ErrorAnswer(s);
    auto t = r.params.find("target");
    int target = -1;
    if (t == r.params.end() || !absl::SimpleAtoi(t->second, &target)) {
      return ErrorAnswer(absl::InvalidArgumentError(absl::StrCat(
          "POST /api/v1/pool/scale needs ?target=N (0 to ", kMaxPoolTarget, ")",
          t == r.params.end() ? "" : absl::StrCat(", got \"", t->second, "\""))));
    }
    bool force = false;
    if (auto f = r.params.find("force"); f != r.params.end()) {
      if (f->second != "true" && f->second != "false") {
        return ErrorAnswer(absl::InvalidArgumentError(
            absl::StrCat("force must be true or false, got \"", f->second, "\"")));
      }
      force = f->second == "true";
    }
    absl::StatusOr<ScaleResult> done =
        Await<ScaleResult>([&](auto cb) { ScalePool(c, target, force, std::move(cb)); });
    if (!done.ok()) return ErrorAnswer(done.status());
    w.BeginObject().Key("old_target").Int(done->old_target);
    w.Key("new_target").Int(done->new_target).EndObject();
    return JsonOk(w.str());
  }
  // drain
  if (absl::Status s = CheckOnly(r, {}); !s.ok()) return ErrorAnswer(s);
  absl::StatusOr<v1::AgentInfo> done =
      Await<v1::AgentInfo>([&](auto cb) { DrainAgent(c, route->target, std::move(cb)); });
  if (!done.ok()) return ErrorAnswer(done.status());
  w.BeginObject().Key("id").String(done->id());
  w.Key("state").String(client::AgentStateName(done->state()));
  w.Key("health").String(client::HealthName(done->health()));
  w.Key("item").StringOrNull(done->item()).EndObject();
  return JsonOk(w.str());
}

}  // namespace harness::http
