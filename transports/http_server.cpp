#include "transports/http_server.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/websocket.hpp>

#include <array>
#include <atomic>
#include <list>
#include <mutex>
#include <utility>

namespace sluice::transports {

using tcp = asio::ip::tcp;

struct HttpServer::State : std::enable_shared_from_this<State> {
  State(asio::io_context& context, HttpServerParams p, HttpHandler h, UpgradeHandler u,
        std::vector<asio::io_context*> w)
      : io(context),
        workers(std::move(w)),
        seated(workers.size()),
        executor(context.get_executor()),
        acceptor(context),
        params(std::move(p)),
        handler(std::move(h)),
        upgrade(std::move(u)) {}

  // Connections run on strands of the io_context's own executor type: that strand fits in
  // any_io_executor's small buffer, while a strand around any_io_executor is heap-allocated
  // and reference-counted on every executor copy.
  asio::io_context& io;
  std::vector<asio::io_context*> workers;  // empty: strands of io
  // Connections (HTTP and WebSocket) each worker serves now; a new one goes to the worker
  // with fewest, the first on a tie. In the gateway the first context also holds the pools'
  // and multiplexers' timers: a lone client served there wakes no second thread.
  std::vector<std::atomic<std::size_t>> seated;
  asio::any_io_executor executor;
  tcp::acceptor acceptor;
  HttpServerParams params;
  HttpHandler handler;
  UpgradeHandler upgrade;
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::list<beast::tcp_stream*> connections;  // to close idle ones on stop()
};

namespace {

// Beast reads at most a buffer's free capacity per call (512 bytes for a fresh one), and the
// parser moves body bytes out of the buffer as they come, so the buffer never grows: a 900 kB
// body took 1,761 reads. Before reading a large body the buffer gets room for this much of it,
// and gives it back afterwards, so an idle keep-alive connection stays small.
constexpr std::size_t kBodyReadBytes = 64 * 1024;

HttpResponse plain_error(const HttpRequest& req, http::status status, std::string_view code,
                         std::string_view message) {
  HttpResponse res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":" + std::string(code) +
               ",\"message\":\"" + std::string(message) + "\"}}";
  res.keep_alive(false);
  return res;
}

// The client may still be sending a body we refused. Closing now would reset the
// connection and could destroy the answer in flight, so stop sending and drain for a moment
// first. A coroutine of its own: a local buffer in serve() would sit in the frame of every
// connection, idle or not.
asio::awaitable<void> linger(beast::tcp_stream& stream, std::size_t limit) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(2));
  std::array<char, 16 * 1024> sink;
  for (std::size_t drained = 0; drained < limit;) {
    auto [ec, got] =
        co_await stream.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    drained += got;
  }
}

// A connection's place in its worker's count, given up when the connection ends. Keeps the
// server's state (where the count lives) alive as long.
class Seat {
 public:
  Seat() = default;
  Seat(std::shared_ptr<HttpServer::State> state, std::size_t worker)
      : state_(std::move(state)), count_(&state_->seated[worker]) {
    count_->fetch_add(1);
  }
  Seat(Seat&& o) noexcept : state_(std::move(o.state_)), count_(std::exchange(o.count_, nullptr)) {}
  Seat& operator=(Seat&&) = delete;
  ~Seat() {
    if (count_ != nullptr) count_->fetch_sub(1);
  }

 private:
  std::shared_ptr<HttpServer::State> state_;
  std::atomic<std::size_t>* count_ = nullptr;
};

// Keeps a WebSocket's seat for as long as the session runs.
asio::awaitable<void> seated(asio::awaitable<void> session, Seat) {
  co_await std::move(session);
}

asio::awaitable<void> serve(std::shared_ptr<HttpServer::State> state, tcp::socket socket, Seat seat,
                            std::shared_ptr<RequestCancellation> cancellation) {
  beast::tcp_stream stream(std::move(socket));
  std::string remote;
  {
    beast::error_code ec;
    const auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  std::list<beast::tcp_stream*>::iterator registered;
  {
    std::lock_guard lock(state->mutex);
    registered = state->connections.insert(state->connections.end(), &stream);
  }
  struct Unregister {
    HttpServer::State& s;
    std::list<beast::tcp_stream*>::iterator it;
    ~Unregister() {
      std::lock_guard lock(s.mutex);
      s.connections.erase(it);
    }
  } unregister{*state, registered};

  const auto& params = state->params;
  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(params.max_header_bytes));
    parser.body_limit(params.max_body_bytes);
    stream.expires_after(first ? params.header_timeout : params.idle_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser,
                                                    asio::as_tuple(asio::use_awaitable));
    // A Content-Length over the limit fails while the header is read; a chunked body over
    // it fails while the body is read. Both get a 413.
    if (!ec) {
      // A small body usually came with the header: parse it from the buffer, and read (with
      // a timer and a composed operation of its own) only what is still missing.
      parser.eager(true);
      while (!parser.is_done() && buffer.size() > 0) {
        const auto used = parser.put(buffer.data(), ec);
        buffer.consume(used);
        if (ec == http::error::need_more) ec = {};
        if (ec || used == 0) break;
      }
    }
    if (!ec && !parser.is_done()) {
      stream.expires_after(params.body_timeout);
      const std::uint64_t missing = parser.content_length_remaining().value_or(kBodyReadBytes);
      if (missing > buffer.capacity() - buffer.size()) {
        buffer.reserve(buffer.size() +
                       static_cast<std::size_t>(std::min<std::uint64_t>(missing, kBodyReadBytes)));
      }
      std::tie(ec, n) =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (buffer.capacity() > kBodyReadBytes / 4) buffer.shrink_to_fit();
    }
    if (ec == http::error::body_limit) {
      auto res = plain_error(
          parser.get(), http::status::payload_too_large, "-32600",
          "request body exceeds the " + std::to_string(params.max_body_bytes) + "-byte limit");
      co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      co_await linger(stream, 64 * params.max_body_bytes);
      break;
    }
    if (ec) break;  // closed, idle too long, or garbage: nothing to answer
    stream.expires_never();
    if (state->upgrade && beast::websocket::is_upgrade(parser.get())) {
      // Hand over the bare socket and end this coroutine: a long-lived connection then
      // keeps neither this frame nor a second stream state alive.
      HttpRequest request = parser.release();
      auto takeover = state->upgrade(stream.release_socket(), std::move(request), remote);
      const auto executor = co_await asio::this_coro::executor;
      asio::co_spawn(executor, seated(std::move(takeover), std::move(seat)), asio::detached);
      co_return;
    }
    HttpExchange exchange(stream, parser.release(), remote, params.max_queued_frames, cancellation);
    try {
      co_await state->handler(exchange);
    } catch (const std::exception& e) {
      spdlog::debug("http {}: request ended: {}", remote, e.what());
      break;
    }
    if (!exchange.keep_alive() || state->stopping) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

// Starts serving an accepted connection on its socket's executor; false when accepting failed.
template <typename Socket>
bool start_serving(const std::shared_ptr<HttpServer::State>& state, beast::error_code ec,
                   Socket socket, Seat seat = {}) {
  if (ec) {
    if (state->stopping || ec == asio::error::operation_aborted) return false;
    spdlog::warn("http: accept failed: {}", ec.message());
    return true;
  }
  socket.set_option(tcp::no_delay(true), ec);
  auto ex = socket.get_executor();
  // The connection's coroutine gets a cancellation slot of its own, through which a request
  // it runs is cancelled (see RequestCancellation). The signal must outlive the coroutine,
  // whose end still touches the slot after this handler: its last owner goes in a later one.
  auto cancellation = std::make_shared<RequestCancellation>();
  const auto slot = cancellation->signal.slot();
  asio::co_spawn(ex, serve(state, tcp::socket(std::move(socket)), std::move(seat), cancellation),
                 asio::bind_cancellation_slot(
                     slot, [ex, keep = cancellation](const std::exception_ptr&) mutable {
                       asio::post(ex, [last = std::move(keep)] {});
                     }));
  return true;
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::State> state) {
  for (bool more = true; more;) {
    if (state->workers.empty()) {
      auto [ec, socket] = co_await state->acceptor.async_accept(
          asio::make_strand(state->io), asio::as_tuple(asio::use_awaitable));
      more = start_serving(state, ec, std::move(socket));
      continue;
    }
    // Accepted on the listening context, then handed to the least busy worker with its file
    // descriptor alone: a pending accept holds no object of a worker's context.
    auto [ec, accepted] =
        co_await state->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      more = start_serving(state, ec, std::move(accepted));
      continue;
    }
    std::size_t w = 0;
    for (std::size_t i = 1; i < state->workers.size(); ++i) {
      if (state->seated[i].load() < state->seated[w].load()) w = i;
    }
    auto socket = move_socket(accepted, state->workers[w]->get_executor(), ec);
    more = start_serving(state, ec, std::move(socket), Seat(state, w));
  }
}

}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpServerParams params, HttpHandler handler,
                       UpgradeHandler upgrade, std::vector<asio::io_context*> workers)
    : state_(std::make_shared<State>(io, std::move(params), std::move(handler), std::move(upgrade),
                                     std::move(workers))) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  auto& p = state_->params;
  beast::error_code ec;
  const auto address = asio::ip::make_address(p.host, ec);
  if (ec) {
    throw std::system_error(ec, "cannot listen on '" + p.host + "': not an IP address");
  }
  const tcp::endpoint endpoint(address, p.port);
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint, ec);
  if (ec) {
    throw std::system_error(ec, "cannot listen on " + p.host + ":" + std::to_string(p.port));
  }
  acceptor.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor.local_endpoint().port();
  asio::co_spawn(state_->executor, accept_loop(state_), asio::detached);
}

void HttpServer::stop() {
  if (state_->stopping.exchange(true)) return;
  asio::post(state_->executor, [state = state_] {
    beast::error_code ec;
    state->acceptor.close(ec);
  });
}

}  // namespace sluice::transports
