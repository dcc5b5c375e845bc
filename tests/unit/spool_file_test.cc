// SpoolFile and ClearSpoolDir: a spooled file has no name in its folder, reads back what was
// appended in chunks, and start-up clears what a crash left in the folder.
#include "core/spool_file.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

int Entries(const std::string& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(SpoolFile, HasNoNameAndReadsBackWhatWasAppendedChunkByChunk) {
  testing::TempDir tmp;
  std::string dir = tmp.Sub("spool");
  ASSERT_TRUE(ClearSpoolDir(dir).ok());
  absl::StatusOr<std::unique_ptr<SpoolFile>> f = SpoolFile::Create(dir);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Entries(dir), 0);
  std::string data;
  for (int i = 0; i < 5000; ++i) data += std::to_string(i) + ",";
  ASSERT_TRUE((*f)->Append(data.substr(0, 1000)).ok());
  ASSERT_TRUE((*f)->Append(data.substr(1000)).ok());
  EXPECT_EQ((*f)->size(), data.size());
  std::string back;
  for (uint64_t off = 0; off < data.size(); off += 4096) {
    absl::StatusOr<std::string> chunk = (*f)->ReadAt(off, 4096);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    EXPECT_LE(chunk->size(), 4096u);
    back += *chunk;
  }
  EXPECT_EQ(back, data);
  absl::StatusOr<std::string> past = (*f)->ReadAt(data.size(), 10);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->empty());
}

TEST(SpoolFile, CreateInAMissingFolderNamesIt) {
  testing::TempDir tmp;
  absl::StatusOr<std::unique_ptr<SpoolFile>> f = SpoolFile::Create(tmp.Sub("nope"));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find(tmp.Sub("nope")), std::string::npos) << f.status();
}

TEST(SpoolFile, ClearingTheFolderAtStartUpRemovesLeftoversAndCreatesItIfMissing) {
  testing::TempDir tmp;
  std::string dir = tmp.Sub("state/spool");
  absl::StatusOr<int> made = ClearSpoolDir(dir);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, 0);
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  std::ofstream(dir + "/spool-abc123") << "a pack a crash left";
  std::filesystem::create_directories(dir + "/odd");
  absl::StatusOr<int> cleared = ClearSpoolDir(dir);
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(*cleared, 2);
  EXPECT_EQ(Entries(dir), 0);
}

}  // namespace
}  // namespace harness
