// HttpApi: what the controller's HTTP listener answers, as a function of the request: /metrics
// (http/metrics_page.h) and the read-only JSON API
//   GET /api/v1/status              = harnessctl status --json
//   GET /api/v1/items[?state=S[,S]][&page_size=N][&page_token=T]
//                                   = harnessctl items --json (plus next_page_token)
//   GET /api/v1/items/<id>          = harnessctl show <id> --json
//   GET /api/v1/agents              = harnessctl agents --json
//   GET /api/v1/status/stream       Server-Sent Events of status snapshots (status_feed.h)
//   GET /api/v1/series              the dashboard chart's last hour, per minute
//   GET /api/v1/whoami              the role of the presented token
//   POST /api/v1/items/<id>/cancel, /items/<id>/retry, /pool/scale, /agents/<id>/drain
//                                   the admin actions (control_actions.h), admin token only
//   GET /, /ui/...                  the dashboard's pages (ui_assets.h), no data, no token
//   GET /api/v1/events[?recent=N]   = harnessctl events -f --json, as Server-Sent Events (the
//                                     answer only says so; http_server.cc streams the feed)
// The documents are client/render.h's, the data controller/read_api.h's: one shape, one source.
// Every path needs the read (or admin) token when tokens are on (rpc/access_policy.h).
// No sockets here (http_server.h carries requests in and answers out), so it is tested
// in-process; docs/HTTP.md is the user's reference.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "controller/controller.h"
#include "rpc/access_policy.h"

namespace harness::http {

struct HttpRequest {
  std::string method;  // "GET", ...
  std::string path;    // decoded, without the query
  std::multimap<std::string, std::string> params;  // the query, decoded
  std::optional<std::string> authorization;        // the Authorization header, if any
  std::optional<std::string> last_event_id;        // the Last-Event-ID header, if any
};

struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string allow;  // the Allow header of a 405
  // GET /api/v1/status/stream, access granted: the listener streams StatusFeed frames.
  bool stream_status = false;
  // Set for /api/v1/events: stream this feed as Server-Sent Events from after `events_after`
  // instead of sending `body`.
  EventFeed* event_stream = nullptr;
  uint64_t events_after = 0;
};

class HttpApi {
 public:
  // Both must outlive this.
  HttpApi(Controller* controller, const AccessPolicy* access)
      : controller_(controller), access_(access) {}

  HttpAnswer Handle(const HttpRequest& request) const;
  Controller* controller() const { return controller_; }

 private:
  HttpAnswer Items(const HttpRequest& request) const;
  HttpAnswer Item(const std::string& id) const;
  HttpAnswer Series() const;
  HttpAnswer WhoAmI(const HttpRequest& request) const;
  // A POST path: the admin action it names, or 404/405.
  HttpAnswer Action(const HttpRequest& request) const;
  HttpAnswer Events(const HttpRequest& request) const;

  Controller* const controller_;
  const AccessPolicy* const access_;
};

// The HTTP status of a refusal or failure: 400 InvalidArgument, 401 Unauthenticated, 403
// PermissionDenied, 404 NotFound, 409 FailedPrecondition (an action the item's state does not
// allow), 503 Unavailable, 500 otherwise.
int HttpStatusOf(const absl::Status& status);
// {"error": "<message>"} with that status.
HttpAnswer ErrorAnswer(const absl::Status& status);

}  // namespace harness::http
