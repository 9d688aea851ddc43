#include "pool/odbc_async_connection.hpp"

namespace sluice::pool {

OdbcAsyncConnection::OdbcAsyncConnection(std::unique_ptr<OdbcConnection> conn,
                                         BlockingPool& workers, Watchdog& watchdog)
    : conn_(std::move(conn)),
      stmt_(std::make_unique<OdbcStatement>(*conn_)),
      workers_(workers),
      watchdog_(watchdog) {}

OdbcAsyncConnection::~OdbcAsyncConnection() {
  // close() is the normal path; this only runs when a connection is dropped without it
  // (e.g. at shutdown), where blocking briefly is acceptable.
  stmt_.reset();
  conn_.reset();
}

asio::awaitable<ExecResult> OdbcAsyncConnection::execute(Statement stmt, RowSink& sink,
                                                         Deadline deadline) {
  OdbcStatement* s = stmt_.get();
  const std::uint64_t timer = watchdog_.arm(deadline, [s] { s->cancel(CancelReason::deadline); });
  struct Disarm {
    Watchdog& w;
    std::uint64_t id;
    ~Disarm() { w.disarm(id); }
  } disarm{watchdog_, timer};
  auto work = [s, &stmt, &sink, deadline] { return s->execute(stmt, sink, deadline); };
  auto on_cancel = [this, s] { watchdog_.run_soon([s] { s->cancel(CancelReason::caller); }); };
  try {
    co_return co_await run_blocking(workers_.executor(), std::move(work), std::move(on_cancel));
  } catch (const DbError& e) {
    if (e.kind() == errc::connection_lost || s->connection_suspect()) reusable_ = false;
    throw;
  }
}

asio::awaitable<void> OdbcAsyncConnection::validate(Deadline deadline) {
  DiscardRows sink;
  const Statement ping{"SELECT 1", {}};
  co_await execute(ping, sink, deadline);
}

asio::awaitable<void> OdbcAsyncConnection::close() noexcept {
  if (!conn_) co_return;
  auto stmt = std::move(stmt_);
  auto conn = std::move(conn_);
  auto work = [&stmt, &conn] {
    stmt.reset();
    conn->disconnect();
    conn.reset();
  };
  try {
    co_await run_blocking(workers_.executor(), std::move(work), [] {});
  } catch (...) {
  }
}

}  // namespace sluice::pool
