#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "pool/backend.hpp"
#include "pool/blocking_pool.hpp"
#include "pool/odbc_environment.hpp"
#include "pool/watchdog.hpp"

namespace sluice::pool {

struct OdbcBackendParams {
  // The configured source name, e.g. "warehouse"; appears in every error.
  std::string source;
  // An ODBC connection string, e.g. "Driver={PostgreSQL Unicode};Server=...;".
  std::string connection_string;
};

// Opens ODBC connections for one source. ODBC calls run on `workers`; statement deadlines
// and cancellation requests are carried out by `watchdog`. Both must outlive the backend and
// every connection it opened. Thread-safe.
class OdbcBackend final : public Backend {
 public:
  OdbcBackend(OdbcBackendParams params, BlockingPool& workers, Watchdog& watchdog);

  const std::string& source() const noexcept override { return params_.source; }
  asio::awaitable<std::unique_ptr<Connection>> connect(Deadline deadline) override;

 private:
  OdbcBackendParams params_;
  std::shared_ptr<OdbcEnvironment> env_;
  BlockingPool& workers_;
  Watchdog& watchdog_;
};

}  // namespace sluice::pool
