#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/database_tools.hpp"
#include "pool/asio.hpp"
#include "session/session_tokens.hpp"

namespace sluice::gateway {

// http is Streamable HTTP; sse is the 2024-11-05 HTTP+SSE transport, whose stream is the
// session, like a WebSocket or stdio connection.
enum class Transport : std::uint8_t { http, sse, stdio, websocket };

// Legacy-era state that lives as long as a stdio process or a WebSocket connection. (HTTP
// sessions carry theirs in the signed session id.)
struct ConnectionState {
  bool initialized = false;
  std::string protocol_version;
};

// What the transport knows about one incoming message.
struct MessageContext {
  Transport transport = Transport::http;
  std::string remote;
  // HTTP request headers; nullopt when absent.
  std::optional<std::string> protocol_version_header;
  std::optional<std::string> method_header;
  std::optional<std::string> name_header;
  std::optional<std::string> session_id;
  // stdio and WebSocket: the connection's legacy state.
  ConnectionState* connection = nullptr;
  // Where the transport signals that the requester went away (modern HTTP: the response
  // stream closed), which cancels the request. May be unconnected.
  asio::cancellation_slot disconnect;
  // A name for the scope in which request ids are unique (a session id, a connection), so
  // that notifications/cancelled finds the right request.
  std::string cancel_scope;
};

// Sends a notification that belongs to the request being handled (progress). Called on the
// executor that runs handle().
using Notify = std::function<void(std::string message)>;

struct Outcome {
  unsigned http_status = 200;
  std::string body;                       // one JSON-RPC message; empty for notifications
  std::optional<std::string> session_id;  // HTTP: send as Mcp-Session-Id
  bool modern = false;
};

// The MCP protocol engine, for both eras, independent of any transport: it parses one
// JSON-RPC message, decides its era per message, checks versions and headers, dispatches,
// and returns the response with the HTTP status the Streamable HTTP transport should use.
//
// Thread-safe: handle() may run concurrently for many requests.
class McpEngine {
 public:
  struct Params {
    std::string name = "sluice";
    std::string version;
    std::string instructions;
  };

  static constexpr std::string_view kModernVersion = "2026-07-28";

  McpEngine(DatabaseTools& tools, session::SessionTokens& sessions, Params params);

  asio::awaitable<Outcome> handle(std::string_view body, MessageContext& ctx, Notify notify);

  // Whether `version` is a legacy revision served here (2025-11-25, 2025-06-18, 2025-03-26).
  static bool is_legacy_version(std::string_view version) noexcept;

 private:
  struct Request;
  asio::awaitable<Outcome> handle_one(nlohmann::json message, MessageContext& ctx, Notify& notify);
  bool batch_allowed(const MessageContext& ctx) const;
  asio::awaitable<Outcome> modern(Request& req, MessageContext& ctx, Notify& notify);
  asio::awaitable<Outcome> legacy(Request& req, MessageContext& ctx, Notify& notify);
  asio::awaitable<Outcome> call_tool(Request& req, MessageContext& ctx, Notify& notify, bool modern,
                                     std::string_view version);
  Outcome initialize(Request& req, MessageContext& ctx);
  Outcome notification(Request& req, MessageContext& ctx);
  std::string result(const Request& req, std::string_view body, bool modern) const;
  std::string tools_list(const Request& req, bool modern) const;

  DatabaseTools& tools_;
  session::SessionTokens& sessions_;
  Params params_;
  std::string server_info_;  // {"name":..,"version":..}

  // Requests that notifications/cancelled may cancel, by scope and id.
  struct InFlight {
    asio::any_io_executor executor;
    std::shared_ptr<asio::cancellation_signal> signal;
  };
  std::mutex in_flight_mutex_;
  std::unordered_map<std::string, InFlight> in_flight_;
};

}  // namespace sluice::gateway
