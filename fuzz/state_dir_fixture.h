// The recovery side of the fuzz targets that tamper with a controller's state dir (journal,
// snapshot, lease files): a state dir built by the real WorkQueue (so every seed and the
// background of each input is what a controller writes), and the recovery a controller runs
// at start (WorkQueue::Open), twice, with the checks that hold whatever the files hold.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace harness::fuzz {

// Runs a small history in a fresh state dir at `state_dir`: items submitted (one with labels
// and a priority), one done, one failed and retried, one cancelled, and the next one leased to
// agent "agent-1" and left running (its claim stays on disk). With `snapshot`, the history is
// cut by a snapshot, so the dir holds snapshot + journal. Returns the leased item's lease file
// (the slot in leases/ its claim links to) and sets *leased_item, if given, to its id.
std::string MakeStateDir(const std::string& state_dir, bool snapshot,
                         std::string* leased_item = nullptr);

// Opens the state dir as a controller does at start, closes it, and opens it again. Aborts if
// the second recovery disagrees with the first on anything recovery must keep (the items and
// their terminal states), or if `must_keep` (an item id; "" for none) is missing after
// recovery. Returns the first open's status (an error is fine: recovery may refuse a state
// dir it cannot read, saying so).
absl::Status RecoverTwice(const std::string& state_dir, const std::string& must_keep);

}  // namespace harness::fuzz
