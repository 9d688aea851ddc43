#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "pool/asio.hpp"

namespace sluice::transports {

// Newline-delimited messages on stdin and stdout, for clients that launch the gateway as a
// subprocess. Each line is handled concurrently on one strand; everything written to stdout
// goes through one queue, so stdout carries nothing but whole messages (logs go to stderr).
class StdioTransport {
 public:
  // Writes one message (without the newline). Call on the transport's strand.
  using Send = std::function<void(std::string message)>;
  using Handler = std::function<asio::awaitable<void>(std::string line, Send send)>;

  StdioTransport(asio::any_io_executor executor, Handler handler,
                 std::size_t max_line_bytes = 4 << 20, int in_fd = 0, int out_fd = 1);

  // Reads until end of input, then waits for handlers in flight and for stdout to drain.
  // Spawn it on executor().
  asio::awaitable<void> run();
  asio::strand<asio::any_io_executor> executor() const { return strand_; }

 private:
  void write(std::string message);
  void write_next();

  asio::strand<asio::any_io_executor> strand_;
  asio::posix::stream_descriptor in_;
  asio::posix::stream_descriptor out_;
  Handler handler_;
  std::size_t max_line_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  std::size_t in_flight_ = 0;
  asio::steady_timer idle_;
};

}  // namespace sluice::transports
