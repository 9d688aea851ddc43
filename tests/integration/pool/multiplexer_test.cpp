// The multiplexer against a real PostgreSQL through psqlODBC: isolation of database contexts
// between many clients, fairness under a flood, and what context affinity saves.
#include "pool/multiplexer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/pool/odbc_harness.hpp"
#include "tests/support/pg_cluster.hpp"

namespace sluice::test {
namespace {

using pool::Clock;
using pool::DbContext;

constexpr int kSchemas = 50;

// Schema i of the test; the last one's name is hostile (quotes, semicolon, space, case).
std::string schema_name(int i) {
  if (i == kSchemas - 1) return R"(Mux "Odd"; Schema)";
  return "mux_s" + std::to_string(i);
}

std::string quoted(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

// Each schema holds mux_marker with one row naming the schema; public has one too. The role
// mux_reader may read them all. Idempotent: the cluster is shared by the whole binary.
void create_schemas() {
  std::string sql =
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mux_reader') THEN "
      "CREATE ROLE mux_reader NOLOGIN; END IF; END $$;\n"
      "DROP TABLE IF EXISTS public.mux_marker;\n"
      "CREATE TABLE public.mux_marker (v text);\n"
      "INSERT INTO public.mux_marker VALUES ('public');\n";
  for (int i = 0; i < kSchemas; ++i) {
    const std::string s = quoted(schema_name(i));
    sql += "DROP SCHEMA IF EXISTS " + s + " CASCADE;\n";
    sql += "CREATE SCHEMA " + s + ";\n";
    sql += "CREATE TABLE " + s + ".mux_marker (v text);\n";
    sql += "INSERT INTO " + s + ".mux_marker VALUES ('" + schema_name(i) + "');\n";
    sql += "GRANT USAGE ON SCHEMA " + s + " TO mux_reader;\n";
    sql += "GRANT SELECT ON " + s + ".mux_marker TO mux_reader;\n";
  }
  PgCluster::shared().psql(sql);
}

pool::PoolParams pool_params(std::size_t size) {
  pool::PoolParams p;
  p.min_size = size;
  p.max_size = size;
  p.connect_timeout = 5s;
  return p;
}

pool::MultiplexerParams mux_params(std::size_t per_client_cap, bool affinity) {
  pool::MultiplexerParams p;
  p.per_client_cap = per_client_cap;
  p.context_affinity = affinity;
  return p;
}

DbContext context(std::string schema, std::string role = "") {
  DbContext c;
  c.schema = std::move(schema);
  c.role = std::move(role);
  return c;
}

// What a checkout in `ctx` must see from kWhereAmI.
struct Expected {
  std::string schema;
  std::string user;
};
Expected expected_for(const DbContext& ctx) {
  return {ctx.schema.empty() ? "public" : ctx.schema, ctx.role.empty() ? "sluice" : ctx.role};
}

// The schema the session resolves unqualified names in, the marker found there, and who runs
// the statement.
const std::string kWhereAmI =
    "SELECT current_schema()::text, v, current_user::text FROM mux_marker";

asio::awaitable<pool::ResultBuffer> run_query(pool::Connection& conn, const std::string& sql) {
  pool::ResultBuffer out;
  const pool::Statement stmt{sql, {}};
  co_await conn.execute(stmt, out, Clock::now() + 30s);
  co_return out;
}

asio::awaitable<void> pause(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// True if the checkout's session is in `ctx`: current schema and marker row name its schema,
// and the current user is its role.
asio::awaitable<bool> in_context(pool::MultiplexedConnection& c, const DbContext& ctx) {
  const pool::ResultBuffer r = co_await run_query(*c, kWhereAmI);
  const Expected want = expected_for(ctx);
  if (r.rows().size() != 1) co_return false;
  const auto& row = r.rows()[0];
  co_return std::get<std::string>(row.at(0)) == want.schema&& std::get<std::string>(row.at(1)) ==
      want.schema&& std::get<std::string>(row.at(2)) == want.user;
}

class MultiplexerPgTest : public OdbcHarness {
 protected:
  static void SetUpTestSuite() { create_schemas(); }

  std::shared_ptr<pool::OdbcBackend> pg() {
    return backend("pg", PgCluster::shared().odbc_connection_string());
  }
  // Waits until the pool has opened all its connections, so that runs compare alike.
  static asio::awaitable<void> warm(const pool::ConnectionPool& pool, std::size_t n) {
    while (pool.stats().idle < n) co_await pause(5ms);
  }

  std::unique_ptr<pool::Dialect> dialect = pool::Dialect::make(pool::Dialect::Kind::postgresql);
};

class IsolationTest : public MultiplexerPgTest, public ::testing::WithParamInterface<bool> {};

// 50 clients, each bound to its own schema (one to the connection default, some also to a
// role), interleave 3,000 checkouts on 4 connections. Every checkout must see exactly its own
// context, including after a failed statement left a connection's context unknown.
TEST_P(IsolationTest, FiftyClientsNeverSeeAnotherClientsContext) {
  constexpr int kPerClient = 60;
  int checked = 0;
  int mismatches = 0;
  int unexpected_errors = 0;
  pool::ContextStats stats;
  run([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    pool::ConnectionPool pool(ex, pg(), pool_params(4));
    pool.start();
    co_await warm(pool, 4);
    pool::Multiplexer mux(ex, pool, *dialect, mux_params(2, GetParam()));
    int finished = 0;
    auto client = [&](int i) -> asio::awaitable<void> {
      const std::string name = "client" + std::to_string(i);
      const DbContext ctx = context(i == 0 ? "" : schema_name(i), i % 5 == 1 ? "mux_reader" : "");
      const std::string failing = "SELECT 1/0";
      for (int n = 0; n < kPerClient; ++n) {
        try {
          auto c = co_await mux.acquire(name, ctx, Clock::now() + 60s);
          const bool ok = co_await in_context(c, ctx);
          ++checked;
          if (!ok) ++mismatches;
          if ((n + i) % 7 == 0) {
            try {
              co_await run_query(*c, failing);
            } catch (const pool::DbError& e) {
              if (e.kind() != pool::errc::statement_failed) ++unexpected_errors;
            }
          }
        } catch (const std::exception& e) {
          ADD_FAILURE() << name << ": " << e.what();
          ++unexpected_errors;
        }
      }
      ++finished;
    };
    for (int i = 0; i < kSchemas; ++i) asio::co_spawn(ex, client(i), asio::detached);
    while (finished < kSchemas) co_await pause(10ms);
    stats = mux.snapshot().context;
    EXPECT_EQ(mux.snapshot().queue.admitted_total, std::uint64_t{kSchemas * kPerClient});
    co_await pool.close(Clock::now() + 5s);
  });
  EXPECT_EQ(checked, kSchemas * kPerClient);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(unexpected_errors, 0);
  EXPECT_GT(stats.resets, 0u) << "failed statements must have left contexts to reset";
  EXPECT_GT(stats.switch_statements, 0u);
}

INSTANTIATE_TEST_SUITE_P(Affinity, IsolationTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "On" : "Off"; });

// One client floods 1,000 slow requests; a second then sends 20. With deficit round robin
// the second client's k-th request is admitted after at most k + 1 of the flood's, plus the
// pool size for admissions decided before it arrived: a bound set by the pool, not by the
// flood's length (first come, first served would put 998 ahead of it). The log records each
// admission as its coroutine resumes, which is the order the multiplexer decided them in.
TEST_F(MultiplexerPgTest, FloodingClientCannotDelayAnotherBeyondAFixedBound) {
  constexpr int kFlood = 1000;
  constexpr int kLate = 20;
  constexpr std::size_t kPool = 2;
  struct Event {
    char what;  // 'F' flood admitted, 'E' late enqueued, 'L' late admitted
    int index;
  };
  std::vector<Event> log;
  int flood_done = 0;
  int late_done = 0;
  int flood_cancelled = 0;
  run([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    pool::ConnectionPool pool(ex, pg(), pool_params(kPool));
    pool.start();
    co_await warm(pool, kPool);
    pool::Multiplexer mux(ex, pool, *dialect, mux_params(0, true));
    const DbContext ctx = context(schema_name(1));
    const std::string slow = "SELECT pg_sleep(0.002)";
    {
      // Both connections into the context first: a checkout that switches returns after its
      // statements, which would let the log show the first two admissions out of order.
      auto first = co_await mux.acquire("warmup", ctx, Clock::now() + 10s);
      auto second = co_await mux.acquire("warmup", ctx, Clock::now() + 10s);
    }
    // Cancelled while queued, the acquire throws DbError(cancelled); once admitted, the next
    // operation throws (the statement's DbError, or Asio's operation_aborted before it starts).
    auto flood = [&](int i) -> asio::awaitable<void> {
      try {
        auto c = co_await mux.acquire("flood", ctx, Clock::now() + 60s);
        log.push_back({'F', i});
        co_await run_query(*c, slow);
      } catch (const pool::DbError& e) {
        EXPECT_EQ(e.kind(), pool::errc::cancelled) << e.what();
        ++flood_cancelled;
      } catch (const boost::system::system_error& e) {
        EXPECT_EQ(e.code(), asio::error::operation_aborted) << e.what();
        ++flood_cancelled;
      }
      ++flood_done;
    };
    auto late = [&](int k) -> asio::awaitable<void> {
      log.push_back({'E', k});
      auto c = co_await mux.acquire("late", ctx, Clock::now() + 60s);
      log.push_back({'L', k});
      co_await run_query(*c, slow);
      ++late_done;
    };
    auto signals = std::make_unique<asio::cancellation_signal[]>(kFlood);
    for (int i = 0; i < kFlood; ++i) {
      asio::co_spawn(ex, flood(i), asio::bind_cancellation_slot(signals[i].slot(), asio::detached));
    }
    while (mux.snapshot().queue.queued < kFlood - kPool) co_await pause(1ms);
    for (int k = 0; k < kLate; ++k) asio::co_spawn(ex, late(k), asio::detached);
    while (late_done < kLate) co_await pause(1ms);

    // The rest of the flood gives up: queued requests leave at once.
    for (int i = 0; i < kFlood; ++i) signals[i].emit(asio::cancellation_type::terminal);
    const auto after = mux.snapshot().queue;
    EXPECT_EQ(after.queued, 0u);
    EXPECT_GT(after.cancelled_total, std::uint64_t{kFlood / 2});
    while (flood_done < kFlood) co_await pause(1ms);
    co_await pool.close(Clock::now() + 5s);
  });

  std::vector<std::size_t> enqueued(kLate), admitted(kLate);
  std::vector<int> late_order, flood_order;
  for (std::size_t pos = 0; pos < log.size(); ++pos) {
    const Event& e = log[pos];
    if (e.what == 'E') enqueued[e.index] = pos;
    if (e.what == 'L') {
      admitted[e.index] = pos;
      late_order.push_back(e.index);
    }
    if (e.what == 'F') flood_order.push_back(e.index);
  }
  int most_overtaken = 0;
  for (int k = 0; k < kLate; ++k) {
    int overtaken = 0;
    for (std::size_t pos = enqueued[k]; pos < admitted[k]; ++pos) overtaken += log[pos].what == 'F';
    EXPECT_LE(overtaken, k + 1 + static_cast<int>(kPool)) << "late request " << k;
    most_overtaken = std::max(most_overtaken, overtaken);
  }
  RecordProperty("flood_admissions_before_the_last_late_request", most_overtaken);
  for (int k = 0; k < kLate; ++k) EXPECT_EQ(late_order.at(k), k) << "one client's queue is FIFO";
  for (std::size_t i = 0; i < flood_order.size(); ++i) {
    EXPECT_EQ(flood_order[i], static_cast<int>(i));
  }
  EXPECT_LT(flood_order.size(), std::size_t{kFlood / 2}) << "the flood was still queued";
  EXPECT_GE(flood_cancelled, kFlood - static_cast<int>(flood_order.size()))
      << "every request still queued was cancelled";
}

// The same mixed workload twice, with and without affinity: 6 clients over 4 contexts (two
// shared by two clients, one with a role) on 6 connections, each client pausing briefly
// between requests as an agent does, so that requests from different clients interleave on
// the connections. Without affinity a request gets the most recently used idle connection,
// whatever its context; with it, one already in its context. Affinity must cut the switch
// statements at least in half (measured: about 7 against 230), and every checkout must still
// see its own context.
TEST_F(MultiplexerPgTest, AffinitySavesContextSwitchesAndKeepsResultsCorrect) {
  constexpr int kClients = 6;
  constexpr int kPerClient = 40;
  auto workload = [&](bool affinity) {
    pool::MultiplexerSnapshot snap;
    int mismatches = 0;
    run([&]() -> asio::awaitable<void> {
      auto ex = co_await asio::this_coro::executor;
      pool::ConnectionPool pool(ex, pg(), pool_params(6));
      pool.start();
      co_await warm(pool, 6);
      pool::Multiplexer mux(ex, pool, *dialect, mux_params(0, affinity));
      int finished = 0;
      auto client = [&](int i) -> asio::awaitable<void> {
        const std::string name = "client" + std::to_string(i);
        const DbContext ctx = context(schema_name(10 + i % 4), i % 4 == 2 ? "mux_reader" : "");
        for (int n = 0; n < kPerClient; ++n) {
          {
            auto c = co_await mux.acquire(name, ctx, Clock::now() + 30s);
            if (!co_await in_context(c, ctx)) ++mismatches;
          }
          co_await pause(std::chrono::milliseconds(1 + (i + n) % 3));
        }
        ++finished;
      };
      for (int i = 0; i < kClients; ++i) asio::co_spawn(ex, client(i), asio::detached);
      while (finished < kClients) co_await pause(5ms);
      snap = mux.snapshot();
      co_await pool.close(Clock::now() + 5s);
    });
    EXPECT_EQ(mismatches, 0) << "affinity " << affinity;
    EXPECT_EQ(snap.queue.admitted_total, std::uint64_t{kClients * kPerClient});
    return snap.context;
  };
  const pool::ContextStats off = workload(false);
  const pool::ContextStats on = workload(true);
  RecordProperty("switch_statements_affinity_off", std::to_string(off.switch_statements));
  RecordProperty("switch_statements_affinity_on", std::to_string(on.switch_statements));
  EXPECT_LE(on.switch_statements * 2, off.switch_statements)
      << "on: " << on.switch_statements << " off: " << off.switch_statements << " hits "
      << on.affinity_hits << "/" << off.affinity_hits << " resets " << on.resets << " discarded "
      << on.discarded;
  EXPECT_GT(on.affinity_hits, off.affinity_hits);
  EXPECT_EQ(on.affinity_hits + on.affinity_misses, std::uint64_t{kClients * kPerClient});
}

// Reads through query() on the native client, several to a round trip: 50 clients, each bound
// to its own schema (some also to a role), each with up to 8 reads in flight at once, on 4
// connections with batches of up to 8. A batch only ever holds reads of one context, so every
// read must see exactly its own; a read that fails (one in seven divides by zero) fails alone,
// and its neighbours in the batch still answer.
TEST_F(MultiplexerPgTest, PipelinedReadsEachSeeTheirOwnContextAndFailAlone) {
  constexpr int kPerClient = 40;
  constexpr int kInFlight = 8;
  int checked = 0;
  int mismatches = 0;
  int failed_as_expected = 0;
  int unexpected_errors = 0;
  pool::MultiplexerSnapshot snap;
  std::size_t opened = 0;
  run([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    pool::ConnectionPool pool(ex, pg_backend("native"), pool_params(4));
    pool.start();
    co_await warm(pool, 4);
    pool::MultiplexerParams mp = mux_params(2, true);
    mp.batch_depth = 8;
    pool::Multiplexer mux(ex, pool, *dialect, mp);
    int finished = 0;
    auto one = [&](int i, int n) -> asio::awaitable<void> {
      const std::string name = "client" + std::to_string(i);
      const DbContext ctx = context(i == 0 ? "" : schema_name(i), i % 5 == 1 ? "mux_reader" : "");
      const bool fails = (n + i) % 7 == 0;
      pool::ResultBuffer out;
      const std::string sql = fails ? "SELECT 1/0" : kWhereAmI;
      const pool::Statement stmt{sql, {}};
      try {
        co_await mux.query(name, ctx, stmt, out, Clock::now() + 60s);
        if (fails) {
          ADD_FAILURE() << "1/0 succeeded";
        } else {
          const Expected want = expected_for(ctx);
          const bool ok = out.rows().size() == 1 &&
                          std::get<std::string>(out.rows()[0].at(0)) == want.schema &&
                          std::get<std::string>(out.rows()[0].at(1)) == want.schema &&
                          std::get<std::string>(out.rows()[0].at(2)) == want.user;
          ++checked;
          if (!ok) ++mismatches;
        }
      } catch (const pool::DbError& e) {
        if (fails && e.kind() == pool::errc::statement_failed) {
          ++failed_as_expected;
        } else {
          ADD_FAILURE() << name << ": " << e.what();
          ++unexpected_errors;
        }
      }
    };
    auto client = [&](int i) -> asio::awaitable<void> {
      for (int n = 0; n < kPerClient; n += kInFlight) {
        int done = 0;
        for (int k = 0; k < kInFlight; ++k) {
          asio::co_spawn(ex, one(i, n + k), [&](std::exception_ptr) { ++done; });
        }
        while (done < kInFlight) co_await pause(1ms);
      }
      ++finished;
    };
    for (int i = 0; i < kSchemas; ++i) asio::co_spawn(ex, client(i), asio::detached);
    while (finished < kSchemas) co_await pause(10ms);
    snap = mux.snapshot();
    opened = pool.stats().total;
    co_await pool.close(Clock::now() + 5s);
  });
  int fails = 0;
  for (int i = 0; i < kSchemas; ++i) {
    for (int n = 0; n < kPerClient; ++n) fails += (n + i) % 7 == 0 ? 1 : 0;
  }
  EXPECT_EQ(unexpected_errors, 0);
  EXPECT_EQ(failed_as_expected, fails);
  EXPECT_EQ(checked, kSchemas * kPerClient - fails);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(snap.queue.admitted_total, std::uint64_t{kSchemas * kPerClient});
  EXPECT_GT(snap.queue.riders_total, 0u) << "no read ever shared a round trip";
  EXPECT_EQ(snap.queue.in_flight, 0u);
  EXPECT_LE(opened, 4u);
}

}  // namespace
}  // namespace sluice::test
