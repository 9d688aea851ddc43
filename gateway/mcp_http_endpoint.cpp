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

std::optional<HttpResponse> McpHttpEndpoint::refuse(const transports::HttpRequest& req) const {
  // DNS rebinding defence: a browser page on another origin, or a request for another host
  // name resolved to this loopback listener, is refused whatever it asks for.
  if (auto origin = header(req, "Origin"); origin && !origin_allowed(*origin)) {
    return error_response(req, http::status::forbidden, -32000,
                          "Forbidden: Origin '" + *origin + "' is not allowed");
  }
  if (auto host = header(req, "Host"); host && !host_allowed(*host)) {
    return error_response(req, http::status::forbidden, -32000,
                          "Forbidden: Host '" + *host + "' is not allowed");
  }
  return std::nullopt;
}

asio::awaitable<void> McpHttpEndpoint::upgrade(asio::ip::tcp::socket socket,
                                               transports::HttpRequest request,
                                               std::string remote) {
  // Not a coroutine itself: what only the refusal needs stays off the frame of the session.
  const std::string_view target(request.target().data(), request.target().size());
  std::optional<HttpResponse> refusal = refuse(request);
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

asio::awaitable<void> McpHttpEndpoint::operator()(transports::HttpExchange& exchange) {
  const auto& req = exchange.request();
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));

  if (path == "/healthz" && req.method() == http::verb::get) {
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok\n";
    co_await exchange.respond(std::move(res));
    co_return;
  }
  if (auto refusal = refuse(req)) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  // Diagnostics for operators; behind the same Origin and Host checks as the MCP endpoint.
  if (path == "/status" && req.method() == http::verb::get && params_.status) {
    HttpResponse res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = params_.status();
    co_await exchange.respond(std::move(res));
    co_return;
  }
  if (path == "/sse" && req.method() == http::verb::get) {
    co_await sse_.open(exchange, "/messages");
    co_return;
  }
  if (path == "/messages" && req.method() == http::verb::post) {
    std::string_view query = target.substr(std::min(target.size(), path.size() + 1));
    std::string_view id;
    for (std::size_t pos = 0; pos < query.size();) {
      const std::size_t amp = std::min(query.find('&', pos), query.size());
      const std::string_view pair = query.substr(pos, amp - pos);
      if (pair.starts_with("sessionId=")) id = pair.substr(10);
      pos = amp + 1;
    }
    co_await sse_.post(exchange, id);
    co_return;
  }
  if (path != params_.path) {
    {
      HttpResponse res = error_response(req, http::status::not_found, -32000,
                                        "Not found: the MCP endpoint is " + params_.path);
      co_await exchange.respond(std::move(res));
      co_return;
    }
  }
  switch (req.method()) {
    case http::verb::post:
      co_await post(exchange);
      co_return;
    case http::verb::delete_: {
      auto session = header(req, "Mcp-Session-Id");
      if (!session) {
        {
          HttpResponse res = error_response(req, http::status::bad_request, -32000,
                                            "Bad Request: Mcp-Session-Id header is required");
          co_await exchange.respond(std::move(res));
          co_return;
        }
      }
      if (!sessions_.end(*session)) {
        HttpResponse res =
            error_response(req, http::status::not_found, -32000, "Session not found");
        co_await exchange.respond(std::move(res));
        co_return;
      }
      engine_.session_ended(*session);
      HttpResponse res{http::status::ok, req.version()};
      co_await exchange.respond(std::move(res));
      co_return;
    }
    default: {
      // GET: this server sends nothing outside responses, so it offers no standalone stream.
      HttpResponse res = error_response(req, http::status::method_not_allowed, -32000,
                                        "Method Not Allowed: use POST (DELETE ends a session)");
      res.set(http::field::allow, "POST, DELETE");
      co_await exchange.respond(std::move(res));
      co_return;
    }
  }
}

asio::awaitable<void> McpHttpEndpoint::post(transports::HttpExchange& exchange) {
  const auto& req = exchange.request();
  const auto content_type_field = req[http::field::content_type];
  const std::string_view content_type(content_type_field.data(), content_type_field.size());
  if (content_type.find("application/json") == std::string::npos) {
    {
      HttpResponse res =
          error_response(req, http::status::unsupported_media_type, -32000,
                         "Unsupported Media Type: Content-Type must be application/json");
      co_await exchange.respond(std::move(res));
      co_return;
    }
  }
  const auto accept_field = req[http::field::accept];
  const std::string_view accept(accept_field.data(), accept_field.size());
  if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
    {
      HttpResponse res = error_response(
          req, http::status::not_acceptable, -32000,
          "Not Acceptable: Accept must list both application/json and text/event-stream");
      co_await exchange.respond(std::move(res));
      co_return;
    }
  }

  MessageContext ctx;
  ctx.transport = Transport::http;
  ctx.remote = exchange.remote();
  ctx.protocol_version_header = header(req, "MCP-Protocol-Version");
  ctx.method_header = header(req, "Mcp-Method");
  ctx.name_header = header(req, "Mcp-Name");
  ctx.session_id = header(req, "Mcp-Session-Id");
  ctx.traceparent = header(req, "traceparent");
  ctx.cancel_scope = ctx.session_id.value_or("http");
  exchange.watch_disconnect();
  ctx.disconnect = exchange.disconnect_slot();

  // Notifications for this request switch the response to an event stream on first use.
  struct Stream {
    bool starting = false;
    bool started = false;
    bool finished = false;
    bool beating = false;
    std::vector<std::string> pending;
    asio::steady_timer ready;      // wakes this coroutine when a helper changes state
    asio::steady_timer heartbeat;  // paces keep-alive comments
  };
  // Built from a named executor: an aggregate initialised inside a co_await expression is
  // copied bitwise by g++ 12.
  const auto executor = co_await asio::this_coro::executor;
  Stream stream{
      false, false, false, false, {}, asio::steady_timer(executor), asio::steady_timer(executor)};
  // Comments keep proxies and clients from timing out a long, quiet stream.
  auto beat = [this, &exchange, &stream]() -> asio::awaitable<void> {
    stream.beating = true;
    while (!stream.finished) {
      stream.heartbeat.expires_after(params_.sse_keepalive);
      co_await stream.heartbeat.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stream.finished || !exchange.post(": keep-alive\n\n")) break;
    }
    stream.beating = false;
    stream.ready.cancel();
  };
  auto start = [&exchange, &stream, &req, &beat]() -> asio::awaitable<void> {
    http::response<http::empty_body> head{http::status::ok, req.version()};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.set("X-Accel-Buffering", "no");
    try {
      co_await exchange.begin_stream(std::move(head));
      stream.started = true;
    } catch (const std::exception&) {
      stream.starting = false;  // the peer is gone; the handler sees peer_gone or a write error
    }
    for (auto& p : stream.pending) exchange.post(std::move(p));
    stream.pending.clear();
    if (stream.started) asio::co_spawn(stream.ready.get_executor(), beat(), asio::detached);
    stream.ready.cancel();
  };
  Notify notify = [&](std::string message) {
    std::string frame = sse_frame(message);
    if (stream.started) {
      exchange.post(std::move(frame));
      return;
    }
    stream.pending.push_back(std::move(frame));
    if (!stream.starting) {
      stream.starting = true;
      asio::co_spawn(stream.ready.get_executor(), start(), asio::detached);
    }
  };

  Outcome outcome;
  bool cancelled = false;
  try {
    outcome = co_await engine_.handle(req.body(), ctx, notify);
  } catch (const pool::DbError& e) {
    if (e.kind() != pool::errc::cancelled) throw;
    cancelled = true;
  }
  stream.finished = true;
  stream.heartbeat.cancel();
  while ((stream.starting && !stream.started) || stream.beating) {
    stream.ready.expires_at(asio::steady_timer::time_point::max());
    co_await stream.ready.async_wait(asio::as_tuple(asio::use_awaitable));
    stream.heartbeat.cancel();
  }
  if (exchange.peer_gone()) co_return;  // nobody to answer
  if (stream.started) {
    if (!cancelled && !outcome.body.empty()) co_await exchange.send(sse_frame(outcome.body));
    co_await exchange.end_stream();
    co_return;
  }
  if (cancelled) {
    outcome.body =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32800,\"message\":"
        "\"Request cancelled\"}}";
  }
  if (outcome.http_status == 202) {
    HttpResponse res{http::status::accepted, req.version()};
    co_await exchange.respond(std::move(res));
    co_return;
  }
  HttpResponse res =
      json_response(req, static_cast<http::status>(outcome.http_status), std::move(outcome.body));
  if (outcome.session_id) res.set("Mcp-Session-Id", *outcome.session_id);
  if (outcome.retry_after)
    res.set(http::field::retry_after, std::to_string(outcome.retry_after->count()));
  co_await exchange.respond(std::move(res));
}

}  // namespace sluice::gateway
