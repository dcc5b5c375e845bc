// agentd's side of a lease sent twice. The controller gives an agent that asks for work while it
// holds a lease that same lease again (the answer that granted it may have been lost), so a want
// that crosses the lease's report can bring the lease back after the agent finished it. The
// chaos soak saw one such lease run its command twice. A lease the agent finished is not run
// again, and the agent asks for work anew. Exercised on GrpcControllerClient's message handlers
// directly (no stream: the client is never started).
//
// And a LeaseLost for a lease whose report the controller has just accepted: the answer to a
// heartbeat that crossed the report. It reaches the agent as nothing lost.
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  // The messages written on stream `seq`, as the stream's writer takes them.
  std::vector<v1::AgentMessage> MarkSentOn(uint64_t seq) {
    absl::MutexLock l(&c_->mu_);
    return c_->TakeUnsentLocked(seq);
  }
  // As if stream `seq` were open and a message had come back on it.
  void OpenStream(uint64_t seq) {
    absl::MutexLock l(&c_->mu_);
    c_->stream_seq_ = seq;
    c_->stream_running_ = true;
    c_->stream_open_ = true;
  }
  void SetListener(SessionListener* listener) { c_->listener_ = listener; }
  void Dispatch(const v1::ControllerMessage& m) { c_->Dispatch(m); }

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

class LostLeases : public SessionListener {
 public:
  void OnLeaseLost(const v1::LeaseRef& lease, absl::string_view) override {
    lost.push_back(lease.item_id());
  }
  void OnCancelItem(const v1::LeaseRef&, absl::string_view) override {}
  void OnDrain() override {}
  void OnStop(absl::Duration, absl::string_view) override {}
  void OnFatal(const absl::Status&) override {}
  std::vector<std::string> lost;  // read after the dispatching calls returned
};

v1::ControllerMessage LostMessage(const v1::Lease& lease) {
  v1::ControllerMessage m;
  m.mutable_lease_lost()->set_item_id(lease.item_id());
  m.mutable_lease_lost()->set_lease_token(lease.lease_token());
  m.mutable_lease_lost()->set_reason("the item is done");
  return m;
}

TEST_F(LeaseRedelivery, ALeaseLostThatCrossedTheAcceptedReportIsNotALoss) {
  GrpcControllerClientPeer peer(client_.get());
  LostLeases listener;
  peer.SetListener(&listener);
  const v1::Lease a = MakeLease("a", 7);
  peer.OnLease(a);
  absl::StatusOr<std::optional<v1::Lease>> taken = client_->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(taken.ok() && taken->has_value());
  peer.OpenStream(1);

  // The agent completes `a`; the completion goes out on stream 1.
  absl::StatusOr<v1::CompleteResponse> completed;
  std::thread reporter([&] {
    v1::CompleteRequest request;
    request.set_agent_id("agent-1");
    request.set_item_id("a");
    request.set_lease_token(7);
    completed = client_->Complete(request);
  });
  bool sent = false;
  while (!sent) {
    for (const v1::AgentMessage& m : peer.MarkSentOn(1)) sent = sent || m.has_complete();
    if (!sent) std::this_thread::yield();
  }
  // The controller accepts it, then answers a heartbeat written before the completion with a
  // LeaseLost for the same lease.
  v1::ControllerMessage reply;
  reply.mutable_reply()->set_item_id("a");
  reply.mutable_reply()->set_lease_token(7);
  reply.mutable_reply()->mutable_complete();
  peer.Dispatch(reply);
  EXPECT_FALSE(client_->Holds(Ref(a))) << "an accepted report leaves the lease held";
  peer.Dispatch(LostMessage(a));
  reporter.join();
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_TRUE(listener.lost.empty()) << "a lease that ended with its report was reported lost";

  // A lease still held is lost as before.
  const v1::Lease b = MakeLease("b", 8);
  peer.OnLease(b);
  peer.Dispatch(LostMessage(b));
  ASSERT_EQ(listener.lost.size(), 1u);
  EXPECT_EQ(listener.lost[0], "b");
  EXPECT_FALSE(client_->Holds(Ref(b)));
}

}  // namespace
}  // namespace harness::agentd
