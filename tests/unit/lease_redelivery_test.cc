// agentd's side of a lease sent twice. The controller gives an agent that asks for work while it
// holds a lease that same lease again (the answer that granted it may have been lost), so a want
// that crosses the lease's report can bring the lease back after the agent finished it. The
// chaos soak saw one such lease run its command twice. A lease the agent finished is not run
// again, and the agent asks for work anew. Exercised on GrpcControllerClient's message handlers
// directly (no stream: the client is never started).
#include <memory>

#include "agentd/grpc_controller_client.h"
#include "gtest/gtest.h"

namespace harness::agentd {

class GrpcControllerClientPeer {
 public:
  explicit GrpcControllerClientPeer(GrpcControllerClient* c) : c_(c) {}
  void OnLease(const v1::Lease& lease) { c_->OnLease(lease); }
  bool WantsWorkOnStream(uint64_t seq) {
    absl::MutexLock l(&c_->mu_);
    return c_->want_ && c_->want_sent_on_ != seq;
  }
  void MarkSentOn(uint64_t seq) {
    absl::MutexLock l(&c_->mu_);
    c_->TakeUnsentLocked(seq);
  }

 private:
  GrpcControllerClient* c_;
};

namespace {

v1::Lease MakeLease(const std::string& item, uint64_t token) {
  v1::Lease lease;
  lease.set_item_id(item);
  lease.set_lease_token(token);
  lease.set_attempt(1);
  return lease;
}

v1::LeaseRef Ref(const v1::Lease& lease) {
  v1::LeaseRef ref;
  ref.set_item_id(lease.item_id());
  ref.set_lease_token(lease.lease_token());
  return ref;
}

class LeaseRedelivery : public ::testing::Test {
 protected:
  LeaseRedelivery() {
    ControllerClientOptions options;
    options.address = "127.0.0.1:1";  // never dialled: the client is not started
    options.agent_id = "agent-1";
    client_ = std::make_unique<GrpcControllerClient>(options);
  }
  std::unique_ptr<GrpcControllerClient> client_;
};

TEST_F(LeaseRedelivery, ALeaseSentAgainWhileHeldIsOneLease) {
  GrpcControllerClientPeer peer(client_.get());
  const v1::Lease lease = MakeLease("a", 7);
  peer.OnLease(lease);
  peer.OnLease(lease);
  absl::StatusOr<std::optional<v1::Lease>> first = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->lease_token(), 7u);
  absl::StatusOr<std::optional<v1::Lease>> second = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->has_value()) << "the same lease was handed out twice";
  EXPECT_TRUE(client_->Holds(Ref(lease)));
}

TEST_F(LeaseRedelivery, ALeaseSentAgainAfterItWasFinishedIsNotRunAgainAndWorkIsAskedAnew) {
  GrpcControllerClientPeer peer(client_.get());
  const v1::Lease lease = MakeLease("a", 7);
  peer.OnLease(lease);
  absl::StatusOr<std::optional<v1::Lease>> taken = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(taken.ok() && taken->has_value());
  client_->ForgetLease(Ref(lease));  // finished and reported

  // The agent asks for its next item (the want goes out on stream 1); the old lease comes back.
  absl::StatusOr<std::optional<v1::Lease>> next = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(next.ok());
  ASSERT_FALSE(next->has_value());
  peer.MarkSentOn(1);
  EXPECT_FALSE(peer.WantsWorkOnStream(1));
  peer.OnLease(lease);

  absl::StatusOr<std::optional<v1::Lease>> again = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "a finished lease was handed out to run again";
  EXPECT_FALSE(client_->Holds(Ref(lease)));
  EXPECT_TRUE(peer.WantsWorkOnStream(1)) << "the agent stopped asking for work";

  // A new lease still runs.
  peer.OnLease(MakeLease("b", 8));
  absl::StatusOr<std::optional<v1::Lease>> b = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((*b)->item_id(), "b");
}

}  // namespace
}  // namespace harness::agentd
