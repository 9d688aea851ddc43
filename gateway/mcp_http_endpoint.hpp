#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gateway/legacy_sse_sessions.hpp"
#include "gateway/mcp_engine.hpp"
#include "transports/http_exchange.hpp"
#include "transports/websocket_session.hpp"

namespace sluice::gateway {

// Streamable HTTP for both MCP eras on one path: Origin and Host checks, Accept and
// Content-Type rules, session headers, JSON or Server-Sent-Event responses, DELETE to end a
// legacy session; WebSocket upgrades on the same path; the 2024-11-05 HTTP+SSE transport on
// GET /sse and POST /messages; plus /healthz. The MCP semantics live in McpEngine; the sockets in
// transports::HttpServer.
class McpHttpEndpoint {
 public:
  struct Params {
    std::string path = "/mcp";
    std::vector<std::string> allowed_origins;  // empty: only localhost origins
    std::vector<std::string> allowed_hosts;    // empty: localhost names when bound to loopback
    bool loopback_only = true;                 // the listener is bound to a loopback address
    std::chrono::milliseconds sse_keepalive{15'000};  // comment interval on event streams
    transports::WebSocketParams websocket;
    // The JSON document GET /status serves (sessions, clients, queues, pools); none: 404.
    std::function<std::string()> status;
  };

  McpHttpEndpoint(McpEngine& engine, session::SessionTokens& sessions, Params params);

  // The transports::HttpHandler.
  asio::awaitable<void> operator()(transports::HttpExchange& exchange);

  // The transports::UpgradeHandler: MCP over WebSocket on the same path. The connection is
  // one session (legacy initialize), and modern messages with _meta are served too.
  asio::awaitable<void> upgrade(asio::ip::tcp::socket socket, transports::HttpRequest request,
                                std::string remote);

 private:
  struct FrontHeaders;  // the headers every request is judged by, read in one pass

  // The Origin/Host verdict for any request: a 403 response, or nullopt when allowed.
  std::optional<transports::HttpResponse> refuse(const transports::HttpRequest& req,
                                                 const FrontHeaders& headers) const;
  asio::awaitable<void> post(transports::HttpExchange& exchange, const FrontHeaders& headers);
  asio::awaitable<void> handle_post(transports::HttpExchange& exchange);
  transports::HttpResponse end_session(const transports::HttpRequest& req);
  asio::awaitable<void> websocket_session(asio::ip::tcp::socket socket,
                                          transports::HttpRequest request, std::string remote);
  bool origin_allowed(std::string_view origin) const;
  bool host_allowed(std::string_view host) const;

  McpEngine& engine_;
  session::SessionTokens& sessions_;
  Params params_;
  LegacySseSessions sse_;
  std::atomic<std::uint64_t> next_connection_{1};
};

}  // namespace sluice::gateway
