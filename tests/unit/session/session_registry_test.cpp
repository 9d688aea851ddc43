#include "session/session_registry.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>

namespace sluice::session {

// Lets EXPECT_EQ print statuses by name.
void PrintTo(SessionRegistry::OpenStatus s, std::ostream* os) {
  switch (s) {
    case SessionRegistry::OpenStatus::opened:
      *os << "opened";
      return;
    case SessionRegistry::OpenStatus::full:
      *os << "full";
      return;
    case SessionRegistry::OpenStatus::duplicate_id:
      *os << "duplicate_id";
      return;
  }
}

namespace {

using namespace std::chrono_literals;
using TimePoint = SessionRegistry::TimePoint;
using Status = SessionRegistry::OpenStatus;
using Ids = std::vector<std::string>;

// The registry takes time as an argument, so the clock here is a plain variable.
const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

SessionRegistryParams params(std::chrono::milliseconds idle, std::size_t per_client,
                             std::size_t total) {
  SessionRegistryParams p;
  p.idle_timeout = idle;
  p.max_sessions_per_client = per_client;
  p.max_sessions = total;
  return p;
}

// Opens a session that must be accepted without ending any other.
void open_ok(SessionRegistry& r, std::string_view id, std::string_view client, TimePoint now,
             SessionKind kind = SessionKind::http) {
  auto res = r.open(id, kind, client, now);
  ASSERT_EQ(res.status, Status::opened) << id;
  EXPECT_TRUE(res.ok());
  EXPECT_EQ(res.evicted, Ids{}) << id;
  EXPECT_EQ(res.expired, Ids{}) << id;
}

TEST(SessionRegistryParamsTest, Validation) {
  EXPECT_NO_THROW(SessionRegistryParams{}.validate());
  try {
    SessionRegistry r{params(0ms, 1, 1)};
    FAIL() << "accepted a zero idle timeout";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "sessions.idle_timeout: must be positive");
  }
  EXPECT_NO_THROW(SessionRegistry{params(1ms, 0, 0)});  // zero caps mean unlimited
}

TEST(SessionRegistryTest, OpenFindTouchClose) {
  SessionRegistry r{params(60s, 4, 100)};
  open_ok(r, "s1", "alice", t0, SessionKind::websocket);
  const auto* s = r.find("s1");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->id, "s1");
  EXPECT_EQ(s->kind, SessionKind::websocket);
  EXPECT_EQ(s->client, "alice");
  EXPECT_EQ(s->created, t0);
  EXPECT_EQ(s->last_seen, t0);

  EXPECT_TRUE(r.touch("s1", t0 + 5s));
  EXPECT_EQ(r.find("s1")->last_seen, t0 + 5s);
  EXPECT_EQ(r.find("s1")->created, t0);
  EXPECT_FALSE(r.touch("nope", t0 + 5s));
  EXPECT_EQ(r.find("nope"), nullptr);

  EXPECT_TRUE(r.close("s1"));
  EXPECT_FALSE(r.close("s1"));
  EXPECT_FALSE(r.touch("s1", t0 + 6s));
  EXPECT_EQ(r.size(), 0u);
  const auto st = r.stats();
  EXPECT_EQ(st.opened, 1u);
  EXPECT_EQ(st.closed, 1u);
  EXPECT_EQ(st.open, 0u);
  EXPECT_EQ(st.clients, 0u);
}

TEST(SessionRegistryTest, TouchNeverMovesLastSeenBackwards) {
  SessionRegistry r{params(10s, 0, 0)};
  open_ok(r, "s1", "alice", t0);
  EXPECT_TRUE(r.touch("s1", t0 + 8s));
  EXPECT_TRUE(r.touch("s1", t0 + 3s));  // a late caller with an older `now`
  EXPECT_EQ(r.find("s1")->last_seen, t0 + 8s);
  EXPECT_EQ(r.next_expiry(), t0 + 18s);
}

TEST(SessionRegistryTest, SweepExpiresSessionsIdleForTheTimeout) {
  SessionRegistry r{params(10s, 0, 0)};
  EXPECT_EQ(r.next_expiry(), std::nullopt);
  open_ok(r, "a", "alice", t0);
  open_ok(r, "b", "bob", t0 + 5s);
  EXPECT_EQ(r.next_expiry(), t0 + 10s);
  EXPECT_EQ(r.sweep(t0 + 10s - 1ns), Ids{});
  EXPECT_EQ(r.sweep(t0 + 10s), Ids{"a"});
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.next_expiry(), t0 + 15s);
  EXPECT_TRUE(r.touch("b", t0 + 12s));
  EXPECT_EQ(r.next_expiry(), t0 + 22s);
  EXPECT_EQ(r.sweep(t0 + 21s), Ids{});
  EXPECT_EQ(r.sweep(t0 + 22s), Ids{"b"});
  EXPECT_EQ(r.next_expiry(), std::nullopt);
  EXPECT_EQ(r.stats().expired, 2u);
  EXPECT_EQ(r.stats().clients, 0u);
}

TEST(SessionRegistryTest, SweepReturnsLeastRecentlySeenFirst) {
  SessionRegistry r{params(10s, 0, 0)};
  open_ok(r, "a", "x", t0);
  open_ok(r, "b", "y", t0 + 1s);
  open_ok(r, "c", "x", t0 + 2s);
  open_ok(r, "d", "z", t0 + 2s);  // same last_seen as c: opened later, so after it
  r.touch("a", t0 + 3s);
  EXPECT_EQ(r.sweep(t0 + 1h), (Ids{"b", "c", "d", "a"}));
  EXPECT_EQ(r.size(), 0u);
}

TEST(SessionRegistryTest, PerClientCapEvictsLeastRecentlySeen) {
  SessionRegistry r{params(1h, 3, 0)};
  open_ok(r, "s1", "alice", t0);
  open_ok(r, "s2", "alice", t0 + 1s);
  open_ok(r, "s3", "alice", t0 + 2s);
  open_ok(r, "b1", "bob", t0 + 2s);
  r.touch("s1", t0 + 3s);  // s1 is in use again; s2 is now the stalest

  auto res = r.open("s4", SessionKind::sse, "alice", t0 + 4s);
  EXPECT_EQ(res.status, Status::opened);
  EXPECT_EQ(res.evicted, Ids{"s2"});
  EXPECT_EQ(res.expired, Ids{});
  EXPECT_EQ(r.find("s2"), nullptr);

  res = r.open("s5", SessionKind::sse, "alice", t0 + 5s);
  EXPECT_EQ(res.evicted, Ids{"s3"});
  res = r.open("s6", SessionKind::sse, "alice", t0 + 6s);
  EXPECT_EQ(res.evicted, Ids{"s1"});
  EXPECT_NE(r.find("b1"), nullptr);  // other clients are untouched
  EXPECT_EQ(r.stats().evicted, 3u);
  EXPECT_EQ(r.snapshot().at(0).sessions, 3u);
}

TEST(SessionRegistryTest, EvictionTiesGoToTheEarliestOpened) {
  SessionRegistry r{params(1h, 2, 0)};
  open_ok(r, "first", "alice", t0);
  open_ok(r, "second", "alice", t0);
  EXPECT_EQ(r.open("third", SessionKind::http, "alice", t0).evicted, Ids{"first"});
  EXPECT_EQ(r.open("fourth", SessionKind::http, "alice", t0).evicted, Ids{"second"});
}

TEST(SessionRegistryTest, CapOfOneReplacesTheSession) {
  SessionRegistry r{params(1h, 1, 0)};
  open_ok(r, "s1", "alice", t0, SessionKind::stdio);
  auto res = r.open("s2", SessionKind::stdio, "alice", t0 + 1s);
  EXPECT_EQ(res.evicted, Ids{"s1"});
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.stats().clients, 1u);
  EXPECT_EQ(r.stats().open_by_kind[static_cast<std::size_t>(SessionKind::stdio)], 1u);
  EXPECT_TRUE(r.touch("s2", t0 + 2s));
  EXPECT_EQ(r.sweep(t0 + 1h + 2s), Ids{"s2"});
}

TEST(SessionRegistryTest, GlobalCapRefusesNewSessions) {
  SessionRegistry r{params(10s, 2, 3)};
  open_ok(r, "a1", "a", t0);
  open_ok(r, "b1", "b", t0 + 1s);
  open_ok(r, "c1", "c", t0 + 2s);
  auto res = r.open("d1", SessionKind::http, "d", t0 + 3s);
  EXPECT_EQ(res.status, Status::full);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.evicted, Ids{});
  EXPECT_EQ(res.expired, Ids{});
  EXPECT_EQ(r.find("d1"), nullptr);
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.stats().refused, 1u);
  EXPECT_EQ(r.stats().opened, 3u);
  // A client below its own cap is refused too.
  EXPECT_EQ(r.open("a2", SessionKind::http, "a", t0 + 3s).status, Status::full);

  EXPECT_TRUE(r.close("b1"));
  open_ok(r, "d1", "d", t0 + 4s);
}

TEST(SessionRegistryTest, GlobalCapExpiresIdleSessionsFirst) {
  SessionRegistry r{params(10s, 0, 3)};
  open_ok(r, "a1", "a", t0);
  open_ok(r, "b1", "b", t0 + 1s);
  open_ok(r, "c1", "c", t0 + 2s);
  auto res = r.open("d1", SessionKind::http, "d", t0 + 10s - 1ns);
  EXPECT_EQ(res.status, Status::full);
  EXPECT_EQ(res.expired, Ids{});
  res = r.open("d1", SessionKind::http, "d", t0 + 11s);
  EXPECT_EQ(res.status, Status::opened);
  EXPECT_EQ(res.expired, (Ids{"a1", "b1"}));
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.stats().expired, 2u);
  EXPECT_EQ(r.stats().refused, 1u);
}

TEST(SessionRegistryTest, ClientAtItsOwnCapReplacesEvenWhenFull) {
  SessionRegistry r{params(1h, 2, 3)};
  open_ok(r, "a1", "a", t0);
  open_ok(r, "a2", "a", t0 + 1s);
  open_ok(r, "b1", "b", t0 + 2s);
  EXPECT_EQ(r.open("b2", SessionKind::http, "b", t0 + 3s).status, Status::full);
  auto res = r.open("a3", SessionKind::http, "a", t0 + 3s);
  EXPECT_EQ(res.status, Status::opened);
  EXPECT_EQ(res.evicted, Ids{"a1"});
  EXPECT_EQ(r.size(), 3u);
}

TEST(SessionRegistryTest, DuplicateIdIsRefused) {
  SessionRegistry r{params(10s, 0, 0)};
  open_ok(r, "s1", "alice", t0, SessionKind::sse);
  auto res = r.open("s1", SessionKind::http, "bob", t0 + 1s);
  EXPECT_EQ(res.status, Status::duplicate_id);
  EXPECT_EQ(r.find("s1")->client, "alice");
  EXPECT_EQ(r.find("s1")->kind, SessionKind::sse);
  EXPECT_EQ(r.stats().opened, 1u);
  // Once expired, the id is free again (open() sweeps first).
  res = r.open("s1", SessionKind::http, "bob", t0 + 10s);
  EXPECT_EQ(res.status, Status::opened);
  EXPECT_EQ(res.expired, Ids{"s1"});
  EXPECT_EQ(r.find("s1")->client, "bob");
  // Refused or not, what open() expired on the way is reported for the caller to end.
  open_ok(r, "s2", "carol", t0 + 10s);
  res = r.open("s1", SessionKind::http, "dave", t0 + 20s - 1ns);
  EXPECT_EQ(res.status, Status::duplicate_id);
  EXPECT_EQ(res.expired, Ids{});
  EXPECT_TRUE(r.touch("s1", t0 + 15s));
  res = r.open("s1", SessionKind::http, "dave", t0 + 20s);
  EXPECT_EQ(res.status, Status::duplicate_id);
  EXPECT_EQ(res.expired, Ids{"s2"});
  EXPECT_EQ(r.find("s1")->client, "bob");
}

TEST(SessionRegistryTest, CountersAndSnapshot) {
  SessionRegistry r{params(1h, 2, 0)};
  open_ok(r, "h1", "carol", t0, SessionKind::http);
  open_ok(r, "w1", "alice", t0, SessionKind::websocket);
  open_ok(r, "w2", "alice", t0, SessionKind::websocket);
  open_ok(r, "s1", "bob", t0, SessionKind::sse);
  open_ok(r, "i1", "bob", t0, SessionKind::stdio);
  EXPECT_EQ(r.open("h2", SessionKind::http, "alice", t0 + 1s).evicted, Ids{"w1"});
  EXPECT_TRUE(r.close("s1"));
  r.touch("h2", t0 + 2h);
  EXPECT_EQ(r.sweep(t0 + 1h), (Ids{"h1", "w2", "i1"}));

  auto st = r.stats();
  EXPECT_EQ(st.open, 1u);
  EXPECT_EQ(st.open_by_kind, (std::array<std::size_t, session_kind_count>{1, 0, 0, 0}));
  EXPECT_EQ(st.clients, 1u);
  EXPECT_EQ(st.opened, 6u);
  EXPECT_EQ(st.closed, 1u);
  EXPECT_EQ(st.expired, 3u);
  EXPECT_EQ(st.evicted, 1u);
  EXPECT_EQ(st.refused, 0u);

  open_ok(r, "x1", "bob", t0 + 2h, SessionKind::sse);
  open_ok(r, "x2", "bob", t0 + 2h, SessionKind::websocket);
  open_ok(r, "x3", "aaron", t0 + 2h, SessionKind::stdio);
  st = r.stats();
  EXPECT_EQ(st.open_by_kind, (std::array<std::size_t, session_kind_count>{1, 1, 1, 1}));
  const auto snap = r.snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].client, "aaron");
  EXPECT_EQ(snap[0].sessions, 1u);
  EXPECT_EQ(snap[1].client, "alice");
  EXPECT_EQ(snap[1].sessions, 1u);
  EXPECT_EQ(snap[2].client, "bob");
  EXPECT_EQ(snap[2].sessions, 2u);
}

TEST(SessionRegistryTest, KindNames) {
  EXPECT_EQ(to_string(SessionKind::http), "http");
  EXPECT_EQ(to_string(SessionKind::websocket), "websocket");
  EXPECT_EQ(to_string(SessionKind::sse), "sse");
  EXPECT_EQ(to_string(SessionKind::stdio), "stdio");
}

TEST(SessionRegistryTest, ManySessionsExpireInOrder) {
  SessionRegistry r{params(60s, 0, 0)};
  constexpr int n = 20'000;
  for (int i = 0; i < n; ++i) {
    open_ok(r, "s" + std::to_string(i), "c" + std::to_string(i % 100), t0 + i * 1ms);
  }
  // Touch the odd ones 30 s later; the even ones then expire first, in opening order.
  for (int i = 1; i < n; i += 2) ASSERT_TRUE(r.touch("s" + std::to_string(i), t0 + 30s));
  const Ids first = r.sweep(t0 + 60s + (n - 1) * 1ms);
  ASSERT_EQ(first.size(), static_cast<std::size_t>(n / 2));
  for (int i = 0; i < n / 2; ++i)
    ASSERT_EQ(first[static_cast<std::size_t>(i)], "s" + std::to_string(2 * i));
  EXPECT_EQ(r.sweep(t0 + 90s - 1ns), Ids{});
  EXPECT_EQ(r.sweep(t0 + 90s).size(), static_cast<std::size_t>(n / 2));
  EXPECT_EQ(r.stats().clients, 0u);
}

// Random opens, touches, closes and sweeps against a plain model: every id the registry
// ends is the one the model predicts, in the same order, and the counts agree.
TEST(SessionRegistryTest, RandomOperationsMatchAModel) {
  struct Model {
    std::string client;
    SessionKind kind;
    TimePoint last_seen;
    std::uint64_t seq;
  };
  for (std::uint64_t seed : {7u, 8u, 9u, 2024u}) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    const auto idle = 5s;
    const std::size_t per_client = 3;
    const std::size_t total = 12;
    SessionRegistry r{params(idle, per_client, total)};
    std::map<std::string, Model> model;
    std::uint64_t seq = 0;
    std::uint64_t opened = 0, closed = 0, expired = 0, evicted = 0, refused = 0;
    TimePoint now = t0;
    int next_id = 0;

    // Stalest first: last seen, then opening order.
    auto stalest = [&](auto&& keep) {
      Ids ids;
      for (const auto& [id, m] : model) {
        if (keep(m)) ids.push_back(id);
      }
      std::sort(ids.begin(), ids.end(), [&](const std::string& a, const std::string& b) {
        const Model& x = model.at(a);
        const Model& y = model.at(b);
        return std::tie(x.last_seen, x.seq) < std::tie(y.last_seen, y.seq);
      });
      return ids;
    };
    auto model_sweep = [&] {
      Ids gone = stalest([&](const Model& m) { return now - m.last_seen >= idle; });
      for (const auto& id : gone) model.erase(id);
      expired += gone.size();
      return gone;
    };
    auto random_id = [&] {
      return "s" + std::to_string(rng() % static_cast<std::uint64_t>(next_id + 1));
    };

    for (int step = 0; step < 3000; ++step) {
      const auto op = rng() % 10;
      if (op < 4) {
        const std::string client = "c" + std::to_string(rng() % 5);
        const auto kind = static_cast<SessionKind>(rng() % session_kind_count);
        const std::string id = rng() % 10 == 0 ? random_id() : "s" + std::to_string(next_id++);
        auto res = r.open(id, kind, client, now);
        ASSERT_EQ(res.expired, model_sweep());
        if (model.contains(id)) {
          ASSERT_EQ(res.status, Status::duplicate_id);
          continue;
        }
        Ids own = stalest([&](const Model& m) { return m.client == client; });
        const std::size_t drop = own.size() >= per_client ? own.size() - per_client + 1 : 0;
        if (model.size() - drop >= total) {
          ASSERT_EQ(res.status, Status::full);
          ++refused;
          continue;
        }
        ASSERT_EQ(res.status, Status::opened);
        own.resize(drop);
        ASSERT_EQ(res.evicted, own);
        for (const auto& e : own) model.erase(e);
        evicted += drop;
        model[id] = {client, kind, now, seq++};
        ++opened;
      } else if (op < 6) {
        const std::string id = random_id();
        auto it = model.find(id);
        ASSERT_EQ(r.touch(id, now), it != model.end());
        if (it != model.end()) it->second.last_seen = std::max(it->second.last_seen, now);
      } else if (op < 7) {
        const std::string id = random_id();
        const bool known = model.erase(id) == 1;
        ASSERT_EQ(r.close(id), known);
        if (known) ++closed;
      } else if (op < 8) {
        ASSERT_EQ(r.sweep(now), model_sweep());
      } else if (op < 9) {
        now += std::chrono::milliseconds(rng() % 1500);
      } else {
        // A caller whose `now` is a little stale.
        const std::string id = random_id();
        auto it = model.find(id);
        ASSERT_EQ(r.touch(id, now - 100ms), it != model.end());
        if (it != model.end()) it->second.last_seen = std::max(it->second.last_seen, now - 100ms);
      }

      const auto st = r.stats();
      ASSERT_EQ(st.open, model.size());
      ASSERT_EQ(r.size(), model.size());
      std::array<std::size_t, session_kind_count> by_kind{};
      std::map<std::string, std::size_t> per;
      for (const auto& [id, m] : model) {
        ++by_kind[static_cast<std::size_t>(m.kind)];
        ++per[m.client];
        const auto* s = r.find(id);
        ASSERT_NE(s, nullptr);
        ASSERT_EQ(s->last_seen, m.last_seen);
      }
      ASSERT_EQ(st.open_by_kind, by_kind);
      ASSERT_EQ(st.clients, per.size());
      ASSERT_LE(model.size(), total);
      ASSERT_EQ(st.opened, opened);
      ASSERT_EQ(st.closed, closed);
      ASSERT_EQ(st.expired, expired);
      ASSERT_EQ(st.evicted, evicted);
      ASSERT_EQ(st.refused, refused);
      ASSERT_EQ(st.opened, st.open + st.closed + st.expired + st.evicted);
      const auto snap = r.snapshot();
      ASSERT_EQ(snap.size(), per.size());
      for (const auto& c : snap) {
        ASSERT_EQ(c.sessions, per[c.client]);
        ASSERT_LE(c.sessions, per_client);
      }
      if (const auto next = r.next_expiry()) {
        ASSERT_FALSE(model.empty());
        ASSERT_EQ(*next,
                  model.at(stalest([](const Model&) { return true; }).front()).last_seen + idle);
      } else {
        ASSERT_TRUE(model.empty());
      }
    }
    EXPECT_GT(opened, 500u);
    EXPECT_GT(expired, 50u);
    EXPECT_GT(evicted, 50u);
    EXPECT_GT(refused, 10u);
  }
}

}  // namespace
}  // namespace sluice::session
