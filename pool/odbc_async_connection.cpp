#include "pool/odbc_async_connection.hpp"

#include <algorithm>
#include <chrono>

namespace sluice::pool {
namespace {

// Cancels one run of a statement on the watchdog thread, and again after a growing pause
// while the driver keeps running it: a cancel that reaches the driver just before the
// statement really starts is lost (sqlite3_interrupt with no statement running, a
// PostgreSQL cancel request before the query arrives).
struct CancelRun {
  Watchdog* watchdog;
  std::shared_ptr<StatementCancel> target;
  std::uint64_t run;
  CancelReason why;
  std::chrono::milliseconds pause{20};

  void operator()() const {
    if (!target->cancel(why, run)) return;
    CancelRun again = *this;
    again.pause = std::min(pause * 2, std::chrono::milliseconds(1000));
    watchdog->arm(Watchdog::Clock::now() + pause, std::move(again));
  }
};

}  // namespace

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
  const std::uint64_t run = s->canceller()->open();
  const Watchdog::Ticket timer =
      watchdog_.arm(deadline, CancelRun{&watchdog_, s->canceller(), run, CancelReason::deadline});
  struct Disarm {
    Watchdog& w;
    Watchdog::Ticket ticket;
    ~Disarm() { w.disarm(ticket); }
  } disarm{watchdog_, timer};
  auto work = [s, &stmt, &sink, deadline] { return s->execute(stmt, sink, deadline); };
  auto on_cancel = [this, target = s->canceller(), run] {
    watchdog_.run_soon(CancelRun{&watchdog_, target, run, CancelReason::caller});
  };
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
