#pragma once

#include <boost/beast/websocket.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "transports/http_exchange.hpp"

namespace sluice::transports {

struct WebSocketParams {
  std::size_t max_message_bytes = 1 << 20;  // larger messages close the socket with 1009
  std::size_t max_in_flight = 64;           // requests handled at once; reading pauses beyond it
  std::size_t max_queued = 256;  // outgoing messages; reading pauses at half, full disconnects
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{120'000};  // pings are sent at half of this
};

// One WebSocket connection for MCP (subprotocol "mcp"): one JSON-RPC message per text frame.
// Incoming messages are handled concurrently, up to max_in_flight at once (beyond that the
// socket is not read, which pushes back on a client that pipelines faster than it is served);
// outgoing ones leave through one writer with a bounded queue, so a client that stops reading
// is disconnected rather than buffered without limit. Binary frames close with 1003.
//
// Everything runs on the connection's strand.
class WebSocketSession {
 public:
  // Queues one outgoing message; false when the connection is closing or the queue is full
  // (which closes it).
  using Send = std::function<bool(std::string message)>;
  // Handles one incoming text message. `cancel` fires when the connection goes away.
  using Handler = std::function<asio::awaitable<void>(std::string message, Send send,
                                                      asio::cancellation_slot cancel)>;

  // Whether the upgrade request offers the "mcp" subprotocol.
  static bool offers_mcp(const HttpRequest& request);

  // Answers an upgrade request with an HTTP error instead, then closes the connection.
  static asio::awaitable<void> refuse(asio::ip::tcp::socket socket, HttpResponse response);

  // Completes the upgrade on `socket` (echoing "mcp") and serves the connection until it
  // closes; returns once every handler has finished. Emitting `stop` (on the connection's
  // executor) closes it with 1008, for a session the gateway ended.
  static asio::awaitable<void> run(asio::ip::tcp::socket socket, HttpRequest request,
                                   WebSocketParams params, Handler handler,
                                   asio::cancellation_slot stop = {});
};

}  // namespace sluice::transports
