// WorkDir: every item starts in an empty work dir (files, dot files, nested and read-only
// folders from earlier items are gone; symbolic links are removed, never followed, so what
// they point to survives), log and prompt paths per attempt, and item ids validated before
// they name a file.
#include "agentd/work_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness::agentd {
namespace {

using ::harness::testing::TempDir;
using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& content) {
  ASSERT_TRUE(WriteFileAtomically(path, content).ok()) << path;
}

bool IsEmptyRealDirectory(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && testing::ListNames(path).empty();
}

TEST(WorkDir, PrepareRemovesEverythingAnEarlierItemLeft) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"));
  ASSERT_TRUE(dir.Init().ok());
  absl::StatusOr<ItemPaths> first = dir.Prepare("item-1", 1);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string w = first->work_dir;

  // Outside the work dir: must survive.
  ASSERT_EQ(mkdir(tmp.Sub("outside").c_str(), 0755), 0);
  Write(tmp.Sub("outside/keep.txt"), "precious");
  Write(tmp.Sub("outside-file"), "also precious");

  // What item-1's command left behind.
  Write(w + "/file.txt", "x");
  Write(w + "/.hidden", "x");
  ASSERT_EQ(mkdir((w + "/.git").c_str(), 0755), 0);
  Write(w + "/.git/config", "x");
  ASSERT_EQ(mkdir((w + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((w + "/a/b").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((w + "/a/b/.c").c_str(), 0755), 0);
  Write(w + "/a/b/.c/deep.txt", "x");
  ASSERT_EQ(mkdir((w + "/readonly").c_str(), 0755), 0);
  Write(w + "/readonly/f", "x");
  ASSERT_EQ(chmod((w + "/readonly").c_str(), 0500), 0);
  ASSERT_EQ(symlink(tmp.Sub("outside").c_str(), (w + "/link-to-dir").c_str()), 0);
  ASSERT_EQ(symlink(tmp.Sub("outside-file").c_str(), (w + "/a/link-to-file").c_str()), 0);
  ASSERT_EQ(symlink("../../outside", (w + "/relative-link").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/target", (w + "/dangling").c_str()), 0);

  absl::StatusOr<ItemPaths> second = dir.Prepare("item-2", 1);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->work_dir, w);
  EXPECT_TRUE(IsEmptyRealDirectory(w));
  EXPECT_EQ(testing::ListNames(w), std::vector<std::string>{});

  EXPECT_EQ(*ReadFile(tmp.Sub("outside/keep.txt")), "precious");
  EXPECT_EQ(*ReadFile(tmp.Sub("outside-file")), "also precious");
}

TEST(WorkDir, AWorkDirReplacedByASymlinkIsNotFollowed) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"));
  ASSERT_TRUE(dir.Init().ok());
  ASSERT_EQ(mkdir(tmp.Sub("outside").c_str(), 0755), 0);
  Write(tmp.Sub("outside/keep.txt"), "precious");
  ASSERT_EQ(rmdir(dir.work_path().c_str()), 0);
  ASSERT_EQ(symlink(tmp.Sub("outside").c_str(), dir.work_path().c_str()), 0);

  absl::StatusOr<ItemPaths> paths = dir.Prepare("item-1", 1);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_TRUE(IsEmptyRealDirectory(paths->work_dir));
  EXPECT_EQ(*ReadFile(tmp.Sub("outside/keep.txt")), "precious");
}

TEST(WorkDir, PathsAreAbsoluteAndNamedForTheAttempt) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent/"));
  ASSERT_TRUE(dir.Init().ok());
  absl::StatusOr<ItemPaths> paths = dir.Prepare("fix-parser.v2", 3);
  ASSERT_TRUE(paths.ok()) << paths.status();
  EXPECT_EQ(paths->work_dir, tmp.Sub("agent/work"));
  EXPECT_EQ(paths->log_file, tmp.Sub("agent/logs/fix-parser.v2-3.log"));
  EXPECT_EQ(paths->prompt_file, tmp.Sub("agent/prompts/fix-parser.v2-3.txt"));
}

// logs/ keeps the last kept_logs attempts' logs: the oldest one's file is emptied and renamed
// for the next attempt (no inode created per item), a restarted agent counts what it finds,
// and a symbolic link put in a log's place is removed, never followed.
TEST(WorkDir, TheLastKeptLogsStayAndTheOldestFileIsReusedEmpty) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"), /*kept_logs=*/3);
  ASSERT_TRUE(dir.Init().ok());
  ino_t first_inode = 0;
  for (int i = 1; i <= 5; ++i) {
    absl::StatusOr<ItemPaths> p = dir.Prepare("item-" + std::to_string(i), 1);
    ASSERT_TRUE(p.ok()) << p.status();
    struct stat st;
    if (i == 4) {
      // item-1's file, emptied.
      ASSERT_EQ(stat(p->log_file.c_str(), &st), 0);
      EXPECT_EQ(st.st_ino, first_inode);
      EXPECT_EQ(st.st_size, 0);
    } else if (i < 4) {
      EXPECT_FALSE(PathExists(p->log_file));  // the runner creates it
    }
    Write(p->log_file, "log " + std::to_string(i));
    ASSERT_EQ(stat(p->log_file.c_str(), &st), 0);
    if (i == 1) first_inode = st.st_ino;
  }
  EXPECT_THAT(testing::ListNames(tmp.Sub("agent/logs")),
              ::testing::UnorderedElementsAre("item-3-1.log", "item-4-1.log", "item-5-1.log"));
  EXPECT_EQ(*ReadFile(tmp.Sub("agent/logs/item-5-1.log")), "log 5");

  // A later run of the agent: the oldest on disk (item-3) goes first. A symbolic link put in
  // item-4's place is removed when its turn comes; what it points to is untouched.
  const std::string target = tmp.Sub("precious");
  Write(target, "keep me");
  ASSERT_EQ(unlink(tmp.Sub("agent/logs/item-4-1.log").c_str()), 0);
  ASSERT_EQ(symlink(target.c_str(), tmp.Sub("agent/logs/item-4-1.log").c_str()), 0);
  WorkDir again(tmp.Sub("agent"), /*kept_logs=*/3);
  ASSERT_TRUE(again.Init().ok());
  ASSERT_TRUE(again.Prepare("item-6", 1).ok());
  EXPECT_THAT(testing::ListNames(tmp.Sub("agent/logs")),
              ::testing::UnorderedElementsAre("item-4-1.log", "item-5-1.log", "item-6-1.log"));
  for (int i = 7; i <= 8; ++i) {
    const std::string name = "item-" + std::to_string(i);
    ASSERT_TRUE(again.Prepare(name, 1).ok());
    Write(tmp.Sub("agent/logs/" + name + "-1.log"), "log " + std::to_string(i));
  }
  EXPECT_EQ(*ReadFile(target), "keep me");
  EXPECT_THAT(testing::ListNames(tmp.Sub("agent/logs")),
              ::testing::UnorderedElementsAre("item-6-1.log", "item-7-1.log", "item-8-1.log"));
}

TEST(WorkDir, LogsAreKeptButOldPromptsAreRemoved) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"));
  ASSERT_TRUE(dir.Init().ok());
  absl::StatusOr<ItemPaths> first = dir.Prepare("item-1", 1);
  ASSERT_TRUE(first.ok());
  Write(first->log_file, "log of item-1");
  Write(first->prompt_file, "prompt of item-1");
  ASSERT_TRUE(dir.Prepare("item-2", 1).ok());
  EXPECT_EQ(*ReadFile(first->log_file), "log of item-1");
  EXPECT_FALSE(PathExists(first->prompt_file));
}

TEST(WorkDir, ThePreviousPromptFileIsRenamedForTheNextAttemptAndNothingElseIsKept) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"));
  ASSERT_TRUE(dir.Init().ok());
  absl::StatusOr<ItemPaths> first = dir.Prepare("item-1", 1);
  ASSERT_TRUE(first.ok());
  Write(first->prompt_file, "prompt of item-1");
  struct stat before, after;
  ASSERT_EQ(stat(first->prompt_file.c_str(), &before), 0);
  absl::StatusOr<ItemPaths> second = dir.Prepare("item-2", 1);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(testing::ListNames(dir.prompts_path()), std::vector<std::string>{"item-2-1.txt"});
  ASSERT_EQ(stat(second->prompt_file.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the inode is reused";

  // Two files: neither is kept.
  Write(dir.prompts_path() + "/other.txt", "x");
  ASSERT_TRUE(dir.Prepare("item-3", 1).ok());
  EXPECT_EQ(testing::ListNames(dir.prompts_path()), std::vector<std::string>{});

  // A hard link to a file elsewhere, a symbolic link, a folder: removed, what they name kept.
  Write(tmp.Sub("outside"), "precious");
  ASSERT_EQ(link(tmp.Sub("outside").c_str(), (dir.prompts_path() + "/item-3-1.txt").c_str()), 0);
  ASSERT_TRUE(dir.Prepare("item-4", 1).ok());
  EXPECT_EQ(testing::ListNames(dir.prompts_path()), std::vector<std::string>{});
  ASSERT_EQ(symlink(tmp.Sub("outside").c_str(), (dir.prompts_path() + "/s.txt").c_str()), 0);
  ASSERT_TRUE(dir.Prepare("item-5", 1).ok());
  EXPECT_EQ(testing::ListNames(dir.prompts_path()), std::vector<std::string>{});
  ASSERT_EQ(mkdir((dir.prompts_path() + "/d").c_str(), 0755), 0);
  ASSERT_TRUE(dir.Prepare("item-6", 1).ok());
  EXPECT_EQ(testing::ListNames(dir.prompts_path()), std::vector<std::string>{});
  EXPECT_EQ(*ReadFile(tmp.Sub("outside")), "precious");
}

TEST(WorkDir, InvalidItemIdsNameNoFile) {
  TempDir tmp;
  WorkDir dir(tmp.Sub("agent"));
  ASSERT_TRUE(dir.Init().ok());
  Write(dir.work_path() + "/leftover", "x");
  for (const char* id : {"../x", "a/b", "", ".hidden", "x..y", "x.lock", "-rf"}) {
    absl::StatusOr<ItemPaths> paths = dir.Prepare(id, 1);
    ASSERT_FALSE(paths.ok()) << id;
    EXPECT_TRUE(absl::IsInvalidArgument(paths.status())) << paths.status();
    EXPECT_THAT(paths.status().message(), HasSubstr("item id")) << id;
  }
  // Refused before anything was touched.
  EXPECT_TRUE(PathExists(dir.work_path() + "/leftover"));
  EXPECT_FALSE(PathExists(tmp.Sub("x-1.log")));
}

}  // namespace
}  // namespace harness::agentd
