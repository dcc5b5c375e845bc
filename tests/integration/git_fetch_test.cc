// FetchBase through the real controller: a base of several 1 MiB chunks arrives whole and
// checks out to the source's tree; an agent that goes away mid-stream leaves no temp file (no
// name in <state>/spool, no descriptor held by the controller); a restart clears what a crash
// left in <state>/spool. The git CLI makes the repository and checks out what arrived.
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/file_util.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

constexpr int kFiles = 48;
constexpr size_t kFileBytes = 128 << 10;  // random bytes do not compress: ~6 MiB of pack

class GitFetch : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_.Sub("repo");
    Git({"init", "-q", "-b", "main", repo_});
    std::mt19937_64 rng(42);
    std::filesystem::create_directories(repo_ + "/data");
    for (int i = 0; i < kFiles; ++i) {
      std::string bytes(kFileBytes, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      std::ofstream(absl::StrCat(repo_, "/data/f", i, ".bin"), std::ios::binary) << bytes;
    }
    std::ofstream(repo_ + "/README.md") << "the base\n";
    Git({"-C", repo_, "add", "-A"});
    Git({"-C", repo_, "-c", "user.name=Base", "-c", "user.email=base@test", "commit", "-q", "-m",
         "base"});
    base_ = Git({"-C", repo_, "rev-parse", "HEAD"});
    config_.state_dir = tmp_.Sub("state");
    config_.repo_path = repo_;
  }
  void StartController() {
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  std::string Git(std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/git");
    std::string out;
    int status = RunCommand(args, &out);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << absl::StrJoin(args, " ") << ": " << out;
    return std::string(absl::StripTrailingAsciiWhitespace(out));
  }
  std::string SpoolDir() const { return config_.state_dir + "/spool"; }
  // Files the controller has open under <state>/spool (named or not: "... (deleted)").
  int SpoolFilesHeld() const {
    int n = 0;
    std::error_code ec;
    std::string proc = absl::StrCat("/proc/", controller_->pid(), "/fd");
    for (const auto& e : std::filesystem::directory_iterator(proc, ec)) {
      std::string target = std::filesystem::read_symlink(e.path(), ec).string();
      if (!ec && target.rfind(SpoolDir() + "/", 0) == 0) ++n;
    }
    return n;
  }
  int SpoolEntries() const {
    int n = 0;
    std::error_code ec;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(SpoolDir(), ec)) ++n;
    return n;
  }

  TempDir tmp_;
  std::string repo_, base_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(GitFetch, ABaseOfSeveralChunksArrivesWholeAndChecksOutToTheSourceTree) {
  StartController();
  v1::FetchBaseRequest req;
  req.set_agent_id("remote");
  auto ctx = Ctx(absl::Seconds(60));
  std::unique_ptr<grpc::ClientReader<v1::FetchBaseResponse>> reader =
      controller_->agent().FetchBase(ctx.get(), req);
  v1::FetchBaseResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  ASSERT_EQ(msg.part_case(), v1::FetchBaseResponse::kHeader);
  v1::FetchBaseHeader header = msg.header();
  EXPECT_EQ(header.base_commit(), base_);
  EXPECT_EQ(header.base_ref(), "refs/heads/main");
  EXPECT_GE(header.object_count(), kFiles + 4);  // blobs, 2 trees, a commit
  std::string pack;
  int chunks = 0;
  while (reader->Read(&msg)) {
    ASSERT_EQ(msg.part_case(), v1::FetchBaseResponse::kPackData);
    EXPECT_LE(msg.pack_data().size(), size_t{1} << 20);
    pack += msg.pack_data();
    ++chunks;
  }
  grpc::Status st = reader->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(static_cast<int64_t>(pack.size()), header.pack_size());
  EXPECT_GE(chunks, 5) << pack.size() << " bytes";

  // Index what arrived in an empty repository and check it out.
  std::string clone = tmp_.Sub("clone");
  Git({"init", "-q", clone});
  std::string pack_file = clone + "/.git/objects/pack/pack-fetched.pack";
  std::ofstream(pack_file, std::ios::binary) << pack;
  Git({"-C", clone, "index-pack", pack_file});
  Git({"-C", clone, "checkout", "-q", "--detach", base_});
  EXPECT_EQ(Git({"-C", clone, "rev-parse", "HEAD^{tree}"}),
            Git({"-C", repo_, "rev-parse", "HEAD^{tree}"}));
  EXPECT_EQ(Git({"-C", clone, "status", "--porcelain"}), "");
  for (int i = 0; i < kFiles; i += 7) {
    std::string name = absl::StrCat("/data/f", i, ".bin");
    EXPECT_EQ(ReadFile(clone + name).value_or("?"), ReadFile(repo_ + name).value_or("!")) << name;
  }
  // Nothing stays behind once the stream is over.
  EXPECT_TRUE(WaitFor([&] { return SpoolFilesHeld() == 0; }, absl::Seconds(10)));
  EXPECT_EQ(SpoolEntries(), 0);
}

TEST_F(GitFetch, AnAgentThatGoesAwayMidStreamLeavesNoTempFileBehind) {
  StartController();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    v1::FetchBaseRequest req;
    req.set_agent_id("remote");
    req.set_want(base_);
    auto ctx = Ctx(absl::Seconds(60));
    std::unique_ptr<grpc::ClientReader<v1::FetchBaseResponse>> reader =
        controller_->agent().FetchBase(ctx.get(), req);
    v1::FetchBaseResponse msg;
    ASSERT_TRUE(reader->Read(&msg));
    ASSERT_EQ(msg.part_case(), v1::FetchBaseResponse::kHeader);
    ASSERT_TRUE(reader->Read(&msg));
    ASSERT_EQ(msg.part_case(), v1::FetchBaseResponse::kPackData);
    // Mid-stream: the pack is in a file without a name, held open by the controller (at most
    // one: under load the server may already have sent it all and closed it; the name is the
    // point, and there never is one).
    EXPECT_LE(SpoolFilesHeld(), 1);
    EXPECT_EQ(SpoolEntries(), 0);
    ctx->TryCancel();
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(WaitFor([&] { return SpoolFilesHeld() == 0; }, absl::Seconds(20)));
    EXPECT_EQ(SpoolEntries(), 0);
  }
  // And the controller still serves a whole pack.
  v1::FetchBaseRequest req;
  req.set_agent_id("remote");
  req.add_haves(base_);
  auto ctx = Ctx(absl::Seconds(60));
  auto reader = controller_->agent().FetchBase(ctx.get(), req);
  v1::FetchBaseResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.header().object_count(), 0);  // it has everything already
  while (reader->Read(&msg)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(GitFetch, AnUnknownWantIsNotFoundAndABadOneInvalid) {
  StartController();
  for (const auto& [want, code] :
       {std::pair<std::string, grpc::StatusCode>{std::string(40, 'a'), grpc::StatusCode::NOT_FOUND},
        {"refs/heads/nope", grpc::StatusCode::NOT_FOUND},
        {"xyz", grpc::StatusCode::INVALID_ARGUMENT}}) {
    v1::FetchBaseRequest req;
    req.set_want(want);
    auto ctx = Ctx();
    auto reader = controller_->agent().FetchBase(ctx.get(), req);
    v1::FetchBaseResponse msg;
    EXPECT_FALSE(reader->Read(&msg)) << want;
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), code) << want << ": " << st.error_message();
  }
  EXPECT_EQ(SpoolEntries(), 0);
}

TEST_F(GitFetch, ARestartClearsWhatACrashLeftInTheSpoolFolder) {
  std::filesystem::create_directories(SpoolDir());
  std::ofstream(SpoolDir() + "/spool-Xy12ab") << "half a pack";
  StartController();
  EXPECT_EQ(SpoolEntries(), 0);
}

}  // namespace
}  // namespace harness::testing
