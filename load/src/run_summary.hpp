#pragma once

#include <cstdint>

#include "load/src/latency_histogram.hpp"

namespace sluice::load {

// What thresholds are judged on: the measured part of a run (after the warmup).
struct RunSummary {
  double measured_seconds = 0;
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;  // every failed request, of any kind
  // Latency of the successful requests, in microseconds. In open loop it counts from the
  // time each request was due, not when it was sent.
  LatencyHistogram latency;

  std::uint64_t requests() const noexcept { return ok + errors; }
  double error_rate() const noexcept {
    return requests() == 0 ? 0.0 : static_cast<double>(errors) / static_cast<double>(requests());
  }
  double ok_per_second() const noexcept {
    return measured_seconds > 0 ? static_cast<double>(ok) / measured_seconds : 0.0;
  }
};

}  // namespace sluice::load
