#pragma once

#include <memory>

#include "pool/odbc_handle.hpp"

namespace sluice::pool {

// The process's ODBC environment (ODBC 3 behaviour, driver-manager pooling off). The first
// call points ODBCSYSINI at Sluice's private driver registry unless the environment already
// sets it; make that first call on the main thread, before other threads start.
// Thread-safe after creation.
class OdbcEnvironment {
 public:
  static std::shared_ptr<OdbcEnvironment> get();

  SQLHENV native() const noexcept { return env_.get(); }

 private:
  OdbcEnvironment();
  OdbcHandle<SQL_HANDLE_ENV> env_;
};

}  // namespace sluice::pool
