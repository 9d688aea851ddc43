#pragma once

#include <sql.h>
#include <sqlext.h>

#include <string>
#include <string_view>
#include <utility>

#include "pool/db_error.hpp"

namespace sluice::pool {

// Owns one ODBC handle of type `Type` (SQL_HANDLE_ENV, _DBC or _STMT). Move-only; the
// destructor frees it and never throws.
template <SQLSMALLINT Type>
class OdbcHandle {
 public:
  OdbcHandle() = default;
  explicit OdbcHandle(SQLHANDLE h) noexcept : h_(h) {}
  ~OdbcHandle() { reset(); }
  OdbcHandle(OdbcHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  OdbcHandle& operator=(OdbcHandle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  OdbcHandle(const OdbcHandle&) = delete;
  OdbcHandle& operator=(const OdbcHandle&) = delete;

  SQLHANDLE get() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != nullptr; }
  void reset() noexcept {
    if (h_ != nullptr) SQLFreeHandle(Type, std::exchange(h_, nullptr));
  }

 private:
  SQLHANDLE h_ = nullptr;
};

// Reads the diagnostic records of a handle: the first record's SQLSTATE and native code,
// and every record's message joined, with the driver-manager prefixes kept (they say which
// layer complained).
Diagnostic read_diagnostic(SQLSMALLINT handle_type, SQLHANDLE handle);

// The one checked path for every ODBC call: on failure, reads the diagnostic once and throws
// DbError with the kind chosen by classify_sqlstate (or `kind` when given).
inline void odbc_check(SQLRETURN rc, SQLSMALLINT handle_type, SQLHANDLE handle,
                       const std::string& source, errc kind = errc{}) {
  if (SQL_SUCCEEDED(rc)) [[likely]]
    return;
  Diagnostic d = read_diagnostic(handle_type, handle);
  if (rc == SQL_INVALID_HANDLE && d.message.empty()) d.message = "invalid ODBC handle";
  errc k = kind != errc{} ? kind : classify_sqlstate(d.sqlstate);
  throw DbError(k, source, std::move(d));
}

}  // namespace sluice::pool
