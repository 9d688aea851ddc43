#pragma once

#include <string>
#include <string_view>

#include "load/src/run_summary.hpp"

namespace sluice::load {

// The verdict on one threshold.
struct ThresholdResult {
  std::string expression;  // as written
  std::string actual;      // the measured value with its unit, e.g. "12.3ms", "0.50%", "n/a"
  bool passed = false;
};

// A pass/fail rule on a run, written METRIC OP VALUE:
//   p50 p90 p95 p99 p99.9 (any pN), mean, max   latency of successful requests, with a unit:
//                                               p95<50ms, p99<=1s, max<2s, mean<800us
//   errors                                      with %: the share of failed requests
//                                               (errors<1%); without: their count (errors<=0)
//   rps                                         successful requests per second (rps>1000)
// OP is <, <=, > or >=. A latency threshold fails when no request succeeded.
class Threshold {
 public:
  // Throws std::invalid_argument saying what is wrong with `expression`.
  static Threshold parse(std::string_view expression);

  ThresholdResult evaluate(const RunSummary& summary) const;
  const std::string& expression() const noexcept { return expression_; }

 private:
  enum class Metric { quantile, mean, max, error_rate, error_count, rps };
  enum class Op { less, less_equal, greater, greater_equal };

  std::string expression_;
  Metric metric_ = Metric::quantile;
  double quantile_ = 0;  // for Metric::quantile, in [0, 1]
  Op op_ = Op::less;
  double limit_ = 0;  // microseconds, a fraction, a count or requests per second
};

}  // namespace sluice::load
