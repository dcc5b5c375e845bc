// The exclusive lock on a state dir: one controller per dir. flock(2) on <state>/LOCK, so the
// kernel releases it when the holder dies, however it dies.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/file_util.h"

namespace harness {

class StateLock {
 public:
  // FailedPrecondition naming the dir and the holder's pid if another process holds it.
  static absl::StatusOr<std::unique_ptr<StateLock>> Acquire(const std::string& lock_file);
  ~StateLock();

 private:
  explicit StateLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace harness
