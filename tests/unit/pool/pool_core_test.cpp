#include "pool/pool_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;
using Kind = PoolCore::Action::Kind;
using Actions = PoolCore::Actions;

// The core takes time as an argument, so the clock here is a plain variable.
struct FakeClock {
  Clock::time_point now{std::chrono::hours(1000)};
  void advance(Clock::duration d) { now += d; }
};

PoolParams small_pool(std::size_t min, std::size_t max) {
  PoolParams p;
  p.min_size = min;
  p.max_size = max;
  p.backoff_initial = 100ms;
  p.backoff_max = 1600ms;
  p.backoff_jitter = 0.0;
  p.validate_after_idle = 10s;
  p.idle_timeout = 60s;
  p.max_lifetime = 600s;
  return p;
}

std::vector<PoolCore::Action> of_kind(const Actions& a, Kind k) {
  std::vector<PoolCore::Action> out;
  std::copy_if(a.begin(), a.end(), std::back_inserter(out),
               [k](const PoolCore::Action& x) { return x.kind == k; });
  return out;
}

void expect_accounting(const PoolCore& core) {
  const PoolStats s = core.stats();
  EXPECT_EQ(s.idle + s.busy + s.connecting, s.total);
  EXPECT_LE(s.total, core.params().max_size);
}

class PoolCoreTest : public ::testing::Test {
 protected:
  // Opens `n` connections and reports them connected.
  std::vector<PoolCore::ConnId> open(PoolCore& core, std::size_t n) {
    Actions a;
    core.start(clock.now, a);
    std::vector<PoolCore::ConnId> ids;
    for (const auto& x : of_kind(a, Kind::connect)) ids.push_back(x.conn);
    EXPECT_EQ(ids.size(), n);
    for (auto id : ids) {
      Actions b;
      core.connect_succeeded(id, clock.now, b);
    }
    return ids;
  }
  FakeClock clock;
};

TEST_F(PoolCoreTest, StartOpensMinSizeConnections) {
  PoolCore core(small_pool(3, 5), 1);
  Actions a;
  core.start(clock.now, a);
  EXPECT_EQ(of_kind(a, Kind::connect).size(), 3u);
  EXPECT_EQ(core.stats().connecting, 3u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, IdleConnectionIsGrantedAtOnce) {
  PoolCore core(small_pool(1, 2), 1);
  auto ids = open(core, 1);
  Actions a;
  core.acquire(7, clock.now + 1s, clock.now, a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], (PoolCore::Action{Kind::grant, ids[0], 7, {}}));
  EXPECT_EQ(core.stats().busy, 1u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, GrowsOnDemandUpToMaxSize) {
  PoolCore core(small_pool(0, 2), 1);
  Actions a;
  core.start(clock.now, a);
  EXPECT_TRUE(a.empty());
  for (PoolCore::WaiterId w = 1; w <= 4; ++w) core.acquire(w, clock.now + 1s, clock.now, a);
  EXPECT_EQ(of_kind(a, Kind::connect).size(), 2u);
  EXPECT_EQ(core.stats().total, 2u);
  EXPECT_EQ(core.stats().waiters, 4u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, WaitersAreServedFirstComeFirstServed) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  Actions a;
  core.acquire(1, clock.now + 10s, clock.now, a);
  for (PoolCore::WaiterId w = 2; w <= 5; ++w) core.acquire(w, clock.now + 10s, clock.now, a);
  std::vector<PoolCore::WaiterId> order;
  for (int i = 0; i < 4; ++i) {
    Actions b;
    clock.advance(1ms);
    core.release(ids[0], true, clock.now, b);
    auto grants = of_kind(b, Kind::grant);
    ASSERT_EQ(grants.size(), 1u);
    order.push_back(grants[0].waiter);
  }
  EXPECT_EQ(order, (std::vector<PoolCore::WaiterId>{2, 3, 4, 5}));
}

TEST_F(PoolCoreTest, EachWaiterTimesOutAtItsOwnDeadline) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  Actions a;
  core.acquire(1, clock.now + 10s, clock.now, a);  // holds the only connection
  core.acquire(2, clock.now + 300ms, clock.now, a);
  core.acquire(3, clock.now + 100ms, clock.now, a);
  core.acquire(4, clock.now + 5s, clock.now, a);
  EXPECT_EQ(core.next_wake(), clock.now + 100ms);

  Actions b;
  clock.advance(99ms);
  core.tick(clock.now, b);
  EXPECT_TRUE(of_kind(b, Kind::fail).empty());
  clock.advance(1ms);
  core.tick(clock.now, b);
  ASSERT_EQ(of_kind(b, Kind::fail).size(), 1u);
  EXPECT_EQ(b.back(), (PoolCore::Action{Kind::fail, 0, 3, errc::acquire_timeout}));
  EXPECT_EQ(core.next_wake(), clock.now + 200ms);

  Actions c;
  clock.advance(200ms);
  core.tick(clock.now, c);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].waiter, 2u);
  // The survivor keeps its place and gets the connection.
  Actions d;
  core.release(ids[0], true, clock.now, d);
  ASSERT_EQ(of_kind(d, Kind::grant).size(), 1u);
  EXPECT_EQ(of_kind(d, Kind::grant)[0].waiter, 4u);
  EXPECT_EQ(core.stats().acquire_timeouts, 2u);
}

TEST_F(PoolCoreTest, DeadlineAlreadyPassedFailsAtOnce) {
  PoolCore core(small_pool(0, 1), 1);
  Actions a;
  core.acquire(1, clock.now, clock.now, a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], (PoolCore::Action{Kind::fail, 0, 1, errc::acquire_timeout}));
}

TEST_F(PoolCoreTest, ReconnectBacksOffExponentiallyUpToTheMaximum) {
  PoolCore core(small_pool(1, 1), 1);
  Actions a;
  core.start(clock.now, a);
  PoolCore::ConnId id = a.at(0).conn;
  std::vector<Clock::duration> delays;
  for (int i = 0; i < 7; ++i) {
    Actions b;
    core.connect_failed(id, clock.now, b);
    EXPECT_TRUE(of_kind(b, Kind::connect).empty()) << "no immediate retry after a failure";
    const auto wake = core.next_wake();
    ASSERT_TRUE(wake);
    delays.push_back(*wake - clock.now);
    clock.now = *wake - 1ms;
    Actions early;
    core.tick(clock.now, early);
    EXPECT_TRUE(of_kind(early, Kind::connect).empty());
    clock.advance(1ms);
    Actions c;
    core.tick(clock.now, c);
    ASSERT_EQ(of_kind(c, Kind::connect).size(), 1u);
    id = of_kind(c, Kind::connect)[0].conn;
    expect_accounting(core);
    EXPECT_EQ(core.stats().connecting, 1u);
  }
  EXPECT_EQ(delays,
            (std::vector<Clock::duration>{100ms, 200ms, 400ms, 800ms, 1600ms, 1600ms, 1600ms}));
  EXPECT_EQ(core.stats().failed_connects, 7u);
  Actions d;
  core.connect_succeeded(id, clock.now, d);
  EXPECT_EQ(core.stats().idle, 1u);
  // A success resets the backoff.
  Actions e;
  core.acquire(1, clock.now + 1s, clock.now, e);
  core.release(of_kind(e, Kind::grant).at(0).conn, false, clock.now, e);
  Actions f;
  ASSERT_EQ(of_kind(e, Kind::connect).size(), 1u);
  core.connect_failed(of_kind(e, Kind::connect)[0].conn, clock.now, f);
  EXPECT_EQ(*core.next_wake() - clock.now, 100ms);
}

TEST_F(PoolCoreTest, BackoffJitterStaysWithinItsFraction) {
  PoolParams p = small_pool(1, 1);
  p.backoff_jitter = 0.2;
  p.backoff_max = 100s;
  std::set<Clock::duration::rep> seen;
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    PoolCore core(p, seed);
    Actions a;
    core.start(clock.now, a);
    core.connect_failed(a.at(0).conn, clock.now, a);
    const auto d = *core.next_wake() - clock.now;
    EXPECT_GE(d, 80ms);
    EXPECT_LE(d, 120ms);
    seen.insert(d.count());
  }
  EXPECT_GT(seen.size(), 5u) << "jitter should spread retries of different pools";
}

TEST_F(PoolCoreTest, ConnectionIdleLongerThanThresholdIsValidatedBeforeUse) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  clock.advance(10s);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0], (PoolCore::Action{Kind::validate, ids[0], 1, {}}));
  expect_accounting(core);
  Actions b;
  core.validation_done(ids[0], true, clock.now, b);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], (PoolCore::Action{Kind::grant, ids[0], 1, {}}));
}

TEST_F(PoolCoreTest, FailedValidationReplacesTheConnectionForTheSameWaiter) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  clock.advance(11s);
  Actions a;
  core.acquire(1, clock.now + 5s, clock.now, a);
  Actions b;
  core.validation_done(ids[0], false, clock.now, b);
  ASSERT_EQ(of_kind(b, Kind::close).size(), 1u);
  ASSERT_EQ(of_kind(b, Kind::connect).size(), 1u);
  const auto fresh = of_kind(b, Kind::connect)[0].conn;
  Actions c;
  core.connect_succeeded(fresh, clock.now, c);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], (PoolCore::Action{Kind::grant, fresh, 1, {}}));
  EXPECT_EQ(core.stats().failed_validations, 1u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, RecentlyUsedConnectionIsNotValidated) {
  PoolCore core(small_pool(1, 1), 1);
  open(core, 1);
  clock.advance(9s);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  EXPECT_EQ(a.at(0).kind, Kind::grant);
}

TEST_F(PoolCoreTest, IdleTimeoutClosesConnectionsAboveMinSizeOnly) {
  PoolCore core(small_pool(1, 3), 1);
  open(core, 1);
  Actions a;
  for (PoolCore::WaiterId w = 1; w <= 3; ++w) core.acquire(w, clock.now + 1s, clock.now, a);
  std::vector<PoolCore::ConnId> held;
  for (const auto& g : of_kind(a, Kind::grant)) held.push_back(g.conn);
  for (const auto& c : of_kind(a, Kind::connect)) {
    Actions b;
    core.connect_succeeded(c.conn, clock.now, b);
    held.push_back(of_kind(b, Kind::grant).at(0).conn);
  }
  ASSERT_EQ(held.size(), 3u);
  Actions r;
  for (auto id : held) core.release(id, true, clock.now, r);
  EXPECT_EQ(core.stats().idle, 3u);
  clock.advance(59s);
  Actions t1;
  core.tick(clock.now, t1);
  EXPECT_TRUE(t1.empty());
  clock.advance(1s);
  Actions t2;
  core.tick(clock.now, t2);
  EXPECT_EQ(of_kind(t2, Kind::close).size(), 2u);
  EXPECT_EQ(core.stats().total, 1u);
  clock.advance(600s);
  Actions t3;
  core.tick(clock.now, t3);
  // Past max_lifetime the last one is replaced, keeping min_size.
  EXPECT_EQ(of_kind(t3, Kind::close).size(), 1u);
  EXPECT_EQ(of_kind(t3, Kind::connect).size(), 1u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, ConnectionPastMaxLifetimeIsClosedWhenReturned) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  clock.advance(601s);
  Actions b;
  core.release(ids[0], true, clock.now, b);
  EXPECT_EQ(of_kind(b, Kind::close).size(), 1u);
  EXPECT_EQ(of_kind(b, Kind::connect).size(), 1u);
}

TEST_F(PoolCoreTest, BrokenConnectionIsDiscardedAndReplacedForWaiters) {
  PoolCore core(small_pool(0, 1), 1);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  core.connect_succeeded(a.at(0).conn, clock.now, a);
  core.acquire(2, clock.now + 1s, clock.now, a);
  Actions b;
  core.release(a.at(0).conn, false, clock.now, b);
  EXPECT_EQ(of_kind(b, Kind::close).size(), 1u);
  ASSERT_EQ(of_kind(b, Kind::connect).size(), 1u);
  expect_accounting(core);
}

TEST_F(PoolCoreTest, CancelledWaiterLeavesTheQueue) {
  PoolCore core(small_pool(1, 1), 1);
  auto ids = open(core, 1);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  core.acquire(2, clock.now + 1s, clock.now, a);
  core.acquire(3, clock.now + 1s, clock.now, a);
  EXPECT_TRUE(core.cancel_waiter(2, clock.now, a));
  EXPECT_FALSE(core.cancel_waiter(2, clock.now, a));
  Actions b;
  core.release(ids[0], true, clock.now, b);
  EXPECT_EQ(of_kind(b, Kind::grant).at(0).waiter, 3u);
}

TEST_F(PoolCoreTest, CloseFailsWaitersAndClosesEverythingAsItReturns) {
  PoolCore core(small_pool(2, 2), 1);
  auto ids = open(core, 2);
  Actions a;
  core.acquire(1, clock.now + 1s, clock.now, a);
  core.acquire(2, clock.now + 1s, clock.now, a);
  core.acquire(3, clock.now + 1s, clock.now, a);
  Actions b;
  core.close(clock.now, b);
  EXPECT_EQ(b, (Actions{{Kind::fail, 0, 3, errc::pool_closed}}));
  EXPECT_FALSE(core.drained());
  Actions c;
  core.release(ids[0], true, clock.now, c);
  core.release(ids[1], true, clock.now, c);
  EXPECT_EQ(of_kind(c, Kind::close).size(), 2u);
  EXPECT_TRUE(of_kind(c, Kind::connect).empty());
  EXPECT_TRUE(core.drained());
  Actions d;
  core.acquire(4, clock.now + 1s, clock.now, d);
  EXPECT_EQ(d, (Actions{{Kind::fail, 0, 4, errc::pool_closed}}));
}

// Three idle connections, borrowed together and returned one by one with affinity keys 10,
// 20 and 30: order[2] is the most recently used, order[0] the least.
class PoolCoreAffinityTest : public PoolCoreTest {
 protected:
  void SetUp() override {
    ids = open(core, 3);
    for (PoolCore::WaiterId w = 100; w < 103; ++w) {
      Actions a;
      core.acquire(w, clock.now + 1s, clock.now, a);
      order.push_back(of_kind(a, Kind::grant).at(0).conn);
    }
    for (std::size_t i = 0; i < order.size(); ++i) {
      Actions a;
      clock.advance(1ms);
      core.release(order[i], true, keys[i], clock.now, a);
    }
  }
  PoolCore::ConnId grant(std::optional<PoolCore::AffinityKey> prefer, PoolCore::WaiterId w) {
    Actions a;
    core.acquire(w, clock.now + 1s, prefer, clock.now, a);
    return of_kind(a, Kind::grant).at(0).conn;
  }
  PoolCore core{small_pool(3, 3), 1};
  std::vector<PoolCore::ConnId> ids;
  std::vector<PoolCore::ConnId> order;  // order[i] was released with keys[i]
  const std::vector<PoolCore::AffinityKey> keys{10, 20, 30};
};

TEST_F(PoolCoreAffinityTest, IdleConnectionWithThePreferredKeyIsGrantedFirst) {
  EXPECT_EQ(grant(20, 1), order[1]);
  EXPECT_EQ(grant(10, 2), order[0]);
  EXPECT_EQ(grant(30, 3), order[2]);
  expect_accounting(core);
}

TEST_F(PoolCoreAffinityTest, WithoutAMatchTheLeastRecentlyUsedIdleConnectionIsGranted) {
  EXPECT_EQ(grant(99, 1), order[0]);
  EXPECT_EQ(grant(98, 2), order[1]);
}

TEST_F(PoolCoreAffinityTest, WithoutAPreferenceTheMostRecentlyUsedIsGrantedAsBefore) {
  EXPECT_EQ(grant(std::nullopt, 1), order[2]);
}

TEST_F(PoolCoreAffinityTest, ReleaseWithoutAKeyKeepsTheConnectionsKey) {
  const auto c = grant(20, 1);
  Actions a;
  core.release(c, true, clock.now, a);
  EXPECT_EQ(grant(20, 2), c);
}

TEST_F(PoolCoreAffinityTest, AMatchingConnectionIdleLongIsValidatedForThatWaiter) {
  clock.advance(11s);  // past validate_after_idle
  Actions a;
  core.acquire(1, clock.now + 1s, PoolCore::AffinityKey{20}, clock.now, a);
  EXPECT_EQ(a, (Actions{{Kind::validate, order[1], 1, {}}}));
  Actions b;
  core.validation_done(order[1], true, clock.now, b);
  EXPECT_EQ(b, (Actions{{Kind::grant, order[1], 1, {}}}));
}

TEST_F(PoolCoreTest, NewConnectionsHaveTheFreshKey) {
  PoolCore core(small_pool(2, 2), 1);
  auto ids = open(core, 2);
  Actions a;
  core.acquire(1, clock.now + 1s, PoolCore::AffinityKey{7}, clock.now, a);
  const auto first = of_kind(a, Kind::grant).at(0).conn;
  core.release(first, true, 7, clock.now, a);
  Actions b;
  core.acquire(2, clock.now + 1s, PoolCore::fresh_affinity, clock.now, b);
  EXPECT_NE(of_kind(b, Kind::grant).at(0).conn, first);
}

// Long random sequences of acquire, release (healthy or broken), connect success and
// failure, validation, cancellation and time passing: the accounting invariant holds after
// every event, no connection is handed to two borrowers, and every waiter is answered
// exactly once.
TEST_F(PoolCoreTest, AccountingInvariantHoldsUnderRandomEvents) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    PoolParams p = small_pool(seed % 3, 2 + seed % 4);
    p.backoff_jitter = 0.3;
    p.validate_after_idle = 50ms;
    p.idle_timeout = 500ms;
    p.max_lifetime = 2s;
    PoolCore core(p, seed);
    std::mt19937_64 rng(seed);
    std::set<PoolCore::ConnId> borrowed, connecting, validating;
    std::set<PoolCore::WaiterId> waiting, answered;
    PoolCore::WaiterId next_waiter = 1;

    auto handle = [&](const Actions& actions) {
      for (const auto& a : actions) {
        switch (a.kind) {
          case Kind::connect:
            ASSERT_TRUE(connecting.insert(a.conn).second);
            break;
          case Kind::validate:
            ASSERT_TRUE(validating.insert(a.conn).second);
            break;
          case Kind::close:
            ASSERT_EQ(borrowed.count(a.conn), 0u) << "closed a borrowed connection";
            break;
          case Kind::grant:
            ASSERT_TRUE(borrowed.insert(a.conn).second) << "connection granted twice";
            [[fallthrough]];
          case Kind::fail:
            ASSERT_EQ(waiting.erase(a.waiter), 1u) << "answered a waiter that was not waiting";
            ASSERT_TRUE(answered.insert(a.waiter).second);
            break;
        }
      }
    };
    Actions start;
    core.start(clock.now, start);
    handle(start);
    auto pick = [&](auto& set) {
      auto it = set.begin();
      std::advance(it, std::uniform_int_distribution<std::size_t>(0, set.size() - 1)(rng));
      return *it;
    };
    for (int step = 0; step < 5000; ++step) {
      Actions out;
      const int dice = std::uniform_int_distribution<int>(0, 99)(rng);
      if (dice < 30) {
        const auto w = next_waiter++;
        waiting.insert(w);
        const auto deadline = clock.now + std::chrono::milliseconds(rng() % 400);
        if (rng() % 2 == 0) {
          core.acquire(w, deadline, clock.now, out);
        } else {
          core.acquire(w, deadline, PoolCore::AffinityKey{rng() % 3}, clock.now, out);
        }
      } else if (dice < 55 && !borrowed.empty()) {
        const auto c = pick(borrowed);
        borrowed.erase(c);
        if (rng() % 2 == 0) {
          core.release(c, rng() % 10 != 0, clock.now, out);
        } else {
          core.release(c, rng() % 10 != 0, rng() % 3, clock.now, out);
        }
      } else if (dice < 70 && !connecting.empty()) {
        const auto c = pick(connecting);
        connecting.erase(c);
        if (rng() % 4 == 0) {
          core.connect_failed(c, clock.now, out);
        } else {
          core.connect_succeeded(c, clock.now, out);
        }
      } else if (dice < 78 && !validating.empty()) {
        const auto c = pick(validating);
        validating.erase(c);
        core.validation_done(c, rng() % 5 != 0, clock.now, out);
      } else if (dice < 83 && !waiting.empty()) {
        const auto w = pick(waiting);
        if (core.cancel_waiter(w, clock.now, out)) {
          waiting.erase(w);
          answered.insert(w);
        }
      } else {
        clock.advance(std::chrono::milliseconds(rng() % 120));
        core.tick(clock.now, out);
      }
      handle(out);
      ASSERT_FALSE(HasFailure()) << "seed " << seed << " step " << step << " dice " << dice;
      const PoolStats s = core.stats();
      ASSERT_EQ(s.idle + s.busy + s.connecting, s.total) << "seed " << seed << " step " << step;
      ASSERT_LE(s.total, p.max_size);
      ASSERT_EQ(s.busy, borrowed.size() + validating.size());
      ASSERT_LE(s.waiters, waiting.size());
      // An idle connection while someone waits is only allowed for waiters already
      // assigned a connection under validation.
      if (s.idle > 0) {
        ASSERT_LE(s.waiters, validating.size());
      }
    }
    // Drain: time passes far beyond every deadline; every waiter gets an answer.
    Actions out;
    clock.advance(10s);
    core.tick(clock.now, out);
    handle(out);
    Actions validated;
    for (const auto& c : validating) core.validation_done(c, true, clock.now, validated);
    handle(validated);
    EXPECT_TRUE(waiting.empty()) << "seed " << seed << ": waiters left unanswered";
  }
}

}  // namespace
}  // namespace sluice::pool
