#include "gateway/legacy_sse_sessions.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <array>
#include <list>

namespace sluice::gateway {
namespace {

namespace http = transports::http;

std::string random_id() {
  std::array<unsigned char, 16> bytes{};
  RAND_bytes(bytes.data(), static_cast<int>(bytes.size()));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

transports::HttpResponse plain(const transports::HttpRequest& req, http::status status,
                               std::string body) {
  transports::HttpResponse res{status, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  return res;
}

}  // namespace

// Touched only on the stream's strand, except `executor`, which is immutable.
struct LegacySseSessions::Session {
  asio::any_io_executor executor;
  transports::HttpExchange* stream = nullptr;  // null once the stream has closed
  ConnectionState state;
  std::string scope;
  std::list<asio::cancellation_signal> running;
  bool ended = false;                    // the session manager ended it
  asio::steady_timer* pacing = nullptr;  // the keep-alive timer, while the stream is open
};

LegacySseSessions::LegacySseSessions(McpEngine& engine, std::chrono::milliseconds keepalive)
    : engine_(engine), keepalive_(keepalive) {}

asio::awaitable<void> LegacySseSessions::open(transports::HttpExchange& exchange,
                                              std::string messages_path) {
  const auto& req = exchange.request();
  auto session = std::make_shared<Session>();
  session->executor = co_await asio::this_coro::executor;
  session->stream = &exchange;
  session->scope = "sse:" + std::to_string(next_++);
  session->state.close = [weak = std::weak_ptr<Session>(session)] {
    if (auto s = weak.lock()) {
      asio::post(s->executor, [s] {
        s->ended = true;
        if (s->pacing != nullptr) s->pacing->cancel();
      });
    }
  };
  const std::string id = random_id();
  {
    std::lock_guard lock(mutex_);
    sessions_.emplace(id, session);
  }
  struct Forget {
    LegacySseSessions& self;
    const std::string& id;
    std::shared_ptr<Session>& session;
    ~Forget() {
      session->stream = nullptr;
      session->pacing = nullptr;
      self.engine_.session_ended(session->scope);
      for (auto& s : session->running) s.emit(asio::cancellation_type::terminal);
      std::lock_guard lock(self.mutex_);
      self.sessions_.erase(id);
    }
  } forget{*this, id, session};

  http::response<http::empty_body> head{http::status::ok, req.version()};
  head.set(http::field::content_type, "text/event-stream");
  head.set(http::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");
  co_await exchange.begin_stream(std::move(head));
  exchange.watch_disconnect();
  co_await exchange.send("event: endpoint\ndata: " + messages_path + "?sessionId=" + id + "\n\n");
  asio::steady_timer timer(session->executor);
  session->pacing = &timer;
  while (!exchange.peer_gone() && !session->ended) {
    timer.expires_after(keepalive_);
    co_await timer.async_wait(asio::bind_cancellation_slot(exchange.disconnect_slot(),
                                                           asio::as_tuple(asio::use_awaitable)));
    if (exchange.peer_gone() || session->ended || !exchange.post(": keep-alive\n\n")) break;
  }
}

asio::awaitable<void> LegacySseSessions::post(transports::HttpExchange& exchange,
                                              std::string_view session_id) {
  const auto& req = exchange.request();
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(std::string(session_id));
    if (it != sessions_.end()) session = it->second;
  }
  if (!session) {
    auto res = plain(req, http::status::not_found,
                     "Session not found: open a stream with GET /sse first\n");
    co_await exchange.respond(std::move(res));
    co_return;
  }
  std::string body = req.body();
  auto accepted = plain(req, http::status::accepted, "Accepted");
  co_await exchange.respond(std::move(accepted));
  // The message is handled on the stream's strand, where its answer is written.
  auto work = handle(session, std::move(body));
  asio::co_spawn(session->executor, std::move(work), asio::detached);
}

asio::awaitable<void> LegacySseSessions::handle(std::shared_ptr<Session> s, std::string message) {
  if (s->stream == nullptr) co_return;
  auto& signal = s->running.emplace_back();
  auto it = std::prev(s->running.end());
  MessageContext ctx;
  ctx.transport = Transport::sse;
  ctx.remote = s->stream->remote();
  ctx.connection = &s->state;
  ctx.cancel_scope = s->scope;
  ctx.disconnect = signal.slot();
  Notify notify = [s](std::string m) {
    if (s->stream != nullptr) s->stream->post("event: message\ndata: " + m + "\n\n");
  };
  Outcome out;
  try {
    out = co_await engine_.handle(message, ctx, notify);
  } catch (const std::exception& e) {
    spdlog::debug("sse: request ended: {}", e.what());
  }
  s->running.erase(it);
  if (s->stream != nullptr && !out.body.empty() && out.http_status != 202) {
    s->stream->post("event: message\ndata: " + out.body + "\n\n");
  }
}

}  // namespace sluice::gateway
