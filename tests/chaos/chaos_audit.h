// The chaos soak's end checks: what the controller says about every item, what the repository
// holds on `harness/<item>`, what the item command's runs left behind, and the state dir, all
// held against each other. Each broken rule is one sentence in `violations`; the figures are
// what the soak prints.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/v1/control.grpc.pb.h"

namespace harness::testing {

struct ChaosAudit {
  int64_t items = 0;         // in the queue
  int64_t done = 0;          // done, with their one result verified on its branch
  int64_t runs = 0;          // runs of the item command (side-effect files)
  int64_t reruns = 0;        // runs beyond an item's first: their lease did not land a result
  int64_t attempts = 0;      // attempts the controller recorded
  std::map<std::string, int64_t> outcomes;  // attempts by outcome
  int64_t late_results_discarded = 0;  // results of lost leases agents dropped (their logs)
  int64_t result_refs = 0;   // refs under refs/heads/harness/
  int64_t duplicate_results = 0;  // items with more than one attempt ended done
  std::vector<std::string> violations;
};

// `acknowledged`: every item id whose submit was answered OK (or ALREADY_EXISTS on a resend).
ChaosAudit AuditChaosRun(v1::ControlService::Stub& control,
                         const std::vector<std::string>& acknowledged, const std::string& repo,
                         const std::string& base_commit, const std::string& effects_dir,
                         const std::string& state_dir);

}  // namespace harness::testing
