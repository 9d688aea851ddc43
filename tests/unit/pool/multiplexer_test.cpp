#include "pool/multiplexer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <thread>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using Statements = std::vector<std::string>;

// "CHECK <schema>|<role>" asks a fake connection whether its session is in that context.
std::string check(const DbContext& ctx) {
  return "CHECK " + ctx.schema + "|" + ctx.role;
}

// The name in a statement ending in one quoted identifier, unquoted.
std::string unquote(const std::string& sql) {
  std::string out;
  const auto open = sql.find('"');
  for (std::size_t i = open + 1; i + 1 < sql.size(); ++i) {
    out += sql[i];
    if (sql[i] == '"') ++i;
  }
  return out;
}

class FakeBackend;

// A connection whose session understands the PostgreSQL dialect's switch statements, logs
// every statement, fails the ones containing the backend's `fail_on`, and counts CHECKs that
// find the session in another context.
class FakeConnection final : public Connection {
 public:
  FakeConnection(FakeBackend& backend, int serial) : backend_(backend), serial_(serial) {}
  asio::awaitable<ExecResult> execute(Statement stmt, RowSink&, Deadline) override;
  asio::awaitable<void> validate(Deadline) override { co_return; }
  asio::awaitable<void> close() noexcept override { co_return; }
  bool reusable() const noexcept override { return true; }

 private:
  FakeBackend& backend_;
  int serial_;
  std::string schema_;
  std::string role_;
};

class FakeBackend final : public Backend {
 public:
  const std::string& source() const noexcept override { return name_; }
  asio::awaitable<std::unique_ptr<Connection>> connect(Deadline) override {
    co_return std::make_unique<FakeConnection>(*this, ++connects);
  }

  void log(int serial, const std::string& sql) {
    std::lock_guard lock(mutex_);
    log_.emplace_back(serial, sql);
  }
  // Every statement but the CHECKs, in order.
  Statements switches() {
    std::lock_guard lock(mutex_);
    Statements out;
    for (const auto& [serial, sql] : log_) {
      if (sql.rfind("CHECK", 0) != 0) out.push_back(sql);
    }
    return out;
  }
  // The connection that ran the last statement.
  int last_serial() {
    std::lock_guard lock(mutex_);
    return log_.empty() ? 0 : log_.back().first;
  }

  std::atomic<int> connects{0};
  std::atomic<int> mismatches{0};
  std::atomic<int> checks{0};
  std::string fail_on;  // set while no statement runs
  std::chrono::milliseconds delay{0};

 private:
  std::string name_ = "fake";
  std::mutex mutex_;
  std::vector<std::pair<int, std::string>> log_;
};

asio::awaitable<ExecResult> FakeConnection::execute(Statement stmt, RowSink&, Deadline) {
  const std::string sql(stmt.sql);
  backend_.log(serial_, sql);
  if (backend_.delay.count() > 0) {
    asio::steady_timer t(co_await asio::this_coro::executor, backend_.delay);
    co_await t.async_wait(asio::use_awaitable);
  }
  if (!backend_.fail_on.empty() && sql.find(backend_.fail_on) != std::string::npos) {
    throw DbError(errc::statement_failed, "fake", {"42704", 0, "rejected: " + sql});
  }
  if (sql.rfind("CHECK ", 0) == 0) {
    ++backend_.checks;
    if (sql.substr(6) != schema_ + "|" + role_) ++backend_.mismatches;
  } else if (sql.rfind("SET search_path TO ", 0) == 0) {
    schema_ = unquote(sql);
  } else if (sql == "RESET search_path") {
    schema_.clear();
  } else if (sql.rfind("SET ROLE ", 0) == 0) {
    role_ = unquote(sql);
  } else if (sql == "RESET ROLE") {
    role_.clear();
  } else if (sql.rfind("SET search_path", 0) == 0) {
    schema_ = "?";  // a borrower changing the context behind the multiplexer's back
  }
  co_return ExecResult{};
}

DbContext in_schema(std::string s, std::string r = "") {
  DbContext c;
  c.schema = std::move(s);
  c.role = std::move(r);
  return c;
}

PoolParams pool_of(std::size_t n) {
  PoolParams p;
  p.min_size = n;
  p.max_size = n;
  return p;
}

MultiplexerParams mux_params(std::size_t per_client_cap = 0, bool affinity = true) {
  MultiplexerParams p;
  p.per_client_cap = per_client_cap;
  p.context_affinity = affinity;
  return p;
}

template <class F>
void run(asio::io_context& io, F f) {
  std::exception_ptr error;
  asio::co_spawn(io, std::move(f), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

asio::awaitable<void> sleep_for(Clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Runs CHECK for the lease's context through the lease.
asio::awaitable<void> probe(MultiplexedConnection& c) {
  DiscardRows sink;
  const std::string sql = check(c.context());
  const Statement stmt{sql, {}};
  co_await c->execute(stmt, sink, Clock::now() + 1s);
}

asio::awaitable<void> run_sql(MultiplexedConnection& c, const std::string& sql) {
  DiscardRows sink;
  const Statement stmt{sql, {}};
  co_await c->execute(stmt, sink, Clock::now() + 1s);
}

class MultiplexerTest : public ::testing::Test {
 protected:
  asio::io_context io;
  std::shared_ptr<FakeBackend> backend = std::make_shared<FakeBackend>();
  std::unique_ptr<Dialect> pg = Dialect::make(Dialect::Kind::postgresql);
};

TEST_F(MultiplexerTest, RequestGetsAConnectionInItsContext) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext ctx = in_schema("sales", "analyst");
    {
      auto c = co_await mux.acquire("alice", ctx, Clock::now() + 1s);
      EXPECT_EQ(c.context(), ctx);
      co_await probe(c);
      EXPECT_EQ(mux.snapshot().queue.in_flight, 1u);
    }
    EXPECT_EQ(backend->switches(),
              (Statements{R"(SET ROLE "analyst")", R"(SET search_path TO "sales")"}));
    EXPECT_EQ(backend->mismatches.load(), 0);
    const auto s = mux.snapshot();
    EXPECT_EQ(s.queue.in_flight, 0u) << "the lease reports done when destroyed";
    EXPECT_EQ(s.queue.admitted_total, 1u);
    EXPECT_EQ(s.context.affinity_misses, 1u);
    EXPECT_EQ(s.context.switch_statements, 2u);
    EXPECT_EQ(mux.params().global_cap, 1u) << "the global cap is the pool's max_size";
    co_await pool.close(Clock::now() + 1s);
  });
}

// Two connections end up in schemas a and b (b released last). Then a, b, a, b.
Statements alternate(asio::io_context& io, std::shared_ptr<FakeBackend> backend,
                     const Dialect& dialect, bool affinity, ContextStats& stats) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(2));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, dialect, mux_params(0, affinity));
    const DbContext a = in_schema("a");
    const DbContext b = in_schema("b");
    {
      auto ca = co_await mux.acquire("x", a, Clock::now() + 1s);
      auto cb = co_await mux.acquire("y", b, Clock::now() + 1s);
      ca.release();
      cb.release();
    }
    for (int i = 0; i < 4; ++i) {
      auto c = co_await mux.acquire("x", i % 2 == 0 ? a : b, Clock::now() + 1s);
      co_await probe(c);
    }
    stats = mux.snapshot().context;
    co_await pool.close(Clock::now() + 1s);
  });
  return backend->switches();
}

TEST_F(MultiplexerTest, AffinityReusesAConnectionAlreadyInTheContext) {
  ContextStats stats;
  const Statements s = alternate(io, backend, *pg, true, stats);
  EXPECT_EQ(s.size(), 2u) << "only the first two checkouts switch";
  EXPECT_EQ(stats.affinity_hits, 4u);
  EXPECT_EQ(stats.affinity_misses, 2u);
  EXPECT_EQ(backend->mismatches.load(), 0);
}

TEST_F(MultiplexerTest, WithoutAffinityTheMostRecentlyUsedConnectionIsSwitched) {
  ContextStats stats;
  const Statements s = alternate(io, backend, *pg, false, stats);
  EXPECT_EQ(s.size(), 6u) << "every checkout after the first two switches the same connection";
  EXPECT_EQ(stats.affinity_misses, 6u);
  EXPECT_EQ(backend->checks.load(), 4);
  EXPECT_EQ(backend->mismatches.load(), 0) << "results stay correct";
}

TEST_F(MultiplexerTest, QueuedRequestPastItsDeadlineTimesOutWithoutReachingThePool) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    auto held = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
    const auto before = backend->switches().size();
    try {
      const DbContext schema_b = in_schema("b");
      co_await mux.acquire("bob", schema_b, Clock::now() + 50ms);
      ADD_FAILURE() << "the only connection is held";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::acquire_timeout);
      EXPECT_NE(std::string(e.what()).find("queued behind other requests"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("source 'fake'"), std::string::npos) << e.what();
    }
    EXPECT_EQ(backend->switches().size(), before);
    EXPECT_EQ(pool.stats().waiters, 0u);
    EXPECT_EQ(pool.stats().acquire_timeouts, 0u) << "it never reached the pool";
    EXPECT_EQ(mux.snapshot().queue.expired_total, 1u);
    held.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, CancelledQueuedRequestLeavesTheQueueAtOnce) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    auto held = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
    asio::steady_timer t(co_await asio::this_coro::executor, 30ms);
    const DbContext ctx = in_schema("b");
    auto result =
        co_await (mux.acquire("bob", ctx, Clock::now() + 10s) || t.async_wait(asio::use_awaitable));
    EXPECT_EQ(result.index(), 1u);
    const auto s = mux.snapshot();
    EXPECT_EQ(s.queue.queued, 0u);
    EXPECT_EQ(s.queue.cancelled_total, 1u);
    held.release();
    // The freed capacity is not held by the cancelled request.
    auto again = co_await mux.acquire("carol", schema_a, Clock::now() + 1s);
    EXPECT_TRUE(again);
    again.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, ClientsTakeTurnsWhateverTheirQueueLengths) {
  std::vector<std::string> order;
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    auto held = co_await mux.acquire("first", schema_a, Clock::now() + 1s);
    auto ex = co_await asio::this_coro::executor;
    auto request = [&](std::string client, int n) -> asio::awaitable<void> {
      const DbContext ctx = in_schema("a");
      auto c = co_await mux.acquire(client, ctx, Clock::now() + 5s);
      order.push_back(client + std::to_string(n));
      co_await sleep_for(1ms);
    };
    const std::string flood = "flood";
    const std::string late = "late";
    for (int i = 0; i < 4; ++i) asio::co_spawn(ex, request(flood, i), asio::detached);
    for (int i = 0; i < 2; ++i) asio::co_spawn(ex, request(late, i), asio::detached);
    co_await sleep_for(20ms);
    EXPECT_EQ(mux.snapshot().queue.queued, 6u);
    held.release();
    while (order.size() < 6) co_await sleep_for(2ms);
    co_await pool.close(Clock::now() + 1s);
  });
  EXPECT_EQ(order,
            (std::vector<std::string>{"flood0", "late0", "flood1", "late1", "flood2", "flood3"}));
}

TEST_F(MultiplexerTest, PerClientCapLeavesRoomForOthers) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(2));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params(1));
    const DbContext schema_a = in_schema("a");
    auto a1 = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
    asio::steady_timer t(co_await asio::this_coro::executor, 30ms);
    auto second = co_await (mux.acquire("alice", schema_a, Clock::now() + 1s) ||
                            t.async_wait(asio::use_awaitable));
    EXPECT_EQ(second.index(), 1u) << "alice is at her cap although a connection is idle";
    const DbContext schema_b = in_schema("b");
    auto b = co_await mux.acquire("bob", schema_b, Clock::now() + 1s);
    EXPECT_TRUE(b);
    a1.release();
    b.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, FailedSwitchLeavesTheContextUnknownAndTheNextBorrowerResetsIt) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    backend->fail_on = R"(SET ROLE "nobody")";
    try {
      const DbContext bad_role = in_schema("a", "nobody");
      co_await mux.acquire("alice", bad_role, Clock::now() + 1s);
      ADD_FAILURE() << "the role switch fails";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::statement_failed);
      EXPECT_NE(std::string(e.what()).find("nobody"), std::string::npos) << e.what();
    }
    backend->fail_on.clear();
    EXPECT_EQ(mux.snapshot().queue.in_flight, 0u);
    const DbContext schema_a = in_schema("a");
    auto c = co_await mux.acquire("bob", schema_a, Clock::now() + 1s);
    co_await probe(c);
    EXPECT_EQ(backend->switches(),
              (Statements{R"(SET ROLE "nobody")", "RESET ROLE", R"(SET search_path TO "a")"}));
    const auto s = mux.snapshot().context;
    EXPECT_EQ(s.switch_failures, 1u);
    EXPECT_EQ(s.resets, 1u);
    EXPECT_EQ(backend->mismatches.load(), 0);
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, FailedStatementMakesTheNextBorrowerResetTheContext) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    {
      auto c = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
      const std::string fine = "SELECT fine";
      co_await run_sql(c, fine);
    }
    {
      auto c = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
      backend->fail_on = "SELECT broken";
      try {
        const std::string broken = "SELECT broken";
        co_await run_sql(c, broken);
        ADD_FAILURE();
      } catch (const DbError&) {
      }
      backend->fail_on.clear();
    }
    auto c = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
    co_await probe(c);
    EXPECT_EQ(backend->switches(),
              (Statements{R"(SET search_path TO "a")", "SELECT fine", "SELECT broken", "RESET ROLE",
                          R"(SET search_path TO "a")"}));
    EXPECT_EQ(mux.snapshot().context.affinity_hits, 1u) << "only after the statement that worked";
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, BorrowerThatMayHaveChangedTheContextMarksItUnknown) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    {
      auto c = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
      c.mark_context_unknown();
      const std::string sneaky = "SET search_path = elsewhere";
      co_await run_sql(c, sneaky);
    }
    auto c = co_await mux.acquire("bob", schema_a, Clock::now() + 1s);
    co_await probe(c);
    EXPECT_EQ(backend->mismatches.load(), 0);
    EXPECT_EQ(mux.snapshot().context.resets, 1u);
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, ContextTheDialectCannotReachIsRefusedBeforeQueueing) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    DbContext ctx;
    ctx.database = "elsewhere";
    try {
      co_await mux.acquire("alice", ctx, Clock::now() + 1s);
      ADD_FAILURE() << "PostgreSQL cannot switch databases";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("configure a separate source"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(mux.snapshot().queue.admitted_total, 0u);
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, ConnectionTheDialectCannotSwitchBackIsReplaced) {
  auto snowflake = Dialect::make(Dialect::Kind::snowflake);
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *snowflake, mux_params());
    int first = 0;
    {
      const DbContext schema_s = in_schema("S");
      auto c = co_await mux.acquire("alice", schema_s, Clock::now() + 1s);
      co_await probe(c);
      first = backend->last_serial();
    }
    const DbContext defaults;
    auto c = co_await mux.acquire("bob", defaults, Clock::now() + 1s);
    const std::string select_1 = "SELECT 1";
    co_await run_sql(c, select_1);
    EXPECT_NE(backend->last_serial(), first) << "a new connection, in the login default";
    EXPECT_EQ(backend->switches(), (Statements{R"(USE SCHEMA "S")", "SELECT 1"}));
    EXPECT_EQ(mux.snapshot().context.discarded, 1u);
    EXPECT_EQ(pool.stats().closed, 1u);
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST_F(MultiplexerTest, CloseFailsQueuedRequestsAndRefusesNewOnes) {
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, pool_of(1));
    pool.start();
    Multiplexer mux(io.get_executor(), pool, *pg, mux_params());
    const DbContext schema_a = in_schema("a");
    auto held = co_await mux.acquire("alice", schema_a, Clock::now() + 1s);
    std::optional<errc> queued_error;
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          try {
            const DbContext schema_b = in_schema("b");
            co_await mux.acquire("bob", schema_b, Clock::now() + 5s);
          } catch (const DbError& e) {
            queued_error = e.kind();
          }
        },
        asio::detached);
    co_await sleep_for(10ms);
    mux.close();
    co_await sleep_for(10ms);
    EXPECT_EQ(queued_error, errc::pool_closed);
    try {
      co_await mux.acquire("carol", schema_a, Clock::now() + 1s);
      ADD_FAILURE() << "a closed multiplexer refuses";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::pool_closed);
    }
    EXPECT_TRUE(held) << "a checked-out connection is unaffected";
    held.release();
    EXPECT_EQ(mux.snapshot().queue.in_flight, 0u);
    co_await pool.close(Clock::now() + 1s);
  });
}

// Many clients on several threads, each checking its context on every checkout, with
// failures and cancellations thrown in: no CHECK ever finds another context, and every
// request is answered.
TEST_F(MultiplexerTest, ContextsNeverLeakUnderConcurrency) {
  backend->delay = 1ms;
  auto pool = std::make_shared<ConnectionPool>(io.get_executor(), backend, pool_of(3));
  pool->start();
  auto mux = std::make_shared<Multiplexer>(io.get_executor(), *pool, *pg, mux_params(2));
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  constexpr int clients = 12;
  constexpr int per_client = 25;
  for (int i = 0; i < clients; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          std::mt19937 rng(static_cast<unsigned>(i));
          const std::string client = "client" + std::to_string(i);
          for (int n = 0; n < per_client; ++n) {
            const DbContext ctx = in_schema("s" + std::to_string(rng() % 4), i % 3 == 0 ? "r" : "");
            try {
              auto c = co_await mux->acquire(client, ctx, Clock::now() + 10s);
              co_await probe(c);
              const std::string broken = "SELECT broken";
              if (rng() % 5 == 0) co_await run_sql(c, broken);
            } catch (const DbError& e) {
              if (e.kind() != errc::statement_failed) ++failed;
            }
            ++done;
          }
        },
        asio::detached);
  }
  backend->fail_on = "SELECT broken";
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        while (done.load() < clients * per_client) co_await sleep_for(2ms);
        mux.reset();
        co_await pool->close(Clock::now() + 1s);
      },
      asio::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back([this] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), clients * per_client);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(backend->checks.load(), clients * per_client);
  EXPECT_EQ(backend->mismatches.load(), 0);
  EXPECT_LE(backend->connects.load(), 3);
}

}  // namespace
}  // namespace sluice::pool
