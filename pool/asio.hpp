#pragma once

// The one place the project includes Asio. Some Boost versions miss <utility> in
// awaitable.hpp under g++ 12, so it comes first.
#include <utility>

#include <unistd.h>
#include <boost/asio.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace sluice {
namespace asio = boost::asio;

// Moves a connected TCP socket onto the event loop of `to`: its file descriptor alone, released
// by the old loop and assigned to the new one (two epoll_ctl calls). Nothing may be pending on
// it. On failure `ec` is set and the socket returned is closed; `from` still holds the
// descriptor unless it was released (then it is closed too).
inline asio::ip::tcp::socket move_socket(asio::ip::tcp::socket& from,
                                         const asio::any_io_executor& to,
                                         boost::system::error_code& ec) {
  asio::ip::tcp::socket moved(to);
  const auto protocol = from.local_endpoint(ec).protocol();
  if (ec) return moved;
  const auto fd = from.release(ec);
  if (ec) return moved;
  moved.assign(protocol, fd, ec);
  if (ec) ::close(fd);
  return moved;
}
}  // namespace sluice
