// The plain work dir (see workspace.h): <workdir>/work, emptied before every item; no git.
#include "agentd/plain_workspace.h"

namespace harness::agentd {

absl::StatusOr<std::string> PlainWorkspace::Prepare(const v1::Lease&) {
  return work_dir_->PrepareWork();
}

std::string PlainWorkspace::Describe() const { return "plain work dir " + work_dir_->work_path(); }

std::unique_ptr<Workspace> NewPlainWorkspace(WorkDir* work_dir) {
  return std::make_unique<PlainWorkspace>(work_dir);
}

}  // namespace harness::agentd
