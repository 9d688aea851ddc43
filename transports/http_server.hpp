#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transports/http_exchange.hpp"

namespace sluice::transports {

struct HttpServerParams {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 picks a free port (see HttpServer::port())
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // first request's header
  std::chrono::milliseconds idle_timeout{120'000};   // between requests on a kept-alive connection
  std::chrono::milliseconds body_timeout{30'000};
  std::size_t max_queued_frames = 256;  // per streamed response
};

// Answers one request. Runs on the connection's strand; may suspend for as long as the
// request takes (a streamed response keeps the connection until it ends).
using HttpHandler = std::function<asio::awaitable<void>(HttpExchange&)>;

// Takes over a connection whose request asks for a protocol upgrade (WebSocket): the socket
// and the request are handed over, and the HTTP server forgets the connection. The
// coroutine returned runs on its own on the connection's strand.
using UpgradeHandler = std::function<asio::awaitable<void>(
    asio::ip::tcp::socket socket, HttpRequest request, std::string remote)>;

// An HTTP/1.1 server on Asio coroutines: keep-alive, deadlines on header and body reads,
// size limits, one coroutine (and one writer) per connection. Knows nothing of MCP.
//
// start() and stop() are called from one thread. Connections run on strands of `io`, or,
// given `workers`, each on the one of those contexts serving fewest connections (the first
// on a tie), on its plain executor (destroy the workers before `io`): each worker
// context must then be run by one thread only (its own), which serializes a connection's
// handlers without a strand and keeps all of a connection's work on one core.
class HttpServer {
 public:
  HttpServer(asio::io_context& io, HttpServerParams params, HttpHandler handler,
             UpgradeHandler upgrade = {}, std::vector<asio::io_context*> workers = {});
  ~HttpServer();

  // Binds and listens; throws std::system_error naming the address on failure.
  void start();
  // Stops accepting and closes idle connections; requests in flight finish.
  void stop();
  std::uint16_t port() const noexcept { return port_; }

  struct State;  // shared with the connection coroutines; defined in the .cpp

 private:
  std::shared_ptr<State> state_;
  std::uint16_t port_ = 0;
};

}  // namespace sluice::transports
