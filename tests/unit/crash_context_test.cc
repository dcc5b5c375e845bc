// Crash context folders: whole or absent, suffixed when the name is taken, pruned to `keep`.
#include "core/crash_context.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

CrashContext Context(const std::string& reason) {
  CrashContext c;
  c.agent = "agent-1";
  c.reason = reason;
  c.status = "state idle";
  c.item = "item a token 3 attempt 1";
  c.log_tail = "last line";
  return c;
}

const absl::Time kAt = absl::FromUnixSeconds(1800000000);

TEST(CrashContextTest, TheFolderHoldsEveryFileAndNothingHiddenIsLeft) {
  testing::TempDir tmp;
  absl::StatusOr<std::string> dir = WriteCrashContext(tmp.path(), Context("killed"), kAt);
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ(*dir, tmp.Sub("agent-1/" + CrashFolderName(kAt)));
  EXPECT_EQ(testing::ListNames(*dir),
            (std::vector<std::string>{"item", "log.tail", "reason", "status"}));
  EXPECT_EQ(*ReadFile(*dir + "/reason"), "killed\n");
  EXPECT_EQ(*ReadFile(*dir + "/item"), "item a token 3 attempt 1\n");
  EXPECT_EQ(testing::ListNames(tmp.Sub("agent-1")), std::vector<std::string>{CrashFolderName(kAt)});
}

TEST(CrashContextTest, ATakenNameGetsASuffixAndTheFirstFolderIsKept) {
  testing::TempDir tmp;
  ASSERT_TRUE(WriteCrashContext(tmp.path(), Context("first"), kAt).ok());
  absl::StatusOr<std::string> second = WriteCrashContext(tmp.path(), Context("second"), kAt);
  ASSERT_TRUE(second.ok()) << second.status();
  const std::string stamp = CrashFolderName(kAt);
  EXPECT_EQ(*second, tmp.Sub("agent-1/" + stamp + "-2"));
  EXPECT_EQ(*ReadFile(tmp.Sub("agent-1/" + stamp + "/reason")), "first\n");
  EXPECT_EQ(*ReadFile(*second + "/reason"), "second\n");
}

TEST(CrashContextTest, AHalfWrittenFolderOfACrashIsRemovedAndNeverCountedOrPruned) {
  testing::TempDir tmp;
  ASSERT_TRUE(MakeDirs(tmp.Sub("agent-1/.partial-abc123")).ok());
  ASSERT_TRUE(WriteFileAtomically(tmp.Sub("agent-1/.partial-abc123/reason"), "half\n").ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WriteCrashContext(tmp.path(), Context("n"), kAt + absl::Seconds(i), 2).ok());
  }
  // Two kept (the newest), the leftover gone.
  EXPECT_EQ(testing::ListNames(tmp.Sub("agent-1")),
            (std::vector<std::string>{CrashFolderName(kAt + absl::Seconds(1)),
                                      CrashFolderName(kAt + absl::Seconds(2))}));
}

TEST(CrashContextTest, ABadAgentIdOrFolderNameIsRefusedAndWritesNothing) {
  testing::TempDir tmp;
  CrashContext c = Context("x");
  c.agent = "../escape";
  EXPECT_EQ(WriteCrashContext(tmp.path(), c, kAt).status().code(),
            absl::StatusCode::kInvalidArgument);
  c = Context("x");
  c.folder = ".hidden";
  EXPECT_EQ(WriteCrashContext(tmp.path(), c, kAt).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(testing::ListNames(tmp.Sub("agent-1")), std::vector<std::string>{});
}

}  // namespace
}  // namespace harness
