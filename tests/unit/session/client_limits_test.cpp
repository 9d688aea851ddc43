#include "session/client_limits.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice::session {
namespace {

using namespace std::chrono_literals;
using Clock = ClientLimiter::Clock;
using TimePoint = ClientLimiter::TimePoint;
using Permit = ClientLimiter::Permit;

// The limiter takes time as an argument, so the clock here is a plain variable.
const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

LimitPolicy rate(double per_second, double burst) {
  LimitPolicy p;
  p.rate_per_second = per_second;
  p.burst = burst;
  return p;
}

LimitPolicy in_flight(std::uint32_t max) {
  LimitPolicy p;
  p.max_in_flight = max;
  return p;
}

ClientLimiterParams with_default(LimitPolicy p) {
  ClientLimiterParams params;
  params.defaults = p;
  return params;
}

std::string error_of(const ClientLimiterParams& p) {
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// Admits and keeps the permit; fails the test if refused.
void admit_ok(ClientLimiter& l, std::vector<Permit>& held, std::string_view client,
              std::string_view source, TimePoint now) {
  auto a = l.admit(client, source, now);
  ASSERT_TRUE(a.ok()) << client << "/" << source << " refused: " << to_string(*a.refusal);
  EXPECT_EQ(a.retry_after, Clock::duration{0});
  held.push_back(std::move(a.permit));
}

void expect_refused(ClientLimiter& l, std::string_view client, std::string_view source,
                    TimePoint now, Refusal why, Clock::duration retry_after) {
  auto a = l.admit(client, source, now);
  ASSERT_FALSE(a.ok()) << client << "/" << source << " was admitted";
  EXPECT_EQ(*a.refusal, why) << to_string(*a.refusal);
  EXPECT_EQ(a.retry_after, retry_after);
  EXPECT_FALSE(a.permit);
}

TEST(ClientLimiterParamsTest, DefaultsAreValid) {
  EXPECT_EQ(error_of(ClientLimiterParams{}), "");
  EXPECT_NO_THROW(ClientLimiter{ClientLimiterParams{}});
}

TEST(ClientLimiterParamsTest, ErrorsNameTheField) {
  ClientLimiterParams p;
  p.defaults.rate_per_second = -1;
  EXPECT_EQ(error_of(p).rfind("limits.default.rate_per_second: ", 0), 0u) << error_of(p);
  p = {};
  p.defaults = rate(10, 0.5);
  EXPECT_EQ(error_of(p), "limits.default.burst: must be at least 1 when rate_per_second is set");
  p = {};
  p.per_client["bot"] = rate(std::numeric_limits<double>::infinity(), 1);
  EXPECT_EQ(error_of(p).rfind("limits.clients.bot.rate_per_second: ", 0), 0u) << error_of(p);
  p = {};
  p.per_source["warehouse"] = rate(1e-9, 1);
  EXPECT_EQ(error_of(p).rfind("limits.sources.warehouse.burst: ", 0), 0u) << error_of(p);
  p = {};
  p.in_flight_retry_after = -1ms;
  EXPECT_EQ(error_of(p).rfind("limits.in_flight_retry_after: ", 0), 0u) << error_of(p);
  // Burst is ignored without a rate.
  p = {};
  p.defaults.burst = 0;
  EXPECT_EQ(error_of(p), "");
  EXPECT_THROW(ClientLimiter{with_default(rate(1, 0))}, std::invalid_argument);
}

TEST(ClientLimiterTest, UnlimitedByDefault) {
  ClientLimiter l{ClientLimiterParams{}};
  std::vector<Permit> held;
  for (int i = 0; i < 1000; ++i) admit_ok(l, held, "a", "demo", t0);
  EXPECT_EQ(l.totals().in_flight, 1000u);
}

TEST(ClientLimiterTest, BurstThenOneTokenPerInterval) {
  ClientLimiter l{with_default(rate(10, 5))};
  std::vector<Permit> held;
  for (int i = 0; i < 5; ++i) admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::rate_limited, 100ms);
  expect_refused(l, "a", "demo", t0 + 40ms, Refusal::rate_limited, 60ms);
  expect_refused(l, "a", "demo", t0 + 100ms - 1ns, Refusal::rate_limited, 1ns);
  admit_ok(l, held, "a", "demo", t0 + 100ms);
  expect_refused(l, "a", "demo", t0 + 100ms, Refusal::rate_limited, 100ms);
  // Three intervals later, three tokens.
  for (int i = 0; i < 3; ++i) admit_ok(l, held, "a", "demo", t0 + 400ms);
  expect_refused(l, "a", "demo", t0 + 400ms, Refusal::rate_limited, 100ms);
}

TEST(ClientLimiterTest, BucketRefillsOnlyUpToBurst) {
  ClientLimiter l{with_default(rate(10, 5))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  const TimePoint later = t0 + 1h;
  for (int i = 0; i < 5; ++i) admit_ok(l, held, "a", "demo", later);
  expect_refused(l, "a", "demo", later, Refusal::rate_limited, 100ms);
}

TEST(ClientLimiterTest, FractionalBurstIsAPartialToken) {
  ClientLimiter l{with_default(rate(10, 1.5))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::rate_limited, 50ms);
  admit_ok(l, held, "a", "demo", t0 + 50ms);
  expect_refused(l, "a", "demo", t0 + 50ms, Refusal::rate_limited, 100ms);
}

TEST(ClientLimiterTest, SteadyRateDoesNotDrift) {
  // 1/3 s is not a whole number of nanoseconds; pacing exactly at the interval must hold
  // for as long as it runs.
  ClientLimiter l{with_default(rate(3, 1))};
  std::vector<Permit> held;
  const Clock::duration interval = 333'333'333ns;
  TimePoint now = t0;
  for (int i = 0; i < 10'000; ++i) {
    admit_ok(l, held, "a", "demo", now);
    held.clear();
    expect_refused(l, "a", "demo", now + interval - 1ns, Refusal::rate_limited, 1ns);
    now += interval;
  }
  EXPECT_EQ(l.totals().admitted, 10'000u);
}

TEST(ClientLimiterTest, RefusalsConsumeNoTokens) {
  ClientLimiter l{with_default(rate(1, 1))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  for (int i = 0; i < 100; ++i) {
    expect_refused(l, "a", "demo", t0 + i * 5ms, Refusal::rate_limited, 1s - i * 5ms);
  }
  admit_ok(l, held, "a", "demo", t0 + 1s);
  EXPECT_EQ(l.totals().rejected.rate_limited, 100u);
  EXPECT_EQ(l.totals().admitted, 2u);
}

TEST(ClientLimiterTest, InFlightCapUntilPermitReleased) {
  ClientLimiterParams params = with_default(in_flight(2));
  params.in_flight_retry_after = 250ms;
  ClientLimiter l{params};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 250ms);
  // Time alone does not help.
  expect_refused(l, "a", "demo", t0 + 24h, Refusal::too_many_in_flight, 250ms);
  held[0].reset();
  EXPECT_FALSE(held[0]);
  held[0].reset();  // a second reset does nothing
  EXPECT_EQ(l.totals().in_flight, 1u);
  admit_ok(l, held, "a", "demo", t0 + 24h);
  expect_refused(l, "a", "demo", t0 + 24h, Refusal::too_many_in_flight, 250ms);
  held.clear();
  EXPECT_EQ(l.totals().in_flight, 0u);
  admit_ok(l, held, "a", "demo", t0 + 24h);
}

TEST(ClientLimiterTest, InFlightRetryHintDefaultsToOneSecond) {
  ClientLimiter l{with_default(in_flight(1))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);
}

TEST(ClientLimiterTest, PermitsMoveWithoutDoubleRelease) {
  ClientLimiter l{with_default(in_flight(2))};
  auto a = l.admit("a", "demo", t0);
  auto b = l.admit("a", "demo", t0);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  Permit moved = std::move(a.permit);
  EXPECT_FALSE(a.permit);
  EXPECT_TRUE(moved);
  EXPECT_EQ(l.totals().in_flight, 2u);
  moved = std::move(b.permit);  // releases what `moved` held
  EXPECT_EQ(l.totals().in_flight, 1u);
  Permit& alias = moved;
  moved = std::move(alias);  // self-move keeps it
  EXPECT_EQ(l.totals().in_flight, 1u);
  { Permit last = std::move(moved); }
  EXPECT_EQ(l.totals().in_flight, 0u);
  EXPECT_EQ(l.snapshot(t0).at(0).in_flight, 0u);
}

TEST(ClientLimiterTest, HourlyQuotaWindowOpensAtFirstAdmitAndResets) {
  LimitPolicy p;
  p.hourly_quota = 3;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  admit_ok(l, held, "a", "demo", t0 + 10min);
  admit_ok(l, held, "a", "demo", t0 + 20min);
  expect_refused(l, "a", "demo", t0 + 30min, Refusal::hourly_quota, 30min);
  expect_refused(l, "a", "demo", t0 + 1h - 1ns, Refusal::hourly_quota, 1ns);
  EXPECT_EQ(l.snapshot(t0 + 30min).at(0).hourly_used, 3u);
  // The next window opens at the first admit after the old one ended.
  admit_ok(l, held, "a", "demo", t0 + 1h);
  EXPECT_EQ(l.snapshot(t0 + 1h).at(0).hourly_used, 1u);
  admit_ok(l, held, "a", "demo", t0 + 1h + 59min);
  admit_ok(l, held, "a", "demo", t0 + 1h + 59min);
  expect_refused(l, "a", "demo", t0 + 1h + 59min, Refusal::hourly_quota, 1min);
}

TEST(ClientLimiterTest, QuotaWindowIsNotAlignedToTheClock) {
  LimitPolicy p;
  p.hourly_quota = 2;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  // After a quiet spell longer than the window, the window starts again at the next admit.
  const TimePoint t1 = t0 + 3h + 17min;
  admit_ok(l, held, "a", "demo", t1);
  admit_ok(l, held, "a", "demo", t1 + 30min);
  expect_refused(l, "a", "demo", t1 + 45min, Refusal::hourly_quota, 15min);
  EXPECT_EQ(l.snapshot(t1 + 61min).at(0).hourly_used, 0u);  // the window has ended
}

TEST(ClientLimiterTest, DailyQuotaResetsAfterTwentyFourHours) {
  LimitPolicy p;
  p.daily_quota = 2;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0 + 1h);
  admit_ok(l, held, "a", "demo", t0 + 5h);
  expect_refused(l, "a", "demo", t0 + 6h, Refusal::daily_quota, 19h);
  EXPECT_EQ(l.snapshot(t0 + 6h).at(0).daily_used, 2u);
  admit_ok(l, held, "a", "demo", t0 + 25h);
  admit_ok(l, held, "a", "demo", t0 + 25h);
  expect_refused(l, "a", "demo", t0 + 25h, Refusal::daily_quota, 24h);
}

TEST(ClientLimiterTest, QuotaRefusalsConsumeNothing) {
  LimitPolicy p;
  p.hourly_quota = 1;
  p.daily_quota = 3;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  for (int i = 1; i <= 50; ++i) {
    expect_refused(l, "a", "demo", t0 + i * 1min, Refusal::hourly_quota, 60min - i * 1min);
  }
  admit_ok(l, held, "a", "demo", t0 + 1h);
  admit_ok(l, held, "a", "demo", t0 + 2h);
  // The daily quota (3) is now used up; its window ends 24 h after the first admit.
  expect_refused(l, "a", "demo", t0 + 3h, Refusal::daily_quota, 21h);
  const auto s = l.snapshot(t0 + 3h).at(0);
  EXPECT_EQ(s.admitted, 3u);
  EXPECT_EQ(s.rejected.hourly_quota, 50u);
  EXPECT_EQ(s.rejected.daily_quota, 1u);
  EXPECT_EQ(s.daily_used, 3u);
  EXPECT_EQ(s.hourly_used, 0u);
}

TEST(ClientLimiterTest, LongestRetryAfterDecidesTheReason) {
  // Both quotas exhausted: the hourly window ends later than the daily one here.
  LimitPolicy p;
  p.hourly_quota = 1;
  p.daily_quota = 2;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  admit_ok(l, held, "a", "demo", t0 + 23h + 30min);
  expect_refused(l, "a", "demo", t0 + 23h + 40min, Refusal::hourly_quota, 50min);
  expect_refused(l, "a", "demo", t0 + 24h, Refusal::hourly_quota, 30min);

  // Rate (10 s to the next token) outlasts the in-flight hint (1 s).
  // (Permits must not outlive their limiter: each limiter gets its own vector.)
  ClientLimiter slow{with_default(LimitPolicy{0.1, 1, 1, 0, 0})};
  std::vector<Permit> slow_held;
  admit_ok(slow, slow_held, "a", "demo", t0);
  expect_refused(slow, "a", "demo", t0, Refusal::rate_limited, 10s);
  expect_refused(slow, "a", "demo", t0 + 9500ms, Refusal::too_many_in_flight, 1s);

  // A tie goes to the in-flight cap.
  ClientLimiter tie{with_default(LimitPolicy{1, 1, 1, 0, 0})};
  std::vector<Permit> tie_held;
  admit_ok(tie, tie_held, "a", "demo", t0);
  expect_refused(tie, "a", "demo", t0, Refusal::too_many_in_flight, 1s);
  const auto s = tie.snapshot(t0).at(0);
  EXPECT_EQ(s.rejected.too_many_in_flight, 1u);
  EXPECT_EQ(s.rejected.total(), 1u);  // one refusal, counted once
}

TEST(ClientLimiterTest, PolicyResolutionClientThenSourceThenDefault) {
  ClientLimiterParams params = with_default(in_flight(1));
  params.per_source["warehouse"] = in_flight(2);
  params.per_client["vip"] = in_flight(3);
  ClientLimiter l{params};
  std::vector<Permit> held;

  // Default for a source without an override.
  admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);
  // The source's override is its own budget per client, apart from the default one.
  admit_ok(l, held, "a", "warehouse", t0);
  admit_ok(l, held, "a", "warehouse", t0);
  expect_refused(l, "a", "warehouse", t0, Refusal::too_many_in_flight, 1s);
  // A client override beats the source's, and covers all sources together.
  admit_ok(l, held, "vip", "warehouse", t0);
  admit_ok(l, held, "vip", "warehouse", t0);
  admit_ok(l, held, "vip", "demo", t0);
  expect_refused(l, "vip", "demo", t0, Refusal::too_many_in_flight, 1s);
  expect_refused(l, "vip", "warehouse", t0, Refusal::too_many_in_flight, 1s);
  expect_refused(l, "vip", "anything", t0, Refusal::too_many_in_flight, 1s);

  const auto snap = l.snapshot(t0);
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].client, "a");
  EXPECT_EQ(snap[0].source, "");
  EXPECT_EQ(snap[0].in_flight, 1u);
  EXPECT_EQ(snap[1].client, "a");
  EXPECT_EQ(snap[1].source, "warehouse");
  EXPECT_EQ(snap[1].in_flight, 2u);
  EXPECT_EQ(snap[2].client, "vip");
  EXPECT_EQ(snap[2].source, "");
  EXPECT_EQ(snap[2].in_flight, 3u);
  EXPECT_EQ(snap[2].rejected.too_many_in_flight, 3u);
}

TEST(ClientLimiterTest, DefaultBudgetIsSharedBySourcesWithoutOverride) {
  ClientLimiter l{with_default(rate(10, 2))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  admit_ok(l, held, "a", "lake", t0);
  expect_refused(l, "a", "demo", t0, Refusal::rate_limited, 100ms);
  expect_refused(l, "a", "lake", t0, Refusal::rate_limited, 100ms);
  EXPECT_EQ(l.snapshot(t0).size(), 1u);
}

TEST(ClientLimiterTest, ClientsAreIndependent) {
  ClientLimiter l{with_default(LimitPolicy{10, 1, 1, 1, 0})};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0 + 1min, Refusal::hourly_quota, 59min);
  admit_ok(l, held, "b", "demo", t0);
  admit_ok(l, held, "", "demo", t0);  // an empty id is just another client
  EXPECT_EQ(l.totals().tracked, 3u);
}

TEST(ClientLimiterTest, PruneDropsOnlyIdleEntries) {
  ClientLimiterParams params = with_default(rate(10, 5));
  LimitPolicy quota;
  quota.hourly_quota = 10;
  params.per_client["quota"] = quota;
  ClientLimiter l{params};
  std::vector<Permit> held;

  auto one_off = l.admit("one-off", "demo", t0);  // released at once
  ASSERT_TRUE(one_off.ok());
  one_off.permit.reset();
  admit_ok(l, held, "busy", "demo", t0);  // stays in flight
  admit_ok(l, held, "quota", "demo", t0);
  held.back().reset();  // released, but its hourly window stays open
  EXPECT_EQ(l.totals().tracked, 3u);

  // 50 ms later one-off's bucket is not yet full again.
  EXPECT_EQ(l.prune(t0 + 50ms), 0u);
  EXPECT_EQ(l.prune(t0 + 100ms), 1u);
  auto snap = l.snapshot(t0 + 100ms);
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].client, "busy");
  EXPECT_EQ(snap[1].client, "quota");

  EXPECT_EQ(l.prune(t0 + 1h - 1ns), 0u);
  EXPECT_EQ(l.prune(t0 + 1h), 1u);
  ASSERT_EQ(l.snapshot(t0 + 1h).size(), 1u);
  EXPECT_EQ(l.snapshot(t0 + 1h)[0].client, "busy");

  held.clear();
  EXPECT_EQ(l.prune(t0 + 1h), 1u);
  const auto totals = l.totals();
  EXPECT_EQ(totals.tracked, 0u);
  EXPECT_EQ(totals.pruned, 3u);
  EXPECT_EQ(totals.admitted, 3u);  // monotonic: survives pruning
  EXPECT_EQ(totals.in_flight, 0u);
}

TEST(ClientLimiterTest, PrunedClientStartsAfresh) {
  LimitPolicy p;
  p.hourly_quota = 1;
  ClientLimiter l{with_default(p)};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  held.clear();
  EXPECT_EQ(l.prune(t0 + 30min), 0u);  // the window is open: pruning would forget the quota
  expect_refused(l, "a", "demo", t0 + 30min, Refusal::hourly_quota, 30min);
  EXPECT_EQ(l.prune(t0 + 1h), 1u);
  admit_ok(l, held, "a", "demo", t0 + 1h);
  EXPECT_EQ(l.snapshot(t0 + 1h).at(0).admitted, 1u);
  EXPECT_EQ(l.snapshot(t0 + 1h).at(0).rejected.total(), 0u);
}

TEST(ClientLimiterTest, ReconfigureAppliesFromTheNextRequest) {
  ClientLimiter l{with_default(in_flight(3))};
  std::vector<Permit> held;
  admit_ok(l, held, "a", "demo", t0);
  admit_ok(l, held, "a", "demo", t0);
  l.reconfigure(with_default(in_flight(2)));
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);

  // An invalid config throws and changes nothing.
  EXPECT_THROW(l.reconfigure(with_default(rate(-1, 1))), std::invalid_argument);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);

  // Moving the client to its own override starts a new budget; old permits still release.
  ClientLimiterParams own = with_default(in_flight(2));
  own.per_client["a"] = in_flight(1);
  own.per_source["demo"] = in_flight(5);
  l.reconfigure(own);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);  // still the "" scope
  ClientLimiterParams by_source = with_default(in_flight(2));
  by_source.per_source["demo"] = in_flight(5);
  l.reconfigure(by_source);
  for (int i = 0; i < 5; ++i) admit_ok(l, held, "a", "demo", t0);
  expect_refused(l, "a", "demo", t0, Refusal::too_many_in_flight, 1s);
  EXPECT_EQ(l.totals().in_flight, 7u);
  held.clear();
  EXPECT_EQ(l.totals().in_flight, 0u);
  EXPECT_EQ(l.prune(t0), 2u);
}

TEST(ClientLimiterTest, RefusalNames) {
  EXPECT_EQ(to_string(Refusal::rate_limited), "rate_limited");
  EXPECT_EQ(to_string(Refusal::too_many_in_flight), "too_many_in_flight");
  EXPECT_EQ(to_string(Refusal::hourly_quota), "hourly_quota");
  EXPECT_EQ(to_string(Refusal::daily_quota), "daily_quota");
}

// Random traffic against a model: in-flight counts always equal permits held, never exceed
// the cap, every refusal says when to retry, counters add up, and no stretch of time admits
// more than the token bucket allows: n admits within [t_i, t_j] need
// n × interval <= (t_j - t_i) + capacity.
TEST(ClientLimiterTest, RandomTrafficKeepsInvariants) {
  struct Scope {
    std::string client;
    std::string source;
    auto operator<=>(const Scope&) const = default;
  };
  for (std::uint64_t seed : {1u, 2u, 3u, 42u, 1234u}) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    ClientLimiterParams params = with_default(LimitPolicy{10, 3, 4, 0, 0});
    params.per_source["warehouse"] = LimitPolicy{4, 2, 2, 0, 0};
    params.per_client["vip"] = LimitPolicy{20, 5, 6, 0, 0};
    const std::map<std::string, std::pair<Clock::duration, Clock::duration>> bucket = {
        {"", {100ms, 300ms}}, {"warehouse", {250ms, 500ms}}, {"vip", {50ms, 250ms}}};
    ClientLimiter l{params};
    const std::vector<std::string> clients = {"a", "b", "c", "vip"};
    const std::vector<std::string> sources = {"demo", "lake", "warehouse"};

    std::vector<std::pair<Scope, Permit>> held;
    std::map<Scope, std::vector<TimePoint>> admitted_at;
    std::uint64_t admitted = 0;
    std::uint64_t refused = 0;
    TimePoint now = t0;
    for (int step = 0; step < 3000; ++step) {
      const auto op = rng() % 10;
      if (op < 5) {
        const std::string& client = clients[rng() % clients.size()];
        const std::string& source = sources[rng() % sources.size()];
        const Scope scope{client,
                          client == "vip" || source != "warehouse" ? std::string() : source};
        auto a = l.admit(client, source, now);
        if (a.ok()) {
          ++admitted;
          held.emplace_back(scope, std::move(a.permit));
          auto& times = admitted_at[scope];
          times.push_back(now);
          const auto [interval, capacity] = bucket.at(client == "vip" ? "vip" : scope.source);
          for (std::size_t i = 0; i < times.size(); ++i) {
            const auto n = static_cast<Clock::rep>(times.size() - i);
            ASSERT_LE(n * interval.count(), (now - times[i] + capacity).count());
          }
        } else {
          ++refused;
          ASSERT_GT(a.retry_after.count(), 0);
        }
      } else if (op < 8 && !held.empty()) {
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(rng() % held.size()));
      } else if (op == 8) {
        now += std::chrono::milliseconds(rng() % 200);
      } else {
        l.prune(now);
      }

      const auto totals = l.totals();
      ASSERT_EQ(totals.in_flight, held.size());
      ASSERT_EQ(totals.admitted, admitted);
      ASSERT_EQ(totals.rejected.total(), refused);
      std::map<Scope, std::uint32_t> expected;
      for (const auto& [scope, permit] : held) ++expected[scope];
      for (const auto& s : l.snapshot(now)) {
        const Scope scope{s.client, s.source};
        ASSERT_EQ(s.in_flight, expected[scope]) << s.client << "/" << s.source;
        const std::uint32_t cap = s.client == "vip" ? 6 : s.source.empty() ? 4 : 2;
        ASSERT_LE(s.in_flight, cap);
        expected.erase(scope);
      }
      for (const auto& [scope, n] : expected) ASSERT_EQ(n, 0u) << "untracked entry in flight";
    }
    held.clear();
    EXPECT_EQ(l.totals().in_flight, 0u);
    EXPECT_GT(admitted, 500u);
    EXPECT_GT(l.totals().rejected.rate_limited, 50u);
    EXPECT_GT(l.totals().rejected.too_many_in_flight, 50u);
    EXPECT_GT(l.totals().pruned, 0u);
  }
}

// Many threads on one limiter: the mutex keeps the counts exact and the cap is never
// exceeded. Meant for the TSAN build as much as for the assertions.
TEST(ClientLimiterTest, ConcurrentAdmitAndReleaseStayConsistent) {
  ClientLimiter l{with_default(in_flight(2))};
  constexpr int threads = 4;
  constexpr int rounds = 5000;
  std::array<std::atomic<int>, 2> running{};
  std::atomic<bool> over_cap{false};
  std::atomic<std::uint64_t> ok{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::size_t c = static_cast<std::size_t>(t % 2);
      const std::string client = c == 0 ? "a" : "b";
      for (int i = 0; i < rounds; ++i) {
        auto a = l.admit(client, "demo", t0);
        if (!a.ok()) continue;
        ok.fetch_add(1);
        if (running[c].fetch_add(1) + 1 > 2) over_cap = true;
        running[c].fetch_sub(1);
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_FALSE(over_cap);
  const auto totals = l.totals();
  EXPECT_EQ(totals.in_flight, 0u);
  EXPECT_EQ(totals.admitted, ok.load());
  EXPECT_EQ(totals.admitted + totals.rejected.total(),
            static_cast<std::uint64_t>(threads * rounds));
}

}  // namespace
}  // namespace sluice::session
