// The gateway over real HTTP on loopback, in process: HttpServer + McpHttpEndpoint + McpEngine
// + DatabaseTools against a private PostgreSQL through psqlODBC and a SQLite file through
// sqliteodbc. A plain blocking Beast client plays the MCP client.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "gateway/database_tools.hpp"
#include "gateway/mcp_engine.hpp"
#include "gateway/mcp_http_endpoint.hpp"
#include "pool/odbc_backend.hpp"
#include "pool/pg_connection.hpp"
#include "session/context_handles.hpp"
#include "session/session_manager.hpp"
#include "session/session_tokens.hpp"
#include "tests/support/pg_cluster.hpp"
#include "tests/support/sqlite_file.hpp"
#include "transports/http_server.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace beast = boost::beast;
namespace http = beast::http;

struct Reply {
  unsigned status = 0;
  std::string content_type;
  std::string session_id;
  std::string body;
  std::string retry_after;
  json message() const { return json::parse(body); }
};

// One request on a fresh connection.
Reply post(std::uint16_t port, const std::string& body,
           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, "/mcp", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json, text/event-stream");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return {res.result_int(), std::string(res[http::field::content_type]),
          std::string(res["Mcp-Session-Id"]), res.body(),
          std::string(res[http::field::retry_after])};
}

json modern_meta() {
  return {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
          {"io.modelcontextprotocol/clientCapabilities", json::object()},
          {"io.modelcontextprotocol/clientInfo", {{"name", "it"}, {"version", "1"}}}};
}

std::vector<std::pair<std::string, std::string>> modern_headers(const std::string& method,
                                                                const std::string& name = "") {
  std::vector<std::pair<std::string, std::string>> h = {{"MCP-Protocol-Version", "2026-07-28"},
                                                        {"Mcp-Method", method}};
  if (!name.empty()) h.emplace_back("Mcp-Name", name);
  return h;
}

// What the product adds in front of the tools: a multiplexer per source, context handles and
// the session manager with per-client limits. Off by default, as the tools alone are tested.
struct Production {
  bool enabled = false;
  session::ClientLimiterParams limits;
  // I/O threads, as `io_threads` in the shipped binary: each runs an io_context of its own
  // and takes connections in turn; the first also holds the pool and the multiplexer.
  std::size_t io_threads = 1;
};

// A gateway with one source, serving on a free loopback port from a background thread.
class Gateway {
 public:
  Gateway(const std::string& source, const std::string& dialect, std::string connection_string,
          gateway::QueryLimits limits, bool allow_writes = false,
          std::chrono::milliseconds sse_keepalive = 15s, Production production = {})
      : signer_(std::string(32, 'k')), handles_(signer_, 1h), sessions_(std::move(signer_), 1h) {
    pool::PoolParams pp;
    pp.min_size = 1;
    pp.max_size = 3;
    std::shared_ptr<pool::Backend> backend;
    if (pool::pg::is_url(connection_string)) {
      backend = std::make_shared<pool::PgBackend>(
          pool::PgBackendParams{source, std::move(connection_string)}, watchdog_);
    } else {
      backend = std::make_shared<pool::OdbcBackend>(
          pool::OdbcBackendParams{source, std::move(connection_string)}, workers_, watchdog_);
    }
    gateway::Source src;
    src.name = source;
    src.dialect = pool::Dialect::make(*pool::Dialect::parse(dialect));
    src.pool = std::make_unique<pool::ConnectionPool>(io_.get_executor(), backend, pp);
    src.limits = limits;
    src.allow_writes = allow_writes;
    src.pool->start();
    if (production.enabled) {
      src.mux = std::make_unique<pool::Multiplexer>(io_.get_executor(), *src.pool, *src.dialect,
                                                    pool::MultiplexerParams{});
    }
    sources_.push_back(std::move(src));
    gateway::McpEngine::Params params{"sluice", "test", ""};
    if (production.enabled) {
      tools_ = std::make_unique<gateway::DatabaseTools>(sources_, &handles_);
      manager_ = std::make_unique<session::SessionManager>(
          io_.get_executor(), session::SessionManagerParams{{}, production.limits}, sessions_);
      params.manager = manager_.get();
    } else {
      tools_ = std::make_unique<gateway::DatabaseTools>(sources_);
    }
    engine_ = std::make_unique<gateway::McpEngine>(*tools_, sessions_, params);
    gateway::McpHttpEndpoint::Params ep;
    ep.sse_keepalive = sse_keepalive;
    endpoint_ = std::make_unique<gateway::McpHttpEndpoint>(*engine_, sessions_, ep);
    transports::HttpServerParams hp;
    hp.port = 0;
    std::vector<asio::io_context*> io_workers{&io_};
    for (std::size_t i = 1; i < production.io_threads; ++i) {
      io_workers.push_back(more_io_.emplace_back(std::make_unique<asio::io_context>(1)).get());
    }
    server_ = std::make_unique<transports::HttpServer>(
        io_, hp, [this](transports::HttpExchange& ex) { return (*endpoint_)(ex); },
        transports::UpgradeHandler{}, io_workers);
    server_->start();
    threads_.emplace_back([this] { io_.run(); });
    for (auto& c : more_io_) {
      threads_.emplace_back([&c = *c] {
        auto busy = asio::make_work_guard(c);
        c.run();
      });
    }
  }
  ~Gateway() {
    server_->stop();
    std::promise<void> closed;
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<void> {
          co_await sources_.front().pool->close(pool::Clock::now() + 5s);
        },
        [&](std::exception_ptr) { closed.set_value(); });
    closed.get_future().wait();
    io_.stop();
    for (auto& c : more_io_) c->stop();
    for (auto& t : threads_) t.join();
  }
  std::uint16_t port() const { return server_->port(); }

  // Legacy initialize; returns the session id.
  std::string initialize(const std::string& version = "2025-06-18") {
    const json init = {{"jsonrpc", "2.0"},
                       {"id", 0},
                       {"method", "initialize"},
                       {"params",
                        {{"protocolVersion", version},
                         {"capabilities", json::object()},
                         {"clientInfo", {{"name", "it"}, {"version", "1"}}}}}};
    Reply r = post(port(), init.dump());
    EXPECT_EQ(r.status, 200u) << r.body;
    return r.session_id;
  }

  // A legacy tools/call; returns the JSON-RPC result.
  json call(const std::string& session, const std::string& tool, json args, int id = 1) {
    const json req = {{"jsonrpc", "2.0"},
                      {"id", id},
                      {"method", "tools/call"},
                      {"params", {{"name", tool}, {"arguments", std::move(args)}}}};
    Reply r = post(port(), req.dump(),
                   {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "2025-06-18"}});
    EXPECT_EQ(r.status, 200u) << r.body;
    json m = r.message();
    EXPECT_TRUE(m.contains("result")) << r.body;
    return m.value("result", json::object());
  }

 private:
  asio::io_context io_{1};
  std::vector<std::unique_ptr<asio::io_context>> more_io_;
  pool::BlockingPool workers_{4};
  pool::Watchdog watchdog_;
  session::TokenSigner signer_;
  session::ContextHandles handles_;
  session::SessionTokens sessions_;
  std::unique_ptr<session::SessionManager> manager_;
  std::vector<gateway::Source> sources_;
  std::unique_ptr<gateway::DatabaseTools> tools_;
  std::unique_ptr<gateway::McpEngine> engine_;
  std::unique_ptr<gateway::McpHttpEndpoint> endpoint_;
  std::unique_ptr<transports::HttpServer> server_;
  std::vector<std::thread> threads_;
};

std::vector<std::string> column(const json& result, const std::string& name) {
  const auto& sc = result.at("structuredContent");
  std::size_t index = 0;
  for (; index < sc.at("columns").size(); ++index) {
    if (sc["columns"][index]["name"] == name) break;
  }
  std::vector<std::string> out;
  for (const auto& row : sc.at("rows")) {
    out.push_back(row.at(index).is_string() ? row[index].get<std::string>() : row[index].dump());
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

int running_sleeps() {
  return std::stoi(PgCluster::shared().psql(
      "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE "
      "'SELECT pg_sleep(30)%'"));
}

// Every PostgreSQL test runs twice: through psqlODBC and through the native client.
class PostgresDrivers : public ::testing::TestWithParam<const char*> {
 protected:
  static std::string connection_string() {
    return std::string_view(GetParam()) == "native" ? PgCluster::shared().url()
                                                    : PgCluster::shared().odbc_connection_string();
  }
};

std::string driver_name(const ::testing::TestParamInfo<const char*>& info) {
  return info.param;
}

class PostgresGatewayTest : public PostgresDrivers {
 protected:
  static void SetUpTestSuite() {
    PgCluster::shared().psql(
        "DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;"
        "CREATE TABLE shop.items (id int PRIMARY KEY, label text NOT NULL, price numeric(10,2));"
        "INSERT INTO shop.items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 500) g;"
        "CREATE VIEW shop.cheap AS SELECT * FROM shop.items WHERE price < 10;"
        "DROP TABLE IF EXISTS public.scratch; CREATE TABLE public.scratch (n int);");
  }
  static gateway::QueryLimits limits() {
    gateway::QueryLimits l;
    l.max_rows = 100;
    l.max_bytes = 64 * 1024;
    return l;
  }
};

TEST_P(PostgresGatewayTest, EveryToolWorksOverHttp) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits(), true);
  const std::string session = gw.initialize();
  ASSERT_FALSE(session.empty());

  EXPECT_TRUE(
      contains(column(gw.call(session, "list_databases", json::object()), "name"), "sluice_test"));
  EXPECT_TRUE(contains(column(gw.call(session, "list_schemas", json::object()), "name"), "shop"));

  const json tables = gw.call(session, "list_tables", {{"schema", "shop"}});
  EXPECT_EQ(column(tables, "name"), (std::vector<std::string>{"cheap", "items"}));
  EXPECT_EQ(column(tables, "kind"), (std::vector<std::string>{"view", "table"}));
  const json filtered = gw.call(session, "list_tables", {{"schema", "shop"}, {"pattern", "it%"}});
  EXPECT_EQ(column(filtered, "name"), (std::vector<std::string>{"items"}));

  const json described =
      gw.call(session, "describe_table", {{"schema", "shop"}, {"table", "items"}});
  EXPECT_EQ(column(described, "name"), (std::vector<std::string>{"id", "label", "price"}));
  EXPECT_EQ(column(described, "primary_key"), (std::vector<std::string>{"true", "false", "false"}));
  EXPECT_EQ(column(described, "nullable"), (std::vector<std::string>{"false", "false", "true"}));
  EXPECT_EQ(column(described, "type")[2], "numeric(10,2)");

  const json q =
      gw.call(session, "query",
              {{"sql", "SELECT id, label, price FROM shop.items WHERE id <= 3 ORDER BY id"}});
  EXPECT_EQ(q.at("isError"), false);
  EXPECT_EQ(q["structuredContent"]["rows"],
            json::parse(R"([[1,"item 1","1.50"],[2,"item 2","3.00"],[3,"item 3","4.50"]])"));
  EXPECT_EQ(q["structuredContent"]["columns"][2]["type"], "decimal");
  EXPECT_NE(q["content"][0]["text"].get<std::string>().find("item 2\t3.00"), std::string::npos);

  const json plan = gw.call(session, "explain", {{"sql", "SELECT * FROM shop.items WHERE id = 7"}});
  EXPECT_EQ(plan.at("isError"), false);
  EXPECT_NE(plan["content"][0]["text"].get<std::string>().find("Index Scan"), std::string::npos)
      << plan.dump();

  const json wrote = gw.call(session, "execute",
                             {{"sql", "INSERT INTO public.scratch SELECT generate_series(1, 4)"}});
  EXPECT_EQ(wrote.at("isError"), false) << wrote.dump();
  EXPECT_EQ(wrote["structuredContent"]["rowsAffected"], 4);

  const json refused =
      gw.call(session, "query",
              {{"sql", "WITH d AS (DELETE FROM shop.items RETURNING *) SELECT * FROM d"}});
  EXPECT_EQ(refused.at("isError"), true);
  EXPECT_NE(refused["content"][0]["text"].get<std::string>().find("DELETE"), std::string::npos);

  const json failed = gw.call(session, "query", {{"sql", "SELECT * FROM shop.nope"}});
  EXPECT_EQ(failed.at("isError"), true);
  EXPECT_NE(failed["content"][0]["text"].get<std::string>().find("SQLSTATE 42P01"),
            std::string::npos)
      << failed.dump();
}

TEST_P(PostgresGatewayTest, RowAndByteCapsTruncate) {
  gateway::QueryLimits l = limits();
  l.max_rows = 50;
  l.max_bytes = 2000;
  Gateway gw("warehouse", "postgresql", connection_string(), l);
  const std::string session = gw.initialize();
  const json by_rows =
      gw.call(session, "query", {{"sql", "SELECT id FROM shop.items ORDER BY id"}});
  EXPECT_EQ(by_rows["structuredContent"]["rowCount"], 50);
  EXPECT_EQ(by_rows["structuredContent"]["truncated"], true);
  EXPECT_EQ(by_rows["structuredContent"]["rows"].size(), 50u);
  const json fewer = gw.call(session, "query",
                             {{"sql", "SELECT id FROM shop.items ORDER BY id"}, {"max_rows", 5}});
  EXPECT_EQ(fewer["structuredContent"]["rowCount"], 5);
  const json by_bytes =
      gw.call(session, "query", {{"sql", "SELECT repeat('x', 100) FROM shop.items"}});
  const auto rows = by_bytes["structuredContent"]["rowCount"].get<int>();
  EXPECT_GT(rows, 5);
  EXPECT_LT(rows, 20) << "2000 bytes hold about 19 rows of 100 characters";
  EXPECT_EQ(by_bytes["structuredContent"]["truncated"], true);
  const json exact =
      gw.call(session, "query", {{"sql", "SELECT id FROM shop.items WHERE id <= 50"}});
  EXPECT_EQ(exact["structuredContent"]["truncated"], false) << "exactly the cap is not truncated";
  if (std::string_view(GetParam()) == "native") {
    // The native client has the server stop one row past the cap: a billion-row result is
    // answered at once, not read to its end (through ODBC it still is; see README).
    const json huge = gw.call(session, "query",
                              {{"sql", "SELECT generate_series(1, 1000000000)"}, {"max_rows", 5}});
    EXPECT_EQ(huge.at("isError"), false) << huge.dump();
    EXPECT_EQ(huge["structuredContent"]["rowCount"], 5);
    EXPECT_EQ(huge["structuredContent"]["truncated"], true);
  }
}

TEST_P(PostgresGatewayTest, StatementPastItsTimeoutIsAToolError) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits());
  const std::string session = gw.initialize();
  const auto start = std::chrono::steady_clock::now();
  const json r = gw.call(session, "query", {{"sql", "SELECT pg_sleep(5)"}, {"timeout_ms", 300}});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(r.at("isError"), true);
  EXPECT_NE(r["content"][0]["text"].get<std::string>().find("deadline"), std::string::npos)
      << r.dump();
  EXPECT_EQ(gw.call(session, "query", {{"sql", "SELECT 1"}}).at("isError"), false);
}

TEST_P(PostgresGatewayTest, ClosingAModernResponseStreamCancelsTheStatement) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits());
  {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), gw.port()));
    json params = {{"_meta", modern_meta()},
                   {"name", "query"},
                   {"arguments", {{"sql", "SELECT pg_sleep(30)"}}}};
    http::request<http::string_body> req{http::verb::post, "/mcp", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json, text/event-stream");
    for (const auto& [k, v] : modern_headers("tools/call", "query")) req.set(k, v);
    req.body() =
        json{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/call"}, {"params", params}}.dump();
    req.prepare_payload();
    http::write(stream, req);
    for (int i = 0; i < 100 && running_sleeps() == 0; ++i) std::this_thread::sleep_for(20ms);
    ASSERT_EQ(running_sleeps(), 1) << "the statement should be running";
  }  // the client closes its connection: that is the cancellation
  int left = 1;
  for (int i = 0; i < 100 && left > 0; ++i) {
    std::this_thread::sleep_for(20ms);
    left = running_sleeps();
  }
  EXPECT_EQ(left, 0) << "closing the stream must cancel the running statement";
}

TEST_P(PostgresGatewayTest, NotificationsCancelledCancelsALegacyRequest) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits());
  const std::string session = gw.initialize();
  const json call = {
      {"jsonrpc", "2.0"},
      {"id", 41},
      {"method", "tools/call"},
      {"params", {{"name", "query"}, {"arguments", {{"sql", "SELECT pg_sleep(30)"}}}}}};
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "2025-06-18"}};
  auto pending =
      std::async(std::launch::async, [&] { return post(gw.port(), call.dump(), headers); });
  for (int i = 0; i < 100 && running_sleeps() == 0; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(running_sleeps(), 1);
  const auto start = std::chrono::steady_clock::now();
  const json cancel = {{"jsonrpc", "2.0"},
                       {"method", "notifications/cancelled"},
                       {"params", {{"requestId", 41}, {"reason", "user pressed stop"}}}};
  EXPECT_EQ(post(gw.port(), cancel.dump(), headers).status, 202u);
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(running_sleeps(), 0);
  // The connection went back to the pool in a usable state.
  EXPECT_EQ(gw.call(session, "query", {{"sql", "SELECT 1"}}).at("isError"), false);
}

TEST_P(PostgresGatewayTest, ModernExchangeOverRawHttp) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits());
  json discover = {{"jsonrpc", "2.0"},
                   {"id", "d"},
                   {"method", "server/discover"},
                   {"params", {{"_meta", modern_meta()}}}};
  Reply d = post(gw.port(), discover.dump(), modern_headers("server/discover"));
  ASSERT_EQ(d.status, 200u) << d.body;
  EXPECT_TRUE(d.session_id.empty()) << "the modern era has no sessions";
  const json dr = d.message()["result"];
  EXPECT_EQ(dr["resultType"], "complete");
  EXPECT_EQ(dr["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "sluice");
  EXPECT_TRUE(dr["ttlMs"].is_number_integer());

  json call = {{"jsonrpc", "2.0"},
               {"id", 7},
               {"method", "tools/call"},
               {"params",
                {{"_meta", modern_meta()},
                 {"name", "query"},
                 {"arguments", {{"sql", "SELECT count(*) AS n FROM shop.items"}}}}}};
  Reply c = post(gw.port(), call.dump(), modern_headers("tools/call", "query"));
  ASSERT_EQ(c.status, 200u) << c.body;
  EXPECT_EQ(c.message()["result"]["structuredContent"]["rows"][0][0], 500);
  EXPECT_EQ(c.message()["result"]["resultType"], "complete");

  Reply mismatch = post(gw.port(), call.dump(), modern_headers("tools/call", "list_tables"));
  EXPECT_EQ(mismatch.status, 400u);
  EXPECT_EQ(mismatch.message()["error"]["code"], -32020);
  EXPECT_EQ(mismatch.message()["id"], 7);
}

TEST_P(PostgresGatewayTest, ProgressStreamsRowsFetchedAndKeepsAQuietStreamAlive) {
  // With UseDeclareFetch psqlODBC reads rows through a cursor as they come, so the first 1000
  // rows (and more: the gateway fetches blocks of 256) arrive before the server's one-second
  // pause at row 1401.
  gateway::QueryLimits l = limits();
  l.max_rows = 5000;
  l.max_bytes = 1 << 20;
  // The native client hands rows on as they arrive anyway.
  const std::string cs = std::string_view(GetParam()) == "native"
                             ? connection_string()
                             : connection_string() + "UseDeclareFetch=1;Fetch=100;";
  Gateway gw("warehouse", "postgresql", cs, l, false, 100ms);
  json meta = modern_meta();
  meta["progressToken"] = "tok-1";
  const json call = {
      {"jsonrpc", "2.0"},
      {"id", 3},
      {"method", "tools/call"},
      {"params",
       {{"_meta", meta},
        {"name", "query"},
        {"arguments",
         {{"sql",
           "SELECT g, CASE WHEN g = 1401 THEN pg_sleep(1) END FROM generate_series(1, "
           "1500) g"}}}}}};
  Reply r = post(gw.port(), call.dump(), modern_headers("tools/call", "query"));
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/event-stream");
  std::vector<json> events;
  int keepalives = 0;
  std::istringstream lines(r.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("data: ")) events.push_back(json::parse(line.substr(6)));
    if (line.starts_with(": keep-alive")) ++keepalives;
  }
  ASSERT_GE(events.size(), 2u) << r.body.substr(0, 500);
  EXPECT_EQ(events.front()["method"], "notifications/progress");
  EXPECT_EQ(events.front()["params"]["progressToken"], "tok-1");
  EXPECT_EQ(events.front()["params"]["progress"], 1000);
  EXPECT_EQ(events.back()["id"], 3);
  EXPECT_EQ(events.back()["result"]["structuredContent"]["rowCount"], 1500);
  EXPECT_GE(keepalives, 3) << "a one-second pause with a 100 ms keep-alive interval";
}

INSTANTIATE_TEST_SUITE_P(Drivers, PostgresGatewayTest, ::testing::Values("odbc", "native"),
                         driver_name);

// The shipped binary, configured the way a user would: a postgresql:// URL as the source's
// connection string selects the native client (config validation, main's backend choice,
// the production stack), and a tool call answers from the test cluster.
TEST(SluiceBinaryTest, APostgresqlUrlSourceIsServedThroughTheNativeClient) {
  std::uint16_t port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  const std::filesystem::path config = std::filesystem::temp_directory_path() /
                                       ("sluice-native-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(config) << "http: {listen: \"127.0.0.1:" << port << "\"}\n"
                        << "log_level: warn\nsources:\n  - name: warehouse\n"
                        << "    connection_string: \"" << PgCluster::shared().url() << "\"\n";
  std::string binary = SLUICE_BINARY;
  std::string flag = "--config";
  std::string path = config.string();
  char* argv[] = {binary.data(), flag.data(), path.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, binary.c_str(), nullptr, nullptr, argv, environ), 0);
  struct Stop {
    pid_t pid;
    std::filesystem::path config;
    ~Stop() {
      ::kill(pid, SIGTERM);
      int status = 0;
      ::waitpid(pid, &status, 0);
      std::filesystem::remove(config);
    }
  } stop{pid, config};

  const json call = {{"jsonrpc", "2.0"},
                     {"id", 1},
                     {"method", "tools/call"},
                     {"params",
                      {{"name", "query"},
                       {"arguments", {{"sql", "SELECT 41 + 1 AS answer"}}},
                       {"_meta", modern_meta()}}}};
  Reply r;
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    try {
      r = post(port, call.dump(), modern_headers("tools/call", "query"));
      answered = true;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(100ms);  // not listening yet
    }
  }
  ASSERT_TRUE(answered) << "sluice did not start listening within 10 s";
  EXPECT_EQ(r.status, 200u) << r.body;
  const json m = r.message();
  EXPECT_EQ(m["result"]["structuredContent"]["rows"][0][0], 42) << r.body;
  EXPECT_EQ(m["result"]["structuredContent"]["columns"][0]["name"], "answer") << r.body;
}

// Raw bytes on one socket: what any HTTP client, proxy or load balancer relies on. A
// keep-alive connection carries several exchanges, each framed by Content-Length; HTTP/1.0
// and "Connection: close" get their answer and then the end of the connection.
std::string read_until_closed(asio::ip::tcp::socket& socket) {
  std::string got;
  boost::system::error_code ec;
  std::array<char, 4096> buf;
  while (!ec) got.append(buf.data(), socket.read_some(asio::buffer(buf), ec));
  return got;
}

std::string read_response(asio::ip::tcp::socket& socket) {
  std::string got;
  std::array<char, 4096> buf;
  for (;;) {
    const auto end = got.find("\r\n\r\n");
    if (end != std::string::npos) {
      const auto cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) {
        const std::size_t length = std::stoul(got.substr(cl + 16));
        if (got.size() >= end + 4 + length) return got;
      }
    }
    got.append(buf.data(), socket.read_some(asio::buffer(buf)));
  }
}

// Given worker contexts, each run by one thread, the server hands each new connection to the
// worker serving fewest (the first on a tie), and a connection's requests run on its
// worker's thread from start to end, across suspensions: that thread is what serializes
// them, as a strand would.
TEST(HttpServerTest, ConnectionsGoToTheLeastBusyWorkerAndEachStaysOnItsThread) {
  asio::io_context accepting{1};  // outlives the workers, as HttpServer requires
  std::array<asio::io_context, 2> workers{asio::io_context{1}, asio::io_context{1}};
  auto handler = [](transports::HttpExchange& ex) -> asio::awaitable<void> {
    const auto before = std::this_thread::get_id();
    asio::steady_timer pause(co_await asio::this_coro::executor, 1ms);
    co_await pause.async_wait(asio::use_awaitable);
    transports::HttpResponse res{http::status::ok, ex.request().version()};
    std::ostringstream body;
    body << std::this_thread::get_id() << (std::this_thread::get_id() == before ? "" : " moved");
    res.body() = body.str();
    co_await ex.respond(std::move(res));
  };
  transports::HttpServerParams hp;
  hp.port = 0;
  transports::HttpServer server(accepting, hp, handler, {}, {&workers[0], &workers[1]});
  server.start();
  std::vector<std::thread> threads;
  threads.emplace_back([&] { accepting.run(); });
  for (auto& w : workers) {
    threads.emplace_back([&w] {
      auto busy = asio::make_work_guard(w);
      w.run();
    });
  }

  asio::io_context io;
  auto ask = [](beast::tcp_stream& stream) {
    http::request<http::string_body> req{http::verb::get, "/", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body().find("moved"), std::string::npos);
    return res.body();
  };
  // Four connections open at once, each answered once before the next connects.
  std::vector<std::unique_ptr<beast::tcp_stream>> streams;
  std::vector<std::string> thread_of;
  for (int c = 0; c < 4; ++c) {
    streams.push_back(std::make_unique<beast::tcp_stream>(io));
    streams.back()->connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    thread_of.push_back(ask(*streams.back()));
  }
  // 0 and 0 seated: the first; then 1 and 0: the second; then the first, the second.
  EXPECT_NE(thread_of[0], thread_of[1]);
  EXPECT_EQ(thread_of[0], thread_of[2]);
  EXPECT_EQ(thread_of[1], thread_of[3]);
  for (int round = 0; round < 2; ++round) {
    for (std::size_t c = 0; c < streams.size(); ++c) {
      EXPECT_EQ(ask(*streams[c]), thread_of[c]) << "connection " << c << ", round " << round;
    }
  }

  // The second worker's two close; the next two connections both go there, where none is.
  streams[1].reset();
  streams[3].reset();
  std::this_thread::sleep_for(500ms);  // for the server to read both ends
  for (int c = 0; c < 2; ++c) {
    streams.push_back(std::make_unique<beast::tcp_stream>(io));
    streams.back()->connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    EXPECT_EQ(ask(*streams.back()), thread_of[1]) << "new connection " << c;
  }

  streams.clear();
  server.stop();
  accepting.stop();
  for (auto& w : workers) w.stop();
  for (auto& t : threads) t.join();
}

TEST(SqliteGatewayTest, AnswersAreFramedForKeepAliveAndForClose) {
  SqliteFile file;
  Gateway gw("lite", "sqlite", file.odbc_connection_string(), {});
  asio::io_context io;
  const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), gw.port());
  {
    asio::ip::tcp::socket socket(io);
    socket.connect(at);
    const std::string get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket, asio::buffer(get));
    const std::string first = read_response(socket);
    EXPECT_TRUE(first.starts_with("HTTP/1.1 200 OK\r\n")) << first;
    EXPECT_NE(first.find("\r\nContent-Length: 3\r\n"), std::string::npos) << first;
    EXPECT_TRUE(first.ends_with("\r\n\r\nok\n")) << first;
    // The same connection, a JSON-RPC error this time, then a clean close on request.
    const std::string body = "{not json";
    const std::string post =
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    asio::write(socket, asio::buffer(post));
    const std::string second = read_until_closed(socket);
    EXPECT_TRUE(second.starts_with("HTTP/1.1 400 Bad Request\r\n")) << second;
    EXPECT_NE(second.find("\r\nConnection: close\r\n"), std::string::npos) << second;
    const auto body_at = second.find("\r\n\r\n") + 4;
    const json error = json::parse(second.substr(body_at));
    EXPECT_EQ(error["error"]["code"], -32700) << second;
    EXPECT_NE(
        second.find("\r\nContent-Length: " + std::to_string(second.size() - body_at) + "\r\n"),
        std::string::npos)
        << second;
  }
  {
    asio::ip::tcp::socket socket(io);
    socket.connect(at);
    const std::string get = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket, asio::buffer(get));
    const std::string answer = read_until_closed(socket);
    EXPECT_TRUE(answer.starts_with("HTTP/1.0 200 OK\r\n")) << answer;
    EXPECT_TRUE(answer.ends_with("\r\n\r\nok\n")) << answer;
  }
}

// Request bodies reach the engine whole however the client's bytes arrive: after the
// header, in pieces, chunked, or pipelined with the next request.
TEST(SqliteGatewayTest, RequestBodiesAreReadHoweverTheyArrive) {
  SqliteFile file;
  Gateway gw("lite", "sqlite", file.odbc_connection_string(), {});
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), gw.port()});
  const auto initialize = [](int id) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
           R"(,"method":"initialize","params":{"protocolVersion":"2025-06-18",)"
           R"("capabilities":{},"clientInfo":{"name":"pieces","version":"1"}}})";
  };
  const std::string head =
      "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Accept: application/json, text/event-stream\r\n";
  const auto with_length = [&](const std::string& body) {
    return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  // One response off the connection; bytes of the next stay in `pending`.
  std::string pending;
  const auto next_answer = [&]() -> json {
    std::array<char, 4096> buf;
    for (;;) {
      const auto end = pending.find("\r\n\r\n");
      if (end != std::string::npos) {
        const auto cl = pending.find("\r\nContent-Length: ");
        EXPECT_LT(cl, end) << pending;
        const std::size_t length = std::stoul(pending.substr(cl + 18));
        if (pending.size() >= end + 4 + length) {
          EXPECT_TRUE(pending.starts_with("HTTP/1.1 200 OK\r\n")) << pending;
          json answer = json::parse(pending.substr(end + 4, length));
          pending.erase(0, end + 4 + length);
          return answer;
        }
      }
      pending.append(buf.data(), socket.read_some(asio::buffer(buf)));
    }
  };
  const auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(50)); };

  // The header first, then the body in two pieces.
  {
    const std::string body = initialize(1);
    const std::string request = with_length(body);
    const std::size_t header_end = request.size() - body.size();
    asio::write(socket, asio::buffer(request.substr(0, header_end)));
    pause();
    asio::write(socket, asio::buffer(body.substr(0, 10)));
    pause();
    asio::write(socket, asio::buffer(body.substr(10)));
    EXPECT_EQ(next_answer()["id"], 1);
  }
  // A chunked body, its second chunk late.
  {
    const std::string body = initialize(2);
    const auto chunk = [](std::string_view part) {
      char size[16];
      std::snprintf(size, sizeof size, "%zx", part.size());
      return std::string(size) + "\r\n" + std::string(part) + "\r\n";
    };
    asio::write(socket, asio::buffer(head + "Transfer-Encoding: chunked\r\n\r\n" +
                                     chunk(std::string_view(body).substr(0, 20))));
    pause();
    asio::write(socket, asio::buffer(chunk(std::string_view(body).substr(20)) + "0\r\n\r\n"));
    EXPECT_EQ(next_answer()["id"], 2);
  }
  // Two requests in one write, answered in order.
  {
    asio::write(socket, asio::buffer(with_length(initialize(3)) + with_length(initialize(4))));
    EXPECT_EQ(next_answer()["id"], 3);
    EXPECT_EQ(next_answer()["id"], 4);
  }
}

TEST(SqliteGatewayTest, EveryToolWorksOverHttp) {
  SqliteFile file;
  {
    gateway::QueryLimits l;
    Gateway gw("lite", "sqlite", file.odbc_connection_string(), l, true);
    const std::string session = gw.initialize("2025-11-25");
    EXPECT_EQ(gw.call(session, "execute",
                      {{"sql", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"}})
                  .at("isError"),
              false);
    const json ins =
        gw.call(session, "execute",
                {{"sql", "INSERT INTO notes(body) VALUES ('één'), ('twee'), ('drie')"}});
    EXPECT_EQ(ins["structuredContent"]["rowsAffected"], 3);
    EXPECT_TRUE(
        contains(column(gw.call(session, "list_databases", json::object()), "name"), "main"));
    EXPECT_TRUE(contains(column(gw.call(session, "list_schemas", json::object()), "name"), "main"));
    EXPECT_EQ(column(gw.call(session, "list_tables", json::object()), "name"),
              (std::vector<std::string>{"notes"}));
    const json d = gw.call(session, "describe_table", {{"table", "notes"}});
    EXPECT_EQ(column(d, "primary_key"), (std::vector<std::string>{"true", "false"}));
    const json q = gw.call(session, "query", {{"sql", "SELECT body FROM notes ORDER BY id"}});
    EXPECT_EQ(column(q, "body"), (std::vector<std::string>{"één", "twee", "drie"}));
    EXPECT_EQ(
        gw.call(session, "explain", {{"sql", "SELECT * FROM notes WHERE id = 2"}}).at("isError"),
        false);
    const json slow = gw.call(session, "query",
                              {{"sql",
                                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                "SELECT count(*) FROM c"},
                               {"timeout_ms", 300}});
    EXPECT_EQ(slow.at("isError"), true);
    EXPECT_NE(slow["content"][0]["text"].get<std::string>().find("deadline"), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

// --- Database contexts and per-client limits (the production stack) -----------------------

class PostgresContextTest : public PostgresDrivers {
 protected:
  static void SetUpTestSuite() {
    PgCluster::shared().psql(
        "DROP SCHEMA IF EXISTS ctx_a CASCADE; DROP SCHEMA IF EXISTS ctx_b CASCADE;"
        "CREATE SCHEMA ctx_a; CREATE SCHEMA ctx_b;"
        "CREATE TABLE ctx_a.marker (v text); INSERT INTO ctx_a.marker VALUES ('a');"
        "CREATE TABLE ctx_b.marker (v text); INSERT INTO ctx_b.marker VALUES ('b');");
  }
  static Production production(session::ClientLimiterParams limits = {}) {
    Production p;
    p.enabled = true;
    p.limits = std::move(limits);
    return p;
  }
  static gateway::QueryLimits limits() { return {}; }

  // A modern tools/call from client `name`; the whole reply.
  static Reply modern_call(std::uint16_t port, const std::string& name, const std::string& tool,
                           json args, int id = 1) {
    json meta = modern_meta();
    meta["io.modelcontextprotocol/clientInfo"]["name"] = name;
    const json req = {
        {"jsonrpc", "2.0"},
        {"id", id},
        {"method", "tools/call"},
        {"params", {{"name", tool}, {"arguments", std::move(args)}, {"_meta", meta}}}};
    return post(port, req.dump(), modern_headers("tools/call", tool));
  }
};

const char* kMarker = "SELECT v, current_schema() AS s FROM marker";

TEST_P(PostgresContextTest, SessionsKeepTheirOwnContext) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits(), false, 15s, production());
  const std::string a = gw.initialize();
  const std::string b = gw.initialize();
  const json set_a = gw.call(a, "set_context", {{"schema", "ctx_a"}});
  ASSERT_EQ(set_a.at("isError"), false) << set_a.dump();
  EXPECT_EQ(set_a["structuredContent"]["context"]["schema"], "ctx_a");
  EXPECT_EQ(set_a["structuredContent"]["sessionDefault"], true);
  gw.call(b, "set_context", {{"schema", "ctx_b"}});
  // Interleaved on a three-connection pool: each session always sees its own schema.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(column(gw.call(a, "query", {{"sql", kMarker}}), "v"), std::vector<std::string>{"a"});
    EXPECT_EQ(column(gw.call(b, "query", {{"sql", kMarker}}), "v"), std::vector<std::string>{"b"});
  }
  // A call's own argument wins over the session's default, for that call only.
  EXPECT_EQ(column(gw.call(a, "query", {{"sql", kMarker}, {"schema", "ctx_b"}}), "v"),
            std::vector<std::string>{"b"});
  const json got = gw.call(a, "get_context", json::object());
  EXPECT_EQ(got["structuredContent"]["context"]["schema"], "ctx_a") << got.dump();
  EXPECT_EQ(column(gw.call(a, "query", {{"sql", kMarker}}), "s"),
            std::vector<std::string>{"ctx_a"});
  // Metadata tools look in the session's schema by default.
  EXPECT_EQ(column(gw.call(a, "list_tables", json::object()), "name"),
            std::vector<std::string>{"marker"});
}

TEST_P(PostgresContextTest, StatelessClientsCarryASignedHandle) {
  Gateway gw("warehouse", "postgresql", connection_string(), limits(), false, 15s, production());
  const Reply set = modern_call(gw.port(), "alice", "set_context", {{"schema", "ctx_b"}});
  const json result = set.message()["result"];
  ASSERT_EQ(result.at("isError"), false) << set.body;
  EXPECT_EQ(result["structuredContent"]["sessionDefault"], false) << "stateless: no session";
  const std::string handle = result["structuredContent"]["handle"];

  const Reply used =
      modern_call(gw.port(), "alice", "query", {{"sql", kMarker}, {"context", handle}});
  EXPECT_EQ(column(used.message()["result"], "v"), std::vector<std::string>{"b"}) << used.body;

  // Without the handle nothing is remembered: public has no marker table.
  const Reply plain = modern_call(gw.port(), "alice", "query", {{"sql", kMarker}});
  EXPECT_EQ(plain.message()["result"]["isError"], true) << plain.body;

  std::string forged = handle;
  forged[forged.size() / 3] = forged[forged.size() / 3] == 'A' ? 'B' : 'A';
  const json refused =
      modern_call(gw.port(), "alice", "query", {{"sql", kMarker}, {"context", forged}})
          .message()["result"];
  EXPECT_EQ(refused["isError"], true);
  EXPECT_NE(refused["content"][0]["text"].get<std::string>().find("not valid"), std::string::npos)
      << refused.dump();

  const json stolen =
      modern_call(gw.port(), "mallory", "query", {{"sql", kMarker}, {"context", handle}})
          .message()["result"];
  EXPECT_EQ(stolen["isError"], true);
  EXPECT_NE(stolen["content"][0]["text"].get<std::string>().find("another client"),
            std::string::npos)
      << stolen.dump();
}

TEST_P(PostgresContextTest, OverTheRateLimitIs429WithRetryAfterAndOthersAreServed) {
  session::ClientLimiterParams limits;
  limits.defaults.rate_per_second = 0.5;  // one token every 2 s
  limits.defaults.burst = 2;
  Gateway gw("warehouse", "postgresql", connection_string(), PostgresContextTest::limits(), false,
             15s, production(limits));
  const json args = {{"sql", "SELECT 1 AS one"}};
  EXPECT_EQ(modern_call(gw.port(), "busy", "query", args).status, 200u);
  EXPECT_EQ(modern_call(gw.port(), "busy", "query", args).status, 200u);
  const Reply limited = modern_call(gw.port(), "busy", "query", args, 3);
  EXPECT_EQ(limited.status, 429u) << limited.body;
  EXPECT_FALSE(limited.retry_after.empty());
  EXPECT_GE(std::stoi(limited.retry_after.empty() ? "0" : limited.retry_after), 1);
  const json error = limited.message();
  EXPECT_EQ(error["id"], 3);
  EXPECT_EQ(error["error"]["code"], -32029);
  EXPECT_EQ(error["error"]["data"]["reason"], "rate_limited");
  EXPECT_GT(error["error"]["data"]["retryAfterMs"].get<int>(), 0);
  // Another client has its own bucket.
  const Reply other = modern_call(gw.port(), "calm", "query", args);
  EXPECT_EQ(other.status, 200u) << other.body;
  EXPECT_EQ(other.message()["result"]["isError"], false);
}

// The shipped binary runs one I/O thread per CPU: sessions, contexts, the multiplexer, the
// pool and the native client's connections are then used from several threads at once.
// Every caller gets its own answer in its own schema, and nothing is lost.
TEST_P(PostgresContextTest, ManySessionsOnFourIoThreadsEachGetTheirOwnAnswers) {
  Production p = production();
  p.io_threads = 4;
  Gateway gw("warehouse", "postgresql", connection_string(), limits(), false, 15s, p);
  constexpr int kClients = 12;
  constexpr int kCalls = 25;
  std::vector<std::string> sessions;
  for (int c = 0; c < kClients; ++c) {
    sessions.push_back(gw.initialize());
    const json set =
        gw.call(sessions.back(), "set_context", {{"schema", c % 2 == 0 ? "ctx_a" : "ctx_b"}});
    ASSERT_EQ(set.at("isError"), false) << set.dump();
  }
  std::atomic<int> right{0};
  std::vector<std::string> wrong(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string schema = c % 2 == 0 ? "a" : "b";
      for (int i = 0; i < kCalls; ++i) {
        const int n = c * 1000 + i;
        const std::string sql = "SELECT v, " + std::to_string(n) +
                                " AS n FROM marker, pg_sleep(0.001 * " + std::to_string(i % 3) +
                                ")";
        const json r = gw.call(sessions[c], "query", {{"sql", sql}}, n);
        if (column(r, "v") == std::vector<std::string>{schema} &&
            column(r, "n") == std::vector<std::string>{std::to_string(n)}) {
          ++right;
        } else if (wrong[c].empty()) {
          wrong[c] = r.dump();
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(right.load(), kClients * kCalls);
  for (int c = 0; c < kClients; ++c) EXPECT_EQ(wrong[c], "") << "client " << c;
}

INSTANTIATE_TEST_SUITE_P(Drivers, PostgresContextTest, ::testing::Values("odbc", "native"),
                         driver_name);

}  // namespace
}  // namespace sluice::test
