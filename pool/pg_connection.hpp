#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pool/backend.hpp"
#include "pool/pg_wire.hpp"
#include "pool/watchdog.hpp"

namespace sluice::pool {

struct PgLink;

struct PgBackendParams {
  // The configured source name, e.g. "warehouse"; appears in every error.
  std::string source;
  // postgresql://user:password@host:port/database?sslmode=disable (see pg::parse_url).
  std::string url;
};

// Opens native PostgreSQL connections: the frontend/backend protocol spoken directly over
// Asio on the I/O thread, with no ODBC driver and no worker thread in the request path.
// `watchdog` sends cancel requests at statement deadlines; it must outlive the backend and
// every connection it opened. Thread-safe.
class PgBackend final : public Backend {
 public:
  // Throws std::invalid_argument for a malformed URL (the message names the problem).
  PgBackend(PgBackendParams params, Watchdog& watchdog);
  const std::string& source() const noexcept override { return source_; }
  // Connects on the calling coroutine's executor, which the connection then uses.
  asio::awaitable<std::unique_ptr<Connection>> connect(Deadline deadline) override;

 private:
  std::string source_;
  pg::ConnectParams params_;
  Watchdog& watchdog_;
};

// One native PostgreSQL connection. A query (SELECT, WITH, VALUES, TABLE) is prepared on
// its first use (Parse and Describe, one round trip) and then run with one write per call
// (Bind, Execute, Sync), up to 64 kept per connection; other statements go as Parse, Bind,
// Describe, Execute, Sync in one write. Either way it reads until ReadyForQuery, decoding rows
// straight from the read buffer into the sink. A deadline or a cancelled caller sends a cancel
// request from the watchdog thread and drains the connection to ReadyForQuery, so it stays usable;
// a server that does not answer a cancel within 10 s gets its connection shut down.
class PgConnection final : public Connection {
 public:
  PgConnection(std::string source, asio::ip::tcp::socket socket, std::shared_ptr<PgLink> link,
               Watchdog& watchdog);
  ~PgConnection() override;

  asio::awaitable<ExecResult> execute(Statement stmt, RowSink& sink, Deadline deadline) override;
  // Pipelined: one write with every statement (Bind, Execute, Sync each; a statement new to the
  // connection is parsed and described in the same write and answers in text this once), then
  // the answers in order. Each statement is its own implicit transaction and its own run for
  // cancellation: a deadline or a cancelled caller cancels that statement when the server gets
  // to it. A cancel request that arrives late may stop the next statement instead; one stopped
  // so before any of its rows reached the sink runs again, once.
  asio::awaitable<void> execute_batch(std::span<BatchItem* const> items, std::size_t caller,
                                      const std::function<void(BatchItem&)>& on_settled) override;
  asio::awaitable<void> validate(Deadline deadline) override;
  asio::awaitable<void> close() noexcept override;
  bool reusable() const noexcept override { return reusable_ && socket_.is_open(); }

 private:
  struct Message {
    char type = 0;
    std::string_view body;
  };
  class Row;
  class Answer;
  // A statement prepared on this connection (named, parsed and described once).
  struct Prepared {
    std::string name;
    std::vector<pg::Field> fields;  // the result columns, when has_rows
    bool has_rows = false;
    std::uint64_t last_used = 0;
    bool pending = false;                   // parsed in the running batch, answer not read yet
    std::optional<Diagnostic> parse_error;  // while pending: the Parse failed
  };

  const Prepared* find_prepared(const std::string& key);
  // Before preparing one more: forgets the least recently used at the cap, to be closed in
  // the same write as the new Parse.
  void make_room();
  const Prepared* remember(std::string key, Prepared p);
  // Hands every message up to ReadyForQuery to `on_message` (notices and parameter changes
  // excepted). The first time it sees the caller cancelled it calls `on_cancel` and reads on.
  template <class OnCancel, class OnMessage>
  asio::awaitable<void> read_answer(const asio::cancellation_state& cancel_state, bool& cancel_seen,
                                    OnCancel on_cancel, OnMessage on_message);
  // Writes out_, then reads one answer; a cancelled caller makes it send a cancel request for
  // `run` once.
  template <class OnMessage>
  asio::awaitable<void> round_trip(const asio::cancellation_state& cancel_state, std::uint64_t run,
                                   bool& cancel_sent, OnMessage on_message);
  // Takes a message of the answer to Parse and Describe into `p` (result columns, in the
  // formats a Bind asks for) or `error`.
  void describe(Prepared& p, std::optional<Diagnostic>& error, const Message& m);
  // execute_batch(); statements that must run again (their prepared statement went stale, or
  // a cancel meant for a neighbour stopped them) do so once, in a second batch, if `may_retry`.
  asio::awaitable<void> run_batch(std::span<BatchItem* const> items, std::size_t caller,
                                  const std::function<void(BatchItem&)>& on_settled,
                                  bool may_retry);

  // What a statement's outcome throws, or null when it succeeded: the server's error (a
  // deadline's or a cancelled caller's kind when one stopped it), the caller's cancellation,
  // or the sink's failure.
  std::exception_ptr outcome_error(std::optional<Diagnostic> error, CancelReason why,
                                   const std::exception_ptr& sink_failure);
  // A prepared statement the server no longer has, or whose result type changed under it
  // (DDL since), fails at Bind: it is prepared again.
  static bool stale(const Diagnostic& error);
  // A buffer grown for a large answer goes back to its normal size.
  void shrink_buffer();
  // Takes the next complete message from the read buffer; false when more bytes are needed.
  bool next(Message& m);
  // Reads more bytes (growing the buffer for a message longer than it); returns early, with
  // nothing read, when the caller cancels. Throws DbError.
  asio::awaitable<void> fill();
  [[noreturn]] void lost(std::string what);
  // Moves the socket onto the event loop of the coroutine about to use it (see the .cpp).
  void follow(const asio::any_io_executor& caller);
  // A message that has no place in the exchange (COPY's, say): the connection is given up.
  [[noreturn]] void unexpected(char type);

  std::string source_;
  asio::ip::tcp::socket socket_;
  std::shared_ptr<PgLink> link_;
  Watchdog& watchdog_;
  std::string out_;       // the request being written, reused
  std::vector<char> in_;  // bytes read and not yet consumed: [begin_, end_)
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::unique_ptr<Row> row_;
  std::unordered_map<std::string, Prepared> prepared_;  // by pg::statement_key
  std::vector<std::string> to_close_;  // evicted statement names, closed with the next Parse
                                       // (or never, if a failure comes first: harmless)
  std::uint64_t front_run_ = 0;        // the run being answered (PgLink)
  std::uint64_t statement_seq_ = 0;
  std::uint64_t use_clock_ = 0;
  bool reusable_ = true;
};

}  // namespace sluice::pool
