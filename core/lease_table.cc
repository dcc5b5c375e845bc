// In-memory leases (see lease_table.h).
#include "core/lease_table.h"

namespace harness {

void LeaseTable::Add(Lease lease) {
  Remove(lease.item_id);
  by_expiry_.emplace(lease.expires, lease.item_id);
  by_agent_.emplace(lease.agent, lease.item_id);
  std::string id = lease.item_id;
  by_item_.emplace(std::move(id), std::move(lease));
}

const Lease* LeaseTable::Find(absl::string_view item_id) const {
  auto it = by_item_.find(item_id);
  return it == by_item_.end() ? nullptr : &it->second;
}

void LeaseTable::Remove(absl::string_view item_id) {
  auto it = by_item_.find(item_id);
  if (it == by_item_.end()) return;
  by_expiry_.erase({it->second.expires, it->second.item_id});
  auto a = by_agent_.find({it->second.agent, it->second.item_id});
  if (a != by_agent_.end()) by_agent_.erase(a);
  by_item_.erase(it);
}

bool LeaseTable::Extend(absl::string_view item_id, absl::Time expires) {
  auto it = by_item_.find(item_id);
  if (it == by_item_.end()) return false;
  by_expiry_.erase({it->second.expires, it->second.item_id});
  it->second.expires = expires;
  by_expiry_.emplace(expires, it->second.item_id);
  return true;
}

std::vector<std::string> LeaseTable::ItemsOf(absl::string_view agent) const {
  std::vector<std::string> out;
  std::string a(agent);
  for (auto it = by_agent_.lower_bound({a, ""}); it != by_agent_.end() && it->first == a; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<Lease> LeaseTable::TakeExpired(absl::Time now) {
  std::vector<Lease> out;
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) {
    std::string id = by_expiry_.begin()->second;
    out.push_back(by_item_.at(id));
    Remove(id);
  }
  return out;
}

absl::Time LeaseTable::NextExpiry() const {
  return by_expiry_.empty() ? absl::InfiniteFuture() : by_expiry_.begin()->first;
}

}  // namespace harness
