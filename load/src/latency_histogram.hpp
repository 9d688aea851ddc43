#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::load {

// A log-linear histogram of latencies in microseconds, in the manner of HdrHistogram:
// values below 256 are counted exactly; above, each power-of-two range is split into 128
// equal buckets, so a bucket is never wider than 1/128 (0.8 %) of its values. Recording is
// O(1) and never allocates; the counts take 35 KiB. Values above max_value() are counted as
// max_value().
//
// Not thread-safe: one owner records and reads.
class LatencyHistogram {
 public:
  static constexpr int kPrecisionBits = 7;
  static constexpr int kValueBits = 40;  // 2^40 us is about 12.7 days

  LatencyHistogram();

  static constexpr std::uint64_t max_value() noexcept {
    return (std::uint64_t{1} << kValueBits) - 1;
  }

  void record(std::uint64_t micros) noexcept;
  // Adds every count of `other`.
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  // 0 when empty.
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;

  // The smallest value v such that at least q of the recorded values are <= v's bucket,
  // reported as the bucket's highest value (never above max()). q is clamped to [0, 1];
  // 0 when empty. value_at_quantile(0.99) is the p99.
  std::uint64_t value_at_quantile(double q) const noexcept;

  // Calls f(lowest, highest, count) for each non-empty bucket, in increasing order.
  template <class F>
  void for_each_bucket(F&& f) const {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] != 0) f(bucket_lowest(i), bucket_highest(i), counts_[i]);
    }
  }

  // Bucket arithmetic, public for tests.
  static std::size_t bucket_index(std::uint64_t value) noexcept;
  static std::uint64_t bucket_lowest(std::size_t index) noexcept;
  static std::uint64_t bucket_highest(std::size_t index) noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace sluice::load
