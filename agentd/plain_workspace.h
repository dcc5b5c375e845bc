// PlainWorkspace: the work dir without git (see workspace.h). Used alone by tests and inside
// the git workspace for leases without a base commit.
#pragma once

#include <string>

#include "agentd/workspace.h"

namespace harness::agentd {

class PlainWorkspace : public Workspace {
 public:
  explicit PlainWorkspace(WorkDir* work_dir) : work_dir_(work_dir) {}

  absl::Status Open() override { return absl::OkStatus(); }
  // Empties <workdir>/work (symbolic links removed, never followed) and returns it.
  absl::StatusOr<std::string> Prepare(const v1::Lease& lease) override;
  const std::string& base_commit() const override { return empty_; }
  FinishResult Finish(const v1::Lease&, bool) override { return {}; }
  absl::Status Close() override { return absl::OkStatus(); }
  std::string Describe() const override;

 private:
  WorkDir* work_dir_;
  const std::string empty_;
};

}  // namespace harness::agentd
