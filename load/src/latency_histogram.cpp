#include "load/src/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice::load {
namespace {

constexpr int kP = LatencyHistogram::kPrecisionBits;
constexpr std::size_t kBucketCount =
    ((LatencyHistogram::kValueBits - 1 - kP) << kP) + (std::size_t{1} << (kP + 1));

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

std::size_t LatencyHistogram::bucket_index(std::uint64_t value) noexcept {
  value = std::min(value, max_value());
  const int magnitude = std::bit_width(value) - 1;  // floor(log2(value)); -1 for 0
  const int shift = std::max(0, magnitude - kP);
  return (static_cast<std::size_t>(shift) << kP) + static_cast<std::size_t>(value >> shift);
}

std::uint64_t LatencyHistogram::bucket_lowest(std::size_t index) noexcept {
  if (index < (std::size_t{1} << (kP + 1))) return index;
  const std::size_t shift = (index >> kP) - 1;
  const std::uint64_t sub = index - (shift << kP);
  return sub << shift;
}

std::uint64_t LatencyHistogram::bucket_highest(std::size_t index) noexcept {
  if (index < (std::size_t{1} << (kP + 1))) return index;
  const std::size_t shift = (index >> kP) - 1;
  const std::uint64_t sub = index - (shift << kP);
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t micros) noexcept {
  micros = std::min(micros, max_value());
  ++counts_[bucket_index(micros)];
  if (count_ == 0 || micros < min_) min_ = micros;
  max_ = std::max(max_, micros);
  ++count_;
  sum_ += static_cast<long double>(micros);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t LatencyHistogram::value_at_quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  q = std::clamp(std::isnan(q) ? 0.0 : q, 0.0, 1.0);
  // The rank of the wanted value, 1-based: p99 of 100 values is the 99th.
  const auto rank = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_) - 1e-9)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucket_highest(i), max_);
  }
  return max_;
}

}  // namespace sluice::load
