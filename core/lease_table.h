// LeaseTable: the leases the controller has granted, in memory, with their expiry. Renewals
// (heartbeats) only touch this table, never the disk: after a restart every lease found on disk
// gets one fresh TTL anyway. Not thread-safe (WorkQueue locks around it); time comes from the
// caller, who reads it from the injected Clock.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace harness {

struct Lease {
  std::string item_id;
  uint64_t token = 0;
  std::string agent;
  int attempt = 0;
  std::string base;  // the base commit the agent was given ("" without a repository)
  absl::Time granted;
  absl::Time expires;
  uint64_t ticket = 0;  // the store ticket that makes the grant durable (0: it already is)
};

class LeaseTable {
 public:
  void Add(Lease lease);
  const Lease* Find(absl::string_view item_id) const;
  void Remove(absl::string_view item_id);
  // Moves the lease's expiry to `expires`; false if the item has no lease.
  bool Extend(absl::string_view item_id, absl::Time expires);
  // The item ids of an agent's leases.
  std::vector<std::string> ItemsOf(absl::string_view agent) const;
  // Removes and returns every lease with expires <= now, earliest first.
  std::vector<Lease> TakeExpired(absl::Time now);
  // The earliest expiry, or InfiniteFuture when there is no lease.
  absl::Time NextExpiry() const;
  size_t size() const { return by_item_.size(); }
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [id, lease] : by_item_) fn(lease);
  }

 private:
  absl::flat_hash_map<std::string, Lease> by_item_;
  std::set<std::pair<absl::Time, std::string>> by_expiry_;
  std::multiset<std::pair<std::string, std::string>> by_agent_;  // (agent, item)
};

}  // namespace harness
