// The item reads of the control API in one place: the gRPC ControlService (List, Get) and the
// HTTP JSON API (/api/v1/items, /api/v1/items/<id>) both answer through these, so the two
// cannot drift apart. Errors are statuses naming the bad value; no transport here.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "controller/controller.h"
#include "harness/v1/control.pb.h"

namespace harness {

inline constexpr int kDefaultListPageSize = 1000;
inline constexpr int kMaxListPageSize = 10000;

// Items in submission order, filtered by req.states (none: all), at most req.page_size
// (0: kDefaultListPageSize) after req.page_token; next_page_token is set when more follow.
// InvalidArgument for an unknown state, a page size out of range or a bad page token.
absl::StatusOr<v1::ListResponse> ListItems(Controller& controller, const v1::ListRequest& req);

// One item with its attempts and log tail; NotFound (or InvalidArgument for a malformed id).
absl::StatusOr<v1::Item> GetItem(Controller& controller, const std::string& id);

}  // namespace harness
