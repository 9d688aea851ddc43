#include "pool/watchdog.hpp"

#include <utility>

namespace sluice::pool {

Watchdog::Watchdog() : thread_([this] { loop(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Watchdog::Ticket Watchdog::arm(Clock::time_point when, Callback cb) {
  Ticket ticket{when, 0};
  bool sooner;
  {
    std::lock_guard lock(mutex_);
    ticket.id = next_id_++;
    timers_.emplace(ticket, std::move(cb));
    // Most deadlines fall after the one the thread already sleeps towards: no wake-up.
    sooner = when < wake_at_;
    if (sooner) wake_at_ = Clock::time_point::min();
  }
  if (sooner) wake_.notify_one();
  return ticket;
}

void Watchdog::disarm(const Ticket& ticket) {
  std::lock_guard lock(mutex_);
  timers_.erase(ticket);
}

void Watchdog::run_soon(Callback cb) {
  {
    std::lock_guard lock(mutex_);
    immediate_.push_back(std::move(cb));
    wake_at_ = Clock::time_point::min();
  }
  wake_.notify_one();
}

void Watchdog::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    std::vector<Callback> due = std::exchange(immediate_, {});
    const auto now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first.when <= now) {
      due.push_back(std::move(timers_.begin()->second));
      timers_.erase(timers_.begin());
    }
    if (!due.empty()) {
      wake_at_ = Clock::time_point::min();  // awake: arm() need not notify
      lock.unlock();
      for (auto& cb : due) cb();
      lock.lock();
      continue;
    }
    if (timers_.empty()) {
      wake_at_ = Clock::time_point::max();
      wake_.wait(lock);
    } else {
      const Clock::time_point next = timers_.begin()->first.when;  // it may go while we wait
      wake_at_ = next;
      wake_.wait_until(lock, next);
    }
    wake_at_ = Clock::time_point::min();
  }
}

}  // namespace sluice::pool
