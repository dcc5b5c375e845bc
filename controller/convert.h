// Conversions between the core's records (core/records.proto) and the public API
// (harness.v1). The only place that knows both.
#pragma once

#include "core/agent_registry.h"
#include "core/item_table.h"
#include "core/lease_table.h"
#include "core/records.pb.h"
#include "core/work_queue.h"
#include "harness/v1/types.pb.h"

namespace harness {

v1::ItemState ToApi(store::ItemState s);
v1::AttemptOutcome ToApi(store::Outcome o);
v1::AgentState ToApi(AgentState s);
v1::Health ToApi(Health h);
AgentState FromApi(v1::AgentState s);
// ITEM_STATE_UNSPECIFIED for an unknown value.
store::ItemState FromApi(v1::ItemState s);

store::ItemSpec FromApi(const v1::ItemSpec& spec);
v1::Item ToApiItem(const store::ItemRecord& item, const std::string& log_tail);
v1::ItemSummary ToApiSummary(const store::ItemRecord& item);
v1::QueueCounts ToApi(const QueueCounts& c);

}  // namespace harness
