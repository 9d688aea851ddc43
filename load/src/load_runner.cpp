#include "load/src/load_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace sluice::load {
namespace {

using namespace std::chrono_literals;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

constexpr auto kTick = 100ms;            // how often the schedule's target is applied
constexpr auto kReconnectPause = 100ms;  // closed loop: after a failed connect or handshake
constexpr auto kCloseTimeout = 1s;       // for a polite close at the end
constexpr auto kDrainGrace = 1s;         // beyond the request timeout, before aborting

std::string thousands(std::uint64_t n) {
  std::string digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<std::size_t>(i), ",");
  }
  return digits;
}

std::string millis(std::uint64_t micros) {
  char text[32];
  std::snprintf(text, sizeof text, micros >= 100'000 ? "%.0fms" : "%.2fms",
                static_cast<double>(micros) / 1000);
  return text;
}

}  // namespace

std::string format_progress(const ProgressSnapshot& s) {
  const auto secs = [](std::chrono::microseconds d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
  };
  std::string line = secs(s.elapsed) + "/" + secs(s.total);
  if (s.warmup) line += " warmup";
  char target[32];
  std::snprintf(target, sizeof target, s.open_loop ? "%.1f/s" : "%.0f", s.target);
  line += s.open_loop ? "  rate " : "  clients ";
  line += s.open_loop ? target : std::to_string(s.clients);
  if (s.open_loop) line += "  conns " + std::to_string(s.clients);
  line += "  in-flight " + std::to_string(s.in_flight);
  const std::uint64_t all = s.ok + s.errors;
  char share[32];
  std::snprintf(share, sizeof share, "%.2f%%",
                all ? 100.0 * static_cast<double>(s.errors) / static_cast<double>(all) : 0.0);
  line += "  ok " + thousands(s.ok) + "  errors " + thousands(s.errors) + " (" + share + ")";
  if (s.last_second) {
    const auto& l = *s.last_second;
    line += "  " + thousands(l.ok) + "/s";
    if (l.ok) line += "  p50 " + millis(l.p50) + "  p99 " + millis(l.p99);
  }
  return line;
}

struct LoadRunner::Worker {
  Worker(asio::io_context& io, std::unique_ptr<McpClient> c, std::vector<PreparedCall> prepared,
         std::uint64_t seed)
      : client(std::move(c)), calls(std::move(prepared)), rng(seed), timer(io) {}

  std::unique_ptr<McpClient> client;
  std::vector<PreparedCall> calls;
  SplitMix64 rng;
  asio::steady_timer timer;  // think time, reconnect pause, or (open loop) waiting for work
  bool active = false;       // closed loop: the schedule wants this client
  bool running = false;      // its coroutine is alive
  std::optional<Clock::time_point> assigned;  // open loop: due time of the request handed over
};

LoadRunner::LoadRunner(asio::io_context& io, LoadRunnerParams params, LoadSchedule schedule,
                       const Scenario& scenario, ProgressCallback progress)
    : io_(io),
      params_(std::move(params)),
      schedule_(std::move(schedule)),
      scenario_(scenario),
      picker_(scenario),
      progress_(std::move(progress)),
      recorder_(
          [&] {
            std::vector<std::string> labels;
            for (const auto& c : scenario.calls) labels.push_back(c.label);
            return labels;
          }(),
          params_.warmup),
      tick_timer_(io),
      arrival_timer_(io),
      drain_timer_(io) {
  params_.validate();
}

void LoadRunnerParams::validate() const {
  const auto fail = [](const std::string& field, const std::string& problem) {
    return std::invalid_argument("LoadRunnerParams." + field + ": " + problem);
  };
  if (client_name.empty()) throw fail("client_name", "must not be empty");
  if (max_clients < 1) throw fail("max_clients", "must be at least 1");
  if (warmup.count() < 0) throw fail("warmup", "must not be negative");
  if (timeout.count() <= 0) throw fail("timeout", "must be positive");
  if (client.protocol_version.empty()) throw fail("client.protocol_version", "must not be empty");
}

LoadRunner::~LoadRunner() = default;

LoadRunner::Worker& LoadRunner::add_worker() {
  const std::size_t index = workers_.size();
  ClientIdentity identity{params_.client_name + "-" + std::to_string(index + 1),
                          params_.client_version};
  auto calls =
      prepare_calls(scenario_, params_.client.era, params_.client.protocol_version, identity);
  auto client = make_mcp_client(io_.get_executor(), params_.client, std::move(identity));
  workers_.push_back(std::make_unique<Worker>(io_, std::move(client), std::move(calls),
                                              params_.seed * 0x9e3779b97f4a7c15ULL + index));
  peak_clients_ = std::max(peak_clients_, workers_.size());
  return *workers_.back();
}

void LoadRunner::spawn(asio::awaitable<void> task) {
  ++tasks_;
  asio::co_spawn(io_, std::move(task), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

void LoadRunner::task_ended() noexcept {
  if (--tasks_ == 0) drain_timer_.cancel();
}

asio::awaitable<void> LoadRunner::pause(asio::steady_timer& timer, std::chrono::microseconds d) {
  timer.expires_after(d);
  co_await timer.async_wait(nothrow);
}

std::size_t LoadRunner::clients_now() const noexcept {
  if (!params_.open_loop) return active_;
  return workers_.size();
}

asio::awaitable<void> LoadRunner::closed_loop_worker(Worker& w) {
  const auto timeout = std::chrono::duration_cast<Clock::duration>(params_.timeout);
  while (w.active && !stopping_) {
    if (!w.client->connected()) {
      // Connecting (and a legacy handshake) is not part of any request's latency here.
      const auto began = Clock::now();
      const CallOutcome o = co_await w.client->open(began + timeout);
      if (aborted_) break;
      if (!o.ok()) {
        recorder_.record(LoadRecorder::kNoCall, began, Clock::now(), o);
        co_await pause(w.timer, kReconnectPause);
        continue;
      }
      if (!w.active || stopping_) break;
    }
    const std::size_t i = picker_.pick(w.rng.next());
    ++in_flight_;
    const auto sent = Clock::now();
    const CallOutcome o = co_await w.client->call(w.calls[i], sent + timeout);
    --in_flight_;
    if (aborted_) break;
    recorder_.record(i, sent, Clock::now(), o);
    if (scenario_.think_time.count() > 0 && w.active && !stopping_) {
      co_await pause(w.timer, scenario_.think_time);
    }
  }
  if (!aborted_) co_await w.client->close(Clock::now() + kCloseTimeout);
  w.running = false;
  task_ended();
}

asio::awaitable<void> LoadRunner::open_loop_worker(Worker& w) {
  --starting_;
  const auto timeout = std::chrono::duration_cast<Clock::duration>(params_.timeout);
  for (;;) {
    if (!w.assigned && !backlog_.empty()) {
      w.assigned = backlog_.front();
      backlog_.pop_front();
    }
    if (!w.assigned) {
      if (stopping_) break;
      // dispatch() takes it off idle_ before waking it; begin_stopping() clears idle_.
      idle_.push_back(&w);
      w.timer.expires_at(Clock::time_point::max());
      co_await w.timer.async_wait(nothrow);
      if (aborted_) break;
      continue;
    }
    const Clock::time_point due = *w.assigned;
    w.assigned.reset();
    const std::size_t i = picker_.pick(w.rng.next());
    const Clock::time_point deadline = due + timeout;
    CallOutcome o;
    ++in_flight_;
    if (Clock::now() >= deadline) {
      o = {ErrorKind::timeout, 0, "its deadline passed while it waited for a connection"};
    } else {
      // A connection opened here counts in this request's latency: it was due already.
      o = co_await w.client->call(w.calls[i], deadline);
    }
    --in_flight_;
    if (aborted_) break;
    recorder_.record(i, due, Clock::now(), o);
  }
  if (!aborted_) co_await w.client->close(Clock::now() + kCloseTimeout);
  w.running = false;
  task_ended();
}

void LoadRunner::dispatch(Clock::time_point due) {
  if (!idle_.empty()) {
    Worker* w = idle_.back();  // the most recently used connection
    idle_.pop_back();
    w->assigned = due;
    w->timer.cancel();
    return;
  }
  backlog_.push_back(due);
  if (backlog_.size() > starting_ && workers_.size() < params_.max_clients) {
    Worker& w = add_worker();
    w.running = true;
    ++starting_;
    spawn(open_loop_worker(w));
  }
}

asio::awaitable<void> LoadRunner::arrivals() {
  for (std::uint64_t k = 0; !stopping_; ++k) {
    // Requests are due at the midpoints of the schedule's integral: k + 0.5.
    const auto at = schedule_.arrival_time(static_cast<double>(k) + 0.5);
    if (!at) break;
    const Clock::time_point due = start_ + std::chrono::duration_cast<Clock::duration>(*at);
    if (due > Clock::now()) {
      arrival_timer_.expires_at(due);
      co_await arrival_timer_.async_wait(nothrow);
      if (stopping_) break;
    }
    dispatch(due);
  }
  task_ended();
}

void LoadRunner::apply_target(double target) {
  const auto want = static_cast<std::size_t>(std::llround(target));
  while (workers_.size() < want) add_worker();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = *workers_[i];
    if (i < want) {
      w.active = true;
      if (!w.running) {
        w.running = true;
        spawn(closed_loop_worker(w));
      }
    } else if (w.active) {
      w.active = false;
      w.timer.cancel();
    }
  }
  active_ = want;
}

asio::awaitable<void> LoadRunner::preopen(Worker& w) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(params_.timeout);
  co_await w.client->open(deadline);
  task_ended();
}

void LoadRunner::begin_stopping(Clock::time_point end) {
  stopping_ = true;
  recorder_.end_schedule(end);
  arrival_timer_.cancel();
  for (const Clock::time_point due : backlog_) {
    recorder_.record(LoadRecorder::kNoCall, due, end,
                     CallOutcome{ErrorKind::dropped, 0, "due, but not sent before the end"});
  }
  backlog_.clear();
  idle_.clear();
  for (auto& w : workers_) {
    w->active = false;
    w->timer.cancel();
  }
}

void LoadRunner::stop() noexcept {
  ++stop_requests_;
  tick_timer_.cancel();
  // A second request does not wait for requests in flight.
  if (stop_requests_ > 1) drain_timer_.cancel();
}

asio::awaitable<void> LoadRunner::async_run() {
  {
    asio::ip::tcp::resolver resolver(io_);
    auto [ec, results] =
        co_await resolver.async_resolve(params_.client.url.host, params_.client.url.port, nothrow);
    if (ec) {
      throw std::runtime_error("cannot resolve " + params_.client.url.host + ": " + ec.message());
    }
    params_.client.endpoints = results;
  }
  if (params_.open_loop) {
    const std::size_t n = std::min(params_.preopen, params_.max_clients);
    for (std::size_t i = 0; i < n; ++i) spawn(preopen(add_worker()));
    while (tasks_ > 0) {
      drain_timer_.expires_at(Clock::time_point::max());
      co_await drain_timer_.async_wait(nothrow);
    }
  }

  start_ = Clock::now();
  recorder_.start(start_);
  const auto total = std::chrono::duration_cast<Clock::duration>(schedule_.total());
  if (params_.open_loop) {
    for (auto& w : workers_) {
      w->running = true;
      ++starting_;
      spawn(open_loop_worker(*w));
    }
    spawn(arrivals());
  }

  std::int64_t shown_second = -1;
  Clock::time_point end = start_ + total;
  for (std::int64_t tick = 1;; ++tick) {
    const auto now = Clock::now();
    const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - start_);
    if (stop_requests_ > 0 || now >= start_ + total) {
      end = std::min(now, start_ + total);
      break;
    }
    const double target = schedule_.target_at(elapsed);
    if (!params_.open_loop) apply_target(target);
    recorder_.observe(now, target, clients_now(), in_flight_);
    const std::int64_t second = elapsed.count() / 1'000'000;
    if (progress_ && second != shown_second) {
      shown_second = second;
      ProgressSnapshot s;
      s.elapsed = elapsed;
      s.total = schedule_.total();
      s.warmup = elapsed < params_.warmup;
      s.open_loop = params_.open_loop;
      s.target = target;
      s.clients = clients_now();
      s.in_flight = in_flight_;
      s.ok = recorder_.total_ok();
      s.errors = recorder_.total_errors();
      s.last_second = recorder_.seconds().empty() ? nullptr : &recorder_.seconds().back();
      progress_(s);
    }
    tick_timer_.expires_at(start_ + tick * kTick);
    co_await tick_timer_.async_wait(nothrow);
  }

  begin_stopping(end);
  // Requests in flight may finish within their timeout; then the rest is cut off.
  const auto drain_deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(params_.timeout) + kDrainGrace;
  while (tasks_ > 0 && Clock::now() < drain_deadline && stop_requests_ < 2) {
    drain_timer_.expires_at(drain_deadline);
    co_await drain_timer_.async_wait(nothrow);
  }
  if (tasks_ > 0) {
    aborted_ = true;
    for (auto& w : workers_) {
      w->client->abort();
      w->timer.cancel();
    }
    while (tasks_ > 0) {
      drain_timer_.expires_at(Clock::time_point::max());
      co_await drain_timer_.async_wait(nothrow);
    }
  }
  recorder_.finish(end);
}

}  // namespace sluice::load
