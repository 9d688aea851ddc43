#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "pool/odbc_environment.hpp"
#include "pool/odbc_handle.hpp"

namespace sluice::pool {

// One blocking ODBC connection. Every method blocks: call them from a BlockingPool thread.
// Not thread-safe, except that statements on it may be cancelled from another thread.
class OdbcConnection {
 public:
  OdbcConnection(std::shared_ptr<OdbcEnvironment> env, std::string source);
  ~OdbcConnection();
  OdbcConnection(const OdbcConnection&) = delete;
  OdbcConnection& operator=(const OdbcConnection&) = delete;

  // Connects with an ODBC connection string; throws DbError(connect_failed) naming the
  // source and the driver's reason. `login_timeout` is rounded up to whole seconds.
  void connect(const std::string& connection_string, std::chrono::milliseconds login_timeout);
  void disconnect() noexcept;

  // The driver's own view of whether the connection died (SQL_ATTR_CONNECTION_DEAD).
  bool dead() const noexcept;

  // SQL_DBMS_NAME, e.g. "PostgreSQL" or "SQLite".
  std::string dbms_name() const;

  SQLHDBC native() const noexcept { return dbc_.get(); }
  const std::string& source() const noexcept { return source_; }

 private:
  std::shared_ptr<OdbcEnvironment> env_;
  std::string source_;
  OdbcHandle<SQL_HANDLE_DBC> dbc_;
  bool connected_ = false;
};

// The connection string with every password replaced by "***", for logs and messages.
std::string redact_connection_string(std::string_view connection_string);

}  // namespace sluice::pool
