#include "pool/odbc_environment.hpp"

#include <cstdlib>
#include <mutex>

#ifndef SLUICE_ODBCSYSINI_DIR
#define SLUICE_ODBCSYSINI_DIR ""
#endif

namespace sluice::pool {

std::shared_ptr<OdbcEnvironment> OdbcEnvironment::get() {
  static std::mutex mutex;
  static std::weak_ptr<OdbcEnvironment> current;
  std::lock_guard lock(mutex);
  if (auto env = current.lock()) return env;
  std::shared_ptr<OdbcEnvironment> env(new OdbcEnvironment());
  current = env;
  return env;
}

OdbcEnvironment::OdbcEnvironment() {
  if (std::getenv("ODBCSYSINI") == nullptr && SLUICE_ODBCSYSINI_DIR[0] != '\0') {
    ::setenv("ODBCSYSINI", SLUICE_ODBCSYSINI_DIR, 0);
  }
  SQLHANDLE h = SQL_NULL_HANDLE;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &h))) {
    throw DbError(errc::connect_failed, "odbc",
                  {"", 0, "cannot allocate an ODBC environment (is unixODBC installed?)"});
  }
  env_ = OdbcHandle<SQL_HANDLE_ENV>(h);
  odbc_check(SQLSetEnvAttr(h, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0),
             SQL_HANDLE_ENV, h, "odbc", errc::connect_failed);
}

}  // namespace sluice::pool
