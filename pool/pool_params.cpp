#include "pool/pool_params.hpp"

#include <stdexcept>
#include <string>

namespace sluice::pool {

void PoolParams::validate() const {
  auto bad = [](const char* field, const std::string& why) {
    throw std::invalid_argument(std::string("pool.") + field + ": " + why);
  };
  if (max_size == 0) bad("max_size", "must be at least 1");
  if (min_size > max_size) {
    bad("min_size", "must not exceed max_size (" + std::to_string(max_size) + ")");
  }
  if (connect_timeout.count() <= 0) bad("connect_timeout", "must be positive");
  if (validate_timeout.count() <= 0) bad("validate_timeout", "must be positive");
  if (validate_after_idle.count() < 0) bad("validate_after_idle", "must not be negative");
  if (idle_timeout.count() <= 0) bad("idle_timeout", "must be positive");
  if (max_lifetime.count() < 0) bad("max_lifetime", "must not be negative (0 disables it)");
  if (backoff_initial.count() <= 0) bad("backoff_initial", "must be positive");
  if (backoff_max < backoff_initial) bad("backoff_max", "must be at least backoff_initial");
  if (!(backoff_jitter >= 0.0 && backoff_jitter < 1.0)) bad("backoff_jitter", "must be in [0, 1)");
}

}  // namespace sluice::pool
