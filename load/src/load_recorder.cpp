#include "load/src/load_recorder.hpp"

#include <algorithm>

namespace sluice::load {
namespace {

std::uint64_t micros_between(LoadRecorder::Clock::time_point from,
                             LoadRecorder::Clock::time_point to) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  return us > 0 ? static_cast<std::uint64_t>(us) : 0;
}

}  // namespace

LoadRecorder::LoadRecorder(std::vector<std::string> call_labels, std::chrono::microseconds warmup)
    : warmup_(warmup) {
  calls_.resize(call_labels.size());
  for (std::size_t i = 0; i < call_labels.size(); ++i) calls_[i].label = std::move(call_labels[i]);
}

void LoadRecorder::start(Clock::time_point t0) {
  start_ = t0;
  current_ = Second{};
  current_.warmup = warmup_.count() > 0;
}

void LoadRecorder::roll_to(std::size_t second) {
  while (current_.index < second) {
    const auto& h = current_latency_;
    current_.p50 = h.value_at_quantile(0.50);
    current_.p90 = h.value_at_quantile(0.90);
    current_.p95 = h.value_at_quantile(0.95);
    current_.p99 = h.value_at_quantile(0.99);
    current_.max = h.max();
    seconds_.push_back(current_);
    current_latency_.reset();
    Second next;
    next.index = current_.index + 1;
    next.target = current_.target;
    next.clients = current_.clients;
    next.in_flight = current_.in_flight;
    // A second is warmup if any of it is.
    next.warmup = std::chrono::seconds(next.index) < warmup_;
    current_ = next;
  }
}

std::size_t LoadRecorder::second_of(Clock::time_point t) const noexcept {
  const auto second = static_cast<std::size_t>(
      std::max<Clock::duration>(t - start_, Clock::duration::zero()) / std::chrono::seconds(1));
  return std::min(second, last_second_);
}

void LoadRecorder::end_schedule(Clock::time_point end) {
  const auto elapsed = std::max<Clock::duration>(end - start_, std::chrono::seconds(1));
  // The second the end falls in, unless the end is on its boundary.
  last_second_ = static_cast<std::size_t>((elapsed - Clock::duration(1)) / std::chrono::seconds(1));
  roll_to(std::min(second_of(end), last_second_));
}

void LoadRecorder::record(std::size_t call, Clock::time_point due, Clock::time_point done,
                          const CallOutcome& outcome) {
  roll_to(second_of(done));
  const std::uint64_t latency = micros_between(due, done);
  const bool ok = outcome.ok();
  if (ok) {
    ++current_.ok;
    ++total_ok_;
    current_latency_.record(latency);
  } else {
    ++current_.errors;
    ++total_errors_;
  }
  if (due < measure_from()) return;
  if (ok) {
    ++measured_.ok;
    measured_.latency.record(latency);
  } else {
    ++measured_.errors;
  }
  if (call < calls_.size()) {
    CallStats& c = calls_[call];
    if (ok) {
      ++c.ok;
      c.latency.record(latency);
    } else {
      ++c.errors;
    }
  }
  if (!ok) {
    ErrorCount& e = errors_[{outcome.kind, outcome.code}];
    if (e.count++ == 0) {
      e.kind = error_kind_name(outcome.kind, outcome.code);
      e.sample = std::string(outcome.detail);
    }
  }
}

void LoadRecorder::observe(Clock::time_point now, double target, std::size_t clients,
                           std::size_t in_flight) {
  roll_to(second_of(now));
  current_.target = target;
  current_.clients = clients;
  current_.in_flight = in_flight;
}

void LoadRecorder::finish(Clock::time_point end) {
  if (last_second_ == static_cast<std::size_t>(-1)) end_schedule(end);
  roll_to(last_second_ + 1);
  const auto measured = end - measure_from();
  measured_.measured_seconds =
      measured > Clock::duration::zero() ? std::chrono::duration<double>(measured).count() : 0.0;
}

RunSummary LoadRecorder::summary() const {
  return measured_;
}

std::vector<LoadRecorder::ErrorCount> LoadRecorder::errors() const {
  std::vector<ErrorCount> out;
  for (const auto& [key, e] : errors_) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const ErrorCount& a, const ErrorCount& b) { return a.count > b.count; });
  return out;
}

}  // namespace sluice::load
