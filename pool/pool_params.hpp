#pragma once

#include <chrono>
#include <cstddef>

namespace sluice::pool {

// Configuration of one ConnectionPool. Defaults suit a warehouse behind a gateway: a few
// connections kept warm, reconnects that back off instead of hammering a sick server.
struct PoolParams {
  // Connections kept open even when idle.
  std::size_t min_size = 1;
  // Hard cap on open plus opening connections.
  std::size_t max_size = 8;
  // Deadline for one connect attempt.
  std::chrono::milliseconds connect_timeout{10'000};
  // A connection idle longer than this is validated (a cheap query) before it is handed out.
  std::chrono::milliseconds validate_after_idle{30'000};
  // Deadline for one validation.
  std::chrono::milliseconds validate_timeout{5'000};
  // Idle connections above min_size are closed after this long unused.
  std::chrono::milliseconds idle_timeout{600'000};
  // Connections are replaced after this age (on return or while idle); 0 disables.
  std::chrono::milliseconds max_lifetime{3'600'000};
  // Reconnect backoff: initial delay, doubling per consecutive failure up to the maximum,
  // each delay randomised by +/- jitter (a fraction of the delay).
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{30'000};
  double backoff_jitter = 0.2;

  // Throws std::invalid_argument naming the first offending field.
  void validate() const;
};

}  // namespace sluice::pool
