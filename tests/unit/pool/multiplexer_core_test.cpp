#include "pool/multiplexer_core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;
using Core = MultiplexerCore;
using Kind = Core::Action::Kind;
using Actions = Core::Actions;
using Id = Core::RequestId;
using TimePoint = Core::TimePoint;

// The core takes time as an argument, so the clock here is a plain variable.
struct FakeClock {
  TimePoint now{std::chrono::hours(1000)};
  void advance(std::chrono::steady_clock::duration d) { now += d; }
};

MultiplexerParams caps(std::size_t global, std::size_t per_client, std::uint32_t quantum = 1) {
  MultiplexerParams p;
  p.global_cap = global;
  p.per_client_cap = per_client;
  p.quantum = quantum;
  return p;
}

Core::Action admit(Id id) {
  return {Kind::admit, id};
}
Core::Action expire(Id id) {
  return {Kind::expire, id};
}

std::vector<Id> ids_of(const Actions& a, Kind k) {
  std::vector<Id> out;
  for (const auto& x : a) {
    if (x.kind == k) out.push_back(x.request);
  }
  return out;
}

const MultiplexerStats::Client* client_stats(const MultiplexerStats& s, const std::string& name) {
  for (const auto& c : s.clients) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string error_of(const MultiplexerParams& p) {
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

class MultiplexerCoreTest : public ::testing::Test {
 protected:
  TimePoint far() const { return clock.now + 1h; }
  // Completes `id` and returns the actions that caused.
  Actions finish(Core& core, Id id) {
    Actions a;
    EXPECT_TRUE(core.done(id, clock.now, a)) << "request " << id << " was not in flight";
    return a;
  }
  // Completes one request at a time, in the order given, collecting what gets admitted.
  std::vector<Id> admitted_while_finishing(Core& core, Id first, std::size_t n) {
    std::vector<Id> order;
    Id current = first;
    for (std::size_t i = 0; i < n; ++i) {
      const auto got = ids_of(finish(core, current), Kind::admit);
      EXPECT_EQ(got.size(), 1u) << "after finishing " << current;
      if (got.size() != 1) break;
      order.push_back(got[0]);
      current = got[0];
    }
    return order;
  }
  FakeClock clock;
};

TEST(MultiplexerParamsTest, DefaultsAreValidAndErrorsNameTheField) {
  EXPECT_EQ(error_of(MultiplexerParams{}), "");
  MultiplexerParams p;
  p.global_cap = 0;
  EXPECT_EQ(error_of(p), "multiplexer.global_cap: must be at least 1");
  p = {};
  p.quantum = 0;
  EXPECT_EQ(error_of(p), "multiplexer.quantum: must be at least 1");
  EXPECT_THROW(Core{p}, std::invalid_argument);
  p = {};
  p.batch_depth = 0;
  EXPECT_EQ(error_of(p), "multiplexer.batch_depth: must be between 1 and 32");
  p.batch_depth = 33;
  EXPECT_EQ(error_of(p), "multiplexer.batch_depth: must be between 1 and 32");
}

TEST_F(MultiplexerCoreTest, RequestIsAdmittedAtOnceWhenThereIsRoom) {
  Core core(caps(2, 0));
  Actions a;
  core.enqueue("alice", 1, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(core.in_flight(), 1u);
  EXPECT_EQ(core.queued(), 0u);
  EXPECT_EQ(core.next_wake(), std::nullopt);
}

TEST_F(MultiplexerCoreTest, RequestsOfOneClientAreAdmittedInArrivalOrder) {
  Core core(caps(1, 0));
  Actions a;
  for (Id id = 1; id <= 6; ++id) core.enqueue("alice", id, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(admitted_while_finishing(core, 1, 5), (std::vector<Id>{2, 3, 4, 5, 6}));
}

TEST_F(MultiplexerCoreTest, ClientsWithEqualCostsTakeTurns) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  for (Id i = 0; i < 3; ++i) {
    core.enqueue("a", 100 + i, far(), clock.now, a);
    core.enqueue("b", 200 + i, far(), clock.now, a);
    core.enqueue("c", 300 + i, far(), clock.now, a);
  }
  for (Id i = 3; i < 5; ++i) core.enqueue("a", 100 + i, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(admitted_while_finishing(core, 1, 11),
            (std::vector<Id>{100, 200, 300, 101, 201, 301, 102, 202, 302, 103, 104}));
}

MultiplexerParams batched(std::size_t global, std::size_t per_client, std::size_t depth) {
  MultiplexerParams p = caps(global, per_client);
  p.batch_depth = depth;
  return p;
}

Core::Action rider(Id id, Id leader) {
  return {Kind::admit, id, leader};
}

TEST_F(MultiplexerCoreTest, ALeaderTakesQueuedRequestsWithItsKeyAsRiders) {
  Core core(batched(1, 0, 4));
  Actions a;
  core.enqueue("alice", 1, 1, far(), clock.now, a, 7);
  EXPECT_EQ(a, (Actions{admit(1)}));  // nothing queued to ride along
  a.clear();
  for (Id id = 2; id <= 7; ++id) core.enqueue("alice", id, 1, far(), clock.now, a, 7);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(finish(core, 1), (Actions{admit(2), rider(3, 2), rider(4, 2), rider(5, 2)}));
  // Riders hold no place under the global cap, but count as in flight.
  EXPECT_EQ(core.in_flight(), 1u);
  EXPECT_EQ(core.snapshot(clock.now).in_flight, 4u);
  EXPECT_EQ(core.snapshot(clock.now).riders_total, 3u);
  // A rider finishing frees nothing; the leader's connection does.
  EXPECT_TRUE(finish(core, 3).empty());
  EXPECT_TRUE(finish(core, 4).empty());
  EXPECT_EQ(finish(core, 2), (Actions{admit(6), rider(7, 6)}));
  EXPECT_TRUE(finish(core, 5).empty());
  EXPECT_TRUE(finish(core, 7).empty());
  EXPECT_TRUE(finish(core, 6).empty());
  EXPECT_EQ(core.in_flight(), 0u);
  EXPECT_EQ(core.snapshot(clock.now).in_flight, 0u);
}

TEST_F(MultiplexerCoreTest, RidersKeepEachClientsOrderAndComeFromTheClientsNextInTurn) {
  Core core(batched(1, 0, 8));
  Actions a;
  core.enqueue("holder", 1, 1, far(), clock.now, a, 0);
  // alice: key 7, then key 8, then key 7 again: her third may not overtake her second.
  core.enqueue("alice", 10, 1, far(), clock.now, a, 7);
  core.enqueue("alice", 11, 1, far(), clock.now, a, 8);
  core.enqueue("alice", 12, 1, far(), clock.now, a, 7);
  core.enqueue("bob", 20, 1, far(), clock.now, a, 7);
  core.enqueue("bob", 21, 1, far(), clock.now, a, 7);
  core.enqueue("carol", 30, 1, far(), clock.now, a, 0);  // no key: never rides
  core.enqueue("dave", 40, 1, far(), clock.now, a, 7);
  EXPECT_EQ(a, (Actions{admit(1)}));
  // alice leads; then one per client per pass in round order: bob, dave, then bob again.
  EXPECT_EQ(finish(core, 1), (Actions{admit(10), rider(20, 10), rider(40, 10), rider(21, 10)}));
  EXPECT_EQ(finish(core, 10), (Actions{admit(30)}));
  EXPECT_EQ(finish(core, 30), (Actions{admit(11)}));
  EXPECT_EQ(finish(core, 11), (Actions{admit(12)}));
}

TEST_F(MultiplexerCoreTest, RidersHoldNoPlaceUnderThePerClientCap) {
  Core core(batched(2, 1, 3));
  Actions a;
  core.enqueue("holder", 1, 1, far(), clock.now, a, 0);
  core.enqueue("other", 2, 1, far(), clock.now, a, 0);
  for (Id id = 10; id < 16; ++id) core.enqueue("alice", id, 1, far(), clock.now, a, 7);
  EXPECT_EQ(a, (Actions{admit(1), admit(2)}));
  // alice gets one connection (her cap) and two riders on it.
  EXPECT_EQ(finish(core, 1), (Actions{admit(10), rider(11, 10), rider(12, 10)}));
  const MultiplexerStats stats = core.snapshot(clock.now);
  const auto* alice = client_stats(stats, "alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->in_flight, 3u);
  // Another connection frees, but alice is at her cap until her leader is done.
  EXPECT_TRUE(finish(core, 2).empty());
  EXPECT_TRUE(finish(core, 11).empty());
  EXPECT_EQ(finish(core, 10), (Actions{admit(13), rider(14, 13), rider(15, 13)}));
}

// The leader checks out the connection by its own deadline: a request due earlier would wait
// past its deadline if that took long, so it waits for a turn of its own instead.
TEST_F(MultiplexerCoreTest, ARequestDueBeforeTheLeaderDoesNotRide) {
  Core core(batched(1, 0, 4));
  Actions a;
  core.enqueue("holder", 1, 1, far(), clock.now, a, 0);
  core.enqueue("alice", 10, 1, clock.now + 10min, clock.now, a, 7);
  core.enqueue("bob", 20, 1, clock.now + 1min, clock.now, a, 7);  // due before alice's
  core.enqueue("carol", 30, 1, clock.now + 20min, clock.now, a, 7);
  EXPECT_EQ(finish(core, 1), (Actions{admit(10), rider(30, 10)}));
  EXPECT_EQ(finish(core, 10), (Actions{admit(20)}));
}

TEST_F(MultiplexerCoreTest, WithoutBatchDepthKeysChangeNothing) {
  Core core(batched(1, 0, 1));
  Actions a;
  for (Id id = 1; id <= 3; ++id) core.enqueue("alice", id, 1, far(), clock.now, a, 7);
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(admitted_while_finishing(core, 1, 2), (std::vector<Id>{2, 3}));
}

// The promise the product makes: one client's burst cannot starve another. A floods 1000
// requests, then B sends 20. With two clients backlogged at equal cost and equal caps, B's
// share is one admission in two, so B's i-th request (from 0) is admitted within 2(i + 1)
// admissions of B's arrival: at most 40 for the last, where first come first served would
// make every one of them wait for about 1000.
TEST_F(MultiplexerCoreTest, FloodingClientCannotStarveALateArrival) {
  Core core(caps(4, 2));
  std::deque<Id> in_flight;  // oldest first: queries of similar length finish in order
  std::vector<Id> admissions;
  auto record = [&](const Actions& actions) {
    for (const auto& x : actions) {
      ASSERT_EQ(x.kind, Kind::admit);
      in_flight.push_back(x.request);
      admissions.push_back(x.request);
    }
  };
  Actions a;
  for (Id i = 0; i < 1000; ++i) core.enqueue("A", 1000 + i, far(), clock.now, a);
  record(a);
  // A is held to its own cap although the pool has room.
  EXPECT_EQ(core.in_flight(), 2u);
  const std::size_t b_arrival = admissions.size();
  Actions b;
  for (Id i = 0; i < 20; ++i) core.enqueue("B", 5000 + i, far(), clock.now, b);
  record(b);
  EXPECT_EQ(ids_of(b, Kind::admit), (std::vector<Id>{5000, 5001}));

  auto b_admitted = [&] {
    return std::count_if(admissions.begin(), admissions.end(), [](Id id) { return id >= 5000; });
  };
  while (b_admitted() < 20) {
    ASSERT_FALSE(in_flight.empty());
    clock.advance(1ms);
    record(finish(core, in_flight.front()));
    in_flight.pop_front();
    ASSERT_LE(admissions.size(), 1020u);
  }
  for (Id i = 0; i < 20; ++i) {
    const auto pos = std::find(admissions.begin(), admissions.end(), 5000 + i) - admissions.begin();
    const auto admissions_since_arrival = static_cast<std::size_t>(pos) - b_arrival + 1;
    EXPECT_LE(admissions_since_arrival, 2 * (i + 1)) << "B's request " << i;
  }
  EXPECT_GT(core.queued(), 900u);  // A is still flooding
}

// The same promise holds from deficit round robin alone, with no per-client cap, whatever
// order queries finish in: once B is queued, A and B alternate.
TEST_F(MultiplexerCoreTest, FairnessNeedsNoPerClientCap) {
  Core core(caps(4, 0));
  std::mt19937_64 rng(7);
  std::vector<Id> in_flight;
  std::vector<Id> admissions;
  auto record = [&](const Actions& actions) {
    for (const auto& x : actions) {
      ASSERT_EQ(x.kind, Kind::admit);
      in_flight.push_back(x.request);
      admissions.push_back(x.request);
    }
  };
  Actions a;
  for (Id i = 0; i < 1000; ++i) core.enqueue("A", 1000 + i, far(), clock.now, a);
  record(a);
  EXPECT_EQ(core.in_flight(), 4u);
  const std::size_t b_arrival = admissions.size();
  Actions b;
  for (Id i = 0; i < 20; ++i) core.enqueue("B", 5000 + i, far(), clock.now, b);
  EXPECT_TRUE(b.empty());  // the pool is full; B waits for the next free place
  std::size_t b_admitted = 0;
  while (b_admitted < 20) {
    ASSERT_FALSE(in_flight.empty());
    const auto k = static_cast<std::ptrdiff_t>(rng() % in_flight.size());
    const Id id = in_flight[static_cast<std::size_t>(k)];
    in_flight.erase(in_flight.begin() + k);
    const auto before = admissions.size();
    record(finish(core, id));
    for (auto j = before; j < admissions.size(); ++j) {
      if (admissions[j] >= 5000) ++b_admitted;
    }
  }
  for (Id i = 0; i < 20; ++i) {
    const auto pos = std::find(admissions.begin(), admissions.end(), 5000 + i) - admissions.begin();
    EXPECT_LE(static_cast<std::size_t>(pos) - b_arrival + 1, 2 * (i + 1)) << "B's request " << i;
  }
}

TEST_F(MultiplexerCoreTest, PerClientCapLeavesRoomForOthers) {
  Core core(caps(4, 2));
  Actions a;
  for (Id i = 0; i < 5; ++i) core.enqueue("A", 100 + i, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(100), admit(101)}));
  Actions b;
  core.enqueue("B", 200, far(), clock.now, b);
  EXPECT_EQ(b, (Actions{admit(200)}));
  // A gets a new place only when one of its own finishes, even though the pool has room.
  EXPECT_TRUE(finish(core, 200).empty());
  EXPECT_EQ(finish(core, 100), (Actions{admit(102)}));
  EXPECT_EQ(core.in_flight(), 2u);
  const auto s = core.snapshot(clock.now);
  ASSERT_NE(client_stats(s, "A"), nullptr);
  EXPECT_EQ(client_stats(s, "A")->in_flight, 2u);
  EXPECT_EQ(client_stats(s, "A")->queued, 2u);
}

// A client whose place frees goes behind the clients already waiting, like a newcomer.
TEST_F(MultiplexerCoreTest, ClientBelowItsCapAgainRejoinsTheRoundAtTheBack) {
  Core core(caps(2, 1));
  Actions a;
  for (Id i = 0; i < 3; ++i) core.enqueue("A", 100 + i, far(), clock.now, a);
  for (Id i = 0; i < 3; ++i) core.enqueue("B", 200 + i, far(), clock.now, a);
  for (Id i = 0; i < 3; ++i) core.enqueue("C", 300 + i, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(100), admit(200)}));
  EXPECT_EQ(finish(core, 100), (Actions{admit(300)}));
  EXPECT_EQ(finish(core, 200), (Actions{admit(101)}));
  EXPECT_EQ(finish(core, 300), (Actions{admit(201)}));
  EXPECT_EQ(finish(core, 101), (Actions{admit(301)}));
}

TEST_F(MultiplexerCoreTest, TurnCutShortByTheGlobalCapResumesWithoutANewQuantum) {
  Core core(caps(1, 0, 3));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  for (Id i = 0; i < 6; ++i) core.enqueue("A", 100 + i, far(), clock.now, a);
  for (Id i = 0; i < 6; ++i) core.enqueue("B", 200 + i, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  // Each turn admits three, one per free place.
  EXPECT_EQ(admitted_while_finishing(core, 1, 12),
            (std::vector<Id>{100, 101, 102, 200, 201, 202, 103, 104, 105, 203, 204, 205}));
}

class WeightedCostTest : public MultiplexerCoreTest,
                         public ::testing::WithParamInterface<std::uint32_t> {};

// Deficit round robin shares cost, not requests: a client sending cost-2 requests gets
// half as many through as one sending cost-1 requests, whatever the quantum. At every
// point the cost served to the two differs by at most Max + 2 * Quantum (Shreedhar and
// Varghese), here 2 + 2 * quantum, however long the run.
TEST_P(WeightedCostTest, ClientsShareByCost) {
  const std::uint32_t quantum = GetParam();
  Core core(caps(1, 0, quantum));
  Actions a;
  for (Id i = 0; i < 400; ++i) {
    core.enqueue("heavy", 10'000 + i, 2, far(), clock.now, a);
    core.enqueue("light", 20'000 + i, 1, far(), clock.now, a);
  }
  ASSERT_EQ(a, (Actions{admit(10'000)}));
  const auto order = admitted_while_finishing(core, 10'000, 300);
  std::int64_t heavy_cost = 2;
  std::int64_t light_cost = 0;
  for (Id id : order) {
    (id < 20'000 ? heavy_cost : light_cost) += id < 20'000 ? 2 : 1;
    ASSERT_LE(std::abs(heavy_cost - light_cost), 2 + 2 * std::int64_t{quantum});
  }
  const auto heavy = std::count_if(order.begin(), order.end(), [](Id id) { return id < 20'000; });
  const auto light = static_cast<std::ptrdiff_t>(order.size()) - heavy;
  EXPECT_GE(heavy, 97);
  EXPECT_LE(heavy, 103);
  EXPECT_EQ(light + heavy, 300);
}

INSTANTIATE_TEST_SUITE_P(Quanta, WeightedCostTest, ::testing::Values(1u, 2u, 3u, 5u));

TEST_F(MultiplexerCoreTest, CostAboveTheQuantumWaitsForEnoughTurns) {
  Core core(caps(1, 0, 1));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  for (Id i = 0; i < 3; ++i) core.enqueue("heavy", 100 + i, 3, far(), clock.now, a);
  for (Id i = 0; i < 9; ++i) core.enqueue("light", 200 + i, 1, far(), clock.now, a);
  EXPECT_EQ(admitted_while_finishing(core, 1, 12),
            (std::vector<Id>{200, 201, 100, 202, 203, 204, 101, 205, 206, 207, 102, 208}));
}

TEST_F(MultiplexerCoreTest, HugeCostIsAdmittedWithoutOneTurnPerQuantum) {
  Core core(caps(1, 0, 1));
  Actions a;
  core.enqueue("alice", 1, 4'000'000'000u, far(), clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  Actions b;
  core.enqueue("alice", 2, 4'000'000'000u, far(), clock.now, b);
  core.enqueue("bob", 3, 3'999'999'999u, far(), clock.now, b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(finish(core, 1), (Actions{admit(3)}));
  EXPECT_EQ(finish(core, 3), (Actions{admit(2)}));
}

TEST_F(MultiplexerCoreTest, QueuedRequestsExpireAtTheirOwnDeadlineAndNeverReachThePool) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("holder", 1, clock.now + 50ms, clock.now, a);  // admitted: never expired
  core.enqueue("a", 2, clock.now + 300ms, clock.now, a);
  core.enqueue("b", 3, clock.now + 100ms, clock.now, a);
  core.enqueue("a", 4, clock.now + 5s, clock.now, a);
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(core.next_wake(), clock.now + 100ms);

  Actions b;
  clock.advance(99ms);
  core.tick(clock.now, b);
  EXPECT_TRUE(b.empty());
  clock.advance(1ms);
  core.tick(clock.now, b);
  EXPECT_EQ(b, (Actions{expire(3)}));
  EXPECT_EQ(core.next_wake(), clock.now + 200ms);

  Actions c;
  clock.advance(200ms);
  core.tick(clock.now, c);
  EXPECT_EQ(c, (Actions{expire(2)}));
  // The survivor keeps its place.
  EXPECT_EQ(finish(core, 1), (Actions{admit(4)}));
  EXPECT_EQ(core.next_wake(), std::nullopt);
  const auto s = core.snapshot(clock.now);
  EXPECT_EQ(s.expired_total, 2u);
  EXPECT_EQ(client_stats(s, "a")->expired_total, 1u);
  EXPECT_EQ(client_stats(s, "b")->expired_total, 1u);
}

TEST_F(MultiplexerCoreTest, LateTimerStillNeverAdmitsAnOverdueRequest) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  core.enqueue("a", 2, clock.now + 100ms, clock.now, a);
  core.enqueue("a", 3, far(), clock.now, a);
  clock.advance(150ms);  // no tick: the driver's timer is late
  EXPECT_EQ(finish(core, 1), (Actions{expire(2), admit(3)}));
}

TEST_F(MultiplexerCoreTest, DeadlineAlreadyPassedExpiresAtOnce) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("a", 1, clock.now, clock.now, a);
  EXPECT_EQ(a, (Actions{expire(1)}));
  EXPECT_EQ(core.queued(), 0u);
  EXPECT_EQ(core.in_flight(), 0u);
}

TEST_F(MultiplexerCoreTest, CancelledRequestLeavesTheQueueAtOnceAndFreesNothingElse) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  core.enqueue("a", 2, far(), clock.now, a);
  core.enqueue("a", 3, far(), clock.now, a);
  core.enqueue("b", 4, clock.now + 10ms, clock.now, a);
  ASSERT_EQ(a, (Actions{admit(1)}));

  Actions b;
  EXPECT_TRUE(core.cancel(2, clock.now, b));
  EXPECT_TRUE(core.cancel(4, clock.now, b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(core.queued(), 1u);
  EXPECT_EQ(core.next_wake(), far());  // request 4's deadline left with it
  EXPECT_FALSE(core.cancel(2, clock.now, b));
  EXPECT_FALSE(core.cancel(99, clock.now, b));
  // An admitted request is not the multiplexer's to cancel: it still holds its place.
  EXPECT_FALSE(core.cancel(1, clock.now, b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(core.in_flight(), 1u);

  EXPECT_EQ(finish(core, 1), (Actions{admit(3)}));
  EXPECT_TRUE(finish(core, 3).empty());
  const auto s = core.snapshot(clock.now);
  EXPECT_EQ(s.cancelled_total, 2u);
  EXPECT_EQ(client_stats(s, "a")->cancelled_total, 1u);
  EXPECT_EQ(client_stats(s, "b")->cancelled_total, 1u);
  EXPECT_EQ(client_stats(s, "b")->admitted_total, 0u);
}

TEST_F(MultiplexerCoreTest, CancellingAQueuedRequestPastItsDeadlineCancelsIt) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  core.enqueue("a", 2, clock.now + 10ms, clock.now, a);
  clock.advance(20ms);
  Actions b;
  EXPECT_TRUE(core.cancel(2, clock.now, b));
  EXPECT_TRUE(b.empty());
}

TEST_F(MultiplexerCoreTest, DoneForARequestNotInFlightIsIgnored) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("a", 1, far(), clock.now, a);
  core.enqueue("a", 2, far(), clock.now, a);
  Actions b;
  EXPECT_FALSE(core.done(42, clock.now, b));  // unknown
  EXPECT_FALSE(core.done(2, clock.now, b));   // still queued: stays queued
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(core.queued(), 1u);
  EXPECT_EQ(finish(core, 1), (Actions{admit(2)}));
  EXPECT_FALSE(core.done(1, clock.now, b));  // twice
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(core.in_flight(), 1u);
}

TEST_F(MultiplexerCoreTest, ZeroCostAndReusedIdsAreRejectedWithoutChange) {
  Core core(caps(1, 0));
  Actions a;
  core.enqueue("a", 1, far(), clock.now, a);
  core.enqueue("a", 2, far(), clock.now, a);
  EXPECT_THROW(core.enqueue("b", 3, 0, far(), clock.now, a), std::invalid_argument);
  EXPECT_THROW(core.enqueue("b", 1, far(), clock.now, a), std::invalid_argument);  // in flight
  EXPECT_THROW(core.enqueue("b", 2, far(), clock.now, a), std::invalid_argument);  // queued
  EXPECT_EQ(a, (Actions{admit(1)}));
  EXPECT_EQ(core.queued(), 1u);
  EXPECT_EQ(core.in_flight(), 1u);
  EXPECT_EQ(client_stats(core.snapshot(clock.now), "b"), nullptr);
  // Once answered and done, an id may be used again.
  EXPECT_EQ(finish(core, 1), (Actions{admit(2)}));
  Actions b;
  core.enqueue("b", 1, far(), clock.now, b);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(finish(core, 2), (Actions{admit(1)}));
}

TEST_F(MultiplexerCoreTest, SnapshotShowsQueueDepthsAndWaitsPerClient) {
  Core core(caps(1, 0));
  const TimePoint t0 = clock.now;
  Actions a;
  core.enqueue("holder", 1, far(), clock.now, a);
  core.enqueue("alice", 2, far(), clock.now, a);
  clock.advance(10ms);
  core.enqueue("bob", 3, far(), clock.now, a);
  clock.advance(20ms);
  core.enqueue("alice", 4, far(), clock.now, a);
  clock.advance(10ms);

  auto s = core.snapshot(clock.now);
  EXPECT_EQ(s.queued, 3u);
  EXPECT_EQ(s.in_flight, 1u);
  ASSERT_EQ(s.clients.size(), 3u);
  EXPECT_EQ(s.clients[0].name, "alice");
  EXPECT_EQ(s.clients[1].name, "bob");
  EXPECT_EQ(s.clients[2].name, "holder");
  EXPECT_EQ(s.clients[0].queued, 2u);
  EXPECT_EQ(s.clients[0].oldest_wait, 40ms);
  EXPECT_EQ(s.clients[1].queued, 1u);
  EXPECT_EQ(s.clients[1].oldest_wait, 30ms);
  EXPECT_EQ(s.clients[2].in_flight, 1u);
  EXPECT_EQ(s.clients[2].oldest_wait, 0ms);

  clock.advance(10ms);  // t0 + 50ms
  EXPECT_EQ(finish(core, 1), (Actions{admit(2)}));
  clock.advance(10ms);  // t0 + 60ms
  EXPECT_EQ(finish(core, 2), (Actions{admit(3)}));
  clock.advance(40ms);  // t0 + 100ms
  EXPECT_EQ(finish(core, 3), (Actions{admit(4)}));
  ASSERT_EQ(clock.now, t0 + 100ms);

  s = core.snapshot(clock.now);
  const auto* alice = client_stats(s, "alice");
  const auto* bob = client_stats(s, "bob");
  EXPECT_EQ(alice->admitted_total, 2u);
  EXPECT_EQ(alice->max_wait, 70ms);
  EXPECT_EQ(alice->total_wait, 120ms);
  EXPECT_EQ(alice->in_flight, 1u);
  EXPECT_EQ(bob->admitted_total, 1u);
  EXPECT_EQ(bob->max_wait, 50ms);
  EXPECT_EQ(s.admitted_total, 4u);
  EXPECT_EQ(s.max_wait, 70ms);
  EXPECT_EQ(s.total_wait, 170ms);
  EXPECT_EQ(s.queued, 0u);
}

TEST_F(MultiplexerCoreTest, OnlyTheMostRecentlyActiveIdleClientsAreRemembered) {
  MultiplexerParams p = caps(1, 0);
  p.max_idle_clients = 2;
  Core core(p);
  Id id = 1;
  for (const char* name : {"c1", "c2", "c3"}) {
    Actions a;
    core.enqueue(name, id, far(), clock.now, a);
    finish(core, id++);
  }
  auto s = core.snapshot(clock.now);
  ASSERT_EQ(s.clients.size(), 2u);
  EXPECT_EQ(s.clients[0].name, "c2");
  EXPECT_EQ(s.clients[1].name, "c3");
  EXPECT_EQ(s.admitted_total, 3u);  // totals keep what forgotten clients did

  // A busy client is never forgotten, and a forgotten one starts afresh.
  p.max_idle_clients = 0;
  Core strict(p);
  Actions a;
  strict.enqueue("busy", 1, far(), clock.now, a);
  strict.enqueue("waiting", 2, far(), clock.now, a);
  EXPECT_EQ(strict.snapshot(clock.now).clients.size(), 2u);
  EXPECT_EQ(finish(strict, 1), (Actions{admit(2)}));
  s = strict.snapshot(clock.now);
  ASSERT_EQ(s.clients.size(), 1u);
  EXPECT_EQ(s.clients[0].name, "waiting");
  finish(strict, 2);
  EXPECT_TRUE(strict.snapshot(clock.now).clients.empty());
  strict.enqueue("busy", 3, far(), clock.now, a);
  s = strict.snapshot(clock.now);
  ASSERT_EQ(s.clients.size(), 1u);
  EXPECT_EQ(s.clients[0].admitted_total, 1u);
  EXPECT_EQ(s.admitted_total, 3u);
}

// Deficit round robin taken literally, one quantum at a time and with scans instead of
// indexes, under the rules the header states. The core must make exactly the same
// decisions, including when it skips rounds in which no head would fit.
class LiteralDrr {
 public:
  explicit LiteralDrr(MultiplexerParams p) : p_(p) {}

  void enqueue(const std::string& client, Id id, Core::Cost cost, TimePoint deadline, TimePoint now,
               Actions& out) {
    clients_[client].queue.push_back({id, cost, deadline, seq_++});
    refresh(client);
    finish_event(now, out);
  }
  bool cancel(Id id, TimePoint now, Actions& out) {
    bool removed = false;
    for (auto& [name, c] : clients_) {
      auto it =
          std::find_if(c.queue.begin(), c.queue.end(), [&](const Req& r) { return r.id == id; });
      if (it != c.queue.end()) {
        c.queue.erase(it);
        refresh(name);
        removed = true;
        break;
      }
    }
    finish_event(now, out);
    return removed;
  }
  bool done(Id id, TimePoint now, Actions& out) {
    auto it = in_flight_.find(id);
    const bool known = it != in_flight_.end();
    if (known) {
      const std::string name = it->second;
      in_flight_.erase(it);
      --clients_[name].in_flight;
      refresh(name);
    }
    finish_event(now, out);
    return known;
  }
  void tick(TimePoint now, Actions& out) { finish_event(now, out); }

 private:
  struct Req {
    Id id;
    Core::Cost cost;
    TimePoint deadline;
    std::uint64_t seq;
  };
  struct Client {
    std::deque<Req> queue;
    std::uint64_t deficit = 0;
    std::size_t in_flight = 0;
  };

  void refresh(const std::string& name) {
    Client& c = clients_[name];
    const bool eligible =
        !c.queue.empty() && (p_.per_client_cap == 0 || c.in_flight < p_.per_client_cap);
    auto it = std::find(round_.begin(), round_.end(), name);
    if (eligible && it == round_.end()) {
      round_.push_back(name);
    } else if (!eligible && it != round_.end()) {
      if (it == round_.begin()) turn_started_ = false;
      round_.erase(it);
      c.deficit = 0;
    }
  }
  void finish_event(TimePoint now, Actions& out) {
    std::vector<std::pair<Req, std::string>> due;
    for (auto& [name, c] : clients_) {
      for (const Req& r : c.queue) {
        if (r.deadline <= now) due.emplace_back(r, name);
      }
    }
    std::sort(due.begin(), due.end(), [](const auto& x, const auto& y) {
      return std::pair(x.first.deadline, x.first.seq) < std::pair(y.first.deadline, y.first.seq);
    });
    for (const auto& [r, name] : due) {
      auto& q = clients_[name].queue;
      q.erase(std::find_if(q.begin(), q.end(), [&](const Req& x) { return x.id == r.id; }));
      out.push_back(expire(r.id));
      refresh(name);
    }
    while (in_flight_.size() < p_.global_cap && !round_.empty()) {
      const std::string name = round_.front();
      Client& c = clients_[name];
      if (!turn_started_) {
        c.deficit += p_.quantum;
        turn_started_ = true;
      }
      if (c.queue.front().cost <= c.deficit) {
        c.deficit -= c.queue.front().cost;
        out.push_back(admit(c.queue.front().id));
        in_flight_.emplace(c.queue.front().id, name);
        c.queue.pop_front();
        ++c.in_flight;
        refresh(name);
      } else {
        round_.pop_front();
        round_.push_back(name);
        turn_started_ = false;
      }
    }
  }

  MultiplexerParams p_;
  std::map<std::string, Client> clients_;
  std::deque<std::string> round_;
  bool turn_started_ = false;
  std::map<Id, std::string> in_flight_;
  std::uint64_t seq_ = 0;
};

TEST_F(MultiplexerCoreTest, DecidesExactlyAsLiteralDeficitRoundRobin) {
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    MultiplexerParams p;
    p.global_cap = 1 + rng() % 4;
    p.per_client_cap = rng() % 3;
    p.quantum = static_cast<std::uint32_t>(1 + rng() % 3);
    p.max_idle_clients = rng() % 2;
    Core core(p);
    LiteralDrr literal(p);
    const std::uint64_t clients = 1 + rng() % 5;
    std::vector<Id> in_flight;
    Id next = 1;
    for (int step = 0; step < 3000; ++step) {
      Actions got, want;
      const auto dice = rng() % 100;
      if (dice < 40) {
        const std::string client = "c" + std::to_string(rng() % clients);
        const auto cost = static_cast<Core::Cost>(1 + rng() % 8);
        const TimePoint deadline = clock.now + std::chrono::milliseconds(rng() % 400);
        core.enqueue(client, next, cost, deadline, clock.now, got);
        literal.enqueue(client, next, cost, deadline, clock.now, want);
        ++next;
      } else if (dice < 75 && !in_flight.empty()) {
        const auto k = rng() % in_flight.size();
        const Id id = in_flight[k];
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(k));
        ASSERT_EQ(core.done(id, clock.now, got), literal.done(id, clock.now, want));
      } else if (dice < 85) {
        const Id id = 1 + rng() % next;
        ASSERT_EQ(core.cancel(id, clock.now, got), literal.cancel(id, clock.now, want));
      } else {
        clock.advance(std::chrono::milliseconds(rng() % 50));
        if (rng() % 3 != 0) {  // else the timer is late and the next event comes first
          core.tick(clock.now, got);
          literal.tick(clock.now, want);
        }
      }
      ASSERT_EQ(got, want) << "seed " << seed << " step " << step;
      for (Id id : ids_of(got, Kind::admit)) in_flight.push_back(id);
    }
  }
}

// Long random sequences of arrivals, completions, cancellations, bogus reports and time
// passing, checked against what the product promises rather than against an algorithm:
// every request is answered exactly once, no cap is exceeded, nothing is admitted past its
// deadline or ahead of an earlier request of the same client, no capacity is left unused
// while a client below its cap waits, and the statistics agree. Half the seeds batch: a
// rider must follow a leader with its key and be due no earlier, and holds no place under
// the caps.
TEST_F(MultiplexerCoreTest, InvariantsHoldUnderRandomEvents) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    MultiplexerParams p;
    p.global_cap = 1 + rng() % 5;
    p.per_client_cap = rng() % 4;
    p.quantum = static_cast<std::uint32_t>(1 + rng() % 3);
    p.max_idle_clients = rng() % 3;
    p.batch_depth = seed % 2 == 0 ? 1 + rng() % 4 : 1;
    Core core(p);
    const std::uint64_t n_clients = 1 + rng() % 6;

    struct Req {
      std::string client;
      TimePoint deadline;
      Core::BatchKey key = 0;
    };
    struct Flight {
      std::string client;
      bool rider;
    };
    std::map<Id, Req> queued;   // ids rise, so this is arrival order
    std::map<Id, Req> leaders;  // admitted without a leader: what riders must match
    std::map<Id, Flight> in_flight;
    std::set<Id> answered;
    std::map<std::string, std::uint64_t> admitted, expired, cancelled;
    Id next = 1;

    auto in_flight_of = [&](const std::string& client) {
      return static_cast<std::size_t>(
          std::count_if(in_flight.begin(), in_flight.end(),
                        [&](const auto& x) { return x.second.client == client; }));
    };
    // What the caps count: requests holding a connection, not riders.
    auto holding = [&](const std::string* client) {
      return static_cast<std::size_t>(
          std::count_if(in_flight.begin(), in_flight.end(), [&](const auto& x) {
            return !x.second.rider && (client == nullptr || x.second.client == *client);
          }));
    };
    auto handle = [&](const Actions& actions) {
      for (const auto& a : actions) {
        auto q = queued.find(a.request);
        ASSERT_NE(q, queued.end()) << "answered " << a.request << ", which was not queued";
        ASSERT_TRUE(answered.insert(a.request).second);
        const std::string client = q->second.client;
        if (a.kind == Kind::expire) {
          ASSERT_LE(q->second.deadline, clock.now) << "expired early";
          ++expired[client];
        } else {
          ASSERT_GT(q->second.deadline, clock.now) << "admitted past its deadline";
          for (auto it = queued.begin(); it != q; ++it) {
            ASSERT_NE(it->second.client, client) << a.request << " overtook " << it->first;
          }
          if (a.leader != 0) {
            // A rider: right behind a leader with its key, due no earlier than it.
            const auto l = leaders.find(a.leader);
            ASSERT_NE(l, leaders.end()) << a.request << " rides on unknown " << a.leader;
            ASSERT_NE(q->second.key, 0u);
            ASSERT_EQ(q->second.key, l->second.key);
            ASSERT_GE(q->second.deadline, l->second.deadline);
          } else {
            leaders[a.request] = q->second;
          }
          in_flight.emplace(a.request, Flight{client, a.leader != 0});
          ++admitted[client];
          ASSERT_LE(holding(nullptr), p.global_cap);
          if (p.per_client_cap != 0) {
            ASSERT_LE(holding(&client), p.per_client_cap);
          }
        }
        queued.erase(q);
      }
    };

    for (int step = 0; step < 5000; ++step) {
      Actions out;
      bool late_timer = false;
      const auto dice = rng() % 100;
      if (dice < 35) {
        const std::string client = "c" + std::to_string(rng() % n_clients);
        const TimePoint deadline = clock.now + std::chrono::milliseconds(rng() % 300);
        const Core::BatchKey key = rng() % 3;
        queued.emplace(next, Req{client, deadline, key});
        core.enqueue(client, next++, static_cast<Core::Cost>(1 + rng() % 4), deadline, clock.now,
                     out, key);
      } else if (dice < 60 && !in_flight.empty()) {
        auto it = in_flight.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % in_flight.size()));
        const Id id = it->first;
        in_flight.erase(it);
        ASSERT_TRUE(core.done(id, clock.now, out));
      } else if (dice < 70) {
        const Id id = 1 + rng() % next;
        const auto q = queued.find(id);
        const bool was_queued = q != queued.end();
        const std::string client = was_queued ? q->second.client : "";
        const bool removed = core.cancel(id, clock.now, out);
        ASSERT_EQ(removed, was_queued) << "cancel of " << id;
        if (removed) {
          ASSERT_TRUE(answered.insert(id).second);
          queued.erase(id);
          ++cancelled[client];
        }
      } else if (dice < 73) {
        const Id id = 1 + rng() % next;
        if (in_flight.count(id) == 0) {
          ASSERT_FALSE(core.done(id, clock.now, out));
        }
      } else {
        clock.advance(std::chrono::milliseconds(rng() % 60));
        // Now and then the driver's timer is late and the next event comes first.
        late_timer = rng() % 3 == 0;
        if (!late_timer) core.tick(clock.now, out);
      }
      handle(out);
      ASSERT_FALSE(HasFailure()) << "seed " << seed << " step " << step << " dice " << dice;

      std::optional<TimePoint> earliest;
      std::map<std::string, std::size_t> depth;
      for (const auto& [id, r] : queued) {
        if (!late_timer) {
          ASSERT_GT(r.deadline, clock.now) << "overdue request " << id << " still queued";
        }
        if (!earliest || r.deadline < *earliest) earliest = r.deadline;
        ++depth[r.client];
      }
      ASSERT_EQ(core.next_wake(), earliest);
      if (holding(nullptr) < p.global_cap) {
        for (const auto& [client, n] : depth) {
          ASSERT_NE(p.per_client_cap, 0u) << client << " waits while the pool has room";
          ASSERT_EQ(holding(&client), p.per_client_cap)
              << client << " waits below its cap while the pool has room";
        }
      }
      const MultiplexerStats s = core.snapshot(clock.now);
      ASSERT_EQ(s.queued, queued.size());
      ASSERT_EQ(s.in_flight, in_flight.size());
      std::uint64_t sum_admitted = 0, sum_expired = 0, sum_cancelled = 0;
      for (const auto& [c, n] : admitted) sum_admitted += n;
      for (const auto& [c, n] : expired) sum_expired += n;
      for (const auto& [c, n] : cancelled) sum_cancelled += n;
      ASSERT_EQ(s.admitted_total, sum_admitted);
      ASSERT_EQ(s.expired_total, sum_expired);
      ASSERT_EQ(s.cancelled_total, sum_cancelled);
      for (const auto& c : s.clients) {
        ASSERT_EQ(c.queued, depth[c.name]) << c.name;
        ASSERT_EQ(c.in_flight, in_flight_of(c.name)) << c.name;
      }
      for (const auto& [client, n] : depth) ASSERT_NE(client_stats(s, client), nullptr);
    }

    // Drain: every deadline passes and everything in flight finishes; every request has
    // been answered exactly once.
    Actions out;
    clock.advance(1s);
    core.tick(clock.now, out);
    handle(out);
    while (!in_flight.empty()) {
      const Id id = in_flight.begin()->first;
      in_flight.erase(in_flight.begin());
      Actions d;
      ASSERT_TRUE(core.done(id, clock.now, d));
      handle(d);
    }
    EXPECT_TRUE(queued.empty()) << "seed " << seed;
    EXPECT_EQ(answered.size(), next - 1) << "seed " << seed;
    EXPECT_EQ(core.queued(), 0u);
    EXPECT_EQ(core.in_flight(), 0u);
  }
}

}  // namespace
}  // namespace sluice::pool
