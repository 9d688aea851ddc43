#pragma once

#include "pool/asio.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "load/src/load_recorder.hpp"
#include "load/src/load_schedule.hpp"
#include "load/src/mcp_client.hpp"
#include "load/src/scenario.hpp"

namespace sluice::load {

struct LoadRunnerParams {
  ClientParams client;  // endpoints are resolved by async_run()
  // Virtual client n (from 1) calls itself "<client_name>-<n>", so a gateway that limits per
  // client sees each as a client of its own.
  std::string client_name = "sluice-load";
  std::string client_version = "0";
  // Closed loop: the schedule's target is a number of virtual clients, each sending its next
  // request when the previous one is answered (after the scenario's think time). Open loop:
  // the target is requests per second, sent when due whether or not earlier ones were
  // answered, on idle connections or new ones up to max_clients; a request waiting for a
  // connection waits on the clock, so latency counts from when it was due.
  bool open_loop = false;
  std::size_t max_clients = 1024;       // open loop
  std::size_t preopen = 1;              // open loop: connections opened before the start
  std::chrono::microseconds warmup{0};  // the schedule's first part, run but not measured
  std::chrono::microseconds timeout{std::chrono::seconds(10)};  // per request
  std::uint64_t seed = 1;  // for the scenario's weighted choices

  // Throws std::invalid_argument naming the field, e.g. "LoadRunnerParams.timeout: ...".
  void validate() const;
};

// What the live progress line shows, once a second.
struct ProgressSnapshot {
  std::chrono::microseconds elapsed{0};
  std::chrono::microseconds total{0};
  bool warmup = false;
  bool open_loop = false;
  double target = 0;
  std::size_t clients = 0;
  std::size_t in_flight = 0;
  std::uint64_t ok = 0;  // totals so far
  std::uint64_t errors = 0;
  const LoadRecorder::Second* last_second = nullptr;  // the second just ended, if any
};

// "  12s/60s  clients 64  in-flight 64  ok 52,311  errors 0 (0.00%)  5,231/s  p50 1.21ms ..."
std::string format_progress(const ProgressSnapshot& s);

// Drives the virtual clients through the schedule and records what happens. Everything runs
// on one thread, the io_context's: with a single thread no state needs a lock and a 2-core
// benchmark machine keeps a core for the server.
class LoadRunner {
 public:
  using Clock = std::chrono::steady_clock;
  using ProgressCallback = std::function<void(const ProgressSnapshot&)>;

  // `scenario` must outlive the runner. Throws std::invalid_argument for invalid params.
  LoadRunner(asio::io_context& io, LoadRunnerParams params, LoadSchedule schedule,
             const Scenario& scenario, ProgressCallback progress = {});
  ~LoadRunner();
  LoadRunner(const LoadRunner&) = delete;
  LoadRunner& operator=(const LoadRunner&) = delete;

  // The whole run: resolve, connect, follow the schedule, drain, close. Throws
  // std::runtime_error if the host does not resolve.
  asio::awaitable<void> async_run();
  // Ends the run early (on the io_context's thread); what was measured is kept. Requests in
  // flight may finish within their timeout, unless stop() is called a second time.
  void stop() noexcept;

  const LoadRecorder& recorder() const noexcept { return recorder_; }
  std::size_t peak_clients() const noexcept { return peak_clients_; }

 private:
  struct Worker;

  Worker& add_worker();
  void spawn(asio::awaitable<void> task);
  asio::awaitable<void> closed_loop_worker(Worker& w);
  asio::awaitable<void> open_loop_worker(Worker& w);
  asio::awaitable<void> arrivals();
  asio::awaitable<void> preopen(Worker& w);
  void dispatch(Clock::time_point due);
  void apply_target(double target);
  void begin_stopping(Clock::time_point end);
  void task_ended() noexcept;
  asio::awaitable<void> pause(asio::steady_timer& timer, std::chrono::microseconds d);
  std::size_t clients_now() const noexcept;

  asio::io_context& io_;
  LoadRunnerParams params_;
  LoadSchedule schedule_;
  const Scenario& scenario_;
  CallPicker picker_;
  ProgressCallback progress_;
  LoadRecorder recorder_;

  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;              // open loop: waiting for a request
  std::deque<Clock::time_point> backlog_;  // open loop: due, no connection free yet
  std::size_t starting_ = 0;               // open loop: spawned, not yet looking for work
  std::size_t active_ = 0;                 // closed loop: clients the schedule wants
  std::size_t in_flight_ = 0;
  std::size_t peak_clients_ = 0;
  std::size_t tasks_ = 0;  // coroutines still running
  Clock::time_point start_{};
  int stop_requests_ = 0;
  bool stopping_ = false;
  bool aborted_ = false;
  asio::steady_timer tick_timer_;
  asio::steady_timer arrival_timer_;
  asio::steady_timer drain_timer_;
};

}  // namespace sluice::load
