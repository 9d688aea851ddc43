// The pool and statement deadlines against a real PostgreSQL, through psqlODBC and (where
// the behaviour is the same) through the native client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <optional>

#include "pool/pg_connection.hpp"
#include "tests/integration/pool/odbc_harness.hpp"
#include "tests/support/pg_cluster.hpp"

namespace sluice::test {
namespace {

using namespace asio::experimental::awaitable_operators;
using pool::Clock;
using pool::Param;

pool::PoolParams pool_params(std::size_t min, std::size_t max) {
  pool::PoolParams p;
  p.min_size = min;
  p.max_size = max;
  p.connect_timeout = 2s;
  p.backoff_initial = 50ms;
  p.backoff_max = 1s;
  return p;
}

std::int64_t as_int(const pool::ResultBuffer& r) {
  return std::get<std::int64_t>(r.rows().at(0).at(0));
}

// A TCP port on 127.0.0.1 that accepts connections into its backlog but never answers:
// a server that hangs.
class SilentServer {
 public:
  SilentServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { ::close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A loopback port with nothing listening.
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string connection_string_to(std::uint16_t port) {
  return "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=" + std::to_string(port) +
         ";Database=sluice_test;Uid=sluice;Pwd=sluice-test-pw;";
}

class OdbcPoolTest : public OdbcHarness {
 protected:
  // Statements still running on the server that match `pattern`.
  static int running(const std::string& pattern) {
    return std::stoi(PgCluster::shared().psql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '" + pattern +
        "' AND pid <> pg_backend_pid()"));
  }
};

// The pool's behaviour with PostgreSQL, through psqlODBC and through the native client.
class PgPoolTest : public OdbcPoolTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::shared_ptr<pool::Backend> pg() { return pg_backend(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Drivers, PgPoolTest, ::testing::Values("odbc", "native"), driver_name);

TEST_P(PgPoolTest, StatementPastItsDeadlineIsCancelledOnTheServer) {
  run([&]() -> asio::awaitable<void> {
    pool::ConnectionPool pool(co_await asio::this_coro::executor, pg(), pool_params(1, 1));
    pool.start();
    auto conn = co_await pool.acquire(Clock::now() + 5s);
    const auto pid = as_int(co_await query(*conn, "SELECT pg_backend_pid()"));
    const auto start = Clock::now();
    try {
      co_await query(*conn, "SELECT pg_sleep(10)", {}, 300ms);
      ADD_FAILURE() << "pg_sleep(10) must not complete";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::statement_timeout) << e.what();
      EXPECT_EQ(e.diagnostic().sqlstate, "57014");
    }
    const auto elapsed = Clock::now() - start;
    EXPECT_GE(elapsed, 300ms);
    EXPECT_LT(elapsed, 500ms) << "returned more than 200 ms after the deadline";
    EXPECT_EQ(running("SELECT pg_sleep(10)%"), 0);
    // The connection survives a clean cancel and stays in the pool.
    EXPECT_TRUE(conn->reusable());
    EXPECT_EQ(as_int(co_await query(*conn, "SELECT pg_backend_pid()")), pid);
    conn.release();
    EXPECT_EQ(pool.stats().closed, 0u);
    co_await pool.close(Clock::now() + 2s);
  });
}

TEST_P(PgPoolTest, CancellingTheAwaitingOperationCancelsTheStatement) {
  run([&]() -> asio::awaitable<void> {
    pool::ConnectionPool pool(co_await asio::this_coro::executor, pg(), pool_params(1, 1));
    pool.start();
    auto conn = co_await pool.acquire(Clock::now() + 5s);
    asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
    pool::DiscardRows sink;
    const pool::Statement sleep{"SELECT pg_sleep(10)", {}};
    const auto start = Clock::now();
    auto winner = co_await (conn->execute(sleep, sink, Clock::now() + 30s) ||
                            timer.async_wait(asio::use_awaitable));
    EXPECT_EQ(winner.index(), 1u);
    EXPECT_LT(Clock::now() - start, 1s);
    EXPECT_EQ(running("SELECT pg_sleep(10)%"), 0);
    EXPECT_TRUE(conn->reusable());
    EXPECT_EQ(as_int(co_await query(*conn, "SELECT 7")), 7);
    conn.release();
    co_await pool.close(Clock::now() + 2s);
  });
}

TEST_F(OdbcPoolTest, ACancelThatArrivesBeforeTheStatementStartsStopsIt) {
  // The caller gives up while its statement still waits for a worker thread (all four are
  // busy): the statement must never start, rather than run to its deadline.
  run([&]() -> asio::awaitable<void> {
    const auto ex = co_await asio::this_coro::executor;
    pool::ConnectionPool pool(ex, backend("pg", PgCluster::shared().odbc_connection_string()),
                              pool_params(1, 1));
    pool.start();
    auto conn = co_await pool.acquire(Clock::now() + 5s);
    std::promise<void> release;
    std::shared_future<void> released = release.get_future().share();
    for (int i = 0; i < 4; ++i) asio::post(workers_.executor(), [released] { released.wait(); });

    std::optional<pool::DbError> error;
    bool done = false;
    asio::cancellation_signal signal;
    pool::DiscardRows sink;
    const pool::Statement sleep{"SELECT pg_sleep(10) AS never_started", {}};
    auto execute = [&]() -> asio::awaitable<void> {
      try {
        co_await conn->execute(sleep, sink, Clock::now() + 5s);
      } catch (const pool::DbError& e) {
        error = e;
      }
      done = true;
    };
    asio::co_spawn(ex, execute(), asio::bind_cancellation_slot(signal.slot(), asio::detached));
    signal.emit(asio::cancellation_type::terminal);
    asio::steady_timer timer(ex, 100ms);  // the watchdog records the cancel meanwhile
    co_await timer.async_wait(asio::use_awaitable);
    EXPECT_FALSE(done);
    const auto released_at = Clock::now();
    release.set_value();
    while (!done && Clock::now() - released_at < 8s) {
      timer.expires_after(10ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    EXPECT_TRUE(done);
    EXPECT_TRUE(error.has_value()) << "the statement ran although it was cancelled";
    if (error) {
      EXPECT_EQ(error->kind(), pool::errc::cancelled) << error->what();
    }
    EXPECT_LT(Clock::now() - released_at, 1s);
    EXPECT_EQ(running("SELECT pg_sleep(10) AS never_started%"), 0);
    // Nothing reached the driver, so the connection is as good as before.
    EXPECT_TRUE(conn->reusable());
    EXPECT_EQ(as_int(co_await query(*conn, "SELECT 8")), 8);
    conn.release();
    co_await pool.close(Clock::now() + 2s);
  });
}

TEST_P(PgPoolTest, TerminatedConnectionIsDetectedAndReplaced) {
  run([&]() -> asio::awaitable<void> {
    pool::ConnectionPool pool(co_await asio::this_coro::executor, pg(), pool_params(1, 1));
    pool.start();
    std::int64_t old_pid = 0;
    {
      auto conn = co_await pool.acquire(Clock::now() + 5s);
      old_pid = as_int(co_await query(*conn, "SELECT pg_backend_pid()"));
      PgCluster::shared().psql("SELECT pg_terminate_backend(" + std::to_string(old_pid) + ")");
      try {
        co_await query(*conn, "SELECT 1");
        ADD_FAILURE() << "the killed connection must fail";
      } catch (const pool::DbError& e) {
        EXPECT_EQ(e.kind(), pool::errc::connection_lost) << e.what();
      }
      EXPECT_FALSE(conn->reusable());
    }
    auto conn = co_await pool.acquire(Clock::now() + 5s);
    const auto new_pid = as_int(co_await query(*conn, "SELECT pg_backend_pid()"));
    EXPECT_NE(new_pid, old_pid);
    EXPECT_EQ(pool.stats().closed, 1u);
    conn.release();
    co_await pool.close(Clock::now() + 2s);
  });
}

TEST_P(PgPoolTest, IdleConnectionKilledMeanwhileIsReplacedByValidation) {
  run([&]() -> asio::awaitable<void> {
    auto params = pool_params(1, 1);
    params.validate_after_idle = 0ms;
    pool::ConnectionPool pool(co_await asio::this_coro::executor, pg(), params);
    pool.start();
    std::int64_t old_pid = 0;
    {
      auto conn = co_await pool.acquire(Clock::now() + 5s);
      old_pid = as_int(co_await query(*conn, "SELECT pg_backend_pid()"));
    }
    PgCluster::shared().psql("SELECT pg_terminate_backend(" + std::to_string(old_pid) + ")");
    auto conn = co_await pool.acquire(Clock::now() + 5s);
    EXPECT_NE(as_int(co_await query(*conn, "SELECT pg_backend_pid()")), old_pid);
    EXPECT_EQ(pool.stats().failed_validations, 1u);
    conn.release();
    co_await pool.close(Clock::now() + 2s);
  });
}

TEST_P(PgPoolTest, ExhaustedPoolServesWaitersInOrder) {
  std::vector<int> order;
  run([&]() -> asio::awaitable<void> {
    auto pool = std::make_shared<pool::ConnectionPool>(co_await asio::this_coro::executor, pg(),
                                                       pool_params(2, 2));
    pool->start();
    auto a = co_await pool->acquire(Clock::now() + 5s);
    auto b = co_await pool->acquire(Clock::now() + 5s);
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 6; ++i) {
      asio::co_spawn(
          ex,
          [pool, i, &order]() -> asio::awaitable<void> {
            auto c = co_await pool->acquire(Clock::now() + 10s);
            order.push_back(i);
            co_await query(*c, "SELECT pg_sleep(0.01)");
          },
          asio::detached);
    }
    asio::steady_timer t(ex, 50ms);
    co_await t.async_wait(asio::use_awaitable);
    EXPECT_EQ(pool->stats().waiters, 6u);
    a.release();
    b.release();
    while (order.size() < 6) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_await pool->close(Clock::now() + 2s);
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST_P(PgPoolTest, AcquirePastItsDeadlineFailsWithATimeout) {
  run([&]() -> asio::awaitable<void> {
    pool::ConnectionPool pool(co_await asio::this_coro::executor, pg(), pool_params(1, 1));
    pool.start();
    auto held = co_await pool.acquire(Clock::now() + 5s);
    const auto start = Clock::now();
    try {
      co_await pool.acquire(Clock::now() + 200ms);
      ADD_FAILURE() << "the pool is exhausted";
    } catch (const pool::DbError& e) {
      EXPECT_EQ(e.kind(), pool::errc::acquire_timeout);
      EXPECT_NE(std::string(e.what()).find("source 'pg'"), std::string::npos) << e.what();
    }
    EXPECT_GE(Clock::now() - start, 200ms);
    EXPECT_EQ(pool.stats().acquire_timeouts, 1u);
    held.release();
    co_await pool.close(Clock::now() + 2s);
  });
}

struct BadConfig {
  std::string name;
  std::string connection_string;
  std::string cause;  // what the error must say
};

TEST_F(OdbcPoolTest, BadConfigurationNamesTheSourceAndTheCause) {
  const std::uint16_t closed = closed_port();
  const std::vector<BadConfig> cases = {
      {"malformed", "this is not a connection string", "Data source name not found"},
      {"nodriver", "Driver={No Such Driver};Server=127.0.0.1", "Can't open lib"},
      {"unreachable", connection_string_to(closed), "Connection refused"},
      {"badpassword",
       PgCluster::shared().odbc_connection_string("sluice_test", "sluice", "wrong-password"),
       "password authentication failed"},
  };
  for (const auto& c : cases) {
    run([&]() -> asio::awaitable<void> {
      pool::ConnectionPool pool(co_await asio::this_coro::executor,
                                backend(c.name, c.connection_string), pool_params(1, 1));
      pool.start();
      try {
        co_await pool.acquire(Clock::now() + 600ms);
        ADD_FAILURE() << c.name << ": connecting must fail";
      } catch (const pool::DbError& e) {
        const std::string what = e.what();
        EXPECT_EQ(e.kind(), pool::errc::acquire_timeout);
        EXPECT_NE(what.find("source '" + c.name + "'"), std::string::npos) << what;
        EXPECT_NE(what.find(c.cause), std::string::npos) << what;
        EXPECT_EQ(what.find("sluice-test-pw"), std::string::npos) << "password leaked: " << what;
      }
      // Backoff from 50 ms: attempts near 0, 50, 150, 350 ms (+/-20%) within 600 ms.
      const auto failed = pool.stats().failed_connects;
      EXPECT_GE(failed, 3u) << c.name;
      EXPECT_LE(failed, 6u) << c.name << ": retries must back off";
      EXPECT_EQ(pool.last_connect_error().empty(), false);
      co_await pool.close(Clock::now() + 2s);
    });
  }
}

TEST_F(OdbcPoolTest, HangingServerNeverBlocksTheIoThread) {
  SilentServer silent;
  int beats = 0;
  run([&]() -> asio::awaitable<void> {
    auto params = pool_params(2, 2);
    params.connect_timeout = 1s;
    pool::ConnectionPool pool(co_await asio::this_coro::executor,
                              backend("silent", connection_string_to(silent.port())), params);
    pool.start();
    // Both connects now hang in the driver; this thread must keep running timers.
    asio::steady_timer t(co_await asio::this_coro::executor);
    const auto end = Clock::now() + 800ms;
    while (Clock::now() < end) {
      t.expires_after(10ms);
      co_await t.async_wait(asio::use_awaitable);
      ++beats;
    }
    EXPECT_EQ(pool.stats().connecting, 2u);
    co_await pool.close(Clock::now() + 3s);
  });
  EXPECT_GE(beats, 40) << "the I/O thread stalled while connects hung";
}

}  // namespace
}  // namespace sluice::test
