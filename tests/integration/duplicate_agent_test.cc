// The duplicate agent id rule (docs/SECURITY.md, agent.proto's Register) against a real
// controller: a second Register under an id that already has a session wins; the old session
// is fenced off (its calls get NOT_FOUND, its report for the lease it held is refused), the
// lease the newcomer does not list ends at once, and the item runs again: nothing is lost.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/temp_dir.h"

namespace harness::testing {
namespace {

class DuplicateAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state_dir = tmp_.Sub("state");
    config_.lease_ttl = 30;  // a lease that ends sooner is the newcomer's Register's doing
    controller_ = ControllerProcess::Start(config_, tmp_.path());
    ASSERT_NE(controller_, nullptr);
  }
  std::string Register(int pid) {
    v1::RegisterRequest req;
    req.set_agent_id("dup");
    req.set_pid(pid);
    req.set_host("host-" + std::to_string(pid));
    v1::RegisterResponse resp;
    grpc::Status st = controller_->agent().Register(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.session_id();
  }
  grpc::Status Acquire(const std::string& session, v1::AcquireResponse* resp) {
    v1::AcquireRequest req;
    req.set_agent_id("dup");
    req.set_session_id(session);
    req.set_wait_ms(5000);
    return controller_->agent().Acquire(Ctx().get(), req, resp);
  }
  grpc::Status Complete(const v1::Lease& lease) {
    v1::CompleteRequest req;
    req.set_agent_id("dup");
    req.set_item_id(lease.item_id());
    req.set_lease_token(lease.lease_token());
    req.set_attempt(lease.attempt());
    v1::CompleteResponse resp;
    return controller_->agent().Complete(Ctx().get(), req, &resp);
  }

  TempDir tmp_;
  ControllerConfig config_;
  std::unique_ptr<ControllerProcess> controller_;
};

TEST_F(DuplicateAgent, TheNewcomerWinsAndTheOldSessionIsFencedOffWithNothingLost) {
  Submit(controller_->control(), {MakeItem("only", "p")});
  const std::string old_session = Register(1001);
  v1::AcquireResponse first;
  ASSERT_TRUE(Acquire(old_session, &first).ok());
  ASSERT_TRUE(first.has_lease());
  ASSERT_EQ(first.lease().item_id(), "only");

  // Another process registers under the same id, holding nothing: it gets a new session.
  const std::string new_session = Register(2002);
  ASSERT_NE(new_session, old_session);

  // The old session is fenced off: its calls get NOT_FOUND ...
  v1::AcquireResponse again;
  EXPECT_EQ(Acquire(old_session, &again).error_code(), grpc::StatusCode::NOT_FOUND);
  // ... and its report for the lease it held is refused, because that lease ended at once.
  EXPECT_EQ(Complete(first.lease()).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::Item item = GetItem(controller_->control(), "only");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_PENDING) << item.DebugString();
  ASSERT_EQ(item.attempts_size(), 1);
  EXPECT_EQ(item.attempts(0).outcome(), v1::ATTEMPT_OUTCOME_EXPIRED);

  // Nothing is lost: the newcomer gets the item again, with a higher token, and finishes it.
  v1::AcquireResponse second;
  ASSERT_TRUE(Acquire(new_session, &second).ok());
  ASSERT_TRUE(second.has_lease());
  EXPECT_EQ(second.lease().item_id(), "only");
  EXPECT_GT(second.lease().lease_token(), first.lease().lease_token());
  grpc::Status done = Complete(second.lease());
  ASSERT_TRUE(done.ok()) << done.error_message();
  item = GetItem(controller_->control(), "only");
  EXPECT_EQ(item.state(), v1::ITEM_STATE_DONE);
  ASSERT_EQ(item.attempts_size(), 2);
  EXPECT_EQ(item.attempts(1).outcome(), v1::ATTEMPT_OUTCOME_DONE);
  // The old session's late report still changes nothing.
  EXPECT_EQ(Complete(first.lease()).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetStatus(controller_->control()).queue().done(), 1);
}

}  // namespace
}  // namespace harness::testing
