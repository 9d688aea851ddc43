#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "gateway/mcp_engine.hpp"
#include "transports/http_exchange.hpp"

namespace sluice::gateway {

// Streamable HTTP for both MCP eras on one path: Origin and Host checks, Accept and
// Content-Type rules, session headers, JSON or Server-Sent-Event responses, DELETE to end a
// legacy session; plus /healthz. The MCP semantics live in McpEngine; the sockets in
// transports::HttpServer.
class McpHttpEndpoint {
 public:
  struct Params {
    std::string path = "/mcp";
    std::vector<std::string> allowed_origins;  // empty: only localhost origins
    std::vector<std::string> allowed_hosts;    // empty: localhost names when bound to loopback
    bool loopback_only = true;                 // the listener is bound to a loopback address
    std::chrono::milliseconds sse_keepalive{15'000};  // comment interval on event streams
  };

  McpHttpEndpoint(McpEngine& engine, session::SessionTokens& sessions, Params params);

  // The transports::HttpHandler.
  asio::awaitable<void> operator()(transports::HttpExchange& exchange);

 private:
  asio::awaitable<void> post(transports::HttpExchange& exchange);
  bool origin_allowed(std::string_view origin) const;
  bool host_allowed(std::string_view host) const;

  McpEngine& engine_;
  session::SessionTokens& sessions_;
  Params params_;
};

}  // namespace sluice::gateway
