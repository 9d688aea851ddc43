#include "pool/pool_params.hpp"

#include <gtest/gtest.h>

namespace sluice::pool {
namespace {

using namespace std::chrono_literals;

std::string error_of(const PoolParams& p) {
  try {
    p.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(PoolParamsTest, DefaultsAreValid) {
  EXPECT_EQ(error_of(PoolParams{}), "");
}

TEST(PoolParamsTest, ErrorsNameTheField) {
  PoolParams p;
  p.max_size = 0;
  EXPECT_EQ(error_of(p), "pool.max_size: must be at least 1");
  p = {};
  p.min_size = 9;
  p.max_size = 4;
  EXPECT_EQ(error_of(p), "pool.min_size: must not exceed max_size (4)");
  p = {};
  p.backoff_max = 10ms;
  EXPECT_NE(error_of(p).find("pool.backoff_max"), std::string::npos);
  p = {};
  p.backoff_jitter = 1.5;
  EXPECT_NE(error_of(p).find("pool.backoff_jitter"), std::string::npos);
  p = {};
  p.connect_timeout = 0ms;
  EXPECT_NE(error_of(p).find("pool.connect_timeout"), std::string::npos);
}

}  // namespace
}  // namespace sluice::pool
