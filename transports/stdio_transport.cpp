#include "transports/stdio_transport.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace sluice::transports {

StdioTransport::StdioTransport(asio::any_io_executor executor, Handler handler,
                               std::size_t max_line_bytes, int in_fd, int out_fd)
    : strand_(asio::make_strand(executor)),
      in_(strand_, ::dup(in_fd)),
      out_(strand_, ::dup(out_fd)),
      handler_(std::move(handler)),
      max_line_(max_line_bytes),
      idle_(strand_) {}

void StdioTransport::write(std::string message) {
  message.push_back('\n');
  queue_.push_back(std::move(message));
  if (!writing_) write_next();
}

void StdioTransport::write_next() {
  writing_ = true;
  asio::async_write(out_, asio::buffer(queue_.front()),
                    asio::bind_executor(strand_, [this](std::error_code ec, std::size_t) {
                      queue_.pop_front();
                      if (ec) {
                        spdlog::error("stdio: cannot write to stdout: {}", ec.message());
                        queue_.clear();
                      }
                      if (!queue_.empty()) {
                        write_next();
                      } else {
                        writing_ = false;
                        idle_.cancel();
                      }
                    }));
}

asio::awaitable<void> StdioTransport::run() {
  std::string buffer;
  Send send = [this](std::string m) { write(std::move(m)); };
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(in_, asio::dynamic_buffer(buffer, max_line_),
                                                   '\n', asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::not_found) {
      spdlog::error("stdio: a message exceeds {} bytes; closing", max_line_);
      break;
    }
    if (ec && n == 0) {
      if (!buffer.empty())
        n = buffer.size();  // last line without a newline
      else
        break;
    }
    std::string line = buffer.substr(0, n);
    buffer.erase(0, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) {
      ++in_flight_;
      asio::co_spawn(
          strand_,
          [this, line = std::move(line), send]() mutable -> asio::awaitable<void> {
            try {
              co_await handler_(std::move(line), send);
            } catch (const std::exception& e) {
              spdlog::error("stdio: request failed: {}", e.what());
            }
            --in_flight_;
            idle_.cancel();
          },
          asio::detached);
    }
    if (ec) break;
  }
  while (in_flight_ > 0 || writing_) {
    idle_.expires_at(asio::steady_timer::time_point::max());
    co_await idle_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace sluice::transports
