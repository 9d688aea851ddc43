#pragma once

#include <cstdint>

namespace sluice::pool {

// A snapshot of a pool. Invariant: idle + busy + connecting == total <= max_size.
struct PoolStats {
  std::uint64_t idle = 0;        // open, not borrowed
  std::uint64_t busy = 0;        // borrowed, or being validated for a borrower
  std::uint64_t connecting = 0;  // connect in flight, or waiting out a reconnect backoff
  std::uint64_t total = 0;
  std::uint64_t waiters = 0;  // acquires waiting for a connection
  // Counters since the pool started.
  std::uint64_t created = 0;  // successful connects
  std::uint64_t closed = 0;   // connections closed for any reason
  std::uint64_t failed_connects = 0;
  std::uint64_t acquire_timeouts = 0;
  std::uint64_t failed_validations = 0;
};

}  // namespace sluice::pool
