// The repository of the pack fuzz target and its seeds: a bare repository with one base commit,
// made the same way every time (fixed contents, author and time), so that the seed packs, built
// by the real git::BuildPack on top of it, name objects the fuzz target's repository has.
#pragma once

#include <git2.h>

#include <string>

namespace harness::fuzz {

// Creates a bare repository at `path` (which must not exist) holding the base commit on
// refs/heads/main; returns the base commit's id. Aborts on failure.
std::string MakeBaseRepo(const std::string& path);

// Adds a commit on top of `parent` that changes README and adds a file; returns its id.
// Aborts on failure.
std::string AddChildCommit(git_repository* repo, const std::string& parent);

}  // namespace harness::fuzz
