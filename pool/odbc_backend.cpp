#include "pool/odbc_backend.hpp"

#include "pool/odbc_async_connection.hpp"

namespace sluice::pool {

OdbcBackend::OdbcBackend(OdbcBackendParams params, BlockingPool& workers, Watchdog& watchdog)
    : params_(std::move(params)),
      env_(OdbcEnvironment::get()),
      workers_(workers),
      watchdog_(watchdog) {
  if (params_.source.empty()) throw std::invalid_argument("OdbcBackendParams.source is empty");
  if (params_.connection_string.empty()) {
    throw std::invalid_argument("source '" + params_.source + "': connection string is empty");
  }
}

asio::awaitable<std::unique_ptr<Connection>> OdbcBackend::connect(Deadline deadline) {
  auto work = [this, deadline] {
    auto conn = std::make_unique<OdbcConnection>(env_, params_.source);
    conn->connect(params_.connection_string,
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    return conn;
  };
  std::unique_ptr<OdbcConnection> conn =
      co_await run_blocking(workers_.executor(), std::move(work), [] {});
  co_return std::make_unique<OdbcAsyncConnection>(std::move(conn), workers_, watchdog_);
}

}  // namespace sluice::pool
