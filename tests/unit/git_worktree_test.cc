// AgentWorktree and PruneDeadWorktrees on real repositories: linked worktrees registered and
// locked as `git worktree add` would, several agents at once, clean preparation between items,
// result commits (content, author, message, trailers), removal and the pruning of dead agents'
// worktrees (a dead agent in another process included). Fixtures are made with the git CLI,
// which also inspects the results independently of libgit2.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "git/agent_worktree.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/git_cli.h"
#include "tests/support/temp_dir.h"

namespace harness::git {
namespace {

namespace fs = std::filesystem;
using ::harness::testing::ShellQuote;
using ::harness::testing::Sh;
using ::harness::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;


std::string Git(const std::string& dir, const std::string& args, int* status = nullptr) {
  return Sh(absl::StrCat("git -C ", ShellQuote(dir),
                         " -c user.name=Fixture -c user.email=fixture@test ", args, " 2>&1"),
            status);
}

std::string Trim(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

void Write(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, '\n', absl::SkipEmpty())) out.emplace_back(l);
  return out;
}

// Every file under `root` (relative paths), not descending into a top-level .git.
std::set<std::string> FilesUnder(const std::string& root) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (rel == ".git") {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_directory() || it->is_symlink()) out.insert(rel);
  }
  return out;
}

class AgentWorktreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    repo_ = tmp_.Sub("repo");
    fs::create_directories(repo_);
    Git(repo_, "init -q -b main");
    Write(repo_ + "/README.md", "hello\n");
    Write(repo_ + "/src/a.txt", "a\n");
    Write(repo_ + "/src/b.txt", "b\nb\nb\nb\n");
    Write(repo_ + "/.gitignore", "*.log\nbuild/\n");
    Write(repo_ + "/kept.log", "tracked although ignored\n");
    Git(repo_, "add -A");
    Git(repo_, "add -f kept.log");
    Git(repo_, "commit -q -m base");
    base_ = Trim(Git(repo_, "rev-parse HEAD"));
  }

  std::unique_ptr<AgentWorktree> Open(const std::string& id) {
    absl::StatusOr<std::unique_ptr<AgentWorktree>> wt =
        AgentWorktree::OpenLinked(repo_, id, tmp_.Sub("work/" + id));
    EXPECT_TRUE(wt.ok()) << wt.status();
    return wt.ok() ? std::move(*wt) : nullptr;
  }

  std::unique_ptr<AgentWorktree> OpenPrepared(const std::string& id) {
    std::unique_ptr<AgentWorktree> wt = Open(id);
    if (wt == nullptr) return nullptr;
    absl::Status s = wt->Prepare(base_);
    EXPECT_TRUE(s.ok()) << s;
    return wt;
  }

  CommitInfo Info(const std::string& item = "item-1") {
    CommitInfo info;
    info.item_id = item;
    info.attempt = 2;
    info.lease_token = "lease-77";
    info.title = "Fix the thing";
    info.prompt = "Please fix the thing.\nCarefully.";
    return info;
  }

  std::string WorktreeList() { return Git(repo_, "worktree list --porcelain"); }

  TempDir tmp_;
  std::string repo_;
  std::string base_;
};

TEST_F(AgentWorktreeTest, OpenLinkedRegistersALockedDetachedWorktreeThatGitLists) {
  std::unique_ptr<AgentWorktree> wt = Open("agent-1");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(wt->name(), "harness-agent-1");
  EXPECT_EQ(wt->path(), fs::canonical(tmp_.Sub("work/agent-1")).string());
  const std::string list = WorktreeList();
  EXPECT_THAT(list, HasSubstr("worktree " + wt->path() + "\nHEAD " + base_ +
                              "\ndetached\nlocked harness agent agent-1\n"))
      << list;
  // No branch was left behind by the add.
  EXPECT_EQ(Trim(Git(repo_, "for-each-ref --format='%(refname)' refs/heads")), "refs/heads/main");
}

TEST_F(AgentWorktreeTest, PrepareChecksOutTheBaseCleanOnADetachedHead) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(Trim(Git(wt->path(), "rev-parse HEAD")), base_);
  int detached = 0;
  Git(wt->path(), "symbolic-ref -q HEAD", &detached);
  EXPECT_NE(detached, 0) << "HEAD should be detached";
  EXPECT_EQ(Git(wt->path(), "status --porcelain --ignored"), "");
  EXPECT_EQ(Read(wt->path() + "/src/b.txt"), "b\nb\nb\nb\n");
  EXPECT_EQ(FilesUnder(wt->path()), (std::set<std::string>{".gitignore", "README.md", "kept.log",
                                                           "src/a.txt", "src/b.txt"}));
}

TEST_F(AgentWorktreeTest, SeveralAgentsCreateWorktreesAtOnceAndCommitOnlyTheirOwnWork) {
  constexpr int kAgents = 6;
  std::vector<std::string> commits(kAgents);
  std::vector<std::string> errors(kAgents);
  std::vector<std::thread> threads;
  for (int i = 0; i < kAgents; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = absl::StrCat("agent-", i);
      absl::StatusOr<std::unique_ptr<AgentWorktree>> wt =
          AgentWorktree::OpenLinked(repo_, id, tmp_.Sub("work/" + id));
      if (!wt.ok()) {
        errors[i] = wt.status().ToString();
        return;
      }
      if (absl::Status s = (*wt)->Prepare(base_); !s.ok()) {
        errors[i] = s.ToString();
        return;
      }
      Write((*wt)->path() + "/own-" + id + ".txt", id);
      CommitInfo info;
      info.item_id = absl::StrCat("item-", i);
      info.attempt = 1;
      info.lease_token = "t";
      info.title = "t";
      absl::StatusOr<std::string> c = (*wt)->CommitAll(info);
      if (!c.ok()) {
        errors[i] = c.status().ToString();
        return;
      }
      commits[i] = *c;
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string list = WorktreeList();
  for (int i = 0; i < kAgents; ++i) {
    ASSERT_EQ(errors[i], "") << "agent " << i;
    EXPECT_THAT(list, HasSubstr(absl::StrCat("locked harness agent agent-", i, "\n")));
    EXPECT_EQ(Trim(Git(repo_, "show --name-status --format= " + commits[i])),
              absl::StrCat("A\town-agent-", i, ".txt"));
    EXPECT_EQ(Trim(Git(repo_, "rev-parse " + commits[i] + "^")), base_);
  }
  EXPECT_EQ(std::set<std::string>(commits.begin(), commits.end()).size(), size_t{kAgents});
}

TEST_F(AgentWorktreeTest, ACommitInOneWorktreeNeverAppearsInAnother) {
  std::unique_ptr<AgentWorktree> a = OpenPrepared("agent-a");
  std::unique_ptr<AgentWorktree> b = OpenPrepared("agent-b");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  Write(a->path() + "/only-a.txt", "a");
  absl::StatusOr<std::string> ca = a->CommitAll(Info());
  ASSERT_TRUE(ca.ok()) << ca.status();
  ASSERT_NE(*ca, "");

  // Different HEADs; b sees neither the file nor the commit; main did not move.
  EXPECT_EQ(Trim(Git(a->path(), "rev-parse HEAD")), *ca);
  EXPECT_EQ(Trim(Git(b->path(), "rev-parse HEAD")), base_);
  EXPECT_FALSE(Exists(b->path() + "/only-a.txt"));
  EXPECT_EQ(Git(b->path(), "status --porcelain --ignored"), "");
  EXPECT_THAT(Git(b->path(), "log --format=%H"), Not(HasSubstr(*ca)));
  EXPECT_EQ(Trim(Git(repo_, "rev-parse main")), base_);

  Write(b->path() + "/only-b.txt", "b");
  absl::StatusOr<std::string> cb = b->CommitAll(Info("item-2"));
  ASSERT_TRUE(cb.ok()) << cb.status();
  EXPECT_EQ(Trim(Git(repo_, "show --name-status --format= " + *cb)), "A\tonly-b.txt");
  EXPECT_EQ(Trim(Git(a->path(), "rev-parse HEAD")), *ca);
}

TEST_F(AgentWorktreeTest, CommitAllCommitsAddedModifiedDeletedAndRenamedFilesButNotIgnoredOnes) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string w = wt->path();
  Write(w + "/README.md", "hello, changed\n");                    // modified
  Write(w + "/new/added.txt", "new\n");                           // added (in a new folder)
  fs::remove(w + "/src/a.txt");                                   // deleted
  fs::rename(w + "/src/b.txt", w + "/src/renamed.txt");           // renamed
  Write(w + "/kept.log", "tracked although ignored, changed\n");  // tracked + ignored: modified
  Write(w + "/debug.log", "ignored\n");                           // ignored: not committed
  Write(w + "/build/out.o", "ignored\n");                         // ignored folder: not committed

  absl::StatusOr<std::string> c = wt->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(Lines(Git(repo_, "show -M --name-status --format= " + *c)),
              UnorderedElementsAre("M\tREADME.md", "M\tkept.log", "A\tnew/added.txt",
                                   "D\tsrc/a.txt", "R100\tsrc/b.txt\tsrc/renamed.txt"));
  EXPECT_EQ(Trim(Git(repo_, "rev-parse " + *c + "^")), base_);
  // Only the ignored files remain outside the commit.
  EXPECT_EQ(Git(w, "status --porcelain"), "");
  EXPECT_THAT(Lines(Git(w, "status --porcelain --ignored")),
              UnorderedElementsAre("!! build/", "!! debug.log"));
}

TEST_F(AgentWorktreeTest, CommitAllWritesTheAuthorCommitterMessageAndTrailersExactly) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-7");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/x.txt", "x");
  CommitInfo info = Info("item-42");
  std::string prompt;
  for (int i = 1; i <= 25; ++i) absl::StrAppend(&prompt, "line ", i, "\n");
  info.prompt = prompt;
  absl::StatusOr<std::string> c = wt->CommitAll(info);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Git(repo_, "log -1 --format=%an%n%ae%n%cn%n%ce " + *c),
            "Harness Agent agent-7\nagent-7@harness.local\nHarness Agent "
            "agent-7\nagent-7@harness.local\n");
  std::string expected = "Fix the thing\n\n";
  for (int i = 1; i <= 20; ++i) absl::StrAppend(&expected, "line ", i, "\n");
  absl::StrAppend(&expected,
                  "\nHarness-Item: item-42\nHarness-Attempt: 2\nHarness-Lease: lease-77\n"
                  "Harness-Agent: agent-7\n");
  const std::string raw = Git(repo_, "cat-file commit " + *c);
  EXPECT_EQ(raw.substr(raw.find("\n\n") + 2), expected);
  EXPECT_EQ(Git(repo_, "log -1 --format='%(trailers:key=Harness-Lease,valueonly)' " + *c),
            "lease-77\n\n");
}

TEST_F(AgentWorktreeTest, CommitAllUsesTheConfiguredAuthor) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/x.txt", "x");
  CommitInfo info = Info();
  info.author_name = "Robo Writer";
  info.author_email = "robo@example.com";
  info.prompt = "";
  absl::StatusOr<std::string> c = wt->CommitAll(info);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Git(repo_, "log -1 --format='%an<%ae>%n%cn<%ce>' " + *c),
            "Robo Writer<robo@example.com>\nRobo Writer<robo@example.com>\n");
  EXPECT_EQ(Git(repo_, "log -1 --format=%B " + *c),
            "Fix the thing\n\nHarness-Item: item-1\nHarness-Attempt: 2\nHarness-Lease: lease-77\n"
            "Harness-Agent: agent-1\n\n");
}

TEST_F(AgentWorktreeTest, CommitAllWithNoChangeReturnsEmptyAndMakesNoCommit) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/only-ignored.log", "x");  // ignored files are no change
  absl::StatusOr<std::string> c = wt->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, "");
  EXPECT_EQ(Trim(Git(wt->path(), "rev-parse HEAD")), base_);
  EXPECT_EQ(Trim(Git(repo_, "rev-list --all --count")), "1");
}

TEST_F(AgentWorktreeTest, CommitAllNeverMovesABranchTheCommandCheckedOut) {
  Git(repo_, "branch side");
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Git(wt->path(), "checkout -q side");
  Write(wt->path() + "/x.txt", "x");
  absl::StatusOr<std::string> c = wt->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Trim(Git(repo_, "rev-parse side")), base_);
  EXPECT_EQ(Trim(Git(wt->path(), "rev-parse HEAD")), *c);
}

TEST_F(AgentWorktreeTest, CommitAllKeepsCommitsTheCommandMadeItself) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/by-agent.txt", "x");
  Git(wt->path(), "add -A");
  Git(wt->path(), "commit -q -m by-the-agent");
  const std::string agents = Trim(Git(wt->path(), "rev-parse HEAD"));

  // Everything already committed: the harness commit still carries the trailers.
  absl::StatusOr<std::string> c = wt->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(*c, "");
  EXPECT_EQ(Trim(Git(repo_, "rev-parse " + *c + "^")), agents);
  EXPECT_EQ(Trim(Git(repo_, "rev-parse " + *c + "^^")), base_);
  EXPECT_EQ(Git(repo_, "show --name-status --format= " + *c), "");
  EXPECT_EQ(Git(repo_, "log -1 --format='%(trailers:key=Harness-Item,valueonly)' " + *c),
            "item-1\n\n");

  // Committed and reverted: no net change, no commit.
  ASSERT_TRUE(wt->Prepare(base_).ok());
  Write(wt->path() + "/README.md", "changed\n");
  Git(wt->path(), "commit -q -am change");
  Git(wt->path(), "revert --no-edit HEAD");
  absl::StatusOr<std::string> none = wt->CommitAll(Info());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, "");
}

TEST_F(AgentWorktreeTest, CommitAllLeavesOutANestedRepositoryTheCommandMade) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/plain.txt", "x");
  Write(wt->path() + "/third_party/lib/lib.c", "x");
  Git(wt->path() + "/third_party/lib", "init -q -b main");
  Git(wt->path() + "/third_party/lib", "add -A");
  Git(wt->path() + "/third_party/lib", "commit -q -m lib");
  absl::StatusOr<std::string> c = wt->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Git(repo_, "show --name-status --format= " + *c), "A\tplain.txt\n");
}

TEST_F(AgentWorktreeTest, PrepareRemovesUntrackedAndIgnoredLeftoversAndResetsTrackedFiles) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string w = wt->path();
  // What the previous item's command left.
  Write(w + "/README.md", "scribbled\n");  // modified tracked
  fs::remove(w + "/src/a.txt");            // deleted tracked
  Write(w + "/untracked.txt", "x");        // untracked file
  Write(w + "/scratch/deep/er.txt", "x");  // untracked folder
  Write(w + "/debug.log", "x");            // ignored file
  Write(w + "/build/obj/out.o", "x");      // ignored folder
  Write(w + "/src/staged.txt", "x");       // staged, never committed
  Git(w, "add src/staged.txt");
  Write(w + "/vendor/lib/file.c", "x");  // a nested repository
  Git(w + "/vendor/lib", "init -q -b main");
  Git(w + "/vendor/lib", "add -A");
  Git(w + "/vendor/lib", "commit -q -m nested");
  Write(w + "/ro/inner/f.txt", "x");  // inside a read-only folder
  ASSERT_EQ(chmod((w + "/ro/inner").c_str(), 0500), 0);
  Write(tmp_.Sub("outside/keep.txt"), "precious");  // reached only through a link
  fs::create_directory_symlink(tmp_.Sub("outside"), w + "/link-out");
  fs::remove_all(w + "/src");  // a file where a folder was...
  Write(w + "/src", "now a file");
  fs::remove(w + "/.gitignore");  // ...and a folder where a file was
  Write(w + "/.gitignore/inside", "x");
  fs::remove(w + "/.git");  // even the worktree's .git file
  // Locks a killed git command left in the worktree's git dir.
  Write(repo_ + "/.git/worktrees/harness-agent-1/index.lock", "");
  Write(repo_ + "/.git/worktrees/harness-agent-1/HEAD.lock", "");

  ASSERT_TRUE(wt->Prepare(base_).ok());
  EXPECT_EQ(Git(w, "status --porcelain --ignored"), "");
  EXPECT_EQ(FilesUnder(w), (std::set<std::string>{".gitignore", "README.md", "kept.log",
                                                  "src/a.txt", "src/b.txt"}));
  EXPECT_EQ(Read(w + "/README.md"), "hello\n");
  EXPECT_EQ(Read(tmp_.Sub("outside/keep.txt")), "precious");
  EXPECT_EQ(Trim(Git(w, "ls-files --stage")), Trim(Git(repo_, "ls-files --stage")));
}

TEST_F(AgentWorktreeTest, PrepareRepairsAnIndexTheCommandCorrupted) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string gitdir = Trim(Git(wt->path(), "rev-parse --absolute-git-dir"));
  Write(gitdir + "/index", "not an index");
  Write(wt->path() + "/README.md", "scribbled\n");
  absl::Status s = wt->Prepare(base_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Read(wt->path() + "/README.md"), "hello\n");
  EXPECT_EQ(Git(wt->path(), "status --porcelain --ignored"), "");
  EXPECT_EQ(Trim(Git(wt->path(), "ls-files --stage")), Trim(Git(repo_, "ls-files --stage")));
}

TEST_F(AgentWorktreeTest, CommitAllKeepsTheWorkOfACommandThatCorruptedTheIndex) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string gitdir = Trim(Git(wt->path(), "rev-parse --absolute-git-dir"));
  Write(wt->path() + "/README.md", "changed\n");
  Write(wt->path() + "/new.txt", "new\n");
  Write(gitdir + "/index", "not an index");
  absl::StatusOr<std::string> commit = wt->CommitAll(Info());
  ASSERT_TRUE(commit.ok()) << commit.status();
  ASSERT_NE(*commit, "");
  EXPECT_EQ(Git(wt->path(), "show --name-only --format= " + *commit), "README.md\nnew.txt\n");
  EXPECT_EQ(Git(wt->path(), "status --porcelain"), "");
}

TEST_F(AgentWorktreeTest, PrepareMovesAReusedWorktreeToANewBase) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  Write(wt->path() + "/mine.txt", "x");
  ASSERT_TRUE(wt->CommitAll(Info()).ok());

  Write(repo_ + "/src/a.txt", "a2\n");
  Write(repo_ + "/later.txt", "later\n");
  Git(repo_, "commit -q -am next");
  Git(repo_, "add later.txt");
  Git(repo_, "commit -q -m later");
  absl::StatusOr<std::string> tip = wt->ResolveBase("");
  ASSERT_TRUE(tip.ok()) << tip.status();
  EXPECT_EQ(*tip, Trim(Git(repo_, "rev-parse main")));
  ASSERT_TRUE(wt->Prepare(*tip).ok());
  EXPECT_EQ(Trim(Git(wt->path(), "rev-parse HEAD")), *tip);
  EXPECT_EQ(Git(wt->path(), "status --porcelain --ignored"), "");
  EXPECT_FALSE(Exists(wt->path() + "/mine.txt"));
  EXPECT_EQ(Read(wt->path() + "/src/a.txt"), "a2\n");
  EXPECT_EQ(Read(wt->path() + "/later.txt"), "later\n");
}

TEST_F(AgentWorktreeTest, AnItemThatChangesNothingRewritesNeitherHeadNorTheIndexNeedlessly) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string gitdir = Trim(Git(wt->path(), "rev-parse --absolute-git-dir"));
  auto inode = [](const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_ino : ino_t{0};
  };
  const ino_t head = inode(gitdir + "/HEAD");
  const ino_t index = inode(gitdir + "/index");
  ASSERT_NE(head, ino_t{0});
  ASSERT_NE(index, ino_t{0});
  // No change: no commit, the index left as it is.
  absl::StatusOr<std::string> commit = wt->CommitAll(Info());
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_EQ(*commit, "");
  EXPECT_EQ(inode(gitdir + "/index"), index);
  // The same base again: neither HEAD nor the index is rewritten.
  ASSERT_TRUE(wt->Prepare(base_).ok());
  EXPECT_EQ(inode(gitdir + "/HEAD"), head);
  EXPECT_EQ(inode(gitdir + "/index"), index);
  EXPECT_EQ(Trim(Git(wt->path(), "rev-parse HEAD")), base_);
  EXPECT_EQ(Git(wt->path(), "status --porcelain --ignored"), "");
  // A file the item rewrote: put back, and the index written with its new stat data (compared
  // with the inode just before: git status above may have rewritten the index itself).
  Write(wt->path() + "/README.md", "scribbled\n");
  const ino_t before = inode(gitdir + "/index");
  ASSERT_TRUE(wt->Prepare(base_).ok());
  EXPECT_NE(inode(gitdir + "/index"), before);
  EXPECT_EQ(Read(wt->path() + "/README.md"), "hello\n");
  EXPECT_EQ(Git(wt->path(), "status --porcelain --ignored"), "");
}

TEST_F(AgentWorktreeTest, PrepareClearsIndexFlagsThatWouldHideTheNextItemsChanges) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string w = wt->path();
  // The command told git to ignore changes to two tracked files, and changed nothing else.
  Git(w, "update-index --assume-unchanged README.md");
  Git(w, "update-index --skip-worktree src/a.txt");
  ASSERT_EQ(Git(w, "ls-files -v README.md src/a.txt"), "h README.md\nS src/a.txt\n");
  ASSERT_TRUE(wt->Prepare(base_).ok());
  EXPECT_EQ(Git(w, "ls-files -v README.md src/a.txt"), "H README.md\nH src/a.txt\n");
  // So the next item's change to them is committed.
  Write(w + "/README.md", "next\n");
  Write(w + "/src/a.txt", "a-next\n");
  absl::StatusOr<std::string> commit = wt->CommitAll(Info());
  ASSERT_TRUE(commit.ok()) << commit.status();
  ASSERT_NE(*commit, "");
  EXPECT_EQ(Git(w, "show --name-only --format= " + *commit), "README.md\nsrc/a.txt\n");
}

TEST_F(AgentWorktreeTest, RemoveLeavesNoFolderRegistrationOrBranch) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string path = wt->path();
  Write(path + "/build/x.o", "x");
  ASSERT_TRUE(wt->Remove().ok());
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-agent-1"));
  EXPECT_EQ(Trim(Git(repo_, "worktree list --porcelain")),
            absl::StrCat("worktree ", fs::canonical(repo_).string(), "\nHEAD ", base_,
                         "\nbranch refs/heads/main"));
  EXPECT_EQ(Git(repo_, "worktree prune --dry-run --verbose"), "");
  EXPECT_EQ(Trim(Git(repo_, "for-each-ref --format='%(refname)' refs/heads")), "refs/heads/main");
  EXPECT_FALSE(wt->Remove().ok());
}

TEST_F(AgentWorktreeTest, ASecondAgentWithTheSameIdIsRefusedWhileTheFirstLives) {
  std::unique_ptr<AgentWorktree> first = OpenPrepared("agent-1");
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<AgentWorktree>> second =
      AgentWorktree::OpenLinked(repo_, "agent-1", tmp_.Sub("elsewhere"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "agent id agent-1 is in use by another live agent");
  EXPECT_FALSE(Exists(tmp_.Sub("elsewhere")));
  EXPECT_TRUE(Exists(first->path() + "/README.md"));
}

TEST_F(AgentWorktreeTest, AWorktreeIsReusedOnceItsAgentIsGone) {
  std::unique_ptr<AgentWorktree> first = OpenPrepared("agent-1");
  ASSERT_NE(first, nullptr);
  const std::string path = first->path();
  Write(path + "/leftover.txt", "x");
  first.reset();  // the agent dies without removing its worktree

  std::unique_ptr<AgentWorktree> again = Open("agent-1");
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->path(), path);
  EXPECT_TRUE(Exists(path + "/leftover.txt"));  // reused, not recreated
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 2u);
  ASSERT_TRUE(again->Prepare(base_).ok());
  EXPECT_FALSE(Exists(path + "/leftover.txt"));
  EXPECT_THAT(WorktreeList(), HasSubstr("locked harness agent agent-1\n"));
}

TEST_F(AgentWorktreeTest, AnAgentThatMovedToAnotherFolderGetsAFreshWorktree) {
  std::unique_ptr<AgentWorktree> first = OpenPrepared("agent-1");
  ASSERT_NE(first, nullptr);
  const std::string old_path = first->path();
  first.reset();
  absl::StatusOr<std::unique_ptr<AgentWorktree>> moved =
      AgentWorktree::OpenLinked(repo_, "agent-1", tmp_.Sub("moved/agent-1"));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_FALSE(Exists(old_path));
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 2u);
  EXPECT_THAT(WorktreeList(), HasSubstr("worktree " + (*moved)->path() + "\n"));
}

TEST_F(AgentWorktreeTest, OpenLinkedRefusesAFolderThatIsSomethingElse) {
  Write(tmp_.Sub("work/agent-1/precious.txt"), "mine");
  absl::StatusOr<std::unique_ptr<AgentWorktree>> wt =
      AgentWorktree::OpenLinked(repo_, "agent-1", tmp_.Sub("work/agent-1"));
  ASSERT_FALSE(wt.ok());
  EXPECT_EQ(wt.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wt.status().message(), HasSubstr("is not the worktree of agent agent-1"));
  EXPECT_EQ(Read(tmp_.Sub("work/agent-1/precious.txt")), "mine");
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-agent-1"));
}

TEST_F(AgentWorktreeTest, PruneRemovesADeadAgentsLockedWorktree) {
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  const std::string path = wt->path();
  wt.reset();  // dead: its flock is gone, its worktree still registered and locked
  ASSERT_THAT(WorktreeList(), HasSubstr("locked harness agent agent-1"));
  absl::StatusOr<int> n = PruneDeadWorktrees(repo_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-agent-1"));
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 1u);
}

TEST_F(AgentWorktreeTest, PruneRemovesTheWorktreeOfAKilledProcessButNotWhileItLives) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const std::string dir = tmp_.Sub("work/agent-k");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    absl::StatusOr<std::unique_ptr<AgentWorktree>> wt =
        AgentWorktree::OpenLinked(repo_, "agent-k", dir);
    char c = wt.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    for (;;) pause();
  }
  // Killed and reaped on every way out of the test, by pid.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, 'y');

  // Alive in another process: untouched, and its id is taken.
  absl::StatusOr<int> n = PruneDeadWorktrees(repo_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);
  EXPECT_TRUE(Exists(dir + "/.git"));
  EXPECT_EQ(AgentWorktree::OpenLinked(repo_, "agent-k", dir).status().code(),
            absl::StatusCode::kFailedPrecondition);

  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reaper.pid = -1;
  n = PruneDeadWorktrees(repo_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(Exists(dir));
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 1u);
}

// Debris of failed adds: a registration folder libgit2 made before it found the worktree
// folder occupied, and one cut short with only some of its files.
void MakeFailedAddDebris(const std::string& repo_path, const std::string& occupied) {
  Write(occupied + "/file", "x");
  absl::StatusOr<Repository> repo = OpenRepository(repo_path);
  ASSERT_TRUE(repo.ok());
  git_worktree* wt = nullptr;
  EXPECT_LT(git_worktree_add(&wt, repo->get(), "harness-ghost", occupied.c_str(), nullptr), 0);
  git_worktree_free(wt);
  ASSERT_TRUE(Exists(repo_path + "/.git/worktrees/harness-ghost"));
  Write(repo_path + "/.git/worktrees/harness-partial/commondir", "../..\n");
}

TEST_F(AgentWorktreeTest, PruneRemovesDebrisOfFailedAddsAndHalfRemovedWorktrees) {
  // Dead agents' worktrees: one whose folder was deleted, one whose .git file was.
  std::unique_ptr<AgentWorktree> gone = OpenPrepared("agent-gone");
  std::unique_ptr<AgentWorktree> half = OpenPrepared("agent-half");
  ASSERT_NE(gone, nullptr);
  ASSERT_NE(half, nullptr);
  const std::string gone_path = gone->path();
  const std::string half_path = half->path();
  gone.reset();
  half.reset();
  fs::remove_all(gone_path);
  fs::remove(half_path + "/.git");
  MakeFailedAddDebris(repo_, tmp_.Sub("occupied"));
  // Not ours: a worktree named otherwise is never touched.
  Git(repo_, "worktree add -q --detach " + ShellQuote(tmp_.Sub("users-own")));

  absl::StatusOr<int> n = PruneDeadWorktrees(repo_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 4);
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-ghost"));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-partial"));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-agent-gone"));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-agent-half"));
  EXPECT_FALSE(Exists(half_path));
  EXPECT_EQ(Read(tmp_.Sub("occupied/file")), "x");  // never registered: not ours to delete
  EXPECT_TRUE(Exists(tmp_.Sub("users-own/README.md")));
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 2u);
}

TEST_F(AgentWorktreeTest, OpenLinkedClearsDebrisThatWouldMakeLibgit2RefuseTheAdd) {
  // Two broken registrations in a row make libgit2 1.5 think every branch is checked out.
  MakeFailedAddDebris(repo_, tmp_.Sub("occupied"));
  std::unique_ptr<AgentWorktree> wt = OpenPrepared("agent-1");
  ASSERT_NE(wt, nullptr);
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-ghost"));
  EXPECT_FALSE(Exists(repo_ + "/.git/worktrees/harness-partial"));
  EXPECT_EQ(Lines(Git(repo_, "worktree list")).size(), 2u);
}

TEST_F(AgentWorktreeTest, ALiveAgentsWorktreeSurvivesAnotherAgentsPrune) {
  std::unique_ptr<AgentWorktree> live = OpenPrepared("agent-live");
  std::unique_ptr<AgentWorktree> dead = OpenPrepared("agent-dead");
  ASSERT_NE(live, nullptr);
  ASSERT_NE(dead, nullptr);
  dead.reset();
  absl::StatusOr<int> n = PruneDeadWorktrees(repo_);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_THAT(WorktreeList(), HasSubstr("worktree " + live->path() + "\n"));
  EXPECT_THAT(WorktreeList(), HasSubstr("locked harness agent agent-live\n"));
  Write(live->path() + "/still-works.txt", "x");
  absl::StatusOr<std::string> c = live->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(*c, "");
}

TEST_F(AgentWorktreeTest, BadInputGivesClearErrors) {
  absl::StatusOr<std::unique_ptr<AgentWorktree>> bad_repo =
      AgentWorktree::OpenLinked(tmp_.Sub("no-such-repo"), "agent-1", tmp_.Sub("w"));
  ASSERT_FALSE(bad_repo.ok());
  EXPECT_EQ(bad_repo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_repo.status().message(), HasSubstr(tmp_.Sub("no-such-repo")));

  absl::StatusOr<std::unique_ptr<AgentWorktree>> bad_id =
      AgentWorktree::OpenLinked(repo_, "../evil", tmp_.Sub("w"));
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(tmp_.Sub("w")));

  absl::StatusOr<int> bad_prune = PruneDeadWorktrees(tmp_.Sub("no-such-repo"));
  EXPECT_EQ(bad_prune.status().code(), absl::StatusCode::kInvalidArgument);

  std::unique_ptr<AgentWorktree> wt = Open("agent-1");
  ASSERT_NE(wt, nullptr);
  absl::StatusOr<std::string> missing = wt->ResolveBase("no-such-branch");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("\"no-such-branch\""));
  EXPECT_EQ(wt->ResolveBase("main").value_or(""), base_);
  EXPECT_EQ(wt->ResolveBase("").value_or(""), base_);

  EXPECT_EQ(wt->Prepare("not-a-commit").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wt->Prepare(std::string(40, 'a')).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(wt->Prepare(base_).ok());
  CommitInfo info = Info();
  info.item_id = "bad/item";
  Write(wt->path() + "/x.txt", "x");
  EXPECT_EQ(wt->CommitAll(info).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AgentWorktreeTest, OpenCloneWorksOnTheMainWorkTreeOfAClone) {
  const std::string clone = tmp_.Sub("clone");
  Sh(absl::StrCat("git clone -q ", ShellQuote(repo_), " ", ShellQuote(clone), " 2>&1"));
  absl::StatusOr<std::unique_ptr<AgentWorktree>> wt = AgentWorktree::OpenClone(clone, "remote-1");
  ASSERT_TRUE(wt.ok()) << wt.status();
  EXPECT_EQ(AgentWorktree::OpenClone(clone).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::string> base = (*wt)->ResolveBase("");
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(*base, base_);
  Write(clone + "/junk.log", "x");
  ASSERT_TRUE((*wt)->Prepare(*base).ok());
  EXPECT_FALSE(Exists(clone + "/junk.log"));
  // HEAD is detached now; the base still resolves (through origin/HEAD).
  EXPECT_EQ((*wt)->ResolveBase("").value_or(""), base_);
  Write(clone + "/remote.txt", "r");
  absl::StatusOr<std::string> c = (*wt)->CommitAll(Info());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Git(clone, "log -1 --format='%an%n%(trailers:key=Harness-Agent,valueonly)' " + *c),
            "Harness Agent remote-1\nremote-1\n\n");
  EXPECT_EQ(Trim(Git(clone, "rev-parse main")), base_);  // no branch moved
  ASSERT_TRUE((*wt)->Remove().ok());
  EXPECT_TRUE(Exists(clone + "/remote.txt"));  // a clone is its owner's to delete
  EXPECT_TRUE(AgentWorktree::OpenClone(clone).ok());
}

}  // namespace
}  // namespace harness::git
