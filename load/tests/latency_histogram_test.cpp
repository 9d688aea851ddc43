#include "load/src/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace sluice::load {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at_quantile(0.99), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.value_at_quantile(0.50), 50u);
  EXPECT_EQ(h.value_at_quantile(0.99), 99u);
  EXPECT_EQ(h.value_at_quantile(1.0), 100u);
  EXPECT_EQ(h.value_at_quantile(0.0), 1u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, BucketsCoverEveryValueWithinTheirPrecision) {
  std::size_t previous = 0;
  for (std::uint64_t v = 0; v < (std::uint64_t{1} << 22); v += 1 + v / 300) {
    const std::size_t i = LatencyHistogram::bucket_index(v);
    EXPECT_LE(LatencyHistogram::bucket_lowest(i), v);
    EXPECT_GE(LatencyHistogram::bucket_highest(i), v);
    // A bucket is at most 1/128 of its values wide.
    const auto width = LatencyHistogram::bucket_highest(i) - LatencyHistogram::bucket_lowest(i);
    EXPECT_LE(width * 128, std::max<std::uint64_t>(v, 128)) << v;
    EXPECT_GE(i, previous);  // monotonic
    previous = i;
  }
  // Neighbouring buckets tile the line without gaps.
  for (std::size_t i = 1; i < 3000; ++i) {
    EXPECT_EQ(LatencyHistogram::bucket_lowest(i), LatencyHistogram::bucket_highest(i - 1) + 1);
  }
}

TEST(LatencyHistogramTest, PercentilesOfAUniformSpreadAreWithinOnePercent) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);
  for (const double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
    const double expected = q * 100'000;
    const double got = static_cast<double>(h.value_at_quantile(q));
    EXPECT_NEAR(got, expected, expected * 0.01) << "q=" << q;
    EXPECT_GE(got, expected) << "reported as the bucket's highest value";
  }
  EXPECT_EQ(h.value_at_quantile(1.0), 100'000u);
}

TEST(LatencyHistogramTest, OneSlowOutlierShowsInTheTailOnly) {
  LatencyHistogram h;
  for (int i = 0; i < 999; ++i) h.record(1'000);
  h.record(2'000'000);
  EXPECT_NEAR(static_cast<double>(h.value_at_quantile(0.99)), 1'000, 10);
  EXPECT_EQ(h.value_at_quantile(1.0), 2'000'000u);
  EXPECT_EQ(h.max(), 2'000'000u);
}

TEST(LatencyHistogramTest, HugeValuesAreClamped) {
  LatencyHistogram h;
  h.record(std::uint64_t{1} << 62);
  EXPECT_EQ(h.max(), LatencyHistogram::max_value());
  EXPECT_EQ(h.value_at_quantile(0.5), LatencyHistogram::max_value());
}

TEST(LatencyHistogramTest, MergeAddsAndResetEmpties) {
  LatencyHistogram a, b;
  for (int i = 0; i < 10; ++i) a.record(10);
  for (int i = 0; i < 10; ++i) b.record(5'000);
  a.merge(b);
  EXPECT_EQ(a.count(), 20u);
  EXPECT_EQ(a.min(), 10u);
  EXPECT_EQ(a.max(), 5'000u);
  EXPECT_EQ(a.value_at_quantile(0.5), 10u);
  EXPECT_NEAR(static_cast<double>(a.value_at_quantile(0.51)), 5'000, 50);
  LatencyHistogram empty;
  empty.merge(b);
  EXPECT_EQ(empty.min(), 5'000u);
  a.reset();
  EXPECT_EQ(a.count(), 0u);
  EXPECT_EQ(a.value_at_quantile(0.5), 0u);
}

TEST(LatencyHistogramTest, ForEachBucketVisitsNonEmptyBucketsInOrder) {
  LatencyHistogram h;
  h.record(3);
  h.record(3);
  h.record(100'000);
  std::vector<std::uint64_t> counts;
  std::uint64_t last = 0;
  h.for_each_bucket([&](std::uint64_t lo, std::uint64_t hi, std::uint64_t n) {
    EXPECT_GE(lo, last);
    EXPECT_LE(lo, hi);
    last = hi;
    counts.push_back(n);
  });
  EXPECT_EQ(counts, (std::vector<std::uint64_t>{2, 1}));
}

}  // namespace
}  // namespace sluice::load
