#include "load/src/http_mcp_client.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sluice::load {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using Clock = McpClient::Clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// An HTTP/1.1 server on loopback answering each request with what the test's handler says;
// nullopt means no answer at all (the client must time out).
class FakeServer {
 public:
  using Handler = std::function<std::optional<Response>(const Request&)>;

  FakeServer(asio::io_context& io, Handler handler)
      : acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}), handler_(std::move(handler)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void stop() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto* s : streams_) s->socket().close(ignored);
  }

  std::vector<Request> requests;
  int connections = 0;
  // Close each connection after its response although the response says keep-alive, as a
  // server does with connections it considers idle.
  bool drop_connections = false;

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(nothrow);
      if (ec) co_return;
      ++connections;
      asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    streams_.push_back(&stream);
    // Also when a handler throws: stop() must not reach a stream that is gone.
    struct Forget {
      std::vector<beast::tcp_stream*>& list;
      beast::tcp_stream* item;
      ~Forget() { std::erase(list, item); }
    } forget{streams_, &stream};
    beast::flat_buffer buffer;
    for (;;) {
      Request request;
      auto [ec, n] = co_await http::async_read(stream, buffer, request, nothrow);
      if (ec) break;
      requests.push_back(request);
      std::optional<Response> response = handler_(request);
      if (!response) continue;
      response->prepare_payload();
      const bool keep_alive = response->keep_alive();
      auto [wec, wn] = co_await http::async_write(stream, *response, nothrow);
      if (wec || !keep_alive || drop_connections) break;
    }
  }

  asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
  std::vector<beast::tcp_stream*> streams_;
};

Response reply(http::status status, std::string content_type, std::string body) {
  Response r{status, 11};
  r.set(http::field::content_type, content_type);
  r.body() = std::move(body);
  r.keep_alive(true);
  return r;
}

// The request's JSON body; {} for none (DELETE) or junk.
nlohmann::json body_of(const Request& r) {
  auto body = nlohmann::json::parse(r.body(), nullptr, false);
  return body.is_object() ? body : nlohmann::json::object();
}

std::string result_for(const Request& r, std::string_view result_json) {
  return R"({"jsonrpc":"2.0","id":)" + body_of(r)["id"].dump() + R"(,"result":)" +
         std::string(result_json) + "}";
}

struct Recorded {
  ErrorKind kind;
  std::int64_t code;
  std::string detail;
};

class HttpMcpClientTest : public ::testing::Test {
 protected:
  // Runs `calls` tool calls of `query` against a server answering with `handler`.
  std::vector<Recorded> run(Era era, FakeServer::Handler handler, int calls,
                            std::chrono::milliseconds timeout = 2000ms, bool drop = false) {
    FakeServer server(io_, std::move(handler));
    server.drop_connections = drop;
    ClientParams params;
    params.url = TargetUrl::parse("http://127.0.0.1:" + std::to_string(server.port()) + "/mcp");
    params.transport = era == Era::modern ? Transport::http_modern : Transport::http_legacy;
    params.era = era;
    params.protocol_version = std::string(era == Era::modern ? kModernVersion : kLegacyVersion);
    params.endpoints = asio::ip::tcp::resolver(io_).resolve("127.0.0.1", params.url.port);
    const ClientIdentity identity{"sluice-load-3", "1.0"};
    const Scenario scenario =
        Scenario::parse("calls: [{tool: query, arguments: {sql: SELECT 1}}]", "t.yaml");
    const auto prepared = prepare_calls(scenario, era, params.protocol_version, identity);
    HttpMcpClient client(io_.get_executor(), params, identity);
    std::vector<Recorded> out;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < calls; ++i) {
            const CallOutcome o = co_await client.call(prepared[0], Clock::now() + timeout);
            out.push_back({o.kind, o.code, std::string(o.detail)});
          }
          co_await client.close(Clock::now() + 1s);
          server.stop();
        },
        asio::detached);
    io_.run_for(10s);
    requests_ = server.requests;
    connections_ = server.connections;
    return out;
  }

  asio::io_context io_;
  std::vector<Request> requests_;
  int connections_ = 0;
};

TEST_F(HttpMcpClientTest, ModernRequestsCarryMetaAndHeadersOnOneConnection) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        return reply(http::status::ok, "application/json",
                     result_for(r, R"({"content":[{"type":"text","text":"1"}],"isError":false})"));
      },
      3);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.kind, ErrorKind::none) << o.detail;
  EXPECT_EQ(connections_, 1);
  ASSERT_EQ(requests_.size(), 3u);
  const Request& r = requests_[0];
  EXPECT_EQ(r.method(), http::verb::post);
  EXPECT_EQ(r.target(), "/mcp");
  EXPECT_EQ(r["MCP-Protocol-Version"], "2026-07-28");
  EXPECT_EQ(r["Mcp-Method"], "tools/call");
  EXPECT_EQ(r["Mcp-Name"], "query");
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_NE(r[http::field::accept].find("text/event-stream"), beast::string_view::npos);
  const auto body = body_of(r);
  EXPECT_EQ(body["method"], "tools/call");
  EXPECT_EQ(body["params"]["arguments"]["sql"], "SELECT 1");
  const auto& meta = body["params"]["_meta"];
  EXPECT_EQ(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
  EXPECT_EQ(meta["io.modelcontextprotocol/clientInfo"]["name"], "sluice-load-3");
  EXPECT_TRUE(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
  EXPECT_NE(body_of(requests_[1])["id"], body["id"]);
}

TEST_F(HttpMcpClientTest, EventStreamsAreReadUntilTheResponse) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        const std::string progress =
            R"({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}})";
        const std::string result = result_for(
            r, R"({"isError":true,"content":[{"type":"text","text":"no such table: t"}]})");
        return reply(http::status::ok, "text/event-stream",
                     ": keep-alive\n\nevent: message\ndata: " + progress +
                         "\n\nevent: message\ndata: " + result + "\n\n");
      },
      2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, ErrorKind::tool);
  EXPECT_EQ(out[0].detail, "no such table: t");
  EXPECT_EQ(connections_, 1);  // the stream ended, the connection is reused
}

TEST_F(HttpMcpClientTest, HttpErrorsAreCountedByStatusWithTheMessage) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        return reply(http::status::too_many_requests, "application/json",
                     R"({"jsonrpc":"2.0","id":)" + body_of(r)["id"].dump() +
                         R"(,"error":{"code":-32029,"message":"rate limited"}})");
      },
      1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, ErrorKind::http);
  EXPECT_EQ(out[0].code, 429);
  EXPECT_EQ(out[0].detail, "rate limited");
}

TEST_F(HttpMcpClientTest, JsonRpcErrorsAreCountedByCode) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        return reply(http::status::ok, "application/json",
                     R"({"jsonrpc":"2.0","id":)" + body_of(r)["id"].dump() +
                         R"(,"error":{"code":-32602,"message":"unknown tool"}})");
      },
      1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, ErrorKind::jsonrpc);
  EXPECT_EQ(out[0].code, -32602);
}

TEST_F(HttpMcpClientTest, LegacySessionsInitializeAndReopenAfter404) {
  int initializes = 0;
  bool expired_once = false;
  const auto out = run(
      Era::legacy,
      [&](const Request& r) -> std::optional<Response> {
        const std::string method = body_of(r).value("method", "");
        if (method == "initialize") {
          ++initializes;
          Response res = reply(
              http::status::ok, "text/event-stream",
              "event: message\ndata: " +
                  result_for(r, R"({"protocolVersion":"2025-06-18","capabilities":{}})") + "\n\n");
          res.set("Mcp-Session-Id", "s-" + std::to_string(initializes));
          return res;
        }
        if (method == "notifications/initialized") return reply(http::status::accepted, "", "");
        if (r["Mcp-Session-Id"] == "s-1" && !expired_once) {
          expired_once = true;
          return reply(http::status::not_found, "application/json", "{}");
        }
        return reply(http::status::ok, "application/json", result_for(r, R"({"content":[]})"));
      },
      3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].kind, ErrorKind::http);
  EXPECT_EQ(out[0].code, 404);
  EXPECT_EQ(out[1].kind, ErrorKind::none) << out[1].detail;
  EXPECT_EQ(out[2].kind, ErrorKind::none) << out[2].detail;
  EXPECT_EQ(initializes, 2);
  // initialize, initialized, call (404), initialize, initialized, call, call, DELETE
  ASSERT_EQ(requests_.size(), 8u);
  const auto init = body_of(requests_[0]);
  EXPECT_EQ(init["params"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(init["params"]["clientInfo"]["name"], "sluice-load-3");
  EXPECT_EQ(requests_[1]["Mcp-Session-Id"], "s-1");
  EXPECT_EQ(requests_[6]["Mcp-Session-Id"], "s-2");
  EXPECT_EQ(requests_[6]["MCP-Protocol-Version"], "2025-06-18");  // as negotiated
  EXPECT_FALSE(body_of(requests_[6])["params"].contains("_meta"));
  EXPECT_EQ(requests_[7].method(), http::verb::delete_);
  EXPECT_EQ(requests_[7]["Mcp-Session-Id"], "s-2");
}

TEST_F(HttpMcpClientTest, AClosedConnectionIsReopened) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        Response res =
            reply(http::status::ok, "application/json", result_for(r, R"({"content":[]})"));
        res.keep_alive(false);
        return res;
      },
      3);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.kind, ErrorKind::none) << o.detail;
  EXPECT_EQ(connections_, 3);
}

TEST_F(HttpMcpClientTest, AConnectionTheServerDroppedIsReplacedAndTheRequestSentAgain) {
  const auto out = run(
      Era::modern,
      [](const Request& r) {
        return reply(http::status::ok, "application/json", result_for(r, R"({"content":[]})"));
      },
      3, 2000ms, true);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) EXPECT_EQ(o.kind, ErrorKind::none) << o.detail;
  EXPECT_EQ(connections_, 3);
  EXPECT_EQ(requests_.size(), 3u);  // a request the server never read is not counted twice
}

TEST_F(HttpMcpClientTest, NoAnswerIsATimeout) {
  const auto began = Clock::now();
  const auto out = run(
      Era::modern, [](const Request&) { return std::optional<Response>{}; }, 1, 200ms);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, ErrorKind::timeout);
  EXPECT_LT(Clock::now() - began, 5s);
}

TEST_F(HttpMcpClientTest, NobodyListeningIsAConnectionError) {
  asio::ip::tcp::acceptor probe(io_, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  ClientParams params;
  params.url = TargetUrl::parse("http://127.0.0.1:" + std::to_string(port) + "/mcp");
  params.protocol_version = std::string(kModernVersion);
  params.endpoints = asio::ip::tcp::resolver(io_).resolve("127.0.0.1", params.url.port);
  HttpMcpClient client(io_.get_executor(), params, {"x", "1"});
  CallOutcome outcome;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        const CallOutcome o = co_await client.open(Clock::now() + 1s);
        outcome = o;
      },
      asio::detached);
  io_.run_for(5s);
  EXPECT_EQ(outcome.kind, ErrorKind::connection);
  EXPECT_FALSE(client.connected());
}

}  // namespace
}  // namespace sluice::load
