#pragma once

#include "load/src/mcp_client.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>
#include <string>
#include <vector>

#include "load/src/jsonrpc_reply.hpp"
#include "load/src/sse_parser.hpp"

namespace sluice::load {

// MCP over Streamable HTTP on one keep-alive connection: modern stateless POSTs with _meta and
// the Mcp-* headers, or a legacy session (initialize, notifications/initialized, then
// requests with Mcp-Session-Id). Responses may be application/json or text/event-stream; an
// event stream is read until the response with the request's id.
//
// Requests are written from one reused buffer and bodies read through a reused chunk, so a
// request allocates only what Beast's header parser does.
class HttpMcpClient final : public McpClient {
 public:
  HttpMcpClient(asio::any_io_executor executor, const ClientParams& params,
                ClientIdentity identity);

  asio::awaitable<CallOutcome> open(Clock::time_point deadline) override;
  asio::awaitable<CallOutcome> call(const PreparedCall& call, Clock::time_point deadline) override;
  asio::awaitable<void> close(Clock::time_point deadline) override;
  void abort() noexcept override;
  bool connected() const noexcept override { return connected_; }

 private:
  using Parser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

  asio::awaitable<CallOutcome> connect(Clock::time_point deadline);
  asio::awaitable<CallOutcome> initialize(Clock::time_point deadline);
  // Sends request_ and reads the answer. A connection that served requests before and fails
  // before any byte of the answer (the server closed it while idle) is replaced and the
  // request sent once more. `id` < 0: no JSON-RPC response expected (a notification).
  // `keep` receives the matching response's text.
  asio::awaitable<CallOutcome> exchange(Clock::time_point deadline, std::int64_t id,
                                        std::string* keep);
  // One attempt; the bool says whether nothing of the answer arrived (safe to retry).
  asio::awaitable<std::pair<CallOutcome, bool>> exchange_once(Clock::time_point deadline,
                                                              std::int64_t id, std::string* keep);
  // Starts request_ with the method line and the shared headers.
  void begin_request(std::string_view method);
  // Adds Content-Length, the blank line and the body in pieces.
  void end_request(std::string_view head, std::string_view id, std::string_view tail);
  CallOutcome io_failure(boost::system::error_code ec);
  void close_socket() noexcept;

  const ClientParams& params_;
  ClientIdentity identity_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::vector<char> chunk_;
  std::string shared_headers_;  // Host, User-Agent and the --header lines
  std::string request_;
  std::string body_;
  std::string detail_;
  std::string session_headers_;  // legacy: Mcp-Session-Id and MCP-Protocol-Version lines
  std::string session_id_;
  SseParser sse_;
  JsonRpcReply reply_;
  std::int64_t next_id_ = 1;
  std::uint64_t served_on_connection_ = 0;
  bool connected_ = false;
  bool session_ready_ = false;
};

}  // namespace sluice::load
