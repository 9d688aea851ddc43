#pragma once

#include <memory>
#include <string>

#include "pool/connection.hpp"

namespace sluice::pool {

// Opens connections to one configured source. ODBC is one implementation; e6data's native
// gRPC client is another. Thread-safe: the pool may connect several at once.
class Backend {
 public:
  virtual ~Backend() = default;

  // The configured source name, used in every error message.
  virtual const std::string& source() const noexcept = 0;

  // Opens a new connection or throws DbError(errc::connect_failed, ...) naming the cause.
  virtual asio::awaitable<std::unique_ptr<Connection>> connect(Deadline deadline) = 0;
};

}  // namespace sluice::pool
