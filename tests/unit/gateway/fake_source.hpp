#pragma once

// Test doubles for the gateway: a database connection that plays back a canned result, fails
// with a configured error, or waits until its operation is cancelled, and the Sources built
// around it. Everything runs on one io_context thread, so the shared script needs no lock.

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "gateway/source.hpp"
#include "pool/backend.hpp"
#include "pool/connection.hpp"
#include "pool/connection_pool.hpp"
#include "pool/db_error.hpp"
#include "pool/dialect.hpp"
#include "pool/row_sink.hpp"
#include "pool/value.hpp"

namespace sluice::gateway::fakes {

// A row over owned cells, viewed the way a backend's fetch buffers would be.
class FakeRow final : public pool::RowView {
 public:
  explicit FakeRow(const std::vector<pool::Param>& cells) noexcept : cells_(cells) {}

  std::size_t size() const noexcept override { return cells_.size(); }
  pool::Value operator[](std::size_t column) const override { return view(cells_.at(column)); }

  // The borrowed view of one owned cell; valid while `cell` is.
  static pool::Value view(const pool::Param& cell) {
    return std::visit(
        [](const auto& x) -> pool::Value {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, pool::Decimal>) {
            return pool::DecimalView{x.digits};
          } else if constexpr (std::is_same_v<T, std::string>) {
            return std::string_view(x);
          } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
            return std::span<const std::byte>(x);
          } else {
            return pool::Value(std::in_place_type<T>, x);
          }
        },
        cell);
  }

 private:
  const std::vector<pool::Param>& cells_;
};

inline pool::ColumnInfo column(std::string name, pool::ColumnType type = pool::ColumnType::text,
                               std::string database_type = {}) {
  pool::ColumnInfo c;
  c.name = std::move(name);
  c.type = type;
  c.database_type = std::move(database_type);
  return c;
}

inline std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out;
  for (char c : s) out.push_back(static_cast<std::byte>(c));
  return out;
}

// One statement as a FakeConnection received it.
struct ExecutedStatement {
  std::string sql;
  std::vector<pool::Param> params;
};

// What every connection of one FakeBackend does, and what they saw. Set it up before the
// call under test; read it afterwards.
struct FakeScript {
  // The result set: columns() then each row, until the sink asks to stop.
  std::vector<pool::ColumnInfo> columns = {column("n", pool::ColumnType::integer, "INTEGER")};
  std::vector<std::vector<pool::Param>> rows;
  // False: a statement without a result set (DML); the sink sees neither columns nor rows.
  bool result_set = true;
  std::int64_t rows_affected = -1;
  // Thrown instead of producing the result (a pool::DbError, or anything else to play a
  // backend bug).
  std::exception_ptr error;
  // Non-zero: execute() first waits this long on a steady_timer. Asio per-operation
  // cancellation of the awaiting operation ends the wait early with DbError(cancelled), as a
  // real backend's cancelled statement would; release() ends it early with the result.
  std::chrono::milliseconds wait{0};

  std::vector<ExecutedStatement> executed;
  int waiting = 0;    // execute() calls now waiting on their timer
  int cancelled = 0;  // waits that ended through per-operation cancellation
  int completed = 0;  // execute() calls that returned a result
  std::uint64_t rows_delivered = 0;

  void set_rows(std::vector<std::vector<pool::Param>> r) { rows = std::move(r); }

  // Ends every wait now, as if the statement had finished (not a cancellation).
  void release() {
    for (auto* t : timers) t->cancel();
  }

  std::vector<asio::steady_timer*> timers;  // of the waits in progress
};

class FakeConnection final : public pool::Connection {
 public:
  FakeConnection(std::shared_ptr<FakeScript> script, std::string source)
      : script_(std::move(script)), source_(std::move(source)) {}

  asio::awaitable<pool::ExecResult> execute(pool::Statement stmt, pool::RowSink& sink,
                                            pool::Deadline) override {
    FakeScript& s = *script_;
    s.executed.push_back({std::string(stmt.sql), {stmt.params.begin(), stmt.params.end()}});
    if (s.wait.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, s.wait);
      ++s.waiting;
      s.timers.push_back(&timer);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      std::erase(s.timers, &timer);
      --s.waiting;
      // Told apart from release() by the coroutine's cancellation state, which only
      // per-operation cancellation sets.
      const auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) {
        ++s.cancelled;
        reusable_ = false;
        throw pool::DbError(pool::errc::cancelled, source_,
                            {"57014", 0, "canceling statement due to user request"});
      }
    }
    if (s.error) std::rethrow_exception(s.error);
    pool::ExecResult result;
    if (s.result_set) {
      sink.columns(s.columns);
      for (const auto& row : s.rows) {
        if (!sink.row(FakeRow(row))) {
          result.stopped_by_sink = true;
          break;
        }
        ++result.rows_fetched;
      }
    }
    s.rows_delivered += result.rows_fetched;
    result.rows_affected = s.rows_affected;
    ++s.completed;
    co_return result;
  }

  asio::awaitable<void> validate(pool::Deadline) override { co_return; }
  asio::awaitable<void> close() noexcept override { co_return; }
  bool reusable() const noexcept override { return reusable_; }

 private:
  std::shared_ptr<FakeScript> script_;
  std::string source_;
  bool reusable_ = true;
};

class FakeBackend final : public pool::Backend {
 public:
  explicit FakeBackend(std::string source)
      : source_(std::move(source)), script_(std::make_shared<FakeScript>()) {}

  const std::string& source() const noexcept override { return source_; }
  asio::awaitable<std::unique_ptr<pool::Connection>> connect(pool::Deadline) override {
    ++connects;
    co_return std::make_unique<FakeConnection>(script_, source_);
  }

  FakeScript& script() noexcept { return *script_; }
  int connects = 0;

 private:
  std::string source_;
  std::shared_ptr<FakeScript> script_;
};

// Sources named `names` (SQLite dialect), each around a started ConnectionPool on
// `executor` whose connections are FakeConnections of the matching backend. Close the pools
// (ConnectionPool::close) before the executor's io_context is destroyed.
struct FakeSources {
  std::vector<std::shared_ptr<FakeBackend>> backends;
  std::vector<Source> sources;

  FakeScript& script(std::size_t i = 0) { return backends.at(i)->script(); }
};

inline FakeSources make_fake_sources(asio::any_io_executor executor,
                                     std::vector<std::string> names = {"main"},
                                     QueryLimits limits = {}, bool allow_writes = false) {
  FakeSources out;
  for (auto& name : names) {
    auto backend = std::make_shared<FakeBackend>(name);
    pool::PoolParams params;
    params.min_size = 1;
    params.max_size = 2;
    params.backoff_initial = std::chrono::milliseconds(10);
    params.backoff_max = std::chrono::milliseconds(50);
    Source src;
    src.name = std::move(name);
    src.dialect = pool::Dialect::make(pool::Dialect::Kind::sqlite);
    src.pool = std::make_unique<pool::ConnectionPool>(executor, backend, params);
    src.limits = limits;
    src.allow_writes = allow_writes;
    src.pool->start();
    out.backends.push_back(std::move(backend));
    out.sources.push_back(std::move(src));
  }
  return out;
}

}  // namespace sluice::gateway::fakes
