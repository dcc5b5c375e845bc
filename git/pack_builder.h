// The sending side of the git transport between the controller and remote agents: builds a git
// pack of the objects the other side lacks and streams it in chunks. The controller uses it for
// FetchBase (the base commit down to an agent), an agent for UploadResult (its result commits up
// to the controller). The pack is version 2 with its trailing checksum, not thin: every delta
// base is in the same pack, so the receiver (PackReceiver) needs nothing it does not have.
//
// Not here: the RPCs (the caller turns chunks into messages) and the receiving side
// (pack_receiver.h).
#pragma once

#include <git2.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace harness::git {

// What one pack carried (sent or received).
struct PackStats {
  // Objects in the pack.
  uint64_t objects = 0;
  // Bytes of the pack, header and trailing checksum included.
  uint64_t bytes = 0;
};

// A sensible chunk size for a gRPC message (the proto's "at most 1 MiB").
inline constexpr size_t kDefaultPackChunkBytes = 1 << 20;

// Streams to `sink` a pack of every object reachable from the commits `wants` minus everything
// reachable from those `haves` that exist in `repo` as commits (unknown haves are ignored: the
// other side may have objects we don't). Chunks are at most `chunk_bytes` long and arrive in
// order; the whole pack is never held in memory (only the packbuilder's object list and deltas).
// When the haves cover everything the pack is still a valid, empty pack (32 bytes, 0 objects).
// `stats` (optional) is filled on success.
//
// Errors: InvalidArgument for no wants, a malformed id (not 40 hex digits), a want that is not
// a commit, or chunk_bytes 0; NotFound for a want missing from `repo`; the sink's own error,
// unchanged, if it fails (nothing more is sent after it); Internal for a libgit2 failure.
absl::Status BuildPack(git_repository* repo, const std::vector<std::string>& wants,
                       const std::vector<std::string>& haves, size_t chunk_bytes,
                       const std::function<absl::Status(absl::string_view chunk)>& sink,
                       PackStats* stats);

}  // namespace harness::git
