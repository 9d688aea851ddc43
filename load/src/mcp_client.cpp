#include "load/src/mcp_client.hpp"

#include "load/src/http_mcp_client.hpp"
#include "load/src/websocket_mcp_client.hpp"

namespace sluice::load {

std::string_view transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::http_modern:
      return "http-modern";
    case Transport::http_legacy:
      return "http-legacy";
    case Transport::websocket:
      return "websocket";
  }
  return "?";
}

std::unique_ptr<McpClient> make_mcp_client(asio::any_io_executor executor,
                                           const ClientParams& params, ClientIdentity identity) {
  if (params.transport == Transport::websocket) {
    return std::make_unique<WebSocketMcpClient>(std::move(executor), params, std::move(identity));
  }
  return std::make_unique<HttpMcpClient>(std::move(executor), params, std::move(identity));
}

}  // namespace sluice::load
