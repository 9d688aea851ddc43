#include "transports/websocket_session.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <list>

namespace sluice::transports {
namespace {

namespace websocket = beast::websocket;

struct Connection : std::enable_shared_from_this<Connection> {
  Connection(asio::ip::tcp::socket s, WebSocketParams p)
      : ws(std::move(s)), params(p), idle(ws.get_executor()) {}

  websocket::stream<beast::tcp_stream> ws;
  WebSocketParams params;
  std::deque<std::string> queue;
  bool writing = false;
  bool closing = false;
  std::size_t handlers = 0;
  std::list<asio::cancellation_signal> cancels;  // one per running handler
  asio::steady_timer idle;                       // wakes run() when handlers or writes finish

  bool send(std::string message) {
    if (closing) return false;
    if (queue.size() >= params.max_queued) {
      spdlog::warn("websocket: client is not reading ({} messages queued); disconnecting",
                   queue.size());
      close(websocket::close_code::policy_error);
      return false;
    }
    queue.push_back(std::move(message));
    if (!writing) write_next();
    return true;
  }

  void write_next() {
    writing = true;
    ws.text(true);
    ws.async_write(asio::buffer(queue.front()),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) {
                     self->queue.pop_front();
                     if (ec) {
                       self->queue.clear();
                       self->closing = true;
                     }
                     // The reader may be waiting for the queue to shrink.
                     if (self->queue.size() < self->params.max_queued / 2) self->idle.cancel();
                     if (!self->queue.empty()) {
                       self->write_next();
                       return;
                     }
                     self->writing = false;
                     self->idle.cancel();
                   });
  }

  void close(websocket::close_code code) {
    if (closing) return;
    closing = true;
    for (auto& c : cancels) c.emit(asio::cancellation_type::terminal);
    auto done = [self = shared_from_this()](beast::error_code) { self->idle.cancel(); };
    if (writing) {
      // A close frame cannot be sent while a write is in flight; closing the socket ends
      // both.
      beast::error_code ignored;
      beast::get_lowest_layer(ws).socket().close(ignored);
      return;
    }
    ws.async_close(code, std::move(done));
  }
};

}  // namespace

bool WebSocketSession::offers_mcp(const HttpRequest& request) {
  const std::string_view offered = request[http::field::sec_websocket_protocol];
  std::size_t pos = 0;
  while (pos <= offered.size()) {
    const std::size_t comma = offered.find(',', pos);
    std::string_view item =
        offered.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == "mcp") return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

asio::awaitable<void> WebSocketSession::refuse(asio::ip::tcp::socket socket,
                                               HttpResponse response) {
  beast::tcp_stream stream(std::move(socket));
  response.keep_alive(false);
  response.prepare_payload();
  co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> WebSocketSession::run(asio::ip::tcp::socket socket, HttpRequest request,
                                            WebSocketParams params, Handler handler,
                                            asio::cancellation_slot stop) {
  auto conn = std::make_shared<Connection>(std::move(socket), params);
  auto& ws = conn->ws;
  websocket::stream_base::timeout timeouts{params.handshake_timeout, params.idle_timeout, true};
  ws.set_option(timeouts);
  // The size limit is enforced below, not by Beast: when Beast fails a read itself, its TCP
  // teardown (Boost 1.81) reads one chunk of what the client is still sending and closes
  // the socket with the rest unread, so the kernel resets the connection and the client may
  // never see the 1009 close frame. Closing with async_close drains the message first.
  ws.read_message_max(0);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, "mcp");
    res.set(http::field::server, "sluice");
  }));
  auto [accept_error] = co_await ws.async_accept(request, asio::as_tuple(asio::use_awaitable));
  if (accept_error) co_return;
  request = {};  // its headers would otherwise live as long as the connection

  if (stop.is_connected()) {
    stop.assign([weak = std::weak_ptr<Connection>(conn)](asio::cancellation_type) {
      if (auto c = weak.lock()) c->close(websocket::close_code::policy_error);
    });
  }
  Send send = [conn](std::string m) { return conn->send(std::move(m)); };
  const auto executor = co_await asio::this_coro::executor;
  for (;;) {
    // Backpressure: while many requests run or many answers wait to be written, the socket
    // is not read, so a client that pipelines faster than it reads slows down instead of
    // being disconnected; the hard queue limit then only catches a client that stops reading.
    while (
        (conn->handlers >= params.max_in_flight || conn->queue.size() >= params.max_queued / 2) &&
        !conn->closing) {
      conn->idle.expires_at(asio::steady_timer::time_point::max());
      co_await conn->idle.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // Read straight into the string the handler gets: no copy, and nothing kept between
    // messages.
    std::string message;
    auto buffer = asio::dynamic_buffer(message);
    beast::error_code ec;
    bool too_big = false;
    do {
      // One byte past the limit tells an oversized message from one of exactly the limit.
      const std::size_t room = params.max_message_bytes + 1 - message.size();
      auto [read_error, n] =
          co_await ws.async_read_some(buffer, room, asio::as_tuple(asio::use_awaitable));
      ec = read_error;
      too_big = message.size() > params.max_message_bytes;
    } while (!ec && !too_big && !ws.is_message_done());
    if (too_big) {
      spdlog::info("websocket: message over {} bytes; closing with 1009", params.max_message_bytes);
      conn->close(websocket::close_code::too_big);
      break;
    }
    if (ec) break;
    if (!ws.got_text()) {
      conn->close(websocket::close_code::unknown_data);  // 1003: binary frames are not MCP
      break;
    }
    if (conn->closing) break;
    auto& cancel = conn->cancels.emplace_back();
    auto it = std::prev(conn->cancels.end());
    ++conn->handlers;
    asio::co_spawn(
        executor,
        [conn, handler, send, message = std::move(message), it]() mutable -> asio::awaitable<void> {
          try {
            co_await handler(std::move(message), send, it->slot());
          } catch (const std::exception& e) {
            spdlog::debug("websocket: request ended: {}", e.what());
          }
          conn->cancels.erase(it);
          --conn->handlers;
          conn->idle.cancel();
        },
        asio::detached);
    (void)cancel;
  }
  if (stop.is_connected()) stop.clear();
  // The client went away or broke the protocol: cancel what still runs for it, then wait.
  conn->close(websocket::close_code::normal);
  while (conn->handlers > 0 || conn->writing) {
    conn->idle.expires_at(asio::steady_timer::time_point::max());
    co_await conn->idle.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace sluice::transports
