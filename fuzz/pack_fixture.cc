// The pack fuzz target's repository (see pack_fixture.h).
#include "fuzz/pack_fixture.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "git/git_util.h"

namespace harness::fuzz {
namespace {

void Check(int rc, const char* what) {
  if (rc < 0) {
    const git_error* e = git_error_last();
    std::fprintf(stderr, "pack fixture: %s: %s\n", what, e != nullptr ? e->message : "?");
    std::abort();
  }
}

git_oid Blob(git_repository* repo, const std::string& content) {
  git_oid oid;
  Check(git_blob_create_from_buffer(&oid, repo, content.data(), content.size()), "blob");
  return oid;
}

std::string Commit(git_repository* repo, git_tree* tree, git_commit* parent, const char* message) {
  git_signature* sig = nullptr;
  Check(git_signature_new(&sig, "harness fuzz", "fuzz@harness.invalid", 1700000000, 0), "sig");
  git_oid oid;
  const git_commit* parents[] = {parent};
  Check(git_commit_create(&oid, repo, parent == nullptr ? "refs/heads/main" : nullptr, sig, sig,
                          nullptr, message, tree, parent == nullptr ? 0 : 1,
                          parent == nullptr ? nullptr : parents),
        "commit");
  git_signature_free(sig);
  return git::OidHex(oid);
}

}  // namespace

std::string MakeBaseRepo(const std::string& path) {
  git::EnsureInit();
  git_repository* repo = nullptr;
  Check(git_repository_init(&repo, path.c_str(), /*is_bare=*/1), "init");
  git_treebuilder* tb = nullptr;
  Check(git_treebuilder_new(&tb, repo, nullptr), "treebuilder");
  git_oid readme = Blob(repo, "# base\n\nThe repository agents work on.\n");
  Check(git_treebuilder_insert(nullptr, tb, "README.md", &readme, GIT_FILEMODE_BLOB), "insert");
  git_oid tree_oid;
  Check(git_treebuilder_write(&tree_oid, tb), "write tree");
  git_treebuilder_free(tb);
  git_tree* tree = nullptr;
  Check(git_tree_lookup(&tree, repo, &tree_oid), "tree");
  std::string id = Commit(repo, tree, nullptr, "base\n");
  git_tree_free(tree);
  git_repository_free(repo);
  return id;
}

std::string AddChildCommit(git_repository* repo, const std::string& parent) {
  git_oid parent_oid;
  Check(git_oid_fromstr(&parent_oid, parent.c_str()), "parent id");
  git_commit* parent_commit = nullptr;
  Check(git_commit_lookup(&parent_commit, repo, &parent_oid), "parent");
  git_tree* base_tree = nullptr;
  Check(git_commit_tree(&base_tree, parent_commit), "parent tree");
  git_treebuilder* tb = nullptr;
  Check(git_treebuilder_new(&tb, repo, base_tree), "treebuilder");
  git_oid readme = Blob(repo, "# base\n\nThe repository agents work on, now with a fix.\n");
  git_oid fix = Blob(repo, "int main() { return 0; }\n");
  Check(git_treebuilder_insert(nullptr, tb, "README.md", &readme, GIT_FILEMODE_BLOB), "insert");
  Check(git_treebuilder_insert(nullptr, tb, "fix.c", &fix, GIT_FILEMODE_BLOB), "insert");
  git_oid tree_oid;
  Check(git_treebuilder_write(&tree_oid, tb), "write tree");
  git_treebuilder_free(tb);
  git_tree* tree = nullptr;
  Check(git_tree_lookup(&tree, repo, &tree_oid), "tree");
  std::string id = Commit(repo, tree, parent_commit, "fix\n");
  git_tree_free(tree);
  git_tree_free(base_tree);
  git_commit_free(parent_commit);
  return id;
}

}  // namespace harness::fuzz
