// The native PostgreSQL client against a real private PostgreSQL 15 (SCRAM logins over
// TCP): what it must do beyond the type round trips it shares with psqlODBC (those run for
// both in odbc_types_test.cpp): fail clearly, stop at deadlines, obey cancellation, and
// leave its connection usable after each.
#include <gtest/gtest.h>

#include <optional>

#include "pool/connection_pool.hpp"
#include "pool/pg_connection.hpp"
#include "tests/integration/pool/odbc_harness.hpp"
#include "tests/support/pg_cluster.hpp"

namespace sluice::test {
namespace {

using pool::Param;

class PgNativeTest : public OdbcHarness {
 protected:
  std::shared_ptr<pool::PgBackend> native(std::string url = PgCluster::shared().url()) {
    return std::make_shared<pool::PgBackend>(pool::PgBackendParams{"pg", std::move(url)},
                                             watchdog_);
  }

  // The server process of `conn`, asked through the connection itself.
  static asio::awaitable<std::string> backend_pid(pool::Connection& conn) {
    auto r = co_await query(conn, "SELECT pg_backend_pid()");
    co_return std::to_string(std::get<std::int64_t>(r.rows().at(0).at(0)));
  }
};

TEST_F(PgNativeTest, AWrongPasswordIsAConnectErrorThatSaysSo) {
  run([&]() -> asio::awaitable<void> {
    try {
      co_await native(PgCluster::shared().url("sluice_test", "sluice", "not-the-password"))
          ->connect(pool::Clock::now() + 10s);
      ADD_FAILURE() << "connected with a wrong password";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connect_failed);
      EXPECT_EQ(e.diagnostic().sqlstate, "28P01");
      EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos)
          << e.what();
      EXPECT_EQ(std::string(e.what()).find("not-the-password"), std::string::npos);
    }
  });
}

TEST_F(PgNativeTest, AnUnknownDatabaseAndAClosedPortAreConnectErrors) {
  run([&]() -> asio::awaitable<void> {
    try {
      co_await native(PgCluster::shared().url("no_such_db"))->connect(pool::Clock::now() + 10s);
      ADD_FAILURE() << "connected to a missing database";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connect_failed);
      EXPECT_EQ(e.diagnostic().sqlstate, "3D000");
    }
    // A port nobody listens on: bind one, note it, close it.
    std::uint16_t port = 0;
    {
      asio::ip::tcp::acceptor a(io_, {asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }
    try {
      co_await native("postgresql://sluice:x@127.0.0.1:" + std::to_string(port) + "/d")
          ->connect(pool::Clock::now() + 10s);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connect_failed);
      EXPECT_NE(std::string(e.what()).find("could not connect"), std::string::npos) << e.what();
    }
  });
}

TEST_F(PgNativeTest, AServerThatNeverAnswersTimesOutAtTheConnectDeadline) {
  asio::ip::tcp::acceptor silent(io_, {asio::ip::make_address("127.0.0.1"), 0});
  silent.listen();  // the kernel completes the TCP handshake; nobody ever speaks
  const auto port = silent.local_endpoint().port();
  run([&]() -> asio::awaitable<void> {
    const auto start = pool::Clock::now();
    try {
      co_await native("postgresql://sluice:x@127.0.0.1:" + std::to_string(port) + "/d")
          ->connect(start + 300ms);
      ADD_FAILURE() << "connected to a silent server";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connect_failed);
      EXPECT_NE(std::string(e.what()).find("connect timeout"), std::string::npos) << e.what();
    }
    EXPECT_LT(pool::Clock::now() - start, 5s);
  });
}

TEST_F(PgNativeTest, AServerThatIsNotPostgresqlIsAClearConnectError) {
  asio::ip::tcp::acceptor http(io_, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = http.local_endpoint().port();
  run([&]() -> asio::awaitable<void> {
    // Answers whatever arrives the way an HTTP server would.
    auto serve = [&]() -> asio::awaitable<void> {
      auto peer = co_await http.async_accept(asio::use_awaitable);
      const std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      co_await asio::async_write(peer, asio::buffer(reply), asio::use_awaitable);
    };
    asio::co_spawn(co_await asio::this_coro::executor, serve(), asio::detached);
    try {
      co_await native("postgresql://sluice:x@127.0.0.1:" + std::to_string(port) + "/d")
          ->connect(pool::Clock::now() + 5s);
      ADD_FAILURE() << "connected to an HTTP server";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connect_failed);
      EXPECT_NE(std::string(e.what()).find("is this PostgreSQL?"), std::string::npos) << e.what();
    }
  });
}

TEST_F(PgNativeTest, PlaceholdersInsideLiteralsAndCommentsAreLeftAlone) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    std::vector<Param> p{std::int64_t{7}, std::string("x?y")};
    auto r = co_await query(*conn, "SELECT ?::int + 1, '?' /* ? */, $$?$$, ? -- ?", p);
    const auto& row = r.rows().at(0);
    EXPECT_EQ(row.at(0), Param(std::int64_t{8}));
    EXPECT_EQ(row.at(1), Param(std::string("?")));
    EXPECT_EQ(row.at(2), Param(std::string("?")));
    EXPECT_EQ(row.at(3), Param(std::string("x?y")));
  });
}

TEST_F(PgNativeTest, PreparedQueriesFollowTheTableThroughDdlAndDiscard) {
  PgCluster::shared().psql(
      "DROP TABLE IF EXISTS prep_t; CREATE TABLE prep_t (a int); INSERT INTO prep_t VALUES (1)");
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    auto first = co_await query(*conn, "SELECT * FROM prep_t");
    EXPECT_EQ(first.columns().size(), 1u);
    // The result type changes under the prepared statement: it is prepared again.
    PgCluster::shared().psql("ALTER TABLE prep_t ADD COLUMN b text DEFAULT 'x'");
    auto second = co_await query(*conn, "SELECT * FROM prep_t");
    EXPECT_EQ(second.columns().size(), 2u);
    if (second.columns().size() == 2u) {
      EXPECT_EQ(second.rows().at(0).at(1), Param(std::string("x")));
    }
    // The server forgets every prepared statement; the next call prepares again.
    co_await query(*conn, "DISCARD ALL");
    auto third = co_await query(*conn, "SELECT * FROM prep_t");
    EXPECT_EQ(third.rows().size(), 1u);
    // More distinct queries than the cache keeps: the oldest are closed, all stay right.
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 80; ++i) {
        std::vector<Param> p{std::int64_t{i}};
        auto r = co_await query(*conn, "SELECT ?::int + " + std::to_string(i), p);
        EXPECT_EQ(r.rows().at(0).at(0), Param(std::int64_t{2 * i}));
      }
    }
    auto count = co_await query(
        *conn, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'sluice_%'");
    EXPECT_LE(std::get<std::int64_t>(count.rows().at(0).at(0)), 64);
    EXPECT_TRUE(conn->reusable());
  });
}

TEST_F(PgNativeTest, BinaryResultsMatchTheServersOwnTextForEdgeValues) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    // Values a Timestamp cannot hold come back as the text PostgreSQL itself prints.
    auto r = co_await query(*conn,
                            "SELECT v, v::text FROM (VALUES ('infinity'::timestamp), "
                            "('-infinity'), ('0044-03-15 12:00:00 BC'), ('10000-01-01 00:00:00'))"
                            " t(v)");
    EXPECT_EQ(r.rows().size(), 4u);
    for (const auto& row : r.rows()) EXPECT_EQ(row.at(0), row.at(1));
    auto ok = co_await query(*conn,
                             "SELECT '2024-02-29 23:59:59.000001'::timestamp, "
                             "'2024-02-29 23:59:59.000001+05:30'::timestamptz, '-1.5'::float4, "
                             "32767::int2, '\\x00ff'::bytea");
    const auto& row = ok.rows().at(0);
    EXPECT_EQ(row.at(0), Param(pool::Timestamp{{2024, 2, 29}, {23, 59, 59, 1000}}));
    EXPECT_EQ(row.at(1), Param(pool::Timestamp{{2024, 2, 29}, {18, 29, 59, 1000}}));  // UTC
    EXPECT_EQ(row.at(2), Param(-1.5));
    EXPECT_EQ(row.at(3), Param(std::int64_t{32767}));
    EXPECT_EQ(row.at(4), Param(std::vector<std::byte>{std::byte{0}, std::byte{0xff}}));
  });
}

TEST_F(PgNativeTest, AStatementPastItsDeadlineStopsAndTheConnectionStaysUsable) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const auto start = pool::Clock::now();
    try {
      co_await query(*conn, "SELECT pg_sleep(30)", {}, 300ms);
      ADD_FAILURE() << "pg_sleep(30) finished within 300 ms";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::statement_timeout);
      EXPECT_NE(std::string(e.what()).find("deadline"), std::string::npos) << e.what();
    }
    EXPECT_LT(pool::Clock::now() - start, 5s);
    EXPECT_TRUE(conn->reusable());
    auto again = co_await query(*conn, "SELECT 42");
    EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{42}));
  });
}

// A sink that takes `wanted` rows and then stops.
class FirstRows final : public pool::RowSink {
 public:
  explicit FirstRows(std::uint64_t wanted) : wanted_(wanted) {}
  void columns(std::span<const pool::ColumnInfo>) override {}
  bool row(const pool::RowView&) override { return ++seen_ <= wanted_; }
  std::uint64_t seen() const noexcept { return seen_; }

 private:
  std::uint64_t wanted_;
  std::uint64_t seen_ = 0;
};

// With a row limit the server stops producing rows past it: a billion-row result capped at
// two answers at once instead of being read to its end (minutes, past the deadline), on the
// prepared path (a query, run twice: prepared, then reused) and the unprepared one (a query
// over 16 KB is not prepared), and the connection goes on.
TEST_F(PgNativeTest, ARowLimitStopsTheServerInsteadOfReadingTheRestOfTheResult) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const std::string prepared = "SELECT generate_series(1, 1000000000)";
    const std::string unprepared = prepared + " /*" + std::string(17 * 1024, '-') + "*/";
    for (const std::string& sql : {prepared, unprepared}) {
      for (int round = 0; round < 2; ++round) {
        FirstRows sink(1);
        pool::Statement stmt{sql, {}};
        stmt.row_limit = 2;
        const pool::ExecResult r = co_await conn->execute(stmt, sink, pool::Clock::now() + 60s);
        EXPECT_EQ(sink.seen(), 2u) << sql.substr(0, 40);
        EXPECT_EQ(r.rows_fetched, 2u);
        EXPECT_TRUE(r.stopped_by_sink);
        EXPECT_TRUE(conn->reusable());
      }
    }
    auto again = co_await query(*conn, "SELECT 42");
    EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{42}));
  });
}

TEST_F(PgNativeTest, ACancelSignalledBeforeTheStatementIsUnderwayStillStopsIt) {
  run([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    std::optional<pool::DbError> error;
    bool done = false;
    asio::cancellation_signal signal;
    pool::DiscardRows sink;
    const pool::Statement sleep{"SELECT pg_sleep(10) AS never_started", {}};
    auto execute = [&]() -> asio::awaitable<void> {
      try {
        co_await conn->execute(sleep, sink, pool::Clock::now() + 5s);
      } catch (const pool::DbError& e) {
        error = e;
      }
      done = true;
    };
    asio::co_spawn(ex, execute(), asio::bind_cancellation_slot(signal.slot(), asio::detached));
    // The coroutine ran inline up to its first suspension (the write of the statement): the
    // signal arrives while no read is waiting to be aborted.
    signal.emit(asio::cancellation_type::terminal);
    asio::steady_timer timer(ex);
    const auto start = pool::Clock::now();
    while (!done && pool::Clock::now() - start < 8s) {
      timer.expires_after(10ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    EXPECT_LT(pool::Clock::now() - start, 1s);
    EXPECT_TRUE(error.has_value()) << "the statement ran although it was cancelled";
    if (error) {
      EXPECT_EQ(error->kind(), pool::errc::cancelled) << error->what();
    }
    EXPECT_EQ(PgCluster::shared().psql("SELECT count(*) FROM pg_stat_activity WHERE state = "
                                       "'active' AND query LIKE 'SELECT pg_sleep(10) AS never%'"),
              "0\n");
    // The first cancel request can reach the server before the statement does and be
    // ignored; the repeat then stops it, and with two requests sent the connection is
    // given up (one could still be in flight). Either way a kept connection must work.
    if (conn->reusable()) {
      auto again = co_await query(*conn, "SELECT 8");
      EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{8}));
    }
  });
}

TEST_F(PgNativeTest, ACallerCancelledBeforeItsStatementNeverSendsIt) {
  run([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    std::optional<pool::DbError> error;
    asio::cancellation_signal signal;
    pool::DiscardRows sink;
    const pool::Statement stmt{"CREATE TABLE must_not_exist (n int)", {}};
    // The caller is cancelled while it waits for something else first (as a request waits
    // for its connection), and only then reaches the statement.
    auto caller = [&]() -> asio::awaitable<void> {
      co_await asio::this_coro::throw_if_cancelled(false);
      asio::steady_timer before(co_await asio::this_coro::executor, 10s);
      boost::system::error_code ignored;
      co_await before.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      try {
        co_await conn->execute(stmt, sink, pool::Clock::now() + 5s);
      } catch (const pool::DbError& e) {
        error = e;
      }
    };
    bool done = false;
    asio::co_spawn(
        ex, caller(),
        asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr) { done = true; }));
    signal.emit(asio::cancellation_type::terminal);
    asio::steady_timer timer(ex);
    for (int i = 0; i < 100 && !done; ++i) {
      timer.expires_after(10ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    EXPECT_TRUE(done);
    EXPECT_TRUE(error.has_value());
    if (error) {
      EXPECT_EQ(error->kind(), pool::errc::cancelled) << error->what();
    }
    EXPECT_EQ(PgCluster::shared().psql("SELECT to_regclass('must_not_exist') IS NULL"), "t\n");
    EXPECT_TRUE(conn->reusable());
  });
}

TEST_F(PgNativeTest, CopyThroughTheClientIsRefusedClearlyInsteadOfHanging) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const auto start = pool::Clock::now();
    try {
      co_await query(*conn, "COPY (SELECT 1) TO STDOUT", {}, 5s);
      ADD_FAILURE() << "COPY TO STDOUT returned";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::statement_failed);
      EXPECT_NE(std::string(e.what()).find("COPY"), std::string::npos) << e.what();
    }
    EXPECT_LT(pool::Clock::now() - start, 2s);
    EXPECT_FALSE(conn->reusable());
  });
}

TEST_F(PgNativeTest, AKilledServerProcessIsAConnectionLostAndNotReused) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const std::string pid = co_await backend_pid(*conn);
    PgCluster::shared().psql("SELECT pg_terminate_backend(" + pid + ")");
    try {
      co_await query(*conn, "SELECT 1");
      ADD_FAILURE() << "a terminated session answered";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::connection_lost) << e.what();
    }
    EXPECT_FALSE(conn->reusable());
  });
}

TEST_F(PgNativeTest, APoolOfFourServesManyConcurrentCallersCorrectly) {
  constexpr int kCallers = 200;
  int correct = 0;
  int finished = 0;
  run([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    pool::PoolParams pp;
    pp.min_size = 1;
    pp.max_size = 4;
    pool::ConnectionPool pool(ex, native(), pp);
    pool.start();
    auto one = [&](int i) -> asio::awaitable<void> {
      auto conn = co_await pool.acquire(pool::Clock::now() + 10s);
      std::vector<Param> p{std::int64_t{i}, std::int64_t{i}};
      auto r = co_await query(*conn, "SELECT ?::int * 2, repeat('x', ?::int % 50)", p);
      if (r.rows().at(0).at(0) == Param(std::int64_t{2 * i}) &&
          r.rows().at(0).at(1) == Param(std::string(static_cast<std::size_t>(i % 50), 'x'))) {
        ++correct;
      }
    };
    for (int i = 0; i < kCallers; ++i) {
      asio::co_spawn(ex, one(i), [&](std::exception_ptr) { ++finished; });
    }
    asio::steady_timer timer(ex);
    const auto start = pool::Clock::now();
    while (finished < kCallers && pool::Clock::now() - start < 20s) {
      timer.expires_after(5ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    EXPECT_EQ(finished, kCallers);
    EXPECT_LE(pool.stats().total, 4u);
    co_await pool.close(pool::Clock::now() + 2s);
  });
  EXPECT_EQ(correct, kCallers);
}

// ---- batches (Connection::execute_batch): several statements, one write, answers in order ----

struct Call {
  std::string sql;
  std::vector<Param> params;
  std::chrono::milliseconds timeout = 10s;
};

// The statements of one batch, their items and where their rows go. BatchItem holds a mutex:
// kept by pointer.
struct Batch {
  explicit Batch(std::vector<Call> c) : calls(std::move(c)), out(calls.size()) {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      auto& item = items.emplace_back(std::make_unique<pool::BatchItem>());
      item->stmt = pool::Statement{calls[i].sql, calls[i].params};
      item->sink = &out[i];
      item->deadline = pool::Clock::now() + calls[i].timeout;
      pointers.push_back(item.get());
    }
  }
  std::optional<pool::DbError> error(std::size_t i) const {
    if (!items[i]->error) return std::nullopt;
    try {
      std::rethrow_exception(items[i]->error);
    } catch (const pool::DbError& e) {
      return e;
    }
  }
  // The error's kind and what it says, or "ok".
  std::string outcome(std::size_t i) const {
    const auto e = error(i);
    return e ? std::string(pool::make_error_code(e->kind()).message()) + ": " + e->what() : "ok";
  }
  // Runs the batch on `conn`, noting when each item was handed back.
  asio::awaitable<void> run(pool::Connection& conn, std::size_t caller = 0) {
    handed_back.assign(items.size(), pool::Clock::time_point{});
    const std::function<void(pool::BatchItem&)> note = [this](pool::BatchItem& item) {
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (items[i].get() == &item) handed_back[i] = pool::Clock::now();
      }
    };
    co_await conn.execute_batch(pointers, caller, note);
  }
  std::vector<Call> calls;  // the statements' text and parameters, which the items view
  std::vector<pool::Clock::time_point> handed_back;
  std::vector<pool::ResultBuffer> out;
  std::vector<std::unique_ptr<pool::BatchItem>> items;
  std::vector<pool::BatchItem*> pointers;
};

// Each statement's answer goes to its own sink, twice: first as parsed in the batch itself
// (answers in text), then reusing the prepared statements (answers in binary). A statement
// that fails fails alone, with its own error, and the connection goes on.
TEST_F(PgNativeTest, ABatchAnswersEachStatementIntoItsOwnSink) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const std::string twice = "SELECT ?::int * 2 AS doubled, repeat('x', ?::int) AS xs";
    const std::string unprepared = "SELECT 'big' /*" + std::string(17 * 1024, '-') + "*/";
    const std::vector<Call> calls{
        {twice, {std::int64_t{21}, std::int64_t{3}}},
        {"SELECT 1/0", {}},
        {twice, {std::int64_t{5}, std::int64_t{1}}},
        {"SELECT generate_series(1, 3)::bigint", {}},
        {unprepared, {}},
        {"SELECT 'à \"quoted\"'::text, NULL::int", {}},
    };
    for (int round = 0; round < 2; ++round) {
      Batch b(calls);
      co_await b.run(*conn);
      for (const auto& item : b.items) EXPECT_TRUE(item->settled);
      EXPECT_EQ(b.outcome(0), "ok") << round;
      EXPECT_EQ(b.out[0].rows(),
                (std::vector<std::vector<Param>>{{std::int64_t{42}, std::string("xxx")}}))
          << round;
      EXPECT_EQ(b.error(1)
                    .value_or(pool::DbError(pool::errc::statement_failed, "", {}))
                    .diagnostic()
                    .sqlstate,
                "22012")
          << b.outcome(1);
      EXPECT_EQ(b.out[2].rows(),
                (std::vector<std::vector<Param>>{{std::int64_t{10}, std::string("x")}}));
      EXPECT_EQ(b.out[3].rows(), (std::vector<std::vector<Param>>{
                                     {std::int64_t{1}}, {std::int64_t{2}}, {std::int64_t{3}}}));
      EXPECT_EQ(b.out[4].rows(), (std::vector<std::vector<Param>>{{std::string("big")}}));
      EXPECT_EQ(b.out[5].rows(),
                (std::vector<std::vector<Param>>{{std::string("à \"quoted\""), pool::Null{}}}));
      EXPECT_EQ(b.items[3]->result.rows_fetched, 3u);
      EXPECT_TRUE(conn->reusable());
    }
    auto again = co_await query(*conn, "SELECT 42");
    EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{42}));
  });
}

// A statement past its deadline is stopped when the server gets to it; the statements before
// and after it in the batch answer normally, and the whole batch ends soon after the deadline.
TEST_F(PgNativeTest, ADeadlineInABatchStopsOnlyItsOwnStatement) {
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    Batch b({{"SELECT 1", {}}, {"SELECT pg_sleep(30)", {}, 300ms}, {"SELECT 3", {}}});
    const auto start = pool::Clock::now();
    co_await b.run(*conn);
    EXPECT_LT(pool::Clock::now() - start, 5s);
    EXPECT_EQ(b.out[0].rows().at(0).at(0), Param(std::int64_t{1}));
    // The first statement's caller got it back at once, not when the sleeper was stopped.
    EXPECT_LT(b.handed_back[0] - start, 250ms);
    EXPECT_GE(b.handed_back[1] - start, 300ms);
    EXPECT_GE(b.handed_back[2], b.handed_back[1]);
    EXPECT_EQ(b.outcome(1).rfind(pool::make_error_code(pool::errc::statement_timeout).message(), 0),
              0u)
        << b.outcome(1);
    EXPECT_EQ(b.outcome(2), "ok");
    EXPECT_EQ(b.out[2].rows().at(0).at(0), Param(std::int64_t{3}));
    if (conn->reusable()) {
      auto again = co_await query(*conn, "SELECT 42");
      EXPECT_EQ(again.rows().at(0).at(0), Param(std::int64_t{42}));
    }
  });
}

// A caller that gives up (its item's RemoteCancel, from outside the batch) stops only its own
// statement; the one after it still runs.
TEST_F(PgNativeTest, ACancelledStatementInABatchStopsAloneAndTheNextOneAnswers) {
  run([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    Batch b({{"SELECT 1", {}}, {"SELECT pg_sleep(30)", {}}, {"SELECT 3", {}}});
    asio::steady_timer later(ex, 200ms);
    later.async_wait([&](boost::system::error_code) { b.items[1]->cancel.request(); });
    const auto start = pool::Clock::now();
    co_await b.run(*conn);
    EXPECT_LT(pool::Clock::now() - start, 5s);
    EXPECT_EQ(b.outcome(0), "ok");
    EXPECT_EQ(b.outcome(1).rfind(pool::make_error_code(pool::errc::cancelled).message(), 0), 0u)
        << b.outcome(1);
    EXPECT_EQ(b.outcome(2), "ok");
    EXPECT_EQ(b.out[2].rows().at(0).at(0), Param(std::int64_t{3}));
  });
}

// A prepared statement whose result changed under it (DDL since) is prepared again within the
// batch, and its neighbours are not disturbed.
TEST_F(PgNativeTest, ABatchPreparesAStaleStatementAgain) {
  PgCluster::shared().psql(
      "DROP TABLE IF EXISTS batch_stale; CREATE TABLE batch_stale (a int); "
      "INSERT INTO batch_stale VALUES (1);");
  run([&]() -> asio::awaitable<void> {
    auto conn = co_await native()->connect(pool::Clock::now() + 10s);
    const std::vector<Call> calls{{"SELECT 7", {}}, {"SELECT * FROM batch_stale", {}}};
    {
      Batch b(calls);
      co_await b.run(*conn);
      EXPECT_EQ(b.out[1].rows(), (std::vector<std::vector<Param>>{{std::int64_t{1}}}));
    }
    PgCluster::shared().psql("ALTER TABLE batch_stale ADD COLUMN b text DEFAULT 'new';");
    Batch b(calls);
    co_await b.run(*conn);
    EXPECT_EQ(b.outcome(1), "ok");
    EXPECT_EQ(b.out[1].rows(),
              (std::vector<std::vector<Param>>{{std::int64_t{1}, std::string("new")}}));
    EXPECT_EQ(b.out[0].rows().at(0).at(0), Param(std::int64_t{7}));
    EXPECT_TRUE(conn->reusable());
  });
}

}  // namespace
}  // namespace sluice::test
