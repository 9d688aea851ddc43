#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "pool/asio.hpp"
#include "pool/connection.hpp"
#include "session/context_handles.hpp"
#include "session/request_context.hpp"

// What McpEngine serves is supplied by providers: tools always (the database tools in the
// product), resources, prompts and completions optionally (the conformance fixtures in
// tests/). The engine owns the protocol: envelopes, eras, capabilities, progress and log
// notifications, server-to-client requests and cancellation; a provider only computes
// results.
namespace sluice::gateway {

// What a tool call produced. Text-only results (the database tools) fill `text` and, unless
// it is an error, `structured`; other tools may give their content blocks as a ready JSON
// array instead.
struct ToolResult {
  std::string structured;  // JSON object; empty when absent
  std::string text;        // plain text, sent as one text block (the engine escapes it)
  std::string content;     // a JSON array of content blocks; when set, replaces `text`
  bool is_error = false;
  // 2026-07-28 multi-round-trip requests: instead of a result, what the tool needs from the
  // client first (a JSON object of named requests: {"key":{"method":..,"params":..}}), and
  // the state to get back with the answers. The engine signs the state, so a client cannot
  // alter it, and hands it back verified in ToolCall::request_state on the retry.
  std::string input_requests;
  std::string request_state;
};

// A request whose parameters are malformed (unknown tool, prompt or cursor, arguments not an
// object, a required prompt argument missing): answered with JSON-RPC -32602, not a result.
class ToolRequestError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// The client refused or failed a server-to-client request (sampling, elicitation, roots), or
// did not answer in time.
class ClientRequestError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// MCP log levels, in the order of RFC 5424 severity (debug lowest).
enum class LogLevel : std::uint8_t {
  debug,
  info,
  notice,
  warning,
  error,
  critical,
  alert,
  emergency
};
std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;
std::string_view log_level_name(LogLevel level) noexcept;

// An awaitable for a value known at once: for the functions that answer at once or hand
// over to a coroutine, so that a request pays for a coroutine frame only where it waits.
template <class T>
asio::awaitable<T> ready(T value) {
  co_return value;
}

// One tool call as a provider sees it. The functions are set by the engine and may be empty:
// check before calling.
struct ToolCall {
  const nlohmann::json& arguments;  // always an object
  // The client's capabilities when the request tells them (2026-07-28 _meta); else empty.
  const nlohmann::json& client_capabilities;
  // Who asks, in which session, under which trace; the tool fills in source, db, deadline.
  session::RequestContext& request;
  pool::Deadline deadline = pool::Deadline::max();
  // The session's default context (legacy sessions and connections; nullopt when stateless
  // or never set), and how to change it (empty when stateless).
  std::optional<session::ContextHandles::Context> session_context{};
  std::function<void(session::ContextHandles::Context)> set_session_context{};
  // Reports progress when the client asked for it (a progressToken). Any thread.
  std::function<void(double progress, std::optional<double> total, std::string message)> progress{};
  // Sends a log message when the client's level lets it through. Any thread.
  std::function<void(LogLevel level, nlohmann::json data)> log{};
  // Sends a request to the client and awaits its result (sampling/createMessage,
  // elicitation/create, roots/list). Set only where the era and transport allow
  // server-to-client requests (legacy sessions and connections). Throws ClientRequestError.
  std::function<asio::awaitable<nlohmann::json>(std::string method, nlohmann::json params)> ask{};
  // A retry after input_required (2026-07-28): the client's answers, keyed as requested
  // (null on a first call), and the state the tool returned, verified (empty if none).
  const nlohmann::json* input_responses = nullptr;
  std::string request_state{};
};

class ToolProvider {
 public:
  virtual ~ToolProvider() = default;
  // The JSON array of tool definitions, in a fixed order.
  virtual const std::string& definitions() const noexcept = 0;
  virtual bool has(std::string_view name) const noexcept = 0;
  // Client capabilities a tool needs (a JSON object such as {"sampling":{}}), or nullptr.
  // A 2026-07-28 request whose declared capabilities lack one is refused (400, -32021).
  virtual const nlohmann::json* required_capabilities(std::string_view /*name*/) const noexcept {
    return nullptr;
  }
  // Runs a tool until done, until `call.deadline`, or until the awaiting operation is
  // cancelled. Throws ToolRequestError for malformed requests.
  virtual asio::awaitable<ToolResult> call(std::string name, ToolCall& call) = 0;
};

class ResourceProvider {
 public:
  virtual ~ResourceProvider() = default;
  virtual const std::string& resources() const noexcept = 0;  // JSON array of Resource
  virtual const std::string& templates() const noexcept = 0;  // JSON array of ResourceTemplate
  // The `contents` JSON array of `uri`, or nullopt when there is no such resource.
  virtual asio::awaitable<std::optional<std::string>> read(std::string uri) = 0;
  // Whether resources/subscribe is offered (legacy sessions only).
  virtual bool subscribable() const noexcept { return false; }
};

class PromptProvider {
 public:
  virtual ~PromptProvider() = default;
  virtual const std::string& prompts() const noexcept = 0;  // JSON array of Prompt
  // The GetPromptResult JSON object. Throws ToolRequestError for an unknown prompt or a
  // missing argument.
  virtual asio::awaitable<std::string> get(std::string name, const nlohmann::json& arguments) = 0;
};

class CompletionProvider {
 public:
  virtual ~CompletionProvider() = default;
  // completion/complete: the `completion` JSON object ({"values":[...]}) for an argument of a
  // prompt or resource template. Throws ToolRequestError for an unknown reference.
  virtual std::string complete(const nlohmann::json& ref, const nlohmann::json& argument) = 0;
};

}  // namespace sluice::gateway
