// ResultRefs on a real repository: the checks on a reported result commit, the compare-and-swap
// of harness/<item-id>, the kept attempts (last 3 per item) and item ids refused before they
// name a ref. Fixtures are made and inspected with the git CLI.
#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "git/result_refs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/git_cli.h"
#include "tests/support/temp_dir.h"

namespace harness::git {
namespace {

namespace fs = std::filesystem;
using ::harness::testing::Sh;
using ::harness::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;


class ResultRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    repo_ = tmp_.Sub("repo");
    fs::create_directories(repo_);
    Git("init -q -b main");
    base_ = Commit("base.txt");
    child_ = Commit("child.txt");
    grandchild_ = Commit("grandchild.txt");
    // An unrelated history: a root commit of its own.
    unrelated_ = Git("commit-tree -m unrelated " + Git("mktree </dev/null"));
    absl::StatusOr<std::unique_ptr<ResultRefs>> refs = ResultRefs::Open(repo_);
    ASSERT_TRUE(refs.ok()) << refs.status();
    refs_ = std::move(*refs);
  }

  std::string Git(const std::string& args) {
    return std::string(absl::StripAsciiWhitespace(Sh(absl::StrCat(
        "cd '", repo_, "' && git -c user.name=Fixture -c user.email=f@test ", args, " 2>&1"))));
  }

  std::string Commit(const std::string& file) {
    std::ofstream(repo_ + "/" + file) << file;
    Git("add " + file);
    Git("commit -q -m " + file);
    return Git("rev-parse HEAD");
  }

  std::string Refs() { return Git("for-each-ref --format='%(refname) %(objectname)'"); }

  TempDir tmp_;
  std::string repo_, base_, child_, grandchild_, unrelated_;
  std::unique_ptr<ResultRefs> refs_;
};

// A controller killed while it moved a ref leaves the ref's lock file: the ref can never be set
// again until the lock goes (the chaos soak found a done item without its branch this way).
TEST_F(ResultRefsTest, AStaleLockBlocksItsRefUntilRemoveStaleLocksClearsIt) {
  fs::create_directories(repo_ + "/.git/refs/heads/harness");
  fs::create_directories(repo_ + "/.git/refs/heads/harness-attempt/b");
  std::ofstream(repo_ + "/.git/refs/heads/harness/a.lock") << child_ << "\n";
  std::ofstream(repo_ + "/.git/refs/heads/harness-attempt/b/1.lock") << "";
  std::ofstream(repo_ + "/.git/refs/heads/other.lock") << "";  // not harness's: left alone
  EXPECT_FALSE(refs_->SetResultBranch("a", child_).ok()) << "the lock did not block the ref";

  absl::StatusOr<std::vector<std::string>> removed = refs_->RemoveStaleLocks();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->size(), 2u);
  EXPECT_TRUE(fs::exists(repo_ + "/.git/refs/heads/other.lock"));
  ASSERT_TRUE(refs_->SetResultBranch("a", child_).ok());
  EXPECT_EQ(*refs_->ResultBranch("a"), child_);
  EXPECT_TRUE(refs_->KeepAttempt("b", 1, child_).ok());
}

TEST_F(ResultRefsTest, VerifyResultAcceptsADescendantOfTheBase) {
  EXPECT_TRUE(refs_->VerifyResult(child_, base_).ok());
  EXPECT_TRUE(refs_->VerifyResult(grandchild_, base_).ok());
}

TEST_F(ResultRefsTest, VerifyResultRefusesAnUnrelatedCommit) {
  absl::Status s = refs_->VerifyResult(unrelated_, base_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("does not descend from base " + base_));
  // An ancestor of the base does not descend from it either.
  EXPECT_EQ(refs_->VerifyResult(base_, child_).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ResultRefsTest, VerifyResultRefusesAMissingCommit) {
  const std::string missing(40, 'e');
  absl::Status s = refs_->VerifyResult(missing, base_);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(missing + " is not in the repository"));
}

TEST_F(ResultRefsTest, VerifyResultRefusesTheBaseItselfAsNoChange) {
  absl::Status s = refs_->VerifyResult(base_, base_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("no change"));
}

TEST_F(ResultRefsTest, VerifyResultRefusesMalformedIdsAndObjectsThatAreNotCommits) {
  EXPECT_EQ(refs_->VerifyResult("HEAD", base_).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refs_->VerifyResult(child_, "main").code(), absl::StatusCode::kInvalidArgument);
  const std::string tree = Git("rev-parse HEAD^{tree}");
  absl::Status s = refs_->VerifyResult(tree, base_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("is a tree, not a commit"));
}

TEST_F(ResultRefsTest, SetResultBranchCreatesTheBranch) {
  ASSERT_TRUE(refs_->SetResultBranch("item-1", child_).ok());
  EXPECT_EQ(Git("rev-parse refs/heads/harness/item-1"), child_);
  EXPECT_EQ(refs_->ResultBranch("item-1").value_or(""), child_);
}

TEST_F(ResultRefsTest, SetResultBranchIsIdempotentForTheSameCommit) {
  ASSERT_TRUE(refs_->SetResultBranch("item-1", child_).ok());
  ASSERT_TRUE(refs_->SetResultBranch("item-1", child_).ok());
  EXPECT_EQ(Git("rev-parse harness/item-1"), child_);
  EXPECT_EQ(Git("reflog show --format=%H refs/heads/harness/item-1"), child_);  // written once
}

TEST_F(ResultRefsTest, SetResultBranchReplacesAnOlderValue) {
  ASSERT_TRUE(refs_->SetResultBranch("item-1", child_).ok());
  ASSERT_TRUE(refs_->SetResultBranch("item-1", grandchild_).ok());
  EXPECT_EQ(Git("rev-parse harness/item-1"), grandchild_);
}

TEST_F(ResultRefsTest, SetResultBranchSeesAChangeMadeByAnotherWriter) {
  ASSERT_TRUE(refs_->SetResultBranch("item-1", child_).ok());
  Git("update-ref refs/heads/harness/item-1 " + grandchild_);       // another process
  ASSERT_TRUE(refs_->SetResultBranch("item-1", grandchild_).ok());  // already there: OK
  EXPECT_EQ(refs_->ResultBranch("item-1").value_or(""), grandchild_);
}

TEST_F(ResultRefsTest, ResultBranchOfAnItemWithoutOneIsNotFound) {
  EXPECT_EQ(refs_->ResultBranch("item-9").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ResultRefsTest, KeepAttemptKeepsTheLastThree) {
  for (int n = 1; n <= 5; ++n)
    ASSERT_TRUE(refs_->KeepAttempt("item-1", n, n % 2 ? child_ : grandchild_).ok());
  EXPECT_THAT(refs_->ListAttemptRefs("item-1"), ElementsAre("refs/heads/harness-attempt/item-1/3",
                                                            "refs/heads/harness-attempt/item-1/4",
                                                            "refs/heads/harness-attempt/item-1/5"));
  EXPECT_EQ(Git("rev-parse harness-attempt/item-1/4"), grandchild_);
  // A late, older attempt does not push out a newer one.
  ASSERT_TRUE(refs_->KeepAttempt("item-1", 2, child_).ok());
  EXPECT_EQ(refs_->ListAttemptRefs("item-1").size(), 3u);
  EXPECT_EQ(refs_->ListAttemptRefs("item-1").front(), "refs/heads/harness-attempt/item-1/3");
  // Numbers sort as numbers, not text.
  ASSERT_TRUE(refs_->KeepAttempt("item-1", 10, child_).ok());
  EXPECT_THAT(
      refs_->ListAttemptRefs("item-1"),
      ElementsAre("refs/heads/harness-attempt/item-1/4", "refs/heads/harness-attempt/item-1/5",
                  "refs/heads/harness-attempt/item-1/10"));
}

TEST_F(ResultRefsTest, KeepAttemptLeavesOtherItemsAlone) {
  for (int n = 1; n <= 3; ++n) ASSERT_TRUE(refs_->KeepAttempt("item-1", n, child_).ok());
  for (int n = 1; n <= 4; ++n) ASSERT_TRUE(refs_->KeepAttempt("item-10", n, child_).ok());
  EXPECT_EQ(refs_->ListAttemptRefs("item-1").size(), 3u);
  EXPECT_EQ(refs_->ListAttemptRefs("item-10").size(), 3u);
  EXPECT_EQ(refs_->ListAttemptRefs("item-1").front(), "refs/heads/harness-attempt/item-1/1");
}

TEST_F(ResultRefsTest, InvalidItemIdsAreRefusedBeforeAnyRefIsTouched) {
  const std::string before = Refs();
  for (const std::string& bad :
       {std::string("../x"), std::string("a/b"), std::string("x.lock"), std::string(""),
        std::string("a..b"), std::string("-x"), std::string("x y"), std::string(200, 'a')}) {
    EXPECT_EQ(refs_->SetResultBranch(bad, child_).code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_EQ(refs_->KeepAttempt(bad, 1, child_).code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(refs_->ResultBranch(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(refs_->ListAttemptRefs(bad).empty()) << bad;
  }
  EXPECT_EQ(refs_->SetResultBranch("item-1", "not-a-commit").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refs_->KeepAttempt("item-1", -1, child_).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Refs(), before);
}

TEST_F(ResultRefsTest, ResolveBaseFindsTheHeadBranchOrANamedOne) {
  Git("branch feature " + base_);
  EXPECT_EQ(refs_->ResolveBase("").value_or(""), grandchild_);
  EXPECT_EQ(refs_->ResolveBase("main").value_or(""), grandchild_);
  EXPECT_EQ(refs_->ResolveBase("feature").value_or(""), base_);
  absl::StatusOr<std::string> missing = refs_->ResolveBase("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("\"nope\""));
}

TEST_F(ResultRefsTest, OpenRefusesABadRepositoryPathNamingIt) {
  absl::StatusOr<std::unique_ptr<ResultRefs>> refs = ResultRefs::Open(tmp_.Sub("nowhere"));
  ASSERT_FALSE(refs.ok());
  EXPECT_EQ(refs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refs.status().message(), HasSubstr(tmp_.Sub("nowhere")));
}

}  // namespace
}  // namespace harness::git
