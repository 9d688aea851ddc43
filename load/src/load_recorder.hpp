#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "load/src/call_outcome.hpp"
#include "load/src/latency_histogram.hpp"
#include "load/src/run_summary.hpp"

namespace sluice::load {

// Collects every request's outcome: totals and latency histograms for the measured part of the
// run (requests due after the warmup), per call and overall; errors by kind with one sample
// message each; and a time series with one entry per second of the whole run (warmup
// included, flagged). Recording is O(1) and allocates only for a new kind of error.
//
// Not thread-safe: the runner records from its one thread.
class LoadRecorder {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kNoCall = static_cast<std::size_t>(-1);

  struct Second {
    std::size_t index = 0;  // seconds since the start
    bool warmup = false;
    double target = 0;        // what the schedule asked for at the end of the second
    std::size_t clients = 0;  // connections (virtual clients) at work
    std::size_t in_flight = 0;
    std::uint64_t ok = 0;  // responses that completed in this second
    std::uint64_t errors = 0;
    // Latency of this second's successful responses, microseconds (0 when none).
    std::uint64_t p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
  };
  struct ErrorCount {
    std::string kind;  // error_kind_name()
    std::uint64_t count = 0;
    std::string sample;  // the first detail seen
  };
  struct CallStats {
    std::string label;
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    LatencyHistogram latency;
  };

  LoadRecorder(std::vector<std::string> call_labels, std::chrono::microseconds warmup);

  void start(Clock::time_point t0);
  Clock::time_point start_time() const noexcept { return start_; }
  Clock::time_point measure_from() const noexcept { return start_ + warmup_; }

  // A request due (open loop) or sent (closed loop) at `due` ended at `done` with `outcome`.
  // `call` is the scenario call's index, or kNoCall for a failure opening a connection.
  void record(std::size_t call, Clock::time_point due, Clock::time_point done,
              const CallOutcome& outcome);
  // What the runner is doing now; becomes part of the second in progress.
  void observe(Clock::time_point now, double target, std::size_t clients, std::size_t in_flight);
  // The schedule ended at `end`: responses still arriving (the drain) count in its last second,
  // so the time series spans the schedule exactly.
  void end_schedule(Clock::time_point end);
  // Fixes the measured time at end - measure_from() and closes the time series.
  void finish(Clock::time_point end);

  RunSummary summary() const;
  const std::vector<Second>& seconds() const noexcept { return seconds_; }
  std::vector<ErrorCount> errors() const;
  const std::vector<CallStats>& calls() const noexcept { return calls_; }

  // The totals so far, for the progress line.
  std::uint64_t total_ok() const noexcept { return total_ok_; }
  std::uint64_t total_errors() const noexcept { return total_errors_; }

 private:
  void roll_to(std::size_t second);
  std::size_t second_of(Clock::time_point t) const noexcept;

  std::chrono::microseconds warmup_;
  Clock::time_point start_{};
  RunSummary measured_;
  std::vector<CallStats> calls_;
  std::map<std::pair<ErrorKind, std::int64_t>, ErrorCount> errors_;
  std::uint64_t total_ok_ = 0;  // including the warmup
  std::uint64_t total_errors_ = 0;

  std::size_t last_second_ = static_cast<std::size_t>(-1);  // set by end_schedule
  std::vector<Second> seconds_;
  Second current_;
  LatencyHistogram current_latency_;
};

}  // namespace sluice::load
