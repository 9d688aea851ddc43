#include "load/src/threshold.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "load/src/duration_text.hpp"

namespace sluice::load {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

[[noreturn]] void fail(const std::string& expression, const std::string& problem) {
  throw std::invalid_argument("threshold \"" + expression + "\": " + problem);
}

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string format_micros(double micros) {
  if (micros >= 1e6) return format("%.3gs", micros / 1e6);
  if (micros >= 1e3) return format("%.4gms", micros / 1e3);
  return format("%.4gus", micros);
}

}  // namespace

Threshold Threshold::parse(std::string_view expression) {
  Threshold t;
  t.expression_ = std::string(trim(expression));
  const std::string_view e = t.expression_;
  const std::size_t op_at = e.find_first_of("<>");
  if (op_at == std::string_view::npos) {
    fail(t.expression_, "expected METRIC OP VALUE, e.g. p95<50ms, errors<1% or rps>1000");
  }
  const bool or_equal = op_at + 1 < e.size() && e[op_at + 1] == '=';
  t.op_ = e[op_at] == '<' ? (or_equal ? Op::less_equal : Op::less)
                          : (or_equal ? Op::greater_equal : Op::greater);
  const std::string_view metric = trim(e.substr(0, op_at));
  std::string_view value = trim(e.substr(op_at + (or_equal ? 2 : 1)));
  if (value.empty()) fail(t.expression_, "the value is missing");

  bool latency = false;
  if (metric.size() > 1 && metric.front() == 'p') {
    const auto q = parse_number(metric.substr(1));
    if (!q || *q <= 0 || *q > 100)
      fail(t.expression_, "a percentile is p followed by 0 < N <= 100, e.g. p99");
    t.metric_ = Metric::quantile;
    t.quantile_ = *q / 100;
    latency = true;
  } else if (metric == "mean" || metric == "avg") {
    t.metric_ = Metric::mean;
    latency = true;
  } else if (metric == "max") {
    t.metric_ = Metric::max;
    latency = true;
  } else if (metric == "errors") {
    if (value.back() == '%') {
      t.metric_ = Metric::error_rate;
      const auto percent = parse_number(trim(value.substr(0, value.size() - 1)));
      if (!percent || *percent < 0 || *percent > 100)
        fail(t.expression_, "expected a percentage, e.g. 1%");
      t.limit_ = *percent / 100;
    } else {
      t.metric_ = Metric::error_count;
      const auto count = parse_number(value);
      if (!count || *count < 0) {
        fail(t.expression_, "expected a percentage (errors<1%) or a count of errors (errors<=0)");
      }
      t.limit_ = *count;
    }
  } else if (metric == "rps") {
    t.metric_ = Metric::rps;
    const auto rps = parse_number(value);
    if (!rps || *rps < 0) fail(t.expression_, "expected requests per second, e.g. rps>1000");
    t.limit_ = *rps;
  } else {
    fail(t.expression_, "unknown metric \"" + std::string(metric) +
                            "\": expected pN (p50, p95, p99, p99.9), mean, max, errors or rps");
  }
  if (latency) {
    const auto d = parse_duration(value);
    if (!d) fail(t.expression_, "a latency needs a unit: us, ms or s, e.g. 50ms");
    t.limit_ = static_cast<double>(d->count());
  }
  return t;
}

ThresholdResult Threshold::evaluate(const RunSummary& summary) const {
  ThresholdResult r;
  r.expression = expression_;
  std::optional<double> actual;
  switch (metric_) {
    case Metric::quantile:
    case Metric::mean:
    case Metric::max: {
      if (summary.latency.count() == 0) break;
      const auto& h = summary.latency;
      actual = metric_ == Metric::quantile ? static_cast<double>(h.value_at_quantile(quantile_))
               : metric_ == Metric::mean   ? h.mean()
                                           : static_cast<double>(h.max());
      r.actual = format_micros(*actual);
      break;
    }
    case Metric::error_rate:
      actual = summary.error_rate();
      r.actual = format("%.2f%%", *actual * 100);
      break;
    case Metric::error_count:
      actual = static_cast<double>(summary.errors);
      r.actual = format("%.0f", *actual);
      break;
    case Metric::rps:
      actual = summary.ok_per_second();
      r.actual = format("%.1f/s", *actual);
      break;
  }
  if (!actual) {
    r.actual = "n/a";
    r.passed = false;
    return r;
  }
  switch (op_) {
    case Op::less:
      r.passed = *actual < limit_;
      break;
    case Op::less_equal:
      r.passed = *actual <= limit_;
      break;
    case Op::greater:
      r.passed = *actual > limit_;
      break;
    case Op::greater_equal:
      r.passed = *actual >= limit_;
      break;
  }
  return r;
}

}  // namespace sluice::load
