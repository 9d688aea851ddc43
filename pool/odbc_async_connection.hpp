#pragma once

#include <memory>

#include "pool/blocking_pool.hpp"
#include "pool/connection.hpp"
#include "pool/odbc_connection.hpp"
#include "pool/odbc_statement.hpp"
#include "pool/watchdog.hpp"

namespace sluice::pool {

// The pool-facing Connection over one blocking OdbcConnection: each call hops to a worker
// thread and back; the watchdog cancels a statement at its deadline (SQLCancel), and
// cancelling the awaiting operation cancels it too.
class OdbcAsyncConnection final : public Connection {
 public:
  OdbcAsyncConnection(std::unique_ptr<OdbcConnection> conn, BlockingPool& workers,
                      Watchdog& watchdog);
  ~OdbcAsyncConnection() override;

  asio::awaitable<ExecResult> execute(Statement stmt, RowSink& sink, Deadline deadline) override;
  asio::awaitable<void> validate(Deadline deadline) override;
  asio::awaitable<void> close() noexcept override;
  bool reusable() const noexcept override { return reusable_ && conn_ != nullptr; }

 private:
  std::unique_ptr<OdbcConnection> conn_;
  std::unique_ptr<OdbcStatement> stmt_;
  BlockingPool& workers_;
  Watchdog& watchdog_;
  bool reusable_ = true;
};

}  // namespace sluice::pool
