// The controller as a real process, driven over raw gRPC by a test that plays the agent: bad
// input, long-poll acquire, fencing of stale tokens, leases surviving kill -9, the state dir
// lock, agent health.
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  void Restart() {
    controller_.reset();
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  std::string Register(const std::string& agent, const std::vector<v1::LeaseRef>& held = {},
                       v1::RegisterResponse* out = nullptr) {
    v1::RegisterRequest req;
    req.set_agent_id(agent);
    req.set_pid(1);
    req.set_host("test");
    for (const auto& h : held) *req.add_held_leases() = h;
    v1::RegisterResponse resp;
    grpc::Status st = controller_->agent().Register(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (out) *out = resp;
    return resp.session_id();
  }
  grpc::Status Acquire(const std::string& agent, const std::string& session, int64_t wait_ms,
                       v1::AcquireResponse* resp) {
    v1::AcquireRequest req;
    req.set_agent_id(agent);
    req.set_session_id(session);
    req.set_wait_ms(wait_ms);
    return controller_->agent().Acquire(Ctx(absl::Milliseconds(wait_ms) + absl::Seconds(5)).get(),
                                        req, resp);
  }
  grpc::Status Complete(const std::string& agent, const v1::Lease& lease) {
    v1::CompleteRequest req;
    req.set_agent_id(agent);
    req.set_item_id(lease.item_id());
    req.set_lease_token(lease.lease_token());
    req.set_attempt(lease.attempt());
    req.set_log_tail("all good\n");
    v1::CompleteResponse resp;
    return controller_->agent().Complete(Ctx().get(), req, &resp);
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(ControllerTest, RefusesBadInputWithClearCodesAndKeepsServing) {
  v1::SubmitRequest req;
  *req.add_items() = MakeItem("ok-1", "x");
  *req.add_items() = MakeItem("ok-2", std::string((1 << 20) + 1, 'p'));
  v1::SubmitResponse resp;
  grpc::Status st = controller_->control().Submit(Ctx().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("prompt"), std::string::npos) << st.error_message();
  v1::Item item;
  EXPECT_EQ(CallGet(controller_->control(), "ok-1", &item).error_code(),
            grpc::StatusCode::NOT_FOUND)
      << "a refused batch must change nothing";

  for (std::string bad : {"../x", "a..b", "x.lock", "-x", "a/b"}) {
    v1::SubmitRequest r;
    *r.add_items() = MakeItem(bad, "x");
    st = controller_->control().Submit(Ctx().get(), r, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(st.error_message().find("id"), std::string::npos) << st.error_message();
  }
  Submit(controller_->control(), {MakeItem("dup", "x")});
  v1::SubmitRequest dup;
  *dup.add_items() = MakeItem("dup", "x");
  EXPECT_EQ(controller_->control().Submit(Ctx().get(), dup, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  EXPECT_EQ(CallGet(controller_->control(), "nope", &item).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CallGet(controller_->control(), "../etc", &item).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::RegisterRequest reg;
  reg.set_agent_id("bad agent");
  v1::RegisterResponse reg_resp;
  EXPECT_EQ(controller_->agent().Register(Ctx().get(), reg, &reg_resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  std::string session = Register("a1");
  v1::AcquireResponse acq;
  ASSERT_TRUE(Acquire("a1", session, 1000, &acq).ok());
  ASSERT_EQ(acq.lease().item_id(), "dup");
  v1::Lease wrong = acq.lease();
  wrong.set_lease_token(acq.lease().lease_token() + 1000);
  st = Complete("a1", wrong);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("no longer valid"), std::string::npos) << st.error_message();
  v1::Lease unknown = acq.lease();
  unknown.set_item_id("missing");
  EXPECT_EQ(Complete("a1", unknown).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Acquire("a1", "not-my-session", 10, &acq).error_code(), grpc::StatusCode::NOT_FOUND);

  // Still serving, and the good lease still completes.
  EXPECT_TRUE(Complete("a1", acq.lease()).ok());
  EXPECT_EQ(GetItem(controller_->control(), "dup").state(), v1::ITEM_STATE_DONE);
  EXPECT_EQ(GetStatus(controller_->control()).queue().done(), 1);
}

TEST_F(ControllerTest, LongPollAcquireReceivesAnItemSubmittedWhileWaiting) {
  std::string session = Register("a1");
  v1::AcquireResponse acq;
  grpc::Status st;
  std::thread waiter([&] { st = Acquire("a1", session, 20000, &acq); });
  ASSERT_TRUE(WaitFor([&] { return GetStatus(controller_->control()).agents_size() == 1; },
                      absl::Seconds(5)));
  absl::SleepFor(absl::Milliseconds(200));  // the acquire is parked by now
  Submit(controller_->control(), {MakeItem("late", "x")});
  waiter.join();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(acq.lease().item_id(), "late");
  EXPECT_GT(acq.lease().lease_token(), 0u);
  EXPECT_EQ(acq.lease().item().prompt(), "x");
  EXPECT_FALSE(acq.lease().command().empty()) << "the lease carries the configured command";
}

TEST_F(ControllerTest, AnEmptyLongPollEndsWithNoLeaseBeforeItsDeadline) {
  std::string session = Register("a1");
  v1::AcquireResponse acq;
  ASSERT_TRUE(Acquire("a1", session, 300, &acq).ok());
  EXPECT_FALSE(acq.has_lease());
}

TEST_F(ControllerTest, AStaleTokenIsFencedAfterItsLeaseExpired) {
  Submit(controller_->control(), {MakeItem("fenced", "x")});
  std::string s1 = Register("a1");
  v1::AcquireResponse first;
  ASSERT_TRUE(Acquire("a1", s1, 1000, &first).ok());
  ASSERT_EQ(first.lease().item_id(), "fenced");
  // a1 sends no heartbeat: its lease expires after the TTL and the item is requeued.
  std::string s2 = Register("a2");
  v1::AcquireResponse second;
  ASSERT_TRUE(Acquire("a2", s2, 10000, &second).ok());
  ASSERT_EQ(second.lease().item_id(), "fenced");
  EXPECT_GT(second.lease().lease_token(), first.lease().lease_token());
  grpc::Status late = Complete("a1", first.lease());
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << late.error_message();
  ASSERT_TRUE(Complete("a2", second.lease()).ok());
  v1::Item item = GetItem(controller_->control(), "fenced");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE);
  ASSERT_EQ(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
  EXPECT_EQ(item.attempts(1).outcome(), v1::ATTEMPT_OUTCOME_DONE);
  EXPECT_EQ(item.attempts(1).agent(), "a2");
  EXPECT_EQ(item.log_tail(), "all good\n");
}

TEST_F(ControllerTest, ALeaseSurvivesKill9OfTheControllerAndItsAgentFinishesIt) {
  Submit(controller_->control(), {MakeItem("survivor", "x"), MakeItem("other", "y")});
  std::string s1 = Register("a1");
  v1::AcquireResponse acq;
  ASSERT_TRUE(Acquire("a1", s1, 1000, &acq).ok());
  ASSERT_EQ(acq.lease().item_id(), "survivor");
  controller_->Signal(SIGKILL);
  controller_->Wait();
  Restart();
  v1::LeaseRef held;
  held.set_item_id(acq.lease().item_id());
  held.set_lease_token(acq.lease().lease_token());
  v1::RegisterResponse reg;
  std::string s2 = Register("a1", {held}, &reg);
  ASSERT_EQ(reg.leases_size(), 1) << "the controller honours the lease it rebuilt from disk";
  EXPECT_EQ(reg.leases(0).lease_token(), acq.lease().lease_token());
  ASSERT_TRUE(Complete("a1", acq.lease()).ok());
  EXPECT_EQ(GetItem(controller_->control(), "survivor").state(), v1::ITEM_STATE_DONE);
  // A new grant takes a higher token than any before the crash.
  v1::AcquireResponse next;
  ASSERT_TRUE(Acquire("a1", s2, 1000, &next).ok());
  EXPECT_EQ(next.lease().item_id(), "other");
  EXPECT_GT(next.lease().lease_token(), acq.lease().lease_token());
}

TEST_F(ControllerTest, ALeaseNobodyClaimsAfterARestartIsRequeuedAfterOneTtl) {
  Submit(controller_->control(), {MakeItem("orphan", "x")});
  std::string s1 = Register("a1");
  v1::AcquireResponse acq;
  ASSERT_TRUE(Acquire("a1", s1, 1000, &acq).ok());
  controller_->Signal(SIGKILL);
  controller_->Wait();
  Restart();
  EXPECT_EQ(GetItem(controller_->control(), "orphan").state(), v1::ITEM_STATE_LEASED);
  ASSERT_TRUE(WaitFor(
      [&] { return GetItem(controller_->control(), "orphan").state() == v1::ITEM_STATE_PENDING; },
      absl::Seconds(10)));
  v1::Item item = GetItem(controller_->control(), "orphan");
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);
}

TEST_F(ControllerTest, ASecondControllerOnTheSameStateDirRefusesToStart) {
  std::string out;
  int status = RunCommand(
      {ControllerBin(), "--listen", "127.0.0.1:0", "--state-dir", config_.state_dir}, &out);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(out.find("in use"), std::string::npos) << out;
  EXPECT_EQ(GetStatus(controller_->control()).queue().total(), 0) << "the first one still serves";
}

TEST_F(ControllerTest, BadAuthAndTlsSettingsStopTheControllerNamingTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"  auth:\n    token: s3cret\n", "unknown key \"token\" in harness.auth"},
      {"  tls:\n    cert: server.pem\n", "harness.tls.cert (\"server.pem\") and harness.tls.key"},
      {"  tls:\n    cert: /nonexistent/server.pem\n    key: /nonexistent/server.key\n",
       "harness.tls.cert: cannot read /nonexistent/server.pem"},
      {"  auth:\n    admin_token_file: /nonexistent/admin\n",
       "harness.auth.admin_token_file: cannot read token file /nonexistent/admin"},
  };
  for (const auto& [yaml, message] : cases) {
    std::string cfg = config_.state_dir + "-refused.yaml";
    std::ofstream(cfg) << "harness:\n  listen: 127.0.0.1:0\n  state_dir: " << config_.state_dir
                       << "-refused\n" << yaml;
    std::string out;
    int status = RunCommand({ControllerBin(), "--config", cfg}, &out);
    ASSERT_TRUE(WIFEXITED(status)) << yaml;
    EXPECT_EQ(WEXITSTATUS(status), 2) << yaml << out;
    EXPECT_NE(out.find(message), std::string::npos) << out;
  }
}

TEST_F(ControllerTest, AnAgentWhoseStreamBreaksIsSuspectThenDead) {
  std::string session = Register("a1");
  {
    grpc::ClientContext ctx;
    auto stream = controller_->agent().Session(&ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_agent_id("a1");
    hello.mutable_hello()->set_session_id(session);
    ASSERT_TRUE(stream->Write(hello));
    v1::AgentMessage hb;
    hb.mutable_heartbeat()->set_seq(1);
    hb.mutable_heartbeat()->set_state(v1::AGENT_STATE_IDLE);
    ASSERT_TRUE(stream->Write(hb));
    v1::ControllerMessage ack;
    ASSERT_TRUE(stream->Read(&ack));
    EXPECT_EQ(ack.heartbeat_ack().seq(), 1u);
    v1::StatusSnapshot s = GetStatus(controller_->control());
    ASSERT_EQ(s.agents_size(), 1);
    EXPECT_EQ(s.agents(0).health(), v1::HEALTH_HEALTHY);
    EXPECT_EQ(s.agents(0).state(), v1::AGENT_STATE_IDLE);
    stream->WritesDone();
    ctx.TryCancel();
  }
  ASSERT_TRUE(WaitFor(
      [&] { return GetStatus(controller_->control()).agents(0).health() == v1::HEALTH_SUSPECT; },
      absl::Seconds(5)));
  ASSERT_TRUE(WaitFor(
      [&] { return GetStatus(controller_->control()).agents(0).health() == v1::HEALTH_DEAD; },
      absl::Seconds(10)));
}

TEST_F(ControllerTest, CancelRetryAndPriorityOrderOverTheApi) {
  Submit(controller_->control(),
         {MakeItem("low", "x", 0), MakeItem("high", "x", 5), MakeItem("low2", "x", 0)});
  std::string s = Register("a1");
  v1::AcquireResponse acq;
  ASSERT_TRUE(Acquire("a1", s, 1000, &acq).ok());
  EXPECT_EQ(acq.lease().item_id(), "high");
  v1::CancelRequest cancel;
  cancel.set_id("low");
  v1::CancelResponse cancel_resp;
  ASSERT_TRUE(controller_->control().Cancel(Ctx().get(), cancel, &cancel_resp).ok());
  EXPECT_EQ(cancel_resp.previous_state(), v1::ITEM_STATE_PENDING);
  ASSERT_TRUE(controller_->control().Cancel(Ctx().get(), cancel, &cancel_resp).ok())
      << "cancelling twice changes nothing";
  EXPECT_EQ(cancel_resp.previous_state(), v1::ITEM_STATE_CANCELLED);
  v1::CancelRequest cancel_done;
  cancel_done.set_id("high");  // leased: cancellable; then done items are not
  ASSERT_TRUE(Complete("a1", acq.lease()).ok());
  EXPECT_EQ(controller_->control().Cancel(Ctx().get(), cancel_done, &cancel_resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::AcquireResponse acq2;
  ASSERT_TRUE(Acquire("a1", s, 1000, &acq2).ok());
  EXPECT_EQ(acq2.lease().item_id(), "low2");
  v1::FailRequest fail;
  fail.set_agent_id("a1");
  fail.set_item_id("low2");
  fail.set_lease_token(acq2.lease().lease_token());
  fail.set_outcome(v1::ATTEMPT_OUTCOME_FAILED);
  fail.set_error("broken");
  fail.set_retryable(false);
  v1::FailResponse fail_resp;
  ASSERT_TRUE(controller_->agent().Fail(Ctx().get(), fail, &fail_resp).ok());
  EXPECT_EQ(fail_resp.item_state(), v1::ITEM_STATE_FAILED);
  v1::RetryRequest retry;
  retry.set_id("low2");
  v1::RetryResponse retry_resp;
  ASSERT_TRUE(controller_->control().Retry(Ctx().get(), retry, &retry_resp).ok());
  EXPECT_EQ(retry_resp.previous_state(), v1::ITEM_STATE_FAILED);
  EXPECT_EQ(GetItem(controller_->control(), "low2").state(), v1::ITEM_STATE_PENDING);
}

// grpc.health.v1.Health/Check over a generic stub (no generated health stubs needed): the
// request is HealthCheckRequest{service}, the answer HealthCheckResponse{status: SERVING = 1}.
TEST_F(ControllerTest, ServesTheStandardGrpcHealthService) {
  auto channel = grpc::CreateChannel(controller_->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  for (std::string service : {"", "harness.v1.AgentService", "harness.v1.ControlService"}) {
    std::string req = std::string("\x0a") + static_cast<char>(service.size()) + service;
    grpc::Slice slice(req);
    grpc::ByteBuffer request(&slice, 1), response;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = s;
                     done.Notify();
                   });
    done.WaitForNotification();
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(response.Dump(&slices).ok());
    std::string body;
    for (const grpc::Slice& sl : slices) body.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    EXPECT_EQ(body, std::string("\x08\x01", 2)) << "SERVING for \"" << service << "\"";
  }
}

}  // namespace
}  // namespace harness::testing
