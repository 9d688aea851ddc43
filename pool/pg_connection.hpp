#pragma once

#include <memory>
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
  asio::awaitable<void> validate(Deadline deadline) override;
  asio::awaitable<void> close() noexcept override;
  bool reusable() const noexcept override { return reusable_ && socket_.is_open(); }

 private:
  struct Message {
    char type = 0;
    std::string_view body;
  };
  class Row;
  // A statement prepared on this connection (named, parsed and described once).
  struct Prepared {
    std::string name;
    std::vector<pg::Field> fields;  // the result columns, when has_rows
    bool has_rows = false;
    std::uint64_t last_used = 0;
  };

  const Prepared* find_prepared(const std::string& key);
  // Before preparing one more: forgets the least recently used at the cap, to be closed in
  // the same write as the new Parse.
  void make_room();
  const Prepared* remember(std::string key, Prepared p);
  // Writes out_, then hands every message up to ReadyForQuery to `on_message` (notices and
  // parameter changes excepted). A cancelled caller makes it send a cancel request once.
  template <class OnMessage>
  asio::awaitable<void> round_trip(const asio::cancellation_state& cancel_state, std::uint64_t run,
                                   bool& cancel_sent, OnMessage on_message);

  // Takes the next complete message from the read buffer; false when more bytes are needed.
  bool next(Message& m);
  // Reads more bytes (growing the buffer for a message longer than it); returns early, with
  // nothing read, when the caller cancels. Throws DbError.
  asio::awaitable<void> fill();
  [[noreturn]] void lost(std::string what);
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
  std::uint64_t statement_seq_ = 0;
  std::uint64_t use_clock_ = 0;
  bool reusable_ = true;
};

}  // namespace sluice::pool
