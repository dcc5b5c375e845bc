// How harnessctl events and /api/v1/events show one event (v1::Event): a line of text, or one
// JSON object on one line whose fields are always all present (docs/HTTP.md: "Events").
#pragma once

#include <string>

#include "harness/v1/control.pb.h"

namespace harness::client {

// "2024-05-01T10:00:00.123Z item_leased item=fix-1 agent=agent-1 token=7 attempt=1
// state=leased" and, when there is one, " -- <message>"; ends with a newline. Text from the
// controller is made safe for a terminal.
std::string RenderEventText(const v1::Event& event);
// {"seq":..,"at_unix_ms":..,"kind":..,"item":..,"agent":..,"lease_token":..,"attempt":..,
//  "state":..,"outcome":..,"message":..} without a newline.
std::string RenderEventJson(const v1::Event& event);

}  // namespace harness::client
