// The statement watchdog: callbacks at their deadlines, in order, or at once on request.
#include "pool/watchdog.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <vector>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;
using Clock = Watchdog::Clock;

TEST(WatchdogTest, AnEarlierTimerArmedWhileTheThreadWaitsForALaterOneFiresOnTime) {
  Watchdog w;
  std::promise<Clock::time_point> late_fired;
  std::promise<Clock::time_point> early_fired;
  w.arm(Clock::now() + 30s, [&] { late_fired.set_value(Clock::now()); });
  std::this_thread::sleep_for(20ms);  // the thread now sleeps towards the 30 s timer
  const auto due = Clock::now() + 50ms;
  w.arm(due, [&] { early_fired.set_value(Clock::now()); });
  auto fired = early_fired.get_future();
  ASSERT_EQ(fired.wait_for(10s), std::future_status::ready) << "the earlier timer never fired";
  EXPECT_GE(fired.get(), due);
  EXPECT_EQ(late_fired.get_future().wait_for(0s), std::future_status::timeout);
}

TEST(WatchdogTest, TimersFireInDeadlineOrderAndDisarmedOnesNever) {
  Watchdog w;
  std::mutex m;
  std::vector<int> order;
  std::promise<void> last;
  const auto base = Clock::now() + 40ms;
  auto record = [&](int i) {
    return [&, i] {
      std::lock_guard lock(m);
      order.push_back(i);
    };
  };
  w.arm(base + 20ms, record(3));
  const auto gone = w.arm(base + 10ms, record(99));
  w.arm(base, record(1));
  w.arm(base + 10ms, record(2));
  w.arm(base + 30ms, [&] { last.set_value(); });
  w.disarm(gone);
  ASSERT_EQ(last.get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(m);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(WatchdogTest, RunSoonDoesNotWaitForPendingTimers) {
  Watchdog w;
  std::atomic<bool> timer_fired{false};
  w.arm(Clock::now() + 30s, [&] { timer_fired = true; });
  std::this_thread::sleep_for(20ms);
  std::promise<void> ran;
  w.run_soon([&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(timer_fired);
}

TEST(WatchdogTest, ACallbackMayArmAnotherTimer) {
  // Cancels repeat this way while a driver keeps running a statement.
  Watchdog w;
  std::promise<int> done;
  std::function<void(int)> step = [&](int n) {
    if (n == 3) {
      done.set_value(n);
      return;
    }
    w.arm(Clock::now() + 5ms, [&, n] { step(n + 1); });
  };
  w.run_soon([&] { step(0); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(f.get(), 3);
}

}  // namespace
}  // namespace sluice::pool
