#pragma once

#include "load/src/mcp_client.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <optional>
#include <string>

#include "load/src/jsonrpc_reply.hpp"

namespace sluice::load {

// MCP over WebSocket (subprotocol mcp, one JSON-RPC message per text frame). In the legacy
// era the socket is one session opened with initialize; in the modern era every frame carries
// _meta and there is no handshake beyond the upgrade. Frames that are not the awaited
// response (notifications, server requests) are read past.
class WebSocketMcpClient final : public McpClient {
 public:
  WebSocketMcpClient(asio::any_io_executor executor, const ClientParams& params,
                     ClientIdentity identity);

  asio::awaitable<CallOutcome> open(Clock::time_point deadline) override;
  asio::awaitable<CallOutcome> call(const PreparedCall& call, Clock::time_point deadline) override;
  asio::awaitable<void> close(Clock::time_point deadline) override;
  void abort() noexcept override;
  bool connected() const noexcept override { return ready_; }

 private:
  using Stream = boost::beast::websocket::stream<boost::beast::tcp_stream>;

  // Sends out_ and reads frames until the response to `id`.
  asio::awaitable<CallOutcome> round_trip(Clock::time_point deadline, std::int64_t id);
  CallOutcome io_failure(boost::system::error_code ec);

  asio::any_io_executor executor_;
  const ClientParams& params_;
  ClientIdentity identity_;
  std::optional<Stream> ws_;
  boost::beast::flat_buffer buffer_;
  std::string out_;
  std::string detail_;
  JsonRpcReply reply_;
  std::int64_t next_id_ = 1;
  bool ready_ = false;  // upgraded and, in the legacy era, initialized
};

}  // namespace sluice::load
