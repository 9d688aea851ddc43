#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "pool/connection_pool.hpp"
#include "pool/db_context.hpp"
#include "pool/dialect.hpp"
#include "pool/multiplexed_connection.hpp"
#include "pool/multiplexer_core.hpp"

namespace sluice::pool {

class MuxShared;

// What the multiplexer did about database contexts since it started. A checkout is one
// acquire() that got a connection.
struct ContextStats {
  std::uint64_t affinity_hits = 0;      // checkouts whose connection was already in context
  std::uint64_t affinity_misses = 0;    // checkouts that switched or reset their connection
  std::uint64_t switch_statements = 0;  // switch and reset statements run
  std::uint64_t resets = 0;             // connections in an unknown context that were reset
  std::uint64_t switch_failures = 0;    // switch statements that failed
  std::uint64_t discarded = 0;          // connections replaced because no statement could
                                        // bring them into the context asked for
};

// What /status shows of one multiplexer.
struct MultiplexerSnapshot {
  MultiplexerStats queue;
  ContextStats context;
};

// The multiplexer in front of one source's ConnectionPool: it runs MultiplexerCore's fair
// queueing (deficit round robin over clients, a per-client and a global cap on requests in
// flight, queue deadlines) and puts each admitted request's connection into the request's
// database context, preferring a connection already in it.
//
// The global cap is the pool's max_size, whatever params.global_cap says: a larger cap would
// queue requests again in the pool, first come first served; a smaller one would leave
// connections unused.
//
// Contexts. Each connection carries a record of its session's context (PooledConnection::
// context()); a new one is in its default context, DbContext{}. A checkout asks the pool for
// an idle connection recorded in the request's context (with params.context_affinity), runs
// the dialect's switch statements if the one it gets is elsewhere, and records the new
// context once they all succeeded. A connection whose context is unknown (a switch or a
// statement failed, or the borrower said so) is reset with the dialect's reset statements by
// its next borrower; one the dialect cannot switch or reset (Snowflake cannot return a
// session to its login defaults) is discarded, and the checkout takes another.
//
// Thread-safe: acquire() may be called from any thread or executor; a waiter resumes on its
// own executor. A request admitted at once returns without suspending in the queue. The pool
// and the dialect must outlive the Multiplexer, and the Multiplexer every acquire() in
// progress; a MultiplexedConnection may outlive all three.
class Multiplexer {
 public:
  // Starts the timer that expires queued requests on `executor`. Throws std::invalid_argument
  // naming the field if `params` is invalid.
  Multiplexer(asio::any_io_executor executor, ConnectionPool& pool, const Dialect& dialect,
              MultiplexerParams params);
  // Fails queued requests (close()) and stops the timer.
  ~Multiplexer();
  Multiplexer(const Multiplexer&) = delete;
  Multiplexer& operator=(const Multiplexer&) = delete;

  // Checks out a connection in context `ctx` for `client`, queueing behind other clients'
  // requests until admitted, then waiting for the pool, until `deadline`. `cost` (>= 1) is
  // what the request counts for in fair queueing. The arguments are copied before this
  // returns. Throws DbError:
  //  - invalid_argument: the dialect cannot switch to `ctx` (the message says why and what to
  //    ask for instead); nothing was queued;
  //  - acquire_timeout: the deadline passed while queued (the request never reached the
  //    database) or while waiting for the pool;
  //  - cancelled: the awaiting operation was cancelled; a queued request leaves its queue at
  //    once;
  //  - pool_closed: close() was called;
  //  - what a failed switch statement threw (e.g. statement_failed for a role the login may
  //    not use); the connection's context is then unknown and it is reset before reuse.
  asio::awaitable<MultiplexedConnection> acquire(std::string_view client, const DbContext& ctx,
                                                 Deadline deadline, MultiplexerCore::Cost cost = 1);

  // Runs one read in context `ctx` for `client`: a statement the SQL guard passed, which leaves
  // the session's context as it found it. It queues like acquire(). With params.batch_depth
  // above 1 it may share a connection with other requests' reads in the same context: the
  // request admitted first checks out the connection and sends its statement and its riders'
  // together, earliest deadline first, and the answers come back in one pass (see
  // Connection::execute_batch). Each statement keeps its own sink, deadline and cancellation;
  // the caller's frame must keep `stmt`'s text and parameters and `sink` alive until this
  // returns. Throws what acquire() and Connection::execute() throw.
  asio::awaitable<ExecResult> query(std::string_view client, const DbContext& ctx, Statement stmt,
                                    RowSink& sink, Deadline deadline,
                                    MultiplexerCore::Cost cost = 1);

  // Fails every queued request with pool_closed, and every later acquire(). Checked-out
  // connections are unaffected.
  void close();

  MultiplexerSnapshot snapshot() const;
  // As used: global_cap is the pool's max_size.
  const MultiplexerParams& params() const noexcept;

 private:
  std::shared_ptr<MuxShared> shared_;
};

}  // namespace sluice::pool
