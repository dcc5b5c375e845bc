// The chaos soak's end checks (see chaos_audit.h). The repository is read with libgit2.
#include "tests/chaos/chaos_audit.h"

#include <git2.h>

#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "core/paths.h"
#include "tests/support/cluster.h"
#include "tests/support/core_test_util.h"

namespace harness::testing {
namespace {

// item -> token -> runs, from the side-effect files "<item>.<token>.<pid>" (each holds the id
// of the agent that ran it).
struct TokenRuns {
  int n = 0;
  std::string agents;  // "agent-3 (pid 123), ..."
};
using Runs = std::map<std::string, std::map<uint64_t, TokenRuns>>;
Runs ReadRuns(const std::string& effects_dir, ChaosAudit* a) {
  Runs runs;
  for (const std::string& name : ListNames(effects_dir)) {
    std::vector<std::string> parts = absl::StrSplit(name, '.');
    uint64_t token = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &token)) {
      a->violations.push_back(absl::StrCat("a run left a side effect without a lease: ", name));
      continue;
    }
    TokenRuns& r = runs[parts[0]][token];
    ++r.n;
    absl::StatusOr<std::string> agent = ReadFile(effects_dir + "/" + name);
    absl::StrAppend(&r.agents, r.agents.empty() ? "" : ", ",
                    agent.ok() ? absl::StripTrailingAsciiWhitespace(*agent) : "?", " (pid ",
                    parts[2], ")");
    ++a->runs;
  }
  return runs;
}

std::vector<v1::ItemSummary> ListAll(v1::ControlService::Stub& control, ChaosAudit* a) {
  std::vector<v1::ItemSummary> out;
  v1::ListRequest req;
  req.set_page_size(10000);
  do {
    v1::ListResponse resp;
    grpc::Status st = control.List(Ctx(absl::Seconds(60)).get(), req, &resp);
    if (!st.ok()) {
      a->violations.push_back(absl::StrCat("List failed: ", st.error_message()));
      break;
    }
    out.insert(out.end(), resp.items().begin(), resp.items().end());
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  return out;
}

struct GitRepo {
  git_repository* repo = nullptr;
  ~GitRepo() { git_repository_free(repo); }
};

std::string LastGitError() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

// The result on harness/<id> is `commit`, one commit on `base`, made under lease `token`.
void CheckResult(git_repository* repo, const v1::Item& item, uint64_t token,
                 const git_oid& base, ChaosAudit* a) {
  const std::string& id = item.id();
  git_oid ref_oid, want;
  if (git_reference_name_to_id(&ref_oid, repo, absl::StrCat("refs/heads/harness/", id).c_str()) !=
      0) {
    a->violations.push_back(absl::StrCat(id, ": done, but harness/", id, " is missing: ",
                                         LastGitError()));
    return;
  }
  if (git_oid_fromstr(&want, item.result().commit().c_str()) != 0 ||
      !git_oid_equal(&ref_oid, &want)) {
    a->violations.push_back(absl::StrCat(id, ": harness/", id, " is ", git_oid_tostr_s(&ref_oid),
                                         ", the item's result is ", item.result().commit()));
    return;
  }
  git_commit* commit = nullptr;
  if (git_commit_lookup(&commit, repo, &ref_oid) != 0) {
    a->violations.push_back(absl::StrCat(id, ": result commit unreadable: ", LastGitError()));
    return;
  }
  std::unique_ptr<git_commit, void (*)(git_commit*)> c(commit, git_commit_free);
  if (git_commit_parentcount(commit) != 1 || !git_oid_equal(git_commit_parent_id(commit, 0), &base)) {
    a->violations.push_back(absl::StrCat(id, ": the result is not one commit on the base"));
  }
  std::string message = git_commit_message(commit);
  if (!absl::StrContains(message, absl::StrCat("Harness-Lease: ", token, "\n")) ||
      !absl::StrContains(message, absl::StrCat("Harness-Item: ", id, "\n"))) {
    a->violations.push_back(absl::StrCat(id, ": the result's trailers do not name lease ", token,
                                         ": ", message));
  }
  git_tree* tree = nullptr;
  git_tree_entry* entry = nullptr;
  git_blob* blob = nullptr;
  std::string content;
  if (git_commit_tree(&tree, commit) == 0 &&
      git_tree_entry_bypath(&entry, tree, "result.txt") == 0 &&
      git_blob_lookup(&blob, repo, git_tree_entry_id(entry)) == 0) {
    content.assign(static_cast<const char*>(git_blob_rawcontent(blob)),
                   static_cast<size_t>(git_blob_rawsize(blob)));
  }
  git_blob_free(blob);
  git_tree_entry_free(entry);
  git_tree_free(tree);
  if (content != absl::StrCat(token, "\n")) {
    a->violations.push_back(absl::StrCat(id, ": result.txt of the landed commit is \"", content,
                                         "\", not the accepted lease ", token,
                                         ": a fenced run's work landed"));
  }
}

int64_t CountInAgentLogs(const std::string& state_dir, const std::string& needle) {
  int64_t n = 0;
  StatePaths paths(state_dir);
  for (const std::string& agent : ListNames(paths.AgentsDir())) {
    absl::StatusOr<std::string> log = ReadFile(paths.AgentLogFile(agent));
    if (!log.ok()) continue;
    for (size_t p = log->find(needle); p != std::string::npos; p = log->find(needle, p + 1)) ++n;
  }
  return n;
}

void CheckStateDir(const std::string& state_dir, ChaosAudit* a) {
  StatePaths paths(state_dir);
  for (const std::string& n : ListNames(paths.ClaimsDir())) {
    a->violations.push_back(absl::StrCat("claims/", n, " is left with every item done"));
  }
  for (const std::string& n : ListNames(paths.LeasesDir())) {
    if (!absl::StartsWith(n, ".slot-") && n != ".lock") {
      a->violations.push_back(absl::StrCat("leases/", n, " is left with every item done"));
    }
  }
}

}  // namespace

ChaosAudit AuditChaosRun(v1::ControlService::Stub& control,
                         const std::vector<std::string>& acknowledged, const std::string& repo,
                         const std::string& base_commit, const std::string& effects_dir,
                         const std::string& state_dir) {
  ChaosAudit a;
  Runs runs = ReadRuns(effects_dir, &a);
  std::vector<v1::ItemSummary> items = ListAll(control, &a);
  a.items = static_cast<int64_t>(items.size());
  std::set<std::string> present;
  for (const v1::ItemSummary& s : items) present.insert(s.id());
  std::set<std::string> acked(acknowledged.begin(), acknowledged.end());
  for (const std::string& id : acked) {
    if (!present.count(id)) a.violations.push_back(absl::StrCat(id, ": acknowledged, then lost"));
  }
  for (const std::string& id : present) {
    if (!acked.count(id)) a.violations.push_back(absl::StrCat(id, ": present, never acknowledged"));
  }

  git_libgit2_init();
  GitRepo g;
  git_oid base;
  if (git_repository_open(&g.repo, repo.c_str()) != 0 ||
      git_oid_fromstr(&base, base_commit.c_str()) != 0) {
    a.violations.push_back(absl::StrCat("cannot open ", repo, ": ", LastGitError()));
    git_libgit2_shutdown();
    return a;
  }
  for (const v1::ItemSummary& s : items) {
    if (s.state() != v1::ITEM_STATE_DONE) {
      a.violations.push_back(absl::StrCat(s.id(), ": ended ", v1::ItemState_Name(s.state())));
      continue;
    }
    v1::Item item;
    if (grpc::Status st = CallGet(control, s.id(), &item); !st.ok()) {
      a.violations.push_back(absl::StrCat(s.id(), ": Get failed: ", st.error_message()));
      continue;
    }
    uint64_t accepted = 0;
    int done_attempts = 0;
    std::map<uint64_t, v1::AttemptOutcome> by_token;
    for (const v1::Attempt& at : item.attempts()) {
      ++a.attempts;
      ++a.outcomes[v1::AttemptOutcome_Name(at.outcome())];
      by_token[at.lease_token()] = at.outcome();
      if (at.outcome() == v1::ATTEMPT_OUTCOME_DONE) {
        ++done_attempts;
        accepted = at.lease_token();
      }
    }
    if (done_attempts > 1) ++a.duplicate_results;
    if (done_attempts != 1) {
      a.violations.push_back(absl::StrCat(s.id(), ": ", done_attempts, " attempts ended done"));
      continue;
    }
    const std::map<uint64_t, TokenRuns>& item_runs = runs[s.id()];
    for (const auto& [token, r] : item_runs) {
      const int n = r.n;
      if (n > 1) {
        a.violations.push_back(absl::StrCat(s.id(), ": lease ", token, " ran the command ", n,
                                            " times: ", r.agents));
      }
      auto it = by_token.find(token);
      if (it == by_token.end()) {
        a.violations.push_back(absl::StrCat(s.id(), ": a run under lease ", token,
                                            ", which no attempt records"));
      } else if (token != accepted) {
        a.reruns += n;  // a run whose lease ended without a result: a re-run, never a result
      }
    }
    if (!item_runs.count(accepted)) {
      a.violations.push_back(absl::StrCat(s.id(), ": the accepted lease ", accepted,
                                          " left no run behind"));
    }
    CheckResult(g.repo, item, accepted, base, &a);
    ++a.done;
  }

  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_glob_new(&it, g.repo, "refs/heads/harness/*") == 0) {
    git_reference* ref = nullptr;
    while (git_reference_next(&ref, it) == 0) {
      ++a.result_refs;
      git_reference_free(ref);
    }
    git_reference_iterator_free(it);
  }
  if (a.result_refs != a.done) {
    a.violations.push_back(absl::StrCat(a.result_refs, " result branches for ", a.done,
                                        " done items"));
  }
  git_libgit2_shutdown();

  a.late_results_discarded = CountInAgentLogs(state_dir, "result discarded");
  CheckStateDir(state_dir, &a);
  return a;
}

}  // namespace harness::testing
