#include "load/src/websocket_mcp_client.hpp"

#include <charconv>

namespace sluice::load {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

WebSocketMcpClient::WebSocketMcpClient(asio::any_io_executor executor, const ClientParams& params,
                                       ClientIdentity identity)
    : executor_(std::move(executor)), params_(params), identity_(std::move(identity)) {}

void WebSocketMcpClient::abort() noexcept {
  ready_ = false;
  if (!ws_) return;
  boost::system::error_code ignored;
  beast::get_lowest_layer(*ws_).socket().close(ignored);
}

CallOutcome WebSocketMcpClient::io_failure(boost::system::error_code ec) {
  abort();
  if (ec == beast::error::timeout) return {ErrorKind::timeout, 0, "no answer by the deadline"};
  detail_ = ec.message();
  return {ErrorKind::connection, 0, detail_};
}

asio::awaitable<CallOutcome> WebSocketMcpClient::open(Clock::time_point deadline) {
  if (ready_) co_return CallOutcome{};
  ws_.emplace(executor_);
  auto& tcp = beast::get_lowest_layer(*ws_);
  tcp.expires_at(deadline);
  {
    auto [ec, endpoint] = co_await tcp.async_connect(params_.endpoints, nothrow);
    if (ec) co_return io_failure(ec);
    tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  }
  const auto* params = &params_;
  auto decorate = [params](websocket::request_type& request) {
    request.set(http::field::user_agent, "sluice-load");
    request.set(http::field::sec_websocket_protocol, "mcp");
    for (const auto& [name, value] : params->headers) request.set(name, value);
  };
  ws_->set_option(websocket::stream_base::decorator(std::move(decorate)));
  websocket::response_type response;
  {
    auto [ec] = co_await ws_->async_handshake(response, params_.url.host_header, params_.url.target,
                                              nothrow);
    if (ec) {
      if (ec == websocket::error::upgrade_declined) {
        detail_ = "upgrade declined with HTTP " + std::to_string(response.result_int());
        abort();
        co_return CallOutcome{ErrorKind::http, response.result_int(), detail_};
      }
      co_return io_failure(ec);
    }
  }
  if (response[http::field::sec_websocket_protocol] != "mcp") {
    abort();
    co_return CallOutcome{ErrorKind::protocol, 0, "the server did not accept the subprotocol mcp"};
  }
  ws_->text(true);
  buffer_.clear();
  if (params_.era == Era::legacy) {
    const std::int64_t id = next_id_++;
    out_ = initialize_request(id, params_.protocol_version, identity_);
    const CallOutcome o = co_await round_trip(deadline, id);
    if (!o.ok()) {
      abort();
      co_return o;
    }
    out_ = initialized_notification();
    auto [ec, n] = co_await ws_->async_write(asio::buffer(out_), nothrow);
    if (ec) co_return io_failure(ec);
  }
  ready_ = true;
  co_return CallOutcome{};
}

asio::awaitable<CallOutcome> WebSocketMcpClient::call(const PreparedCall& call,
                                                      Clock::time_point deadline) {
  if (!ready_) {
    const CallOutcome o = co_await open(deadline);
    if (!o.ok()) co_return o;
  }
  const std::int64_t id = next_id_++;
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, id);
  out_.clear();
  out_ += PreparedCall::kBodyHead;
  out_.append(digits, end);
  out_ += call.tail;
  co_return co_await round_trip(deadline, id);
}

asio::awaitable<CallOutcome> WebSocketMcpClient::round_trip(Clock::time_point deadline,
                                                            std::int64_t id) {
  beast::get_lowest_layer(*ws_).expires_at(deadline);
  {
    auto [ec, n] = co_await ws_->async_write(asio::buffer(out_), nothrow);
    if (ec) co_return io_failure(ec);
  }
  for (;;) {
    buffer_.clear();
    auto [ec, n] = co_await ws_->async_read(buffer_, nothrow);
    if (ec) co_return io_failure(ec);
    const std::string_view message(static_cast<const char*>(buffer_.cdata().data()),
                                   buffer_.size());
    parse_jsonrpc_reply(message, reply_);
    if (reply_.type == JsonRpcReply::Type::notification ||
        reply_.type == JsonRpcReply::Type::request) {
      continue;
    }
    beast::get_lowest_layer(*ws_).expires_never();
    co_return judge_reply(reply_, id);
  }
}

asio::awaitable<void> WebSocketMcpClient::close(Clock::time_point deadline) {
  if (ready_ && ws_) {
    beast::get_lowest_layer(*ws_).expires_at(deadline);
    co_await ws_->async_close(websocket::close_code::normal, nothrow);
  }
  abort();
}

}  // namespace sluice::load
