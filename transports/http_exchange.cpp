#include "transports/http_exchange.hpp"

#include <sys/socket.h>

#include <array>

namespace sluice::transports {

HttpExchange::HttpExchange(beast::tcp_stream& stream, HttpRequest request,
                           const std::string& remote, std::size_t max_queued_frames,
                           std::shared_ptr<RequestCancellation> cancellation)
    : stream_(stream),
      request_(std::move(request)),
      remote_(remote),
      max_queued_(max_queued_frames),
      keep_alive_(request_.keep_alive()),
      cancellation_(std::move(cancellation)) {}

HttpExchange::~HttpExchange() {
  if (alive_) *alive_ = false;
  if (watching_) {
    beast::error_code ec;
    stream_.socket().cancel(ec);
  }
}

asio::awaitable<void> HttpExchange::respond(HttpResponse response) {
  responded_ = true;
  response.keep_alive(keep_alive_ && response.keep_alive());
  keep_alive_ = response.keep_alive();
  response.prepare_payload();
  // The head is written out here and sent with the body in one gather write: Beast's
  // serializer walks its buffer sequences through several layers of views per byte range,
  // which cost more than the rest of the HTTP work on a small answer. The connection has no
  // deadline while a handler runs (see serve), so the bare socket is written directly.
  std::string head;
  head.reserve(256);
  head += response.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  head += std::to_string(response.result_int());
  head += ' ';
  const auto reason = response.reason();
  head.append(reason.data(), reason.size());
  head += "\r\n";
  for (const auto& field : response) {
    const auto name = field.name_string();
    const auto value = field.value();
    head.append(name.data(), name.size());
    head += ": ";
    head.append(value.data(), value.size());
    head += "\r\n";
  }
  head += "\r\n";
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head),
                                                  asio::buffer(response.body())};
  co_await asio::async_write(stream_.socket(), buffers, asio::use_awaitable);
}

asio::awaitable<void> HttpExchange::begin_stream(http::response<http::empty_body> head) {
  responded_ = true;
  streaming_ = true;
  head.keep_alive(keep_alive_);
  head.chunked(true);
  http::response_serializer<http::empty_body> sr(head);
  co_await http::async_write_header(stream_, sr, asio::use_awaitable);
}

HttpExchange::Frames& HttpExchange::frames() {
  if (!frames_) frames_ = std::make_unique<Frames>(stream_.get_executor());
  return *frames_;
}

const std::shared_ptr<bool>& HttpExchange::alive() {
  if (!alive_) alive_ = std::make_shared<bool>(true);
  return alive_;
}

bool HttpExchange::post(std::string frame) {
  if (!streaming_ || peer_gone_) return false;
  auto& f = frames();
  if (f.write_error || f.queue.size() >= max_queued_) return false;
  enqueue(f, std::move(frame));
  return true;
}

void HttpExchange::enqueue(Frames& f, std::string frame) {
  f.queue.push_back(std::move(frame));
  if (!f.writing) write_next();
}

void HttpExchange::write_next() {
  auto& f = *frames_;
  f.writing = true;
  const std::string& frame = f.queue.front();
  auto done = [this, alive = alive()](beast::error_code ec, std::size_t) {
    if (!*alive) return;
    auto& state = *frames_;
    state.queue.pop_front();
    if (ec) {
      state.write_error = ec;
      state.queue.clear();
    }
    if (!state.queue.empty()) {
      write_next();
      return;
    }
    state.writing = false;
    state.idle.cancel();
  };
  if (frame.empty()) {  // the terminating chunk
    asio::async_write(stream_, http::make_chunk_last(), std::move(done));
  } else {
    asio::async_write(stream_, http::make_chunk(asio::buffer(frame)), std::move(done));
  }
}

asio::awaitable<void> HttpExchange::drain() {
  auto& f = frames();
  while (f.writing) {
    f.idle.expires_at(asio::steady_timer::time_point::max());
    co_await f.idle.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (f.write_error) throw beast::system_error(f.write_error);
}

asio::awaitable<void> HttpExchange::send(std::string frame) {
  auto& f = frames();
  if (f.write_error) throw beast::system_error(f.write_error);
  enqueue(f, std::move(frame));
  co_await drain();
}

asio::awaitable<void> HttpExchange::end_stream() {
  auto& f = frames();
  if (!f.write_error) enqueue(f, {});  // an empty frame is the final chunk
  co_await drain();
}

void HttpExchange::watch_disconnect() {
  if (watching_) return;
  watching_ = true;
  stream_.socket().async_wait(
      asio::ip::tcp::socket::wait_read, [this, alive = alive()](beast::error_code ec) {
        if (ec || !*alive) return;
        char byte;
        const auto n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
          peer_gone_ = true;
          keep_alive_ = false;
          disconnect_.emit(asio::cancellation_type::terminal);
        }
        // Data instead: a pipelined request. It stays in the socket for the next read.
      });
}

}  // namespace sluice::transports
