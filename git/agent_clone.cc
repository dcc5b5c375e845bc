// An agent's own clone: objects and harness-owned refs (see agent_clone.h).
#include "git/agent_clone.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace harness::git {
namespace {

std::string LastGitMessage() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

// The ref `base_ref` names on the remote: "" and "HEAD" are HEAD, a bare name is a branch.
std::string FullRefName(const std::string& base_ref) {
  if (base_ref.empty() || base_ref == "HEAD") return "HEAD";
  if (absl::StartsWith(base_ref, "refs/")) return base_ref;
  return absl::StrCat("refs/heads/", base_ref);
}

// A plain path rather than a URL: no "scheme://" and not scp-like ("host:path" before any '/').
bool LooksLikePath(const std::string& url) {
  if (absl::StrContains(url, "://")) return false;
  size_t colon = url.find(':');
  return colon == std::string::npos || url.find('/') < colon;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentClone>> AgentClone::Open(const std::string& dir) {
  EnsureInit();
  git_repository* raw = nullptr;
  int rc = git_repository_open_ext(&raw, dir.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    // git_repository_init creates the folder and its parents as needed.
    rc = git_repository_init(&raw, dir.c_str(), /*is_bare=*/0);
    if (rc < 0) return GitStatus(rc, absl::StrCat("create a repository in \"", dir, "\""));
  } else if (rc < 0) {
    return GitStatus(rc, absl::StrCat("open the repository in \"", dir, "\""));
  }
  return std::unique_ptr<AgentClone>(new AgentClone(dir, Repository(raw)));
}

std::vector<std::string> AgentClone::Haves() {
  std::vector<std::string> haves;
  auto add = [&haves](const git_oid& oid) {
    std::string hex = OidHex(oid);
    if (std::find(haves.begin(), haves.end(), hex) == haves.end()) haves.push_back(hex);
  };

  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_glob_new(&it, repo_.get(),
                                      absl::StrCat(kBaseRefPrefix, "*").c_str()) == 0) {
    git_reference* ref = nullptr;
    while (git_reference_next(&ref, it) == 0) {
      Reference owned(ref);
      git_object* obj = nullptr;
      if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) == 0) {
        add(*git_object_id(obj));
        git_object_free(obj);
      }
    }
    git_reference_iterator_free(it);
  }

  git_object* head = nullptr;
  if (git_revparse_single(&head, repo_.get(), "HEAD^{commit}") == 0) {
    add(*git_object_id(head));
    git_object_free(head);
  }
  git_error_clear();
  return haves;
}

absl::StatusOr<std::unique_ptr<PackReceiver>> AgentClone::BeginPack(uint64_t max_bytes) {
  return PackReceiver::Begin(repo_.get(), max_bytes);
}

absl::Status AgentClone::SetBase(const std::string& commit) {
  absl::StatusOr<git_oid> oid = ParseOid(commit);
  if (!oid.ok()) return oid.status();
  git_object* obj = nullptr;
  int rc = git_object_lookup(&obj, repo_.get(), &*oid, GIT_OBJECT_ANY);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    return absl::NotFoundError(
        absl::StrCat("base commit ", commit, " is not in the clone at \"", dir_, "\""));
  }
  if (rc < 0) return GitStatus(rc, absl::StrCat("look up base commit ", commit));
  Object owned(obj);
  if (git_object_type(obj) != GIT_OBJECT_COMMIT) {
    return absl::InvalidArgumentError(absl::StrCat(
        "base ", commit, " is a ", git_object_type2string(git_object_type(obj)), ", not a commit"));
  }
  git_reference* ref = nullptr;
  rc = git_reference_create(&ref, repo_.get(), kCurrentBaseRef, &*oid, /*force=*/1,
                            "harness: set base");
  if (rc < 0) return GitStatus(rc, absl::StrCat("set ", kCurrentBaseRef, " to ", commit));
  git_reference_free(ref);
  return absl::OkStatus();
}

absl::StatusOr<std::string> AgentClone::Base() {
  git_oid oid;
  int rc = git_reference_name_to_id(&oid, repo_.get(), kCurrentBaseRef);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    return absl::NotFoundError(absl::StrCat("the clone at \"", dir_, "\" has no base yet"));
  }
  if (rc < 0) return GitStatus(rc, absl::StrCat("read ", kCurrentBaseRef));
  return OidHex(oid);
}

absl::Status AgentClone::FetchFromUrl(const std::string& url, const std::string& base_ref,
                                      std::string* base_commit) {
  const std::string ref = FullRefName(base_ref);
  auto unreachable = [&url]() {
    return absl::UnavailableError(
        absl::StrCat("cannot fetch from \"", url, "\": ", LastGitMessage()));
  };

  // libgit2 takes a plain path only if it exists, and otherwise says "unsupported URL
  // protocol": name the real problem.
  if (LooksLikePath(url)) {
    std::error_code ec;
    if (!std::filesystem::exists(url, ec)) {
      return absl::UnavailableError(
          absl::StrCat("cannot fetch from \"", url, "\": no such file or directory"));
    }
  }

  git_remote* raw = nullptr;
  if (git_remote_create_anonymous(&raw, repo_.get(), url.c_str()) < 0) return unreachable();
  Remote remote(raw);
  git_remote_callbacks callbacks = GIT_REMOTE_CALLBACKS_INIT;
  if (git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, &callbacks, nullptr, nullptr) < 0) {
    return unreachable();
  }

  // Find what the ref points to on the remote before fetching, so a missing ref is an error
  // rather than a silently stale base.
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if (git_remote_ls(&heads, &count, remote.get()) < 0) return unreachable();
  const git_remote_head* found = nullptr;
  for (size_t i = 0; i < count; ++i) {
    if (ref == heads[i]->name) found = heads[i];
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("\"", url, "\" has no ref ", ref));
  }
  const git_oid target = found->oid;

  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  opts.update_fetchhead = 0;
  std::string refspec = ref;
  char* specs[] = {refspec.data()};
  git_strarray refspecs = {specs, 1};
  if (git_remote_download(remote.get(), &refspecs, &opts) < 0) return unreachable();
  git_remote_disconnect(remote.get());

  // A tag ref brings the tag object: the base is the commit it names.
  std::string commit = OidHex(target);
  git_object* obj = nullptr;
  if (git_object_lookup(&obj, repo_.get(), &target, GIT_OBJECT_ANY) == 0) {
    Object owned(obj);
    git_object* peeled = nullptr;
    if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) == 0) {
      commit = OidHex(*git_object_id(peeled));
      git_object_free(peeled);
    }
  }
  git_error_clear();
  absl::Status s = SetBase(commit);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("fetch ", ref, " from \"", url, "\": ", s.message()));
  }
  if (base_commit != nullptr) *base_commit = commit;
  return absl::OkStatus();
}

}  // namespace harness::git
