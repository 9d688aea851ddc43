#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gateway/mcp_engine.hpp"
#include "transports/http_exchange.hpp"

namespace sluice::gateway {

// The 2024-11-05 HTTP+SSE transport: GET /sse opens a stream whose first event names the
// endpoint to POST to (/messages?sessionId=...); each POST is answered 202 and its response
// travels as an `event: message` on that stream. The stream is the session, so it lives in
// this process only; closing it ends the session and cancels what still runs for it.
//
// Thread-safe: streams and POSTs arrive on different connections.
class LegacySseSessions {
 public:
  LegacySseSessions(McpEngine& engine, std::chrono::milliseconds keepalive);

  // GET /sse: serves the stream until the client closes it.
  asio::awaitable<void> open(transports::HttpExchange& exchange, std::string messages_path);
  // POST /messages?sessionId=ID
  asio::awaitable<void> post(transports::HttpExchange& exchange, std::string_view session_id);

 private:
  struct Session;
  asio::awaitable<void> handle(std::shared_ptr<Session> session, std::string message);

  McpEngine& engine_;
  std::chrono::milliseconds keepalive_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
  std::atomic<std::uint64_t> next_{1};
};

}  // namespace sluice::gateway
