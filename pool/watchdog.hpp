#pragma once

#include <chrono>
#include <compare>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::pool {

// A thread that runs cancellation callbacks at deadlines, or at once on request. Cancelling
// a statement can itself block (psqlODBC opens a connection to send the cancel request), so
// it runs here rather than on an I/O thread or on the busy worker. Thread-safe.
class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;

  Watchdog();
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // What disarm() needs to find a timer: its deadline and a number of its own.
  struct Ticket {
    Clock::time_point when;
    std::uint64_t id = 0;
    auto operator<=>(const Ticket&) const = default;
  };

  // Runs `cb` at `when` unless disarmed first.
  Ticket arm(Clock::time_point when, Callback cb);
  // Forgets the callback, in logarithmic time (every statement arms and disarms one). If it
  // is running right now, this returns without waiting; the callback itself must tolerate
  // arriving late (see OdbcStatement::cancel).
  void disarm(const Ticket& ticket);
  // Runs `cb` on the watchdog thread as soon as possible.
  void run_soon(Callback cb);

 private:
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<Ticket, Callback> timers_;  // by deadline; the id orders equal ones
  std::vector<Callback> immediate_;
  std::uint64_t next_id_ = 1;
  // When the thread will look at the timers next on its own: min() while it is awake,
  // max() while it waits for work. arm() wakes it only for an earlier timer.
  Clock::time_point wake_at_ = Clock::time_point::min();
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::pool
