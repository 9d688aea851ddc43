#pragma once

// Asio first, with <utility> before it (see pool/asio.hpp).
#include "pool/asio.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "load/src/call_outcome.hpp"
#include "load/src/mcp_messages.hpp"
#include "load/src/target_url.hpp"

namespace sluice::load {

enum class Transport : std::uint8_t { http_modern, http_legacy, websocket };

// "http-modern", "http-legacy", "websocket".
std::string_view transport_name(Transport t) noexcept;

// What every virtual client shares.
struct ClientParams {
  TargetUrl url;
  Transport transport = Transport::http_modern;
  Era era = Era::modern;         // http-modern: modern; http-legacy: legacy; websocket: either
  std::string protocol_version;  // sent in _meta/headers (modern) or initialize (legacy)
  std::vector<std::pair<std::string, std::string>> headers;  // extra request/handshake headers
  asio::ip::tcp::resolver::results_type endpoints;           // resolved once for all clients
};

// One virtual client's connection to an MCP server: a keep-alive HTTP connection (with its
// legacy session, if any) or a WebSocket. One request at a time; every operation ends by its
// deadline. The connection (and session) is opened on first use and again after a failure.
//
// Not thread-safe: used by one coroutine on one executor.
class McpClient {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~McpClient() = default;

  // Connects and, for a legacy session, initializes, unless already done.
  virtual asio::awaitable<CallOutcome> open(Clock::time_point deadline) = 0;
  // Sends one request (opening first if needed) and waits for its response.
  virtual asio::awaitable<CallOutcome> call(const PreparedCall& call,
                                            Clock::time_point deadline) = 0;
  // Ends politely: DELETE of a legacy session, WebSocket close. Errors are ignored.
  virtual asio::awaitable<void> close(Clock::time_point deadline) = 0;
  // Closes the socket at once; a pending operation ends with an error.
  virtual void abort() noexcept = 0;
  virtual bool connected() const noexcept = 0;
};

std::unique_ptr<McpClient> make_mcp_client(asio::any_io_executor executor,
                                           const ClientParams& params, ClientIdentity identity);

}  // namespace sluice::load
