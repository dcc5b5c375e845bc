// The input limits through real gRPC and a real controller (docs/SECURITY.md, "Limits"): a
// message over limits.max_message_mb, a submit over limits.max_items_per_submit or
// limits.max_queued_items, agent sessions over limits.max_sessions_per_peer, and harnessctl
// submit --file over them. Each breach gets its code and a message naming the limit, stores
// nothing, and the next normal call works.
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

using ::testing::HasSubstr;

using SessionStream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>;

class InputLimitsTest : public ::testing::Test {
 protected:
  // Starts a controller with `limits` ("key: value" lines under harness.limits).
  void StartController(const std::vector<std::string>& limits) {
    config_.state_dir = tmp_.Sub("state");
    if (limits.empty()) {
      controller_ = ControllerProcess::Start(config_, tmp_.path());
      ASSERT_NE(controller_, nullptr);
      return;
    }
    config_.extra_yaml = "  limits:\n";
    for (const std::string& l : limits) absl::StrAppend(&config_.extra_yaml, "    ", l, "\n");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  grpc::Status CallSubmit(const std::vector<v1::ItemSpec>& items) {
    v1::SubmitRequest req;
    for (const v1::ItemSpec& i : items) *req.add_items() = i;
    v1::SubmitResponse resp;
    return controller_->control().Submit(Ctx().get(), req, &resp);
  }
  std::vector<v1::ItemSpec> Items(const std::string& prefix, int n, size_t prompt_bytes = 16) {
    std::vector<v1::ItemSpec> items;
    for (int i = 0; i < n; ++i) {
      items.push_back(MakeItem(absl::StrCat(prefix, i), std::string(prompt_bytes, 'p')));
    }
    return items;
  }
  int64_t Total() { return GetStatus(controller_->control()).queue().total(); }
  // The next normal call works: one item is submitted and read back.
  void NextSubmitWorks(const std::string& id) {
    EXPECT_THAT(Submit(controller_->control(), {MakeItem(id, "do it")}), ::testing::ElementsAre(id));
    EXPECT_EQ(GetItem(controller_->control(), id).id(), id);
  }
  int Ctl(std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {HarnessctlBin(), "--controller", controller_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    int status = RunCommand(argv, out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // A registered agent's Session stream after Hello and one answered Heartbeat; nullptr (and
  // the stream's status in *refused) if the controller ended it instead.
  struct Session {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<SessionStream> stream;
  };
  Session OpenSession(const std::string& agent, grpc::Status* refused) {
    v1::RegisterRequest reg;
    reg.set_agent_id(agent);
    reg.set_pid(1);
    reg.set_host("test");
    v1::RegisterResponse registered;
    grpc::Status st = controller_->agent().Register(Ctx().get(), reg, &registered);
    EXPECT_TRUE(st.ok()) << st.error_message();
    Session s;
    s.ctx = Ctx(absl::Seconds(60));
    s.stream = controller_->agent().Session(s.ctx.get());
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_id(agent);
    hello.mutable_hello()->set_session_id(registered.session_id());
    v1::AgentMessage hb;
    hb.mutable_heartbeat()->set_seq(1);
    hb.mutable_heartbeat()->set_state(v1::AGENT_STATE_IDLE);
    s.stream->Write(hello);
    s.stream->Write(hb);
    v1::ControllerMessage m;
    while (s.stream->Read(&m)) {
      if (m.has_heartbeat_ack()) return s;
    }
    *refused = s.stream->Finish();
    s.stream.reset();
    return s;
  }
  static void CloseSession(Session& s) {
    s.stream->WritesDone();
    v1::ControllerMessage m;
    while (s.stream->Read(&m)) {
    }
    EXPECT_TRUE(s.stream->Finish().ok());
  }

  // Registers `agent`, submits item `id` and leases it to the agent.
  v1::Lease LeaseOne(const std::string& agent, const std::string& id) {
    v1::RegisterRequest reg;
    reg.set_agent_id(agent);
    reg.set_pid(1);
    reg.set_host("test");
    v1::RegisterResponse registered;
    EXPECT_TRUE(controller_->agent().Register(Ctx().get(), reg, &registered).ok());
    Submit(controller_->control(), {MakeItem(id, "do it")});
    v1::AcquireRequest req;
    req.set_agent_id(agent);
    req.set_session_id(registered.session_id());
    v1::AcquireResponse resp;
    grpc::Status st = controller_->agent().Acquire(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.has_lease());
    return resp.lease();
  }
  // An upload of the lease's result: the header (pack_size as given), then `chunks`.
  grpc::Status Upload(const std::string& agent, const v1::Lease& lease, int64_t pack_size,
                      const std::vector<std::string>& chunks) {
    v1::UploadResultResponse resp;
    auto ctx = Ctx();
    std::unique_ptr<grpc::ClientWriter<v1::UploadResultRequest>> w =
        controller_->agent().UploadResult(ctx.get(), &resp);
    v1::UploadResultRequest header;
    v1::UploadHeader* h = header.mutable_header();
    h->set_agent_id(agent);
    h->set_item_id(lease.item_id());
    h->set_lease_token(lease.lease_token());
    h->set_attempt(lease.attempt());
    h->set_commit(std::string(40, 'a'));
    h->set_base_commit(lease.base_commit());
    h->set_pack_size(pack_size);
    bool open = w->Write(header);
    for (const std::string& c : chunks) {
      if (!open) break;
      v1::UploadResultRequest data;
      data.set_pack_data(c);
      open = w->Write(data);
    }
    w->WritesDone();
    return w->Finish();
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(InputLimitsTest, AMessageOverMaxMessageMbIsResourceExhaustedAndTheNextCallWorks) {
  StartController({"max_message_mb: 1"});
  // 20 prompts of 100,000 bytes: each within queue.max_prompt_bytes, 2 MB together.
  grpc::Status st = CallSubmit(Items("big-", 20, 100000));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  // gRPC's own words, with the size and the limit (1 MiB).
  EXPECT_THAT(st.error_message(), HasSubstr("larger than max"));
  EXPECT_THAT(st.error_message(), HasSubstr("1048576"));
  EXPECT_EQ(Total(), 0);
  // Just under the limit is taken.
  ASSERT_TRUE(CallSubmit(Items("fits-", 9, 100000)).ok());
  EXPECT_EQ(Total(), 9);
  NextSubmitWorks("next");
}

TEST_F(InputLimitsTest, ASubmitOverMaxItemsPerSubmitIsInvalidArgumentAndStoresNothing) {
  StartController({"max_items_per_submit: 5"});
  grpc::Status st = CallSubmit(Items("i-", 6));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(),
            "a submit of 6 items is over limits.max_items_per_submit (5); submit them in smaller "
            "parts");
  EXPECT_EQ(Total(), 0);
  ASSERT_TRUE(CallSubmit(Items("i-", 5)).ok());
  NextSubmitWorks("next");
}

TEST_F(InputLimitsTest, AFullQueueIsResourceExhaustedUntilAnItemEnds) {
  StartController({"max_queued_items: 3"});
  ASSERT_TRUE(CallSubmit(Items("q-", 3)).ok());
  grpc::Status st = CallSubmit(Items("more-", 1));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(),
            "the queue holds 3 items not yet ended; 1 more would be over "
            "limits.max_queued_items (3)");
  EXPECT_EQ(Total(), 3);
  // Reads still work, and an ended item frees its place.
  v1::CancelRequest cancel;
  cancel.set_id("q-0");
  v1::CancelResponse cancelled;
  ASSERT_TRUE(controller_->control().Cancel(Ctx().get(), cancel, &cancelled).ok());
  NextSubmitWorks("next");
}

TEST_F(InputLimitsTest, SessionsOverThePeerLimitAreRefusedAndAClosedOneFreesItsPlace) {
  StartController({"max_sessions_per_peer: 2"});
  grpc::Status refused;
  Session a = OpenSession("agent-a", &refused);
  ASSERT_NE(a.stream, nullptr) << refused.error_message();
  Session b = OpenSession("agent-b", &refused);
  ASSERT_NE(b.stream, nullptr) << refused.error_message();

  Session c = OpenSession("agent-c", &refused);
  ASSERT_EQ(c.stream, nullptr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "peer ipv4:127.0.0.1 has 2 agent sessions open, at limits.max_sessions_per_peer (2)");
  // A peer that keeps trying is refused each time and logged once.
  Session d = OpenSession("agent-d", &refused);
  ASSERT_EQ(d.stream, nullptr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto logged = [&] {
    absl::StatusOr<std::string> log = ReadFile(controller_->log_file());
    int n = 0;
    for (size_t p = 0; log.ok() && (p = log->find("agent session refused", p)) != std::string::npos;
         ++p) {
      ++n;
    }
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return logged() >= 1; }, absl::Seconds(10)));
  EXPECT_EQ(logged(), 1);
  // Everyone else is still served: unary calls, and the open sessions.
  NextSubmitWorks("while-full");
  v1::AgentMessage hb;
  hb.mutable_heartbeat()->set_seq(2);
  hb.mutable_heartbeat()->set_state(v1::AGENT_STATE_IDLE);
  ASSERT_TRUE(a.stream->Write(hb));
  v1::ControllerMessage m;
  bool acked = false;
  while (!acked && a.stream->Read(&m)) acked = m.has_heartbeat_ack() && m.heartbeat_ack().seq() == 2;
  EXPECT_TRUE(acked);

  // A closed session gives its place back (once the controller has seen it end).
  CloseSession(b);
  Session again;
  EXPECT_TRUE(WaitFor(
      [&] {
        again = OpenSession("agent-c", &refused);
        return again.stream != nullptr;
      },
      absl::Seconds(10)))
      << refused.error_message();
  CloseSession(a);
  if (again.stream) CloseSession(again);
}

TEST_F(InputLimitsTest, APackOverMaxPackMbIsResourceExhaustedAndTheLeaseGoesOn) {
  const std::string repo = tmp_.Sub("repo");
  std::string out;
  ASSERT_EQ(RunCommand({"/usr/bin/git", "init", "-q", "-b", "main", repo}, &out), 0) << out;
  ASSERT_EQ(RunCommand({"/usr/bin/git", "-C", repo, "-c", "user.name=B", "-c", "user.email=b@t",
                        "commit", "-q", "--allow-empty", "-m", "base"},
                       &out),
            0)
      << out;
  config_.repo_path = repo;
  config_.max_pack_mb = 1;
  StartController({});
  v1::Lease lease = LeaseOne("agent-1", "item-1");

  // Said in the header.
  grpc::Status st = Upload("agent-1", lease, int64_t{2} << 20, {});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(),
            "pack of 2,097,152 bytes is over repo.max_pack_mb (1 MiB = 1,048,576 bytes)");
  // Not said: found as the data passes the limit.
  st = Upload("agent-1", lease, 0, {std::string((1 << 20) + 1, 'x')});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(),
            "pack of 1,048,577 bytes is over repo.max_pack_mb (1 MiB = 1,048,576 bytes)");

  // The lease is still the agent's: it completes (without a result commit).
  v1::CompleteRequest complete;
  complete.set_agent_id("agent-1");
  complete.set_item_id(lease.item_id());
  complete.set_lease_token(lease.lease_token());
  complete.set_attempt(lease.attempt());
  v1::CompleteResponse completed;
  st = controller_->agent().Complete(Ctx().get(), complete, &completed);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(GetItem(controller_->control(), "item-1").state(), v1::ITEM_STATE_DONE);
}

TEST_F(InputLimitsTest, OnlyTheEndOfALogUpToMaxLogBytesPerAttemptIsKept) {
  StartController({"max_log_bytes_per_attempt: 10"});
  v1::Lease lease = LeaseOne("agent-1", "item-1");
  v1::CompleteRequest complete;
  complete.set_agent_id("agent-1");
  complete.set_item_id(lease.item_id());
  complete.set_lease_token(lease.lease_token());
  complete.set_attempt(lease.attempt());
  complete.set_log_tail("early lines that are dropped\nlast line\n");
  v1::CompleteResponse completed;
  grpc::Status st = controller_->agent().Complete(Ctx().get(), complete, &completed);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // The tail is written off the RPC's thread: wait for it.
  EXPECT_TRUE(WaitFor([&] { return !GetItem(controller_->control(), "item-1").log_tail().empty(); },
                      absl::Seconds(10)));
  EXPECT_EQ(GetItem(controller_->control(), "item-1").log_tail(), "last line\n");
  NextSubmitWorks("next");
}

TEST_F(InputLimitsTest, HarnessctlSubmitFileSaysWhichLimitTooManyItemsPass) {
  StartController({"max_items_per_submit: 3", "max_message_mb: 1"});
  std::string file = tmp_.Sub("items.yaml");
  {
    std::ofstream f(file);
    for (int i = 0; i < 4; ++i) f << "- {id: f" << i << ", title: t, prompt: p}\n";
  }
  std::string out;
  EXPECT_EQ(Ctl({"submit", "--file", file}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("a submit of 4 items is over limits.max_items_per_submit (3); "
                             "submit them in smaller parts"));
  EXPECT_EQ(Total(), 0);

  // Fewer items that are too large together for one message: the file, the count and the key.
  std::string big = tmp_.Sub("big.yaml");
  {
    std::ofstream f(big);
    for (int i = 0; i < 3; ++i) {
      f << "- {id: b" << i << ", title: t, prompt: " << std::string(500000, 'x') << "}\n";
    }
  }
  EXPECT_EQ(Ctl({"submit", "--file", big}, &out), 1) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("the 3 items of ", big, " make a request of ")));
  EXPECT_THAT(out, HasSubstr("limits.max_message_mb): submit fewer items per file"));
  EXPECT_EQ(Total(), 0);
  NextSubmitWorks("next");
}

}  // namespace
}  // namespace harness::testing
