#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "pool/connection_pool.hpp"
#include "pool/odbc_backend.hpp"
#include "pool/pg_connection.hpp"
#include "pool/result_buffer.hpp"
#include "tests/support/pg_cluster.hpp"

namespace sluice::test {

using namespace std::chrono_literals;

// Names the instances of a test run once per PostgreSQL driver ("odbc", "native").
inline std::string driver_name(const ::testing::TestParamInfo<const char*>& param) {
  return param.param;
}

// What every ODBC integration test needs: worker threads for the blocking calls, the
// statement watchdog, and an io_context whose single thread plays the I/O thread.
class OdbcHarness : public ::testing::Test {
 protected:
  std::shared_ptr<pool::OdbcBackend> backend(const std::string& source, const std::string& cs) {
    return std::make_shared<pool::OdbcBackend>(pool::OdbcBackendParams{source, cs}, workers_,
                                               watchdog_);
  }

  // The test cluster as source "pg", through psqlODBC ("odbc") or the native client
  // ("native"): the parameter of the suites that run for both drivers.
  std::shared_ptr<pool::Backend> pg_backend(std::string_view driver) {
    if (driver == "native") {
      return std::make_shared<pool::PgBackend>(
          pool::PgBackendParams{"pg", PgCluster::shared().url()}, watchdog_);
    }
    return backend("pg", PgCluster::shared().odbc_connection_string());
  }

  // Runs a coroutine to completion on the io_context; rethrows what it throws.
  template <class F>
  void run(F f) {
    std::exception_ptr error;
    asio::co_spawn(io_, std::move(f), [&](std::exception_ptr e) { error = e; });
    io_.restart();
    io_.run();
    if (error) std::rethrow_exception(error);
  }

  // Runs one statement on `conn` and returns the whole result.
  static asio::awaitable<pool::ResultBuffer> query(pool::Connection& conn, std::string sql,
                                                   std::vector<pool::Param> params = {},
                                                   std::chrono::milliseconds timeout = 10s) {
    pool::ResultBuffer out;
    const pool::Statement stmt{sql, params};
    co_await conn.execute(stmt, out, pool::Clock::now() + timeout);
    co_return out;
  }

  asio::io_context io_;
  pool::BlockingPool workers_{4};
  pool::Watchdog watchdog_;
};

}  // namespace sluice::test
