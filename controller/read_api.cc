// Item reads shared by gRPC and HTTP (see read_api.h).
#include "controller/read_api.h"

#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controller/convert.h"

namespace harness {

absl::StatusOr<v1::ListResponse> ListItems(Controller& controller, const v1::ListRequest& req) {
  std::set<store::ItemState> states;
  for (int s : req.states()) {
    store::ItemState st = FromApi(static_cast<v1::ItemState>(s));
    if (st == store::ITEM_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("list: unknown state ", s));
    }
    states.insert(st);
  }
  int page = req.page_size() == 0 ? kDefaultListPageSize : req.page_size();
  if (page < 0 || page > kMaxListPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("list: page_size must be between 1 and ",
                                                   kMaxListPageSize, ", got ", page));
  }
  uint64_t after_seq = 0;
  if (!req.page_token().empty() && !absl::SimpleAtoi(req.page_token(), &after_seq)) {
    return absl::InvalidArgumentError(
        absl::StrCat("list: bad page_token \"", req.page_token(), "\""));
  }
  std::optional<store::ItemState> one;
  if (states.size() == 1) one = *states.begin();
  v1::ListResponse resp;
  uint64_t last_seq = after_seq;
  for (const store::ItemRecord& item : controller.queue().List(one, SIZE_MAX)) {
    if (item.seq() <= after_seq) continue;
    if (!states.empty() && !states.count(item.state())) continue;
    if (resp.items_size() == page) {
      resp.set_next_page_token(absl::StrCat(last_seq));
      break;
    }
    *resp.add_items() = ToApiSummary(item);
    last_seq = item.seq();
  }
  return resp;
}

absl::StatusOr<v1::Item> GetItem(Controller& controller, const std::string& id) {
  absl::StatusOr<store::ItemRecord> item = controller.queue().Get(id);
  if (!item.ok()) return item.status();
  return ToApiItem(*item, controller.logs().Latest(id));
}

}  // namespace harness
