#include "load/src/threshold.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "load/src/load_report.hpp"

namespace sluice::load {
namespace {

RunSummary summary_with(std::uint64_t ok, std::uint64_t errors, double seconds,
                        std::uint64_t latency_us) {
  RunSummary s;
  s.ok = ok;
  s.errors = errors;
  s.measured_seconds = seconds;
  for (std::uint64_t i = 0; i < ok; ++i) s.latency.record(latency_us);
  return s;
}

std::string error_of(std::string_view text) {
  try {
    Threshold::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(ThresholdTest, LatencyPercentiles) {
  const auto s = summary_with(100, 0, 10, 20'000);  // 20 ms
  EXPECT_TRUE(Threshold::parse("p95<50ms").evaluate(s).passed);
  EXPECT_FALSE(Threshold::parse("p95<10ms").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("p99<=20ms").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("p99.9 < 1s").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("mean<20001us").evaluate(s).passed);
  EXPECT_FALSE(Threshold::parse("max<20ms").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("p50>=20ms").evaluate(s).passed);
  EXPECT_EQ(Threshold::parse("p95<50ms").evaluate(s).actual, "20ms");
  EXPECT_EQ(Threshold::parse(" p95<50ms ").expression(), "p95<50ms");
}

TEST(ThresholdTest, ErrorsAsShareOrCount) {
  const auto s = summary_with(990, 10, 10, 1000);  // 1 % errors
  EXPECT_FALSE(Threshold::parse("errors<1%").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("errors<=1%").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("errors<2%").evaluate(s).passed);
  EXPECT_EQ(Threshold::parse("errors<2%").evaluate(s).actual, "1.00%");
  EXPECT_FALSE(Threshold::parse("errors<=0").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("errors<=10").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("errors<=0").evaluate(summary_with(5, 0, 1, 1)).passed);
}

TEST(ThresholdTest, Throughput) {
  const auto s = summary_with(5000, 100, 5, 1000);  // 1000 ok/s
  EXPECT_FALSE(Threshold::parse("rps>1000").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("rps>=1000").evaluate(s).passed);
  EXPECT_TRUE(Threshold::parse("rps>999.5").evaluate(s).passed);
  EXPECT_EQ(Threshold::parse("rps>1").evaluate(s).actual, "1000.0/s");
}

TEST(ThresholdTest, LatencyFailsWhenNothingSucceeded) {
  const auto s = summary_with(0, 50, 5, 0);
  const auto r = Threshold::parse("p99<10s").evaluate(s);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.actual, "n/a");
}

TEST(ThresholdTest, BadExpressionsSayWhatIsWrong) {
  EXPECT_NE(error_of("p95<50").find("unit"), std::string::npos);
  EXPECT_NE(error_of("p95").find("METRIC OP VALUE"), std::string::npos);
  EXPECT_NE(error_of("latency<5ms").find("unknown metric \"latency\""), std::string::npos);
  EXPECT_NE(error_of("p101<5ms").find("percentile"), std::string::npos);
  EXPECT_NE(error_of("errors<lots").find("percentage"), std::string::npos);
  EXPECT_NE(error_of("errors<150%").find("percentage"), std::string::npos);
  EXPECT_NE(error_of("rps>fast").find("requests per second"), std::string::npos);
  EXPECT_NE(error_of("rps>").find("missing"), std::string::npos);
  EXPECT_EQ(error_of("p95<50ms"), "");
  EXPECT_NE(error_of("p95<x").find("threshold \"p95<x\""), std::string::npos);
}

TEST(ExitStatusTest, ThresholdsDecide) {
  const auto good = summary_with(10, 0, 1, 1000);
  EXPECT_EQ(exit_status({}, good), kExitPassed);
  EXPECT_EQ(exit_status({{"p95<1s", "1ms", true}}, good), kExitPassed);
  EXPECT_EQ(exit_status({{"p95<1s", "1ms", true}, {"rps>1e9", "10/s", false}}, good), kExitFailed);
  // Without thresholds, a run where nothing succeeded fails; with them, they decide.
  const auto dead = summary_with(0, 10, 1, 0);
  EXPECT_EQ(exit_status({}, dead), kExitFailed);
  EXPECT_EQ(exit_status({{"errors<=100%", "100%", true}}, dead), kExitPassed);
}

}  // namespace
}  // namespace sluice::load
