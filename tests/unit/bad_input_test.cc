// Bad input is refused with one clear message naming the item and the field, and changes
// nothing (CONTRACT.md, "Work items"): invalid ids, missing or oversized fields, duplicates,
// all-or-nothing batches, unknown items and invalid agent ids.
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/clock.h"
#include "core/ids.h"
#include "core/item_spec.h"
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
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Ids that break the pattern `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` or the git ref rules.
std::vector<std::string> InvalidIds() {
  return {"../x",        std::string(129, 'a'),
          "it\xc3\xa9m", "a..b",
          "x.",          "x.lock",
          "-x",          "a/b",
          "a b",         ".x",
          "x\ny",        std::string("a\0b", 3)};
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue_ = OpenQueueOrDie(QueueOptions(dir_.path()), &clock_);
    ASSERT_NE(queue_, nullptr);
  }

  // Submits and expects a refusal with `code`; checks that nothing changed.
  absl::Status SubmitRefused(std::vector<store::ItemSpec> specs, absl::StatusCode code) {
    QueueCounts before = queue_->Counts();
    absl::StatusOr<std::vector<std::string>> ids = queue_->Submit(std::move(specs));
    EXPECT_EQ(ids.status().code(), code) << ids.status();
    QueueCounts after = queue_->Counts();
    EXPECT_EQ(after.total, before.total);
    EXPECT_EQ(after.pending, before.pending);
    return ids.status();
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<WorkQueue> queue_;
};

TEST(ItemIdTest, InvalidIdsAreRefusedNamingTheValue) {
  for (const std::string& id : InvalidIds()) {
    absl::Status s = ValidateItemId(id);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << QuoteForMessage(id);
    EXPECT_THAT(Msg(s), HasSubstr("item id " + QuoteForMessage(id))) << s;
  }
}

TEST(ItemIdTest, EmptyIdIsRefused) {
  absl::Status s = ValidateItemId("");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("item id is empty"));
}

TEST(ItemIdTest, ValidIdsAreAccepted) {
  for (const std::string& id :
       {std::string("a"), std::string("0"), std::string("item-1"), std::string("A_b.c-9"),
        std::string("x.lock2"), std::string("v1.2.3"), std::string(128, 'z')}) {
    EXPECT_OK(ValidateItemId(id));
  }
}

TEST(ItemIdTest, QuotedValuesStayOneReadableLine) {
  EXPECT_EQ(QuoteForMessage("it\xc3\xa9m"), "\"it\\xc3\\xa9m\"");
  EXPECT_EQ(QuoteForMessage("a\nb\"c"), "\"a\\x0ab\\x22c\"");
  std::string shown = QuoteForMessage(std::string(1000, 'q'));
  EXPECT_LT(shown.size(), 100u);
  EXPECT_THAT(shown, HasSubstr("..."));
}

TEST(AgentIdTest, ValidAgentIdsAreAccepted) {
  for (const std::string& id :
       {std::string("agent-1"), std::string("a"), std::string("A.b_c-d"), std::string(64, 'x')}) {
    EXPECT_OK(ValidateAgentId(id));
  }
}

TEST(AgentIdTest, InvalidAgentIdsAreRefusedNamingTheValue) {
  for (const std::string& id :
       {std::string(65, 'x'), std::string("-a"), std::string(".a"), std::string("a/b"),
        std::string("agent 1"), std::string("ag\xc3\xa9nt"), std::string("../etc")}) {
    absl::Status s = ValidateAgentId(id);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << QuoteForMessage(id);
    EXPECT_THAT(Msg(s), HasSubstr("agent id " + QuoteForMessage(id))) << s;
  }
  absl::Status empty = ValidateAgentId("");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(empty), HasSubstr("agent id is empty"));
}

TEST_F(BadInputTest, AcquireWithAnInvalidAgentIdIsRefusedAndGrantsNothing) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  absl::StatusOr<std::optional<Grant>> g = queue_->Acquire("../agent");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();
  EXPECT_THAT(Msg(g.status()), HasSubstr("agent id \"../agent\""));
  EXPECT_EQ(queue_->Counts().pending, 1);
  EXPECT_TRUE(queue_->Leases().empty());
}

TEST_F(BadInputTest, SubmitRefusesEveryInvalidIdNamingTheFieldAndTheValue) {
  for (const std::string& id : InvalidIds()) {
    absl::Status s = SubmitRefused({MakeSpec(id)}, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(s), StartsWith("id: ")) << s;
    EXPECT_THAT(Msg(s), HasSubstr(QuoteForMessage(id))) << s;
  }
  // Short printable values appear as typed.
  EXPECT_THAT(Msg(SubmitRefused({MakeSpec("../x")}, absl::StatusCode::kInvalidArgument)),
              HasSubstr("\"../x\""));
  EXPECT_THAT(Msg(SubmitRefused({MakeSpec("x.lock")}, absl::StatusCode::kInvalidArgument)),
              HasSubstr("\".lock\""));
  EXPECT_THAT(queue_->List(std::nullopt, 100), IsEmpty());
}

TEST_F(BadInputTest, SubmitWithoutAnIdAssignsOne) {
  absl::StatusOr<std::vector<std::string>> ids = queue_->Submit({MakeSpec(""), MakeSpec("")});
  ASSERT_OK(ids);
  ASSERT_EQ(ids->size(), 2u);
  EXPECT_NE((*ids)[0], (*ids)[1]);
  for (const std::string& id : *ids) {
    EXPECT_OK(ValidateItemId(id));
    EXPECT_OK(queue_->Get(id));
  }
}

TEST_F(BadInputTest, AssignedIdsNeverCollideWithChosenOnes) {
  // Assigned ids are "item-<seq>"; a user may have picked such a name already.
  ASSERT_OK(queue_->Submit({MakeSpec("item-2"), MakeSpec("")}));
  absl::StatusOr<std::vector<std::string>> ids =
      queue_->Submit({MakeSpec(""), MakeSpec("item-5"), MakeSpec("")});
  ASSERT_OK(ids);
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[1], "item-5");
  EXPECT_NE((*ids)[2], "item-5");
  EXPECT_EQ(queue_->Counts().total, 5);
  for (const std::string& id : *ids) EXPECT_EQ(queue_->Get(id)->spec().id(), id);
}

TEST_F(BadInputTest, MissingTitleIsRefusedNamingTheItemAndField) {
  store::ItemSpec spec = MakeSpec("a");
  spec.clear_title();
  absl::Status s = SubmitRefused({spec}, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s), "item \"a\": title is required");
}

TEST_F(BadInputTest, EmptyPromptIsRefused) {
  store::ItemSpec spec = MakeSpec("a");
  spec.set_prompt("");
  absl::Status s = SubmitRefused({spec}, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s), "item \"a\": prompt is required");
}

TEST_F(BadInputTest, PromptOverOneMebibyteIsRefusedAndOneMebibyteIsAccepted) {
  store::ItemSpec big = MakeSpec("big");
  big.set_prompt(std::string((1 << 20) + 1, 'p'));
  absl::Status s = SubmitRefused({big}, absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s),
            "item \"big\": prompt of 1,048,577 bytes is over queue.max_prompt_bytes (1,048,576)");

  store::ItemSpec fits = MakeSpec("fits");
  fits.set_prompt(std::string(1 << 20, 'p'));
  ASSERT_OK(queue_->Submit({fits}));
  EXPECT_EQ(queue_->Get("fits")->spec().prompt().size(), size_t{1} << 20);
}

TEST_F(BadInputTest, OtherBadFieldsAreRefusedNamingTheField) {
  struct Case {
    std::string field;
    store::ItemSpec spec;
  };
  std::vector<Case> cases;
  {
    store::ItemSpec s = MakeSpec("a");
    s.set_max_attempts(-1);
    cases.push_back({"max_attempts", s});
    s.set_max_attempts(1001);
    cases.push_back({"max_attempts", s});
  }
  {
    store::ItemSpec s = MakeSpec("a");
    s.set_timeout_s(-5);
    cases.push_back({"timeout_s", s});
    s.set_timeout_s(std::nan(""));
    cases.push_back({"timeout_s", s});
    s.set_timeout_s(std::numeric_limits<double>::infinity());
    cases.push_back({"timeout_s", s});
  }
  {
    store::ItemSpec s = MakeSpec("a");
    s.set_title(std::string(2000, 't'));
    cases.push_back({"title", s});
    s.set_title("bad \xff utf-8");
    cases.push_back({"title", s});
  }
  {
    store::ItemSpec s = MakeSpec("a");
    s.set_prompt("bad \xc3 utf-8");
    cases.push_back({"prompt", s});
  }
  {
    store::ItemSpec s = MakeSpec("a");
    (*s.mutable_labels())[""] = "v";
    cases.push_back({"labels", s});
  }
  for (Case& c : cases) {
    absl::Status s = SubmitRefused({c.spec}, absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(s), StartsWith("item \"a\": " + c.field + " ")) << s;
  }
}

TEST_F(BadInputTest, DefaultsAreFilledIn) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  store::ItemRecord item = *queue_->Get("a");
  EXPECT_EQ(item.spec().max_attempts(), 3);
  EXPECT_EQ(item.spec().timeout_s(), 3600);
  EXPECT_EQ(item.spec().priority(), 0);
  EXPECT_EQ(item.state(), store::ITEM_PENDING);
}

TEST_F(BadInputTest, DuplicateOfAnExistingIdIsRefusedNamingTheId) {
  ASSERT_OK(queue_->Submit({MakeSpec("dup")}));
  store::ItemSpec again = MakeSpec("dup");
  again.set_title("another title");
  absl::Status s = SubmitRefused({again}, absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Msg(s), HasSubstr("item \"dup\""));
  EXPECT_THAT(Msg(s), HasSubstr("already taken"));
  EXPECT_EQ(queue_->Get("dup")->spec().title(), "title of dup");
}

TEST_F(BadInputTest, DuplicateIdInsideOneBatchIsRefusedAndNothingIsAdded) {
  absl::Status s = SubmitRefused({MakeSpec("x"), MakeSpec("y"), MakeSpec("x")},
                                 absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Msg(s), HasSubstr("item \"x\""));
  EXPECT_THAT(queue_->List(std::nullopt, 100), IsEmpty());
  EXPECT_EQ(queue_->Get("y").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BadInputTest, BatchWithOneBadItemChangesNothingEvenAfterAReopen) {
  ASSERT_OK(queue_->Submit({MakeSpec("existing")}));
  QueueCounts before = queue_->Counts();
  store::ItemSpec bad = MakeSpec("bad");
  bad.clear_title();
  absl::Status s = SubmitRefused({MakeSpec("good-1"), bad, MakeSpec("good-2")},
                                 absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("item #2"));
  EXPECT_THAT(Msg(s), HasSubstr("item \"bad\": title is required"));
  QueueCounts after = queue_->Counts();
  EXPECT_EQ(after.total, before.total);
  EXPECT_EQ(after.pending, before.pending);
  ASSERT_EQ(queue_->List(std::nullopt, 100).size(), 1u);

  queue_.reset();
  queue_ = OpenQueueOrDie(QueueOptions(dir_.path()), &clock_);
  ASSERT_NE(queue_, nullptr);
  std::vector<store::ItemRecord> items = queue_->List(std::nullopt, 100);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].spec().id(), "existing");
  EXPECT_EQ(queue_->Get("good-1").status().code(), absl::StatusCode::kNotFound);
  // The refused ids are still free.
  EXPECT_OK(queue_->Submit({MakeSpec("good-1"), MakeSpec("good-2")}));
}

TEST_F(BadInputTest, EmptyBatchIsRefused) {
  absl::Status s = SubmitRefused({}, absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(s), HasSubstr("no items"));
}

TEST_F(BadInputTest, UnknownItemIsNotFoundForEveryOperation) {
  const std::string kMissing = "no-such-item";
  const std::string quoted = "item \"no-such-item\" does not exist";
  absl::Status get = queue_->Get(kMissing).status();
  absl::Status cancel = queue_->Cancel(kMissing).status();
  absl::Status retry = queue_->Retry(kMissing);
  absl::Status complete = queue_->Complete(kMissing, 1);
  absl::Status fail = queue_->Fail(kMissing, 1, store::OUTCOME_FAILED);
  absl::Status release = queue_->Release(kMissing, 1);
  absl::StatusOr<Reconciled> renew =
      queue_->Reconcile("agent-1", {HeldLease{kMissing, 1}}, Unlisted::kKeep);
  for (const absl::Status& s : {get, cancel, retry, complete, fail, release}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
    EXPECT_THAT(Msg(s), HasSubstr(quoted));
  }
  // A heartbeat listing it hears that lease is lost, and why.
  ASSERT_OK(renew);
  ASSERT_EQ(renew->lost.size(), 1u);
  EXPECT_THAT(renew->lost[0].second, HasSubstr(quoted));
  EXPECT_EQ(queue_->Counts().total, 0);
}

TEST_F(BadInputTest, InvalidIdInALookupIsInvalidArgumentNotNotFound) {
  absl::Status get = queue_->Get("../x").status();
  EXPECT_EQ(get.code(), absl::StatusCode::kInvalidArgument) << get;
  EXPECT_EQ(queue_->Complete("../x", 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(queue_->Cancel("a/b").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BadInputTest, WrongTokenForAPendingItemIsRefused) {
  ASSERT_OK(queue_->Submit({MakeSpec("a")}));
  absl::Status s = queue_->Complete("a", 12345);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(Msg(s), HasSubstr("lease token 12345 for item \"a\" is no longer valid"));
  EXPECT_THAT(Msg(s), HasSubstr("the item is pending"));
  EXPECT_EQ(queue_->Get("a")->state(), store::ITEM_PENDING);
}

}  // namespace
}  // namespace harness
