// Store::WhenDurable's order: a callback registered while an earlier one (of its ticket or of an
// earlier ticket) is still running waits for it, even though its ticket is durable already. The
// queue relies on it: the listener that moves a result's ref hears of an end before the
// reporter's answer is sent.
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace harness {
namespace {

using ::testing::ElementsAre;

store::JournalRecord Record(const std::string& item) {
  store::JournalRecord r;
  r.mutable_granted()->set_item_id(item);
  r.mutable_granted()->set_token(1);
  r.mutable_granted()->set_agent("agent-1");
  return r;
}

class Order {
 public:
  void Add(std::string what) {
    std::lock_guard<std::mutex> l(mu_);
    seen_.push_back(std::move(what));
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// A store of its own in a temp dir.
class StoreAnswers : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Store>> opened =
        Store::Open(dir_.path(), Store::Options(), &table_, &recovery_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }

  testing::TempDir dir_;
  ItemTable table_;
  Store::Recovery recovery_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreAnswers, ACallbackRegisteredWhileAnEarlierOneRunsWaitsForIt) {
  Store& store = *store_;

  Order order;
  absl::Notification first_running, release_first, later_ran, same_ran;
  // Held, so that both tickets commit in one round after the first callback is registered.
  store.Hold();
  const uint64_t t1 = store.Append(Record("a"));
  const uint64_t t2 = store.Append(Record("b"));
  store.WhenDurable(t1, [&](absl::Status s) {
    order.Add(s.ok() ? "first" : "first failed");
    first_running.Notify();
    release_first.WaitForNotification();
    order.Add("first done");
  });
  store.Release();
  first_running.WaitForNotification();  // on the committer: both tickets are durable
  ASSERT_TRUE(store.WaitDurable(t2).ok());

  // Durable already, but an earlier callback is still running: neither runs here and now.
  const std::thread::id test_thread = std::this_thread::get_id();
  std::thread::id same_on, later_on;
  store.WhenDurable(t1, [&](absl::Status s) {
    order.Add(s.ok() ? "same ticket" : "same ticket failed");
    same_on = std::this_thread::get_id();
    same_ran.Notify();
  });
  store.WhenDurable(t2, [&](absl::Status s) {
    order.Add(s.ok() ? "later ticket" : "later ticket failed");
    later_on = std::this_thread::get_id();
    later_ran.Notify();
  });
  EXPECT_FALSE(same_ran.HasBeenNotified());
  EXPECT_FALSE(later_ran.HasBeenNotified());

  release_first.Notify();
  same_ran.WaitForNotification();
  later_ran.WaitForNotification();
  EXPECT_THAT(order.seen(), ElementsAre("first", "first done", "same ticket", "later ticket"));
  EXPECT_NE(same_on, test_thread);
  EXPECT_NE(later_on, test_thread);
}

TEST_F(StoreAnswers, CallbacksOfOneRoundRunInTicketOrderOnTheCommitter) {
  Store& store = *store_;

  Order order;
  absl::Notification all_ran;
  store.Hold();
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 5; ++i) tickets.push_back(store.Append(Record(std::to_string(i))));
  // Registered last ticket first: they still run in ticket order.
  for (int i = 4; i >= 0; --i) {
    store.WhenDurable(tickets[i], [&, i](absl::Status s) {
      order.Add(absl::StrCat(i, s.ok() ? "" : " failed"));
      if (i == 4) all_ran.Notify();
    });
  }
  store.Release();
  all_ran.WaitForNotification();
  EXPECT_THAT(order.seen(), ElementsAre("0", "1", "2", "3", "4"));
}

}  // namespace
}  // namespace harness
