#pragma once

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace sluice::pool {

// What went wrong with a database operation, independent of the backend that reported it.
// Callers branch on these; the message and diagnostic say the rest.
enum class errc {
  acquire_timeout = 1,  // no connection became available before the caller's deadline
  pool_closed,          // the pool is closing or closed
  connect_failed,       // could not open a connection (bad config, server down, auth)
  connection_lost,      // the connection broke during the operation; it is discarded
  statement_timeout,    // the statement's deadline passed and it was cancelled
  cancelled,            // the caller cancelled the statement
  statement_failed,     // the database rejected the statement (syntax, permission, ...)
  invalid_argument,     // the request could not be expressed to the driver
};

const std::error_category& db_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// One diagnostic as the driver reported it. `sqlstate` is empty when the error did not
// come from the database (e.g. a pool timeout).
struct Diagnostic {
  std::string sqlstate;
  std::int32_t native_code = 0;
  std::string message;
};

// The exception every pool and backend operation throws. `source` names the configured
// source (e.g. "warehouse") so a message read in a log or by a user says where it failed.
// Maps a SQLSTATE to the error kind callers branch on (the same for every backend: ODBC
// drivers and native clients both report SQLSTATEs).
errc classify_sqlstate(std::string_view sqlstate) noexcept;

class DbError : public std::system_error {
 public:
  DbError(errc kind, std::string source, Diagnostic diag);

  errc kind() const noexcept { return static_cast<errc>(code().value()); }
  const std::string& source() const noexcept { return source_; }
  const Diagnostic& diagnostic() const noexcept { return diag_; }

 private:
  std::string source_;
  Diagnostic diag_;
};

// A new exception object with the same content as `e`'s: for handing one failure to several
// callers that may each read (and finally free) it on their own thread. A DbError stays a
// DbError; anything else becomes a DbError of kind `fallback` in `source` with its message.
std::exception_ptr copy_error(const std::exception_ptr& e, errc fallback,
                              const std::string& source);

}  // namespace sluice::pool

template <>
struct std::is_error_code_enum<sluice::pool::errc> : std::true_type {};
