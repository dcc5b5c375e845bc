// The input limits (core/limits.h): each rule alone, then through the queue, where a breach is
// refused with the code and a message naming the limit and the value, nothing is stored, and
// the next normal call works.
#include "core/limits.h"

#include <string>
#include <vector>

#include "core/clock.h"
#include "core/work_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/core_test_util.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::harness::testing::MakeSpec;
using ::harness::testing::Msg;
using ::harness::testing::OpenQueueOrDie;
using ::harness::testing::QueueOptions;
using ::harness::testing::TempDir;

TEST(Limits, CountsAreWrittenWithThousandsSeparators) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(1048576), "1,048,576");
  EXPECT_EQ(FormatCount(18446744073709551615ull), "18,446,744,073,709,551,615");
}

TEST(Limits, APromptOverTheLimitIsRefusedNamingTheKeyAndTheSize) {
  Limits l;
  EXPECT_OK(CheckPromptSize(l, 1 << 20));
  absl::Status s = CheckPromptSize(l, 2100000);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s), "prompt of 2,100,000 bytes is over queue.max_prompt_bytes (1,048,576)");
}

TEST(Limits, TooManyItemsInOneSubmitAreRefusedNamingTheKey) {
  Limits l;
  EXPECT_OK(CheckItemsPerSubmit(l, 100000));
  absl::Status s = CheckItemsPerSubmit(l, 100001);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s),
            "a submit of 100,001 items is over limits.max_items_per_submit (100,000); submit them "
            "in smaller parts");
  EXPECT_EQ(CheckItemsPerSubmit(l, 0).code(), absl::StatusCode::kInvalidArgument);
}

TEST(Limits, AFullQueueIsResourceExhaustedAndCountsOnlyWhatWouldPassIt) {
  Limits l;
  l.max_queued_items = 10;
  EXPECT_OK(CheckQueueRoom(l, 0, 10));
  EXPECT_OK(CheckQueueRoom(l, 9, 1));
  absl::Status s = CheckQueueRoom(l, 9, 2);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Msg(s),
            "the queue holds 9 items not yet ended; 2 more would be over "
            "limits.max_queued_items (10)");
  // A queue already over (the limit was lowered across a restart) takes nothing more.
  EXPECT_EQ(CheckQueueRoom(l, 12, 1).code(), absl::StatusCode::kResourceExhausted);
}

TEST(Limits, LabelCountKeyAndValueSizesAreEachNamed) {
  Limits l;
  l.max_labels = 2;
  l.max_label_key_bytes = 4;
  l.max_label_value_bytes = 8;
  EXPECT_OK(CheckLabelCount(l, 2));
  EXPECT_EQ(Msg(CheckLabelCount(l, 3)), "3 labels are over limits.max_labels (2)");
  EXPECT_OK(CheckLabel(l, "abcd", "12345678"));
  absl::Status key = CheckLabel(l, "abcde", "v");
  EXPECT_EQ(key.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(key), "label key \"abcde\" of 5 bytes is over limits.max_label_key_bytes (4)");
  absl::Status value = CheckLabel(l, "k", "123456789");
  EXPECT_EQ(value.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(value),
            "value of label \"k\" of 9 bytes is over limits.max_label_value_bytes (8)");
}

TEST(Limits, ALongLabelKeyIsShortenedInTheMessage) {
  Limits l;
  std::string key(5000, 'k');
  std::string m = Msg(CheckLabel(l, key, ""));
  EXPECT_LT(m.size(), 200u) << m;
  EXPECT_THAT(m, ::testing::HasSubstr("of 5,000 bytes is over limits.max_label_key_bytes (128)"));
}

TEST(Limits, APackOverTheLimitIsResourceExhaustedNamingMaxPackMb) {
  Limits l;
  l.max_pack_bytes = uint64_t{2} << 20;
  EXPECT_OK(CheckPackSize(l, uint64_t{2} << 20));
  absl::Status s = CheckPackSize(l, (uint64_t{2} << 20) + 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Msg(s), "pack of 2,097,153 bytes is over repo.max_pack_mb (2 MiB = 2,097,152 bytes)");
}

TEST(Limits, TheLogKeptIsItsEndAtMostTheLimit) {
  Limits l;
  l.max_log_bytes_per_attempt = 4;
  EXPECT_EQ(KeptLogTail(l, "abc"), "abc");
  EXPECT_EQ(KeptLogTail(l, "abcdefgh"), "efgh");
  l.max_log_bytes_per_attempt = 0;
  EXPECT_EQ(KeptLogTail(l, "abc"), "");
}

TEST(Limits, PeersAreCountedByHostWithoutThePort) {
  EXPECT_EQ(PeerHost("ipv4:10.0.0.7:5123"), "ipv4:10.0.0.7");
  EXPECT_EQ(PeerHost("ipv4:127.0.0.1:1"), "ipv4:127.0.0.1");
  EXPECT_EQ(PeerHost("ipv6:[::1]:5123"), "ipv6:[::1]");
  EXPECT_EQ(PeerHost("ipv6:%5B::1%5D:5123"), "ipv6:%5B::1%5D");
  EXPECT_EQ(PeerHost("ipv6:[::1]"), "ipv6:[::1]");
  EXPECT_EQ(PeerHost("ipv4:"), "ipv4:");
  EXPECT_EQ(PeerHost("unix:/run/h.sock"), "unix:/run/h.sock");
  EXPECT_EQ(PeerHost(""), "");
}

TEST(Limits, SessionsOverTheLimitOfOneHostAreRefusedAndOtherHostsAreNot) {
  PeerSessions sessions(2);
  EXPECT_OK(sessions.Open("ipv4:10.0.0.7:1000"));
  EXPECT_OK(sessions.Open("ipv4:10.0.0.7:1001"));
  bool first = false;
  absl::Status s = sessions.Open("ipv4:10.0.0.7:1002", &first);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(first);
  EXPECT_FALSE(sessions.Open("ipv4:10.0.0.7:1004", &first).ok());
  EXPECT_FALSE(first);  // the same host again: not the first refusal
  EXPECT_EQ(Msg(s),
            "peer ipv4:10.0.0.7 has 2 agent sessions open, at limits.max_sessions_per_peer (2)");
  EXPECT_EQ(sessions.Count("ipv4:10.0.0.7:9"), 2);
  EXPECT_OK(sessions.Open("ipv4:10.0.0.8:1000"));  // another host is not held back
  sessions.Close("ipv4:10.0.0.7:1000");
  EXPECT_OK(sessions.Open("ipv4:10.0.0.7:1003"));  // a closed session frees its place
  EXPECT_FALSE(sessions.Open("ipv4:10.0.0.7:1005", &first).ok());
  EXPECT_TRUE(first);  // first again after an accepted one
  sessions.Close("ipv4:10.0.0.9:1");               // closing what was never open changes nothing
  EXPECT_EQ(sessions.Count("ipv4:10.0.0.9:1"), 0);
}

// ---------------------------------------------------------------------------------------------
// Through the queue: refused, nothing stored, the next normal submit works.

class QueueLimitsTest : public ::testing::Test {
 protected:
  void Open(const Limits& limits) {
    WorkQueueOptions o = QueueOptions(dir_.path());
    o.limits = limits;
    queue_ = OpenQueueOrDie(o, &clock_);
    ASSERT_NE(queue_, nullptr);
  }
  // Submits, expects `code`, checks nothing was stored, then that a normal item is taken.
  std::string Refused(std::vector<store::ItemSpec> specs, absl::StatusCode code) {
    const int64_t before = queue_->Counts().total;
    absl::StatusOr<std::vector<std::string>> ids = queue_->Submit(std::move(specs));
    EXPECT_EQ(ids.status().code(), code) << ids.status();
    EXPECT_EQ(queue_->Counts().total, before);
    return ids.ok() ? "" : Msg(ids.status());
  }
  void NextSubmitWorks(const std::string& id) {
    EXPECT_OK(queue_->Submit({MakeSpec(id)}));
    EXPECT_OK(queue_->Get(id));
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<WorkQueue> queue_;
};

TEST_F(QueueLimitsTest, ASubmitOfTooManyItemsStoresNone) {
  Limits l;
  l.max_items_per_submit = 3;
  Open(l);
  std::vector<store::ItemSpec> specs = {MakeSpec("a"), MakeSpec("b"), MakeSpec("c"), MakeSpec("d")};
  EXPECT_EQ(Refused(specs, absl::StatusCode::kInvalidArgument),
            "a submit of 4 items is over limits.max_items_per_submit (3); submit them in smaller "
            "parts");
  specs.pop_back();
  EXPECT_OK(queue_->Submit(specs));
  NextSubmitWorks("e");
}

TEST_F(QueueLimitsTest, AFullQueueRefusesSubmitsUntilAnItemEnds) {
  Limits l;
  l.max_queued_items = 2;
  Open(l);
  ASSERT_OK(queue_->Submit({MakeSpec("a"), MakeSpec("b")}));
  EXPECT_EQ(Refused({MakeSpec("c")}, absl::StatusCode::kResourceExhausted),
            "the queue holds 2 items not yet ended; 1 more would be over "
            "limits.max_queued_items (2)");
  // A leased item still counts; a cancelled (ended) one does not.
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("agent-1");
  ASSERT_OK(g);
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ(Refused({MakeSpec("c")}, absl::StatusCode::kResourceExhausted).empty(), false);
  ASSERT_OK(queue_->Cancel("b"));
  NextSubmitWorks("c");
}

TEST_F(QueueLimitsTest, ABigPromptIsRefusedNamingTheItemAndTheLimit) {
  Limits l;
  l.max_prompt_bytes = 64;
  Open(l);
  store::ItemSpec big = MakeSpec("big");
  big.set_prompt(std::string(65, 'p'));
  EXPECT_EQ(Refused({big}, absl::StatusCode::kInvalidArgument),
            "item \"big\": prompt of 65 bytes is over queue.max_prompt_bytes (64)");
  NextSubmitWorks("small");
}

TEST_F(QueueLimitsTest, TooManyOrTooLargeLabelsAreRefused) {
  Limits l;
  l.max_labels = 1;
  l.max_label_key_bytes = 3;
  l.max_label_value_bytes = 3;
  Open(l);
  store::ItemSpec two = MakeSpec("two");
  (*two.mutable_labels())["a"] = "1";
  (*two.mutable_labels())["b"] = "2";
  EXPECT_EQ(Refused({two}, absl::StatusCode::kInvalidArgument),
            "item \"two\": 2 labels are over limits.max_labels (1)");
  store::ItemSpec key = MakeSpec("key");
  (*key.mutable_labels())["abcd"] = "1";
  EXPECT_EQ(Refused({key}, absl::StatusCode::kInvalidArgument),
            "item \"key\": label key \"abcd\" of 4 bytes is over limits.max_label_key_bytes (3)");
  store::ItemSpec value = MakeSpec("value");
  (*value.mutable_labels())["k"] = "1234";
  // In a batch, the item's place is named too, and the whole batch is refused.
  EXPECT_EQ(Refused({MakeSpec("fine"), value}, absl::StatusCode::kInvalidArgument),
            "item #2: item \"value\": value of label \"k\" of 4 bytes is over "
            "limits.max_label_value_bytes (3)");
  store::ItemSpec ok = MakeSpec("ok");
  (*ok.mutable_labels())["abc"] = "123";
  EXPECT_OK(queue_->Submit({ok}));
  NextSubmitWorks("next");
}

}  // namespace
}  // namespace harness
