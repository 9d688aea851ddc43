#pragma once

// The one place the project includes Asio. Some Boost versions miss <utility> in
// awaitable.hpp under g++ 12, so it comes first.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace sluice {
namespace asio = boost::asio;
}  // namespace sluice
