// WorkerPool: tasks run off the caller's thread, and going away runs what was queued first.
#include "core/worker_pool.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace harness {
namespace {

TEST(WorkerPool, TasksRunOnThePoolsThreadsNotTheCallers) {
  WorkerPool pool(2);
  absl::Notification done;
  std::thread::id ran_on;
  pool.Post([&] {
    ran_on = std::this_thread::get_id();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(WorkerPool, GoingAwayRunsEveryQueuedTaskIncludingThosePostedByTasks) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1);
    absl::Notification release;
    pool.Post([&] { release.WaitForNotification(); });  // holds the one thread
    for (int i = 0; i < 100; ++i) pool.Post([&] { ran.fetch_add(1); });
    pool.Post([&] { pool.Post([&] { ran.fetch_add(1000); }); });
    release.Notify();
  }
  EXPECT_EQ(ran.load(), 1100);
}

}  // namespace
}  // namespace harness
