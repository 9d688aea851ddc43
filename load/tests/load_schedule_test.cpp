#include "load/src/load_schedule.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "load/src/duration_text.hpp"

namespace sluice::load {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

std::string error_of(std::string_view text) {
  try {
    LoadSchedule::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(DurationTextTest, ParsesUnitsAndSums) {
  EXPECT_EQ(parse_duration("10s"), microseconds(10s));
  EXPECT_EQ(parse_duration("250ms"), microseconds(250ms));
  EXPECT_EQ(parse_duration("800us"), microseconds(800));
  EXPECT_EQ(parse_duration("2m"), microseconds(2min));
  EXPECT_EQ(parse_duration("1h"), microseconds(1h));
  EXPECT_EQ(parse_duration("1m30s"), microseconds(90s));
  EXPECT_EQ(parse_duration("1.5s"), microseconds(1500ms));
  EXPECT_EQ(parse_duration("0s"), microseconds(0));
  for (const char* bad : {"", "10", "s", "10x", "-1s", "1..5s", ".5s", "10 s"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(2min), "2m");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(microseconds(0)), "0s");
}

TEST(LoadScheduleTest, StagesRampLinearlyFromThePreviousTarget) {
  const auto s = LoadSchedule::parse("10s:8,30s:64,10s:0");
  ASSERT_EQ(s.stages().size(), 3u);
  EXPECT_EQ(s.stages()[1], (Stage{30s, 64}));
  EXPECT_EQ(s.total(), microseconds(50s));
  EXPECT_DOUBLE_EQ(s.peak(), 64);
  EXPECT_DOUBLE_EQ(s.target_at(0s), 0);
  EXPECT_DOUBLE_EQ(s.target_at(5s), 4);
  EXPECT_DOUBLE_EQ(s.target_at(25s), 8 + 56.0 * 15 / 30);
  EXPECT_DOUBLE_EQ(s.target_at(45s), 32);
  EXPECT_DOUBLE_EQ(s.target_at(60s), 0);
  EXPECT_EQ(s.to_string(), "10s:8,30s:64,10s:0");
}

TEST(LoadScheduleTest, AZeroLengthStageJumps) {
  const auto s = LoadSchedule::parse("0s:20, 5s:20");
  EXPECT_DOUBLE_EQ(s.target_at(0s), 20);
  EXPECT_DOUBLE_EQ(s.target_at(4s), 20);
  EXPECT_EQ(s.total(), microseconds(5s));
}

TEST(LoadScheduleTest, ErrorsNameTheStage) {
  EXPECT_NE(error_of("10s:8,30x:64").find("stage 2 (\"30x:64\")"), std::string::npos)
      << error_of("10s:8,30x:64");
  EXPECT_NE(error_of("10s:8,30x:64").find("unit"), std::string::npos);
  EXPECT_NE(error_of("10s").find("DURATION:TARGET"), std::string::npos);
  EXPECT_NE(error_of("10s:-1").find("stage 1"), std::string::npos);
  EXPECT_NE(error_of("10s:many").find(">= 0"), std::string::npos);
  EXPECT_NE(error_of("0s:5").find("total duration is zero"), std::string::npos);
  EXPECT_NE(error_of("10s:5,").find("stage 2"), std::string::npos);
}

TEST(LoadScheduleTest, ProfilesScaleToThePeak) {
  for (const auto name : LoadSchedule::profile_names()) {
    const auto s = LoadSchedule::profile(name, 40);
    EXPECT_GT(s.total(), microseconds(0)) << name;
    EXPECT_DOUBLE_EQ(s.target_at(s.total() + 1s), name == "smoke" ? 1 : 0) << name;
  }
  EXPECT_DOUBLE_EQ(LoadSchedule::profile("smoke", 40).peak(), 1);
  EXPECT_DOUBLE_EQ(LoadSchedule::profile("load", 40).peak(), 40);
  EXPECT_DOUBLE_EQ(LoadSchedule::profile("stress", 40).peak(), 120);
  const auto spike = LoadSchedule::profile("spike", 40);
  EXPECT_DOUBLE_EQ(spike.target_at(5s), 4);
  EXPECT_DOUBLE_EQ(spike.peak(), 40);
  EXPECT_EQ(LoadSchedule::profile("soak", 10).total(), microseconds(2min + 1h));
  // --duration replaces the time held at the plateau.
  EXPECT_EQ(LoadSchedule::profile("load", 10, microseconds(30s)).total(), microseconds(60s));
  EXPECT_THROW(LoadSchedule::profile("burst", 10), std::invalid_argument);
}

TEST(LoadScheduleTest, ArrivalsAtAConstantRate) {
  const auto s = LoadSchedule::constant(100, 10s);
  EXPECT_DOUBLE_EQ(s.arrivals_until(1s), 100);
  EXPECT_DOUBLE_EQ(s.arrivals_until(10s), 1000);
  EXPECT_EQ(s.arrival_time(0.5), microseconds(5000));
  EXPECT_EQ(s.arrival_time(150), microseconds(1500ms));
  EXPECT_EQ(s.arrival_time(999.5), microseconds(9995ms));
  EXPECT_FALSE(s.arrival_time(1000.5));
}

TEST(LoadScheduleTest, ArrivalsFollowRampsUpAndDown) {
  // Up: rate 10 t per second, so 5 t^2 requests by t.
  const auto up = LoadSchedule::parse("10s:100");
  EXPECT_DOUBLE_EQ(up.arrivals_until(10s), 500);
  EXPECT_EQ(up.arrival_time(125), microseconds(5s));
  EXPECT_EQ(up.arrival_time(20), microseconds(2s));
  // Down from 100: 100 t - 5 t^2.
  const auto down = LoadSchedule::parse("0s:100,10s:0");
  EXPECT_EQ(down.arrival_time(375), microseconds(5s));
  EXPECT_EQ(down.arrival_time(500), microseconds(10s));
  // A pause at zero, then a constant stage.
  const auto gap = LoadSchedule::parse("0s:0,5s:0,0s:10,5s:10");
  EXPECT_EQ(gap.arrival_time(1), microseconds(5100ms));
  EXPECT_DOUBLE_EQ(gap.arrivals_until(7s), 20);
}

TEST(LoadScheduleTest, ArrivalTimesIncreaseAndMatchTheCount) {
  const auto s = LoadSchedule::parse("3s:50,4s:50,3s:0");
  microseconds previous{-1};
  int n = 0;
  for (int k = 0;; ++k) {
    const auto t = s.arrival_time(k + 0.5);
    if (!t) break;
    EXPECT_GE(*t, previous);
    previous = *t;
    ++n;
  }
  EXPECT_EQ(n, 350);  // 75 + 200 + 75
}

}  // namespace
}  // namespace sluice::load
