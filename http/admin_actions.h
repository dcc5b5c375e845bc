// The HTTP API's admin actions, for the dashboard's buttons (HttpApi::Action):
//   POST /api/v1/items/<id>/cancel[?reason=R]
//   POST /api/v1/items/<id>/retry
//   POST /api/v1/pool/scale?target=N[&force=true]
//   POST /api/v1/agents/<id>/drain
// Each calls the code the gRPC ControlService calls (controller/control_actions.h) and answers
// once the change is durable. Only the admin token may act, and only in the Authorization
// header: with tokens off every action is refused (403), so a page of another site can never
// make a browser act (it can send neither the header nor, cross-origin, read an answer; no
// cookie is ever looked at).
#pragma once

#include "absl/strings/string_view.h"

namespace harness::http {

// True for the paths above (whatever the method).
bool IsActionPath(absl::string_view path);

}  // namespace harness::http
