#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gateway/mcp_provider.hpp"
#include "pool/asio.hpp"
#include "pool/db_error.hpp"
#include "session/session_manager.hpp"
#include "session/session_tokens.hpp"
#include "transports/request_cancellation.hpp"

namespace sluice::gateway {

// http is Streamable HTTP; sse is the 2024-11-05 HTTP+SSE transport, whose stream is the
// session, like a WebSocket or stdio connection.
enum class Transport : std::uint8_t { http, sse, stdio, websocket };

// Legacy-era state that lives as long as a stdio process or a WebSocket connection. (HTTP
// sessions carry theirs in the signed session id.)
struct ConnectionState {
  bool initialized = false;
  std::string protocol_version;
  std::optional<LogLevel> log_level;                        // set by logging/setLevel
  std::string client;                                       // known from initialize (clientInfo) on
  std::optional<session::ContextHandles::Context> context;  // set by set_context
  // Ends the connection (the session manager evicts or expires it). May be empty.
  std::function<void()> close;
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
  std::optional<std::string> traceparent;  // the W3C trace context header, if any
  // stdio and WebSocket: the connection's legacy state.
  ConnectionState* connection = nullptr;
  // Where the transport signals that the requester went away (modern HTTP: the response
  // stream closed), which cancels the request. May be unconnected.
  asio::cancellation_slot disconnect;
  // HTTP: connects `disconnect` when a request first needs it. Watching the socket costs a
  // system call per request, and only some requests are cancelled by a closed stream. May
  // be empty.
  std::function<asio::cancellation_slot()> watch_disconnect;
  // A name for the scope in which request ids are unique (a session id, a connection), so
  // that notifications/cancelled finds the right request. Empty for stateless HTTP, whose
  // ids mean nothing beyond their own request: such a call ends only by its transport
  // (the response stream closing), and notifications/cancelled there cancels nothing.
  std::string cancel_scope;
  // Bound by the transport to the coroutine that calls handle(), which then cancels a tool
  // call through it; null: the engine runs each call on a coroutine of its own with one.
  std::shared_ptr<transports::RequestCancellation> cancellation;
};

// Sends a notification that belongs to the request being handled (progress). Called on the
// executor that runs handle().
using Notify = std::function<void(std::string message)>;

struct Outcome {
  unsigned http_status = 200;
  std::string body;                       // one JSON-RPC message; empty for notifications
  std::optional<std::string> session_id;  // HTTP: send as Mcp-Session-Id
  bool modern = false;
  std::optional<std::chrono::seconds> retry_after;  // HTTP: send as Retry-After (429, 503)
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
    // Optional providers; each one served declares its capability.
    ResourceProvider* resources = nullptr;
    PromptProvider* prompts = nullptr;
    CompletionProvider* completions = nullptr;
    // Declare `logging` and forward ToolCall::log messages at the level the client chose.
    bool logging = false;
    // Tracks sessions and admits tool calls through per-client limits; none: no limits.
    session::SessionManager* manager = nullptr;
    // Signs the requestState of input_required results; none: tools cannot ask for input.
    const session::TokenSigner* state_signer = nullptr;
  };

  static constexpr std::string_view kModernVersion = "2026-07-28";

  McpEngine(ToolProvider& tools, session::SessionTokens& sessions, Params params);

  asio::awaitable<Outcome> handle(std::string_view body, MessageContext& ctx, Notify notify);

  // A legacy HTTP session ended by DELETE, or a connection (WebSocket, HTTP+SSE, stdio)
  // closed: forget its state.
  void session_ended(const std::string& id);

  // Whether `version` is a legacy revision served here (2025-11-25, 2025-06-18, 2025-03-26).
  static bool is_legacy_version(std::string_view version) noexcept;

 private:
  struct Request;
  // Owns `notify` for the request; what it calls borrows it.
  asio::awaitable<Outcome> handle_one(nlohmann::json message, MessageContext& ctx, Notify notify);
  asio::awaitable<Outcome> handle_batch(nlohmann::json batch, MessageContext& ctx, Notify notify);
  bool batch_allowed(const MessageContext& ctx) const;
  asio::awaitable<Outcome> modern(Request& req, MessageContext& ctx, Notify& notify);
  asio::awaitable<Outcome> legacy(Request& req, MessageContext& ctx, Notify& notify);
  asio::awaitable<Outcome> legacy_content(Request& req);
  struct ToolRun;
  asio::awaitable<Outcome> call_tool(Request& req, MessageContext& ctx, Notify& notify, bool modern,
                                     std::string version);
  asio::awaitable<Outcome> run_tool(std::unique_ptr<ToolRun> run, Request& req, MessageContext& ctx,
                                    Notify& notify, bool modern, std::string version);
  void wire_call(ToolRun& run, Request& req, MessageContext& ctx, Notify& notify, bool modern);
  // The answer to a finished tool call (or the input it needs first, 2026-07-28).
  Outcome tool_outcome(const Request& req, const session::RequestContext& request, ToolResult& r,
                       bool modern, std::string_view version) const;
  Outcome initialize(Request& req, MessageContext& ctx);
  Outcome notification(Request& req, MessageContext& ctx);
  std::string result(const Request& req, std::string_view body, bool modern) const;
  std::string tools_list(const Request& req, bool modern) const;
  // A list result ({"<key>":[...]}), with caching hints in the modern era.
  std::string list_result(const Request& req, std::string_view key, const std::string& items,
                          bool modern) const;
  // Resources, prompts and completion, in either era; nullopt when the method is not served.
  asio::awaitable<std::optional<Outcome>> content(Request& req, bool modern);
  Outcome set_level(Request& req, MessageContext& ctx);
  std::optional<LogLevel> log_level(const Request& req, const MessageContext& ctx,
                                    bool modern) const;
  // Who sends `req`: clientInfo name (or "anonymous") @ remote host.
  std::string client_of(const Request& req, const MessageContext& ctx) const;
  // Registers activity in the session `req` belongs to, if any.
  void touch_session(const Request& req, const MessageContext& ctx);
  // Sends `method` to the client through `notify` and awaits its answer.
  asio::awaitable<nlohmann::json> ask_client(std::string scope, std::shared_ptr<Notify> notify,
                                             std::string method, nlohmann::json params,
                                             pool::Deadline deadline);
  // Hands a client's JSON-RPC response to the ask_client() waiting for it, if any.
  void deliver_answer(const std::string& scope, const std::string& id, nlohmann::json message);

  ToolProvider& tools_;
  session::SessionTokens& sessions_;
  Params params_;
  std::string server_info_;          // {"name":..,"version":..}
  std::string legacy_capabilities_;  // the capabilities object of initialize
  std::string modern_capabilities_;  // the capabilities object of server/discover

  // Requests that notifications/cancelled may cancel, by scope and id.
  struct InFlight {
    asio::any_io_executor executor;
    std::shared_ptr<transports::RequestCancellation> cancellation;
    std::uint64_t request;  // its number there
  };
  std::mutex in_flight_mutex_;
  std::unordered_map<std::string, InFlight> in_flight_;

  // Server-to-client requests awaiting the client's answer, by scope and id.
  struct Asking;
  std::mutex asking_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Asking>> asking_;
  std::atomic<std::uint64_t> next_ask_{1};

  // State of legacy HTTP sessions held by this replica, by session id (bounded): the log
  // level chosen by logging/setLevel and the default context chosen by set_context.
  struct SessionState {
    std::optional<LogLevel> log_level;
    std::optional<session::ContextHandles::Context> context;
  };
  SessionState& session_state(const std::string& id);  // with states_mutex_ held
  mutable std::mutex states_mutex_;
  std::unordered_map<std::string, SessionState> session_states_;
};

}  // namespace sluice::gateway
