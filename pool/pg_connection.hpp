#pragma once

#include <memory>
#include <string>
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

// One native PostgreSQL connection. Each statement is one write (Parse, Bind, Describe,
// Execute, Sync) and reads until ReadyForQuery, decoding rows straight from the read
// buffer into the sink. A deadline or a cancelled caller sends a cancel request from the
// watchdog thread and drains the connection to ReadyForQuery, so it stays usable; a server
// that does not answer a cancel within 10 s gets its connection shut down.
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

  // Takes the next complete message from the read buffer; false when more bytes are needed.
  bool next(Message& m);
  // Reads more bytes (growing the buffer for a message longer than it); returns early, with
  // nothing read, when the caller cancels. Throws DbError.
  asio::awaitable<void> fill();
  [[noreturn]] void lost(std::string what);

  std::string source_;
  asio::ip::tcp::socket socket_;
  std::shared_ptr<PgLink> link_;
  Watchdog& watchdog_;
  std::string out_;       // the request being written, reused
  std::vector<char> in_;  // bytes read and not yet consumed: [begin_, end_)
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::unique_ptr<Row> row_;
  bool reusable_ = true;
};

}  // namespace sluice::pool
