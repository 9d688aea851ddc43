#pragma once

#include <memory>
#include <string>

#include "pool/backend.hpp"
#include "pool/db_context.hpp"
#include "pool/db_error.hpp"
#include "pool/pool_params.hpp"
#include "pool/pool_stats.hpp"
#include "pool/pooled_connection.hpp"

namespace sluice::pool {

// An asynchronous, bounded pool of connections to one source. The rules live in PoolCore;
// this class runs them: it opens, validates and closes connections with the Backend on
// `executor`, and wakes waiters.
//
// Thread-safe: acquire() may be called from any thread or executor; a waiter resumes on its
// own executor. A connection granted at once is returned without suspending.
class ConnectionPool {
 public:
  ConnectionPool(asio::any_io_executor executor, std::shared_ptr<Backend> backend,
                 PoolParams params);
  // Stops timers and fails waiters; does not wait for borrowed connections (use close()).
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Starts opening min_size connections and the pool's timer. Call once.
  void start();

  // Borrows a connection, waiting (first come, first served) until `deadline`. Throws
  // DbError: acquire_timeout (naming the last connect error, if any), pool_closed, or
  // cancelled when the awaiting operation is cancelled. The connection may be in whatever
  // database context a Multiplexer left it in (PooledConnection::context()); borrowers whose
  // statements depend on it go through the Multiplexer.
  asio::awaitable<PooledConnection> acquire(Deadline deadline);
  // The same, but of the idle connections it prefers one whose recorded context
  // (PooledConnection::context()) is `prefer`, else the least recently used one, whose
  // context is the least likely to be wanted again soon. It never waits longer for a match.
  // `prefer` is copied before this returns.
  asio::awaitable<PooledConnection> acquire(Deadline deadline, const DbContext& prefer);

  // Graceful close: fails waiters, closes idle connections, and waits until every borrowed
  // connection has come back and been closed, or until `deadline`. Returns true if the pool
  // drained completely in time.
  asio::awaitable<bool> close(Deadline deadline);

  PoolStats stats() const;
  const PoolParams& params() const noexcept;
  const std::string& source() const noexcept;
  // The reason the most recent connect attempt failed, or empty.
  std::string last_connect_error() const;

 private:
  std::shared_ptr<PoolShared> shared_;
};

}  // namespace sluice::pool
