#include "gateway/mcp_http_endpoint.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "gateway/json_writer.hpp"

namespace sluice::gateway {
namespace {

namespace http = transports::http;
using transports::HttpResponse;

HttpResponse json_response(const transports::HttpRequest& req, http::status status,
                           std::string body) {
  HttpResponse res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

HttpResponse error_response(const transports::HttpRequest& req, http::status status, int code,
                            std::string_view message) {
  std::string body =
      "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":" + std::to_string(code) +
      ",\"message\":";
  JsonWriter(body).string(message);  // messages quote client-sent headers
  body += "}}";
  return json_response(req, status, std::move(body));
}

std::optional<std::string> header(const transports::HttpRequest& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  return std::string(it->value());
}

// The MCP request headers in one pass over the request's few fields: Beast's find by name
// maps the name to a known field and searches its index on every call.
void read_mcp_headers(const transports::HttpRequest& req, MessageContext& ctx) {
  static constexpr std::pair<std::string_view, std::optional<std::string> MessageContext::*>
      kHeaders[] = {{"MCP-Protocol-Version", &MessageContext::protocol_version_header},
                    {"Mcp-Method", &MessageContext::method_header},
                    {"Mcp-Name", &MessageContext::name_header},
                    {"Mcp-Session-Id", &MessageContext::session_id},
                    {"traceparent", &MessageContext::traceparent}};
  for (const auto& field : req) {
    if (field.name() != http::field::unknown) continue;  // none of these is a known field
    const auto name = field.name_string();
    for (const auto& [wanted, member] : kHeaders) {
      if (name.size() != wanted.size() || !transports::beast::iequals(name, wanted)) continue;
      auto& slot = ctx.*member;
      if (!slot) slot.emplace(field.value().data(), field.value().size());  // the first wins
      break;
    }
  }
}

bool accepts(std::string_view accept, std::string_view type) {
  return accept.find(type) != std::string_view::npos ||
         accept.find("*/*") != std::string_view::npos;
}

// "http://localhost:6274" -> "localhost"; "[::1]:8080" -> "::1".
std::string_view host_part(std::string_view s) {
  if (auto scheme = s.find("://"); scheme != std::string_view::npos) s.remove_prefix(scheme + 3);
  if (auto slash = s.find('/'); slash != std::string_view::npos) s = s.substr(0, slash);
  if (s.starts_with('[')) {
    auto close = s.find(']');
    return close == std::string_view::npos ? s : s.substr(1, close - 1);
  }
  if (auto colon = s.rfind(':'); colon != std::string_view::npos) s = s.substr(0, colon);
  return s;
}

bool is_local_name(std::string_view host) {
  return host == "localhost" || host == "127.0.0.1" || host == "::1";
}

std::string sse_frame(std::string_view message) {
  std::string frame;
  frame.reserve(message.size() + 24);
  frame += "event: message\ndata: ";
  frame += message;
  frame += "\n\n";
  return frame;
}

}  // namespace

// Viewed in the request; the first of repeated fields counts, as with Beast's find.
struct McpHttpEndpoint::FrontHeaders {
  std::optional<std::string_view> origin;
  std::optional<std::string_view> host;
  std::optional<std::string_view> content_type;
  std::optional<std::string_view> accept;

  // One pass by field code: Beast's lookups by name or code search its field set per call.
  explicit FrontHeaders(const transports::HttpRequest& req) {
    for (const auto& field : req) {
      std::optional<std::string_view>* slot = nullptr;
      switch (field.name()) {
        case http::field::origin:
          slot = &origin;
          break;
        case http::field::host:
          slot = &host;
          break;
        case http::field::content_type:
          slot = &content_type;
          break;
        case http::field::accept:
          slot = &accept;
          break;
        default:
          continue;
      }
      if (!*slot) slot->emplace(field.value().data(), field.value().size());
    }
  }
};

McpHttpEndpoint::McpHttpEndpoint(McpEngine& engine, session::SessionTokens& sessions, Params params)
    : engine_(engine),
      sessions_(sessions),
      params_(std::move(params)),
      sse_(engine, params_.sse_keepalive) {}

bool McpHttpEndpoint::origin_allowed(std::string_view origin) const {
  if (std::find(params_.allowed_origins.begin(), params_.allowed_origins.end(), origin) !=
      params_.allowed_origins.end()) {
    return true;
  }
  return params_.allowed_origins.empty() && is_local_name(host_part(origin));
}

bool McpHttpEndpoint::host_allowed(std::string_view host) const {
  const std::string_view name = host_part(host);
  if (!params_.allowed_hosts.empty()) {
    return std::any_of(params_.allowed_hosts.begin(), params_.allowed_hosts.end(),
                       [&](const std::string& h) { return h == host || h == name; });
  }
  return !params_.loopback_only || is_local_name(name);
}

std::optional<HttpResponse> McpHttpEndpoint::refuse(const transports::HttpRequest& req,
                                                    const FrontHeaders& headers) const {
  // DNS rebinding defence: a browser page on another origin, or a request for another host
  // name resolved to this loopback listener, is refused whatever it asks for.
  if (headers.origin && !origin_allowed(*headers.origin)) {
    return error_response(
        req, http::status::forbidden, -32000,
        "Forbidden: Origin '" + std::string(*headers.origin) + "' is not allowed");
  }
  if (headers.host && !host_allowed(*headers.host)) {
    return error_response(req, http::status::forbidden, -32000,
                          "Forbidden: Host '" + std::string(*headers.host) + "' is not allowed");
  }
  return std::nullopt;
}

asio::awaitable<void> McpHttpEndpoint::upgrade(asio::ip::tcp::socket socket,
                                               transports::HttpRequest request,
                                               std::string remote) {
  // Not a coroutine itself: what only the refusal needs stays off the frame of the session.
  const std::string_view target(request.target().data(), request.target().size());
  std::optional<HttpResponse> refusal = refuse(request, FrontHeaders(request));
  if (!refusal && target.substr(0, target.find('?')) != params_.path) {
    refusal = error_response(request, http::status::not_found, -32000,
                             "Not found: the MCP endpoint is " + params_.path);
  }
  if (!refusal && !transports::WebSocketSession::offers_mcp(request)) {
    refusal = error_response(request, http::status::bad_request, -32000,
                             "Bad Request: a WebSocket upgrade must offer the subprotocol 'mcp' "
                             "(Sec-WebSocket-Protocol: mcp)");
  }
  if (refusal) {
    return transports::WebSocketSession::refuse(std::move(socket), std::move(*refusal));
  }
  return websocket_session(std::move(socket), std::move(request), std::move(remote));
}

asio::awaitable<void> McpHttpEndpoint::websocket_session(asio::ip::tcp::socket socket,
                                                         transports::HttpRequest request,
                                                         std::string remote) {
  // One legacy session per connection; ids are unique per connection for cancellation.
  auto state = std::make_shared<ConnectionState>();
  const std::string scope = "ws:" + std::to_string(next_connection_++);
  // The session manager may end the session (idle, or evicted by the client's newer ones).
  struct Stopper {
    asio::cancellation_signal signal;
    asio::any_io_executor executor;
  };
  auto stopper = std::make_shared<Stopper>();
  stopper->executor = co_await asio::this_coro::executor;
  state->close = [weak = std::weak_ptr<Stopper>(stopper)] {
    if (auto s = weak.lock()) {
      asio::post(s->executor, [s] { s->signal.emit(asio::cancellation_type::terminal); });
    }
  };
  auto handler = [this, state, scope, remote](
                     std::string message, transports::WebSocketSession::Send send,
                     asio::cancellation_slot gone) -> asio::awaitable<void> {
    MessageContext ctx;
    ctx.transport = Transport::websocket;
    ctx.remote = remote;
    ctx.connection = state.get();
    ctx.cancel_scope = scope;
    ctx.disconnect = gone;
    Notify notify = [send](std::string m) { send(std::move(m)); };
    Outcome out;
    try {
      out = co_await engine_.handle(message, ctx, notify);
    } catch (const pool::DbError&) {
      co_return;  // cancelled: no reply
    }
    if (!out.body.empty() && out.http_status != 202) send(std::move(out.body));
  };
  co_await transports::WebSocketSession::run(std::move(socket), std::move(request),
                                             params_.websocket, std::move(handler),
                                             stopper->signal.slot());
  engine_.session_ended(scope);
}

// Not a coroutine: it only picks the coroutine that answers, so a request pays for no frame
// here (g++ gives every branch's locals a slot of their own in a coroutine frame).
asio::awaitable<void> McpHttpEndpoint::operator()(transports::HttpExchange& exchange) {
  const auto& req = exchange.request();
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));

  if (path == "/healthz" && req.method() == http::verb::get) {
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok\n";
    return exchange.respond(std::move(res));
  }
  const FrontHeaders headers(req);
  if (auto refusal = refuse(req, headers)) return exchange.respond(std::move(*refusal));
  // Diagnostics for operators; behind the same Origin and Host checks as the MCP endpoint.
  if (path == "/status" && req.method() == http::verb::get && params_.status) {
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = params_.status();
    return exchange.respond(std::move(res));
  }
  if (path == "/sse" && req.method() == http::verb::get) return sse_.open(exchange, "/messages");
  if (path == "/messages" && req.method() == http::verb::post) {
    std::string_view query = target.substr(std::min(target.size(), path.size() + 1));
    std::string_view id;
    for (std::size_t pos = 0; pos < query.size();) {
      const std::size_t amp = std::min(query.find('&', pos), query.size());
      const std::string_view pair = query.substr(pos, amp - pos);
      if (pair.starts_with("sessionId=")) id = pair.substr(10);
      pos = amp + 1;
    }
    return sse_.post(exchange, id);  // `id` views the request, which the exchange keeps
  }
  if (path != params_.path) {
    return exchange.respond(error_response(req, http::status::not_found, -32000,
                                           "Not found: the MCP endpoint is " + params_.path));
  }
  switch (req.method()) {
    case http::verb::post:
      return post(exchange, headers);
    case http::verb::delete_:
      return exchange.respond(end_session(req));
    default: {
      // GET: this server sends nothing outside responses, so it offers no standalone stream.
      HttpResponse res = error_response(req, http::status::method_not_allowed, -32000,
                                        "Method Not Allowed: use POST (DELETE ends a session)");
      res.set(http::field::allow, "POST, DELETE");
      return exchange.respond(std::move(res));
    }
  }
}

transports::HttpResponse McpHttpEndpoint::end_session(const transports::HttpRequest& req) {
  auto session = header(req, "Mcp-Session-Id");
  if (!session) {
    return error_response(req, http::status::bad_request, -32000,
                          "Bad Request: Mcp-Session-Id header is required");
  }
  if (!sessions_.end(*session)) {
    return error_response(req, http::status::not_found, -32000, "Session not found");
  }
  engine_.session_ended(*session);
  return HttpResponse{http::status::ok, req.version()};
}

// Not a coroutine either: a refused POST is answered without entering handle_post.
asio::awaitable<void> McpHttpEndpoint::post(transports::HttpExchange& exchange,
                                            const FrontHeaders& headers) {
  const auto& req = exchange.request();
  const std::string_view content_type = headers.content_type.value_or(std::string_view());
  if (content_type.find("application/json") == std::string::npos) {
    return exchange.respond(
        error_response(req, http::status::unsupported_media_type, -32000,
                       "Unsupported Media Type: Content-Type must be application/json"));
  }
  const std::string_view accept = headers.accept.value_or(std::string_view());
  if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
    return exchange.respond(error_response(
        req, http::status::not_acceptable, -32000,
        "Not Acceptable: Accept must list both application/json and text/event-stream"));
  }
  return handle_post(exchange);
}

namespace {

// The answer to a POST, turned into an event stream by the first notification (progress)
// of its request: the head goes out once, frames queue behind it, and comments keep a long,
// quiet stream from being timed out by proxies and clients. Built only when a request
// notifies; most never do.
class EventStream {
 public:
  EventStream(transports::HttpExchange& exchange, std::chrono::milliseconds keepalive)
      : exchange_(exchange),
        keepalive_(keepalive),
        ready_(exchange.executor()),
        heartbeat_(exchange.executor()) {}

  bool started() const noexcept { return started_; }

  void notify(std::string_view message) {
    std::string frame = sse_frame(message);
    if (started_) {
      exchange_.post(std::move(frame));
      return;
    }
    pending_.push_back(std::move(frame));
    if (!starting_) {
      starting_ = true;
      asio::co_spawn(ready_.get_executor(), start(), asio::detached);
    }
  }

  // Stops the heartbeat and returns once no helper coroutine uses this object any more.
  asio::awaitable<void> finish() {
    finished_ = true;
    heartbeat_.cancel();
    while ((starting_ && !started_) || beating_) {
      ready_.expires_at(asio::steady_timer::time_point::max());
      co_await ready_.async_wait(asio::as_tuple(asio::use_awaitable));
      heartbeat_.cancel();
    }
  }

 private:
  asio::awaitable<void> start() {
    http::response<http::empty_body> head{http::status::ok, exchange_.request().version()};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.set("X-Accel-Buffering", "no");
    try {
      co_await exchange_.begin_stream(std::move(head));
      started_ = true;
    } catch (const std::exception&) {
      starting_ = false;  // the peer is gone; the handler sees peer_gone or a write error
    }
    for (auto& p : pending_) exchange_.post(std::move(p));
    pending_.clear();
    if (started_) asio::co_spawn(ready_.get_executor(), beat(), asio::detached);
    ready_.cancel();
  }

  asio::awaitable<void> beat() {
    beating_ = true;
    while (!finished_) {
      heartbeat_.expires_after(keepalive_);
      co_await heartbeat_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (finished_ || !exchange_.post(": keep-alive\n\n")) break;
    }
    beating_ = false;
    ready_.cancel();
  }

  transports::HttpExchange& exchange_;
  std::chrono::milliseconds keepalive_;
  bool starting_ = false;
  bool started_ = false;
  bool finished_ = false;
  bool beating_ = false;
  std::vector<std::string> pending_;
  asio::steady_timer ready_;      // wakes finish() when a helper changes state
  asio::steady_timer heartbeat_;  // paces keep-alive comments
};

// What the Notify of a POST reaches, through one pointer: a std::function keeps a capture
// that small without allocating.
struct PostState {
  transports::HttpExchange& exchange;
  std::chrono::milliseconds keepalive;
  std::unique_ptr<EventStream> stream;
};

HttpResponse final_response(const transports::HttpRequest& req, Outcome outcome) {
  if (outcome.http_status == 202) return HttpResponse{http::status::accepted, req.version()};
  HttpResponse res =
      json_response(req, static_cast<http::status>(outcome.http_status), std::move(outcome.body));
  if (outcome.session_id) res.set("Mcp-Session-Id", *outcome.session_id);
  if (outcome.retry_after)
    res.set(http::field::retry_after, std::to_string(outcome.retry_after->count()));
  return res;
}

// Not coroutines, and given references: the response or frame they build is a temporary of
// theirs, not a slot in handle_post's coroutine frame for the whole request.
asio::awaitable<void> respond_with(transports::HttpExchange& exchange, Outcome& outcome) {
  return exchange.respond(final_response(exchange.request(), std::move(outcome)));
}

asio::awaitable<void> send_event(transports::HttpExchange& exchange, const std::string& message) {
  return exchange.send(sse_frame(message));
}

}  // namespace

asio::awaitable<void> McpHttpEndpoint::handle_post(transports::HttpExchange& exchange) {
  const auto& req = exchange.request();
  MessageContext ctx;
  ctx.transport = Transport::http;
  ctx.remote = exchange.remote();
  read_mcp_headers(req, ctx);
  if (ctx.session_id) ctx.cancel_scope = *ctx.session_id;  // none: stateless
  ctx.cancellation = exchange.cancellation();              // bound to the coroutine running this
  // Armed only for a request that a closed stream cancels: the socket wait costs a system
  // call, and a legacy request goes on when its stream closes.
  ctx.watch_disconnect = [&exchange] {
    exchange.watch_disconnect();
    return exchange.disconnect_slot();
  };

  PostState state{exchange, params_.sse_keepalive, nullptr};
  Notify notify = [st = &state](std::string message) {
    if (!st->stream) st->stream = std::make_unique<EventStream>(st->exchange, st->keepalive);
    st->stream->notify(message);
  };

  Outcome outcome;
  bool cancelled = false;
  try {
    outcome = co_await engine_.handle(req.body(), ctx, std::move(notify));
  } catch (const pool::DbError& e) {
    if (e.kind() != pool::errc::cancelled) throw;
    cancelled = true;
  }
  if (state.stream) co_await state.stream->finish();
  if (exchange.peer_gone()) co_return;  // nobody to answer
  if (state.stream && state.stream->started()) {
    if (!cancelled && !outcome.body.empty()) co_await send_event(exchange, outcome.body);
    co_await exchange.end_stream();
    co_return;
  }
  if (cancelled) {
    outcome.body =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32800,\"message\":"
        "\"Request cancelled\"}}";
  }
  co_await respond_with(exchange, outcome);
}

}  // namespace sluice::gateway
