#include "pool/connection_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

// A connection that does nothing; `broken` makes the pool discard it on return.
class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(int n) : serial(n) {}
  asio::awaitable<ExecResult> execute(Statement, RowSink&, Deadline) override {
    co_return ExecResult{};
  }
  asio::awaitable<void> validate(Deadline) override {
    if (broken) throw DbError(errc::connection_lost, "fake", {"08S01", 0, "gone"});
    co_return;
  }
  asio::awaitable<void> close() noexcept override { co_return; }
  bool reusable() const noexcept override { return !broken; }
  int serial;
  bool broken = false;
};

// Connects at once, or fails while `fail` is set; counts attempts.
class FakeBackend final : public Backend {
 public:
  const std::string& source() const noexcept override { return name_; }
  asio::awaitable<std::unique_ptr<Connection>> connect(Deadline) override {
    ++attempts;
    if (fail) throw DbError(errc::connect_failed, name_, {"08001", 101, "connection refused"});
    co_return std::make_unique<FakeConnection>(++serial);
  }
  std::atomic<bool> fail{false};
  std::atomic<int> attempts{0};
  std::atomic<int> serial{0};

 private:
  std::string name_ = "fake";
};

PoolParams params(std::size_t min, std::size_t max) {
  PoolParams p;
  p.min_size = min;
  p.max_size = max;
  p.backoff_initial = 20ms;
  p.backoff_max = 200ms;
  return p;
}

template <class F>
void run(asio::io_context& io, F f) {
  std::exception_ptr error;
  asio::co_spawn(io, std::move(f), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

TEST(ConnectionPoolTest, ReturnedConnectionIsReused) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 2));
    pool.start();
    int first = 0;
    {
      auto c = co_await pool.acquire(Clock::now() + 1s);
      first = dynamic_cast<FakeConnection&>(*c).serial;
    }
    auto c = co_await pool.acquire(Clock::now() + 1s);
    EXPECT_EQ(dynamic_cast<FakeConnection&>(*c).serial, first);
    EXPECT_EQ(backend->attempts.load(), 1);
    EXPECT_EQ(pool.stats().busy, 1u);
    c.release();
    EXPECT_EQ(pool.stats().idle, 1u);
    EXPECT_TRUE(co_await pool.close(Clock::now() + 1s));
  });
}

TEST(ConnectionPoolTest, BrokenConnectionIsReplaced) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    {
      auto c = co_await pool.acquire(Clock::now() + 1s);
      dynamic_cast<FakeConnection&>(*c).broken = true;
    }
    auto c = co_await pool.acquire(Clock::now() + 1s);
    EXPECT_EQ(dynamic_cast<FakeConnection&>(*c).serial, 2);
    EXPECT_EQ(pool.stats().closed, 1u);
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST(ConnectionPoolTest, WaitersResumeInArrivalOrder) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  std::vector<int> order;
  run(io, [&]() -> asio::awaitable<void> {
    auto pool = std::make_shared<ConnectionPool>(io.get_executor(), backend, params(1, 1));
    pool->start();
    auto held = co_await pool->acquire(Clock::now() + 1s);
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < 5; ++i) {
      asio::co_spawn(
          ex,
          [pool, i, &order]() -> asio::awaitable<void> {
            auto c = co_await pool->acquire(Clock::now() + 5s);
            order.push_back(i);
            asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
            co_await t.async_wait(asio::use_awaitable);
          },
          asio::detached);
    }
    asio::steady_timer t(ex, 20ms);
    co_await t.async_wait(asio::use_awaitable);
    EXPECT_EQ(pool->stats().waiters, 5u);
    held.release();
    while (order.size() < 5) {
      t.expires_after(5ms);
      co_await t.async_wait(asio::use_awaitable);
    }
    co_await pool->close(Clock::now() + 1s);
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ConnectionPoolTest, AcquireTimesOutNamingTheLastConnectError) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  backend->fail = true;
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    try {
      co_await pool.acquire(Clock::now() + 150ms);
      ADD_FAILURE() << "acquire should time out";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::acquire_timeout);
      EXPECT_EQ(e.source(), "fake");
      EXPECT_NE(std::string(e.what()).find("connection refused"), std::string::npos) << e.what();
    }
    EXPECT_GE(pool.stats().failed_connects, 2u) << "the pool keeps retrying";
    EXPECT_GE(pool.stats().acquire_timeouts, 1u);
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST(ConnectionPoolTest, PoolRecoversOnceTheBackendComesBack) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  backend->fail = true;
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
    co_await t.async_wait(asio::use_awaitable);
    backend->fail = false;
    auto c = co_await pool.acquire(Clock::now() + 2s);
    EXPECT_TRUE(c);
    c.release();
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST(ConnectionPoolTest, CancellingAnAcquireLeavesTheQueue) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    auto held = co_await pool.acquire(Clock::now() + 1s);
    asio::steady_timer t(co_await asio::this_coro::executor, 30ms);
    auto result = co_await (pool.acquire(Clock::now() + 10s) || t.async_wait(asio::use_awaitable));
    EXPECT_EQ(result.index(), 1u) << "the timer wins; the acquire is cancelled";
    EXPECT_EQ(pool.stats().waiters, 0u);
    held.release();
    EXPECT_EQ(pool.stats().idle, 1u);
    co_await pool.close(Clock::now() + 1s);
  });
}

TEST(ConnectionPoolTest, CloseWaitsForBorrowedConnections) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    auto held = co_await pool.acquire(Clock::now() + 1s);
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(
        ex,
        [&held]() -> asio::awaitable<void> {
          asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
          co_await t.async_wait(asio::use_awaitable);
          held.release();
        },
        asio::detached);
    EXPECT_TRUE(co_await pool.close(Clock::now() + 2s));
    EXPECT_EQ(pool.stats().total, 0u);
    try {
      co_await pool.acquire(Clock::now() + 1s);
      ADD_FAILURE() << "a closed pool must refuse";
    } catch (const DbError& e) {
      EXPECT_EQ(e.kind(), errc::pool_closed);
    }
  });
}

TEST(ConnectionPoolTest, CloseGivesUpAtItsDeadlineWhileAConnectionIsBorrowed) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  run(io, [&]() -> asio::awaitable<void> {
    ConnectionPool pool(io.get_executor(), backend, params(1, 1));
    pool.start();
    auto held = co_await pool.acquire(Clock::now() + 1s);
    EXPECT_FALSE(co_await pool.close(Clock::now() + 50ms));
    held.release();  // still safe: the handle keeps the pool's state alive
    EXPECT_EQ(pool.stats().total, 0u);
  });
}

TEST(ConnectionPoolTest, AcquireFromManyThreadsKeepsAccounting) {
  asio::io_context io;
  auto backend = std::make_shared<FakeBackend>();
  auto pool = std::make_shared<ConnectionPool>(io.get_executor(), backend, params(2, 4));
  pool->start();
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i) {
    asio::co_spawn(
        io,
        [pool, &done]() -> asio::awaitable<void> {
          auto c = co_await pool->acquire(Clock::now() + 10s);
          const auto s = pool->stats();
          EXPECT_EQ(s.idle + s.busy + s.connecting, s.total);
          EXPECT_LE(s.total, 4u);
          ++done;
        },
        asio::detached);
  }
  asio::co_spawn(
      io,
      [pool, &done]() -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (done.load() < 200) {
          t.expires_after(2ms);
          co_await t.async_wait(asio::use_awaitable);
        }
        co_await pool->close(Clock::now() + 1s);
      },
      asio::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 200);
  EXPECT_LE(backend->attempts.load(), 4);
}

}  // namespace
}  // namespace sluice::pool
