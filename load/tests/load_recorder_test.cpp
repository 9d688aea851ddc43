#include "load/src/load_recorder.hpp"

#include <gtest/gtest.h>

#include "load/src/load_report.hpp"

namespace sluice::load {
namespace {

using namespace std::chrono_literals;
using Clock = LoadRecorder::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1h;

TEST(LoadRecorderTest, WarmupIsRunButNotMeasured) {
  LoadRecorder r({"query", "list_tables"}, 2s);
  r.start(t0);
  r.record(0, t0 + 500ms, t0 + 510ms, {});  // warmup
  r.record(0, t0 + 2500ms, t0 + 2520ms, {});
  r.record(1, t0 + 3s, t0 + 3s + 40ms, {});
  r.record(1, t0 + 3s, t0 + 3s + 1ms, {ErrorKind::tool, 0, "no such table"});
  r.finish(t0 + 4s);
  const auto s = r.summary();
  EXPECT_EQ(s.ok, 2u);
  EXPECT_EQ(s.errors, 1u);
  EXPECT_DOUBLE_EQ(s.measured_seconds, 2.0);
  EXPECT_DOUBLE_EQ(s.ok_per_second(), 1.0);
  EXPECT_EQ(s.latency.min(), 20'000u);
  EXPECT_EQ(s.latency.max(), 40'000u);
  EXPECT_EQ(r.calls()[0].ok, 1u);
  EXPECT_EQ(r.calls()[1].errors, 1u);
  EXPECT_EQ(r.total_ok(), 3u);  // the warmup's too
}

TEST(LoadRecorderTest, OneEntryPerSecond) {
  LoadRecorder r({"a"}, 1s);
  r.start(t0);
  r.observe(t0, 4, 4, 0);
  r.record(0, t0 + 100ms, t0 + 200ms, {});
  r.record(0, t0 + 2100ms, t0 + 2105ms, {});
  r.record(0, t0 + 2100ms, t0 + 2300ms, {ErrorKind::timeout, 0, ""});
  r.observe(t0 + 2900ms, 8, 8, 3);
  r.finish(t0 + 3500ms);
  const auto& s = r.seconds();
  ASSERT_EQ(s.size(), 4u);
  EXPECT_TRUE(s[0].warmup);
  EXPECT_FALSE(s[1].warmup);
  EXPECT_EQ(s[0].ok, 1u);
  EXPECT_EQ(s[0].p50, 100'000u);
  EXPECT_EQ(s[1].ok, 0u);
  EXPECT_EQ(s[2].ok, 1u);
  EXPECT_EQ(s[2].errors, 1u);
  EXPECT_EQ(s[2].p99, 5'000u);
  EXPECT_DOUBLE_EQ(s[2].target, 8);
  EXPECT_EQ(s[2].in_flight, 3u);
  EXPECT_EQ(s[3].index, 3u);
}

TEST(LoadRecorderTest, ErrorsGroupByKindWithTheFirstMessage) {
  LoadRecorder r({"a"}, 0s);
  r.start(t0);
  r.record(0, t0, t0 + 1ms, {ErrorKind::http, 429, "rate limited"});
  r.record(0, t0, t0 + 1ms, {ErrorKind::http, 429, "later"});
  r.record(0, t0, t0 + 1ms, {ErrorKind::http, 503, "draining"});
  r.record(LoadRecorder::kNoCall, t0, t0 + 1ms, {ErrorKind::connection, 0, "refused"});
  r.finish(t0 + 1s);
  const auto e = r.errors();
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].kind, "http_429");
  EXPECT_EQ(e[0].count, 2u);
  EXPECT_EQ(e[0].sample, "rate limited");
  EXPECT_EQ(r.summary().errors, 4u);
  EXPECT_EQ(r.calls()[0].errors, 3u);
}

TEST(LoadRecorderTest, TheReportCarriesTheVerdict) {
  LoadRecorder r({"a"}, 0s);
  r.start(t0);
  for (int i = 0; i < 100; ++i) r.record(0, t0, t0 + 2ms, {});
  r.finish(t0 + 1s);
  ReportContext context;
  context.config = {{"mode", "closed"}, {"scenario", {{"name", "x"}}}};
  context.thresholds.push_back(Threshold::parse("p99<1ms").evaluate(r.summary()));
  const auto report = build_report(r, context);
  EXPECT_EQ(report["summary"]["ok"], 100);
  EXPECT_DOUBLE_EQ(report["summary"]["latency_ms"]["p50"].get<double>(), 2.0);
  EXPECT_EQ(report["passed"], false);
  EXPECT_EQ(report["exit_status"], kExitFailed);
  EXPECT_EQ(report["timeseries"].size(), 1u);
  EXPECT_FALSE(report["histogram"].empty());
}

}  // namespace
}  // namespace sluice::load
