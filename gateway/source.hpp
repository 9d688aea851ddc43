#pragma once

#include <memory>
#include <string>

#include "gateway/config.hpp"
#include "pool/connection_pool.hpp"
#include "pool/dialect.hpp"
#include "pool/multiplexer.hpp"

namespace sluice::gateway {

// One configured database as the tools see it: its dialect, its pool and what a request may
// cost on it. Built at start-up; the pool is thread-safe, the rest is read-only.
struct Source {
  std::string name;
  std::unique_ptr<pool::Dialect> dialect;
  std::unique_ptr<pool::ConnectionPool> pool;
  // Fair queueing and database contexts in front of the pool; none in some tests.
  std::unique_ptr<pool::Multiplexer> mux;
  QueryLimits limits;
  bool allow_writes = false;
};

}  // namespace sluice::gateway
