// sluice: the MCP gateway. Reads its configuration (file, SLUICE_* variables, flags), opens
// a pool per source (the built-in demo when none is configured), and serves MCP over
// Streamable HTTP, or over stdin/stdout with --stdio.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#if SLUICE_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include <csignal>
#include <iostream>
#include <thread>

#include "gateway/config.hpp"
#include "gateway/database_tools.hpp"
#include "gateway/demo_database.hpp"
#include "gateway/mcp_engine.hpp"
#include "gateway/mcp_http_endpoint.hpp"
#include "pool/odbc_backend.hpp"
#include "pool/pg_connection.hpp"
#include "session/context_handles.hpp"
#include "session/session_manager.hpp"
#include "session/session_tokens.hpp"
#include "transports/http_server.hpp"
#include "transports/stdio_transport.hpp"

extern char** environ;

namespace {

using namespace sluice;
using namespace std::chrono_literals;

std::vector<std::string> environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

std::string instructions(const std::vector<gateway::Source>& sources) {
  std::string text =
      "Sluice gives you SQL databases as tools. Explore with list_tables and describe_table, "
      "then read with query (one read-only statement; results are capped, 'truncated' says "
      "when more rows exist). Sources: ";
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (i > 0) text += ", ";
    text += sources[i].name + " (" + std::string(sources[i].dialect->name()) + ")";
  }
  return text + ". The first is the default; pass 'source' to pick another.";
}

double to_ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

nlohmann::json pool_json(const pool::PoolStats& p) {
  return {{"idle", p.idle},
          {"busy", p.busy},
          {"connecting", p.connecting},
          {"total", p.total},
          {"waiters", p.waiters},
          {"created", p.created},
          {"closed", p.closed},
          {"failedConnects", p.failed_connects},
          {"acquireTimeouts", p.acquire_timeouts},
          {"failedValidations", p.failed_validations}};
}

// The /status document: sessions and clients, and per source its multiplexer and pool.
std::string status_json(const session::SessionManager& manager,
                        const std::vector<gateway::Source>& sources) {
  nlohmann::json doc = manager.status();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : sources) {
    const auto mux = s.mux->snapshot();
    const auto pool = s.pool->stats();
    nlohmann::json clients = nlohmann::json::array();
    for (const auto& c : mux.queue.clients) {
      clients.push_back(
          {{"client", c.name},
           {"queued", c.queued},
           {"inFlight", c.in_flight},
           {"admitted", c.admitted_total},
           {"expired", c.expired_total},
           {"cancelled", c.cancelled_total},
           {"oldestWaitMs", to_ms(c.oldest_wait)},
           {"maxWaitMs", to_ms(c.max_wait)},
           {"meanWaitMs", c.admitted_total == 0
                              ? 0.0
                              : to_ms(c.total_wait) / static_cast<double>(c.admitted_total)}});
    }
    list.push_back({{"name", s.name},
                    {"dialect", s.dialect->name()},
                    {"multiplexer",
                     {{"queued", mux.queue.queued},
                      {"inFlight", mux.queue.in_flight},
                      {"admitted", mux.queue.admitted_total},
                      {"expired", mux.queue.expired_total},
                      {"cancelled", mux.queue.cancelled_total},
                      {"riders", mux.queue.riders_total},
                      {"maxWaitMs", to_ms(mux.queue.max_wait)},
                      {"perClientCap", s.mux->params().per_client_cap},
                      {"globalCap", s.mux->params().global_cap},
                      {"pipelineDepth", s.mux->params().batch_depth},
                      {"clients", std::move(clients)},
                      {"context",
                       {{"affinityHits", mux.context.affinity_hits},
                        {"affinityMisses", mux.context.affinity_misses},
                        {"switchStatements", mux.context.switch_statements},
                        {"resets", mux.context.resets},
                        {"switchFailures", mux.context.switch_failures},
                        {"discarded", mux.context.discarded}}}}},
                    {"pool", pool_json(pool)}});
  }
  doc["sources"] = std::move(list);
  return doc.dump();
}

// Runs `f` to completion on a private io_context (used before serving starts).
template <class F>
auto run_now(F f) {
  asio::io_context io;
  auto fut = asio::co_spawn(io, std::move(f), asio::use_future);
  io.run();
  return fut.get();
}

// The allocator this binary was linked against (see SLUICE_MIMALLOC in CMakeLists.txt).
std::string allocator_name() {
#if SLUICE_WITH_MIMALLOC
  const int v = mi_version();  // 209 for 2.0.9
  return "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v / 10 % 10) + "." +
         std::to_string(v % 10);
#else
  return "glibc malloc";
#endif
}

int serve(const gateway::Config& cfg, bool stdio) {
  pool::OdbcEnvironment::get();  // on the main thread, before any worker starts

  std::vector<gateway::SourceConfig> configs = cfg.sources;
  std::size_t workers_needed = 1;
  for (const auto& s : configs) workers_needed += s.pool.max_size;
  if (configs.empty()) workers_needed += 4;
  pool::BlockingPool workers(cfg.worker_threads > 0 ? cfg.worker_threads : workers_needed);
  pool::Watchdog watchdog;
  // A postgresql:// URL selects the native PostgreSQL client; anything else is ODBC.
  auto make_backend = [&](const std::string& name,
                          std::string cs) -> std::shared_ptr<pool::Backend> {
    if (pool::pg::is_url(cs)) {
      return std::make_shared<pool::PgBackend>(pool::PgBackendParams{name, std::move(cs)},
                                               watchdog);
    }
    return std::make_shared<pool::OdbcBackend>(pool::OdbcBackendParams{name, std::move(cs)},
                                               workers, watchdog);
  };

  if (configs.empty()) {
    const auto path = cfg.demo_db.empty() ? gateway::DemoDatabase::default_path() : cfg.demo_db;
    auto demo_backend = [&](std::string cs) { return make_backend("demo", std::move(cs)); };
    const bool created = run_now([&]() -> asio::awaitable<bool> {
      co_return co_await gateway::DemoDatabase::ensure(path, demo_backend);
    });
    if (created) spdlog::info("created the demo warehouse at {}", path.string());
    gateway::SourceConfig demo;
    demo.name = "demo";
    demo.connection_string = gateway::DemoDatabase::connection_string(path);
    demo.dialect = "sqlite";
    demo.pool.min_size = 1;
    demo.pool.max_size = 4;
    demo.per_client_in_flight = gateway::SourceConfig::default_per_client_in_flight(4);
    configs.push_back(std::move(demo));
  }

  // One io_context per I/O thread, each run by its thread alone: a connection's requests,
  // from the first byte read to the answer written, stay on one core without a strand, and the
  // threads share no run queue. The first context also holds the pools, the multiplexers and
  // the session manager, which any thread reaches through their own strands.
  const std::size_t io_threads = cfg.io_thread_count();
  // Destroyed last (after the pools, whose sockets may sit on any of them), the others before
  // the first, which holds the listener whose connections they serve.
  struct Contexts : std::vector<std::unique_ptr<asio::io_context>> {
    ~Contexts() {
      while (!empty()) pop_back();
    }
  } contexts;
  for (std::size_t i = 0; i < io_threads; ++i)
    contexts.push_back(std::make_unique<asio::io_context>(1));
  asio::io_context& io = *contexts.front();
  std::vector<gateway::Source> sources;
  sources.reserve(configs.size());
  for (const auto& sc : configs) {
    std::string dialect_name = sc.dialect.empty()
                                   ? gateway::SourceConfig::detect_dialect(sc.connection_string)
                                   : sc.dialect;
    auto kind = pool::Dialect::parse(dialect_name);
    if (!kind) {
      throw gateway::ConfigError("sources." + sc.name +
                                 ".dialect: cannot tell the database from the connection string; "
                                 "set dialect: postgresql, sqlite, snowflake or e6data");
    }
    gateway::Source src;
    src.name = sc.name;
    src.dialect = pool::Dialect::make(*kind);
    src.pool = std::make_unique<pool::ConnectionPool>(
        io.get_executor(), make_backend(sc.name, sc.connection_string), sc.pool);
    src.limits = sc.limits;
    src.allow_writes = sc.allow_writes;
    src.pool->start();
    pool::MultiplexerParams mp;
    mp.per_client_cap = sc.per_client_in_flight;
    mp.context_affinity = sc.context_affinity;
    // Only the native client pipelines; through ODBC a batch would run one after another.
    mp.batch_depth = pool::pg::is_url(sc.connection_string) ? sc.pipeline_depth : 1;
    src.mux = std::make_unique<pool::Multiplexer>(io.get_executor(), *src.pool, *src.dialect, mp);
    sources.push_back(std::move(src));
  }

  std::optional<session::TokenSigner> signer;
  if (cfg.session_key.empty()) {
    if (!stdio) {
      spdlog::warn(
          "no session_key configured: legacy session ids are signed with a random key "
          "and do not survive a restart or work across replicas");
    }
    signer = session::TokenSigner::random();
  } else {
    signer.emplace(cfg.session_key_bytes());
  }
  // Context handles are signed with the same key; their payloads cannot pass for session ids.
  session::ContextHandles handles(*signer, std::chrono::hours(24));
  session::SessionTokens sessions(std::move(*signer), std::chrono::hours(24));
  gateway::DatabaseTools tools(sources, &handles);
  session::SessionManager manager(io.get_executor(), {cfg.sessions, cfg.limits}, sessions);
  manager.start();
  gateway::McpEngine::Params engine_params;
  engine_params.name = "sluice";
  engine_params.version = SLUICE_VERSION;
  engine_params.instructions = instructions(sources);
  engine_params.manager = &manager;
  gateway::McpEngine engine(tools, sessions, engine_params);

  std::unique_ptr<transports::HttpServer> server;
  std::unique_ptr<transports::StdioTransport> stdio_transport;
  gateway::ConnectionState stdio_state;
  std::optional<gateway::McpHttpEndpoint> endpoint;

  auto shutdown = [&]() {
    if (server) server->stop();
    manager.stop();
    for (auto& s : sources) s.mux->close();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (auto& s : sources) co_await s.pool->close(pool::Clock::now() + 5s);
          for (auto& c : contexts) c->stop();
        },
        asio::detached);
  };

  if (stdio) {
    auto handler = [&](std::string line,
                       transports::StdioTransport::Send send) -> asio::awaitable<void> {
      gateway::MessageContext ctx;
      ctx.transport = gateway::Transport::stdio;
      ctx.remote = "stdio";
      ctx.connection = &stdio_state;
      ctx.cancel_scope = "stdio";
      gateway::Outcome out;
      try {
        out = co_await engine.handle(line, ctx, send);
      } catch (const pool::DbError&) {
        co_return;  // cancelled: no reply, as the protocol asks
      }
      if (!out.body.empty() && out.http_status != 202) send(std::move(out.body));
    };
    stdio_transport = std::make_unique<transports::StdioTransport>(io.get_executor(), handler);
    asio::co_spawn(stdio_transport->executor(), stdio_transport->run(),
                   [&](std::exception_ptr) { shutdown(); });
  } else {
    const auto address = cfg.http.listen_address();
    transports::HttpServerParams hp;
    hp.host = address.host;
    hp.port = address.port;
    hp.max_body_bytes = cfg.http.max_body_bytes;
    hp.header_timeout = cfg.http.header_timeout;
    hp.idle_timeout = cfg.http.idle_timeout;
    hp.body_timeout = cfg.http.body_timeout;
    boost::system::error_code ec;
    const auto ip = asio::ip::make_address(address.host, ec);
    gateway::McpHttpEndpoint::Params ep;
    ep.path = cfg.http.path;
    ep.allowed_origins = cfg.http.allowed_origins;
    ep.allowed_hosts = cfg.http.allowed_hosts;
    ep.loopback_only = !ec && ip.is_loopback();
    ep.sse_keepalive = cfg.http.sse_keepalive;
    ep.websocket.max_message_bytes = cfg.http.max_body_bytes;
    ep.websocket.handshake_timeout = cfg.http.header_timeout;
    ep.websocket.idle_timeout = cfg.http.idle_timeout;
    ep.status = [&manager, &sources] { return status_json(manager, sources); };
    endpoint.emplace(engine, sessions, std::move(ep));
    server = std::make_unique<transports::HttpServer>(
        io, hp,
        [&](transports::HttpExchange& ex) -> asio::awaitable<void> { return (*endpoint)(ex); },
        [&](asio::ip::tcp::socket socket, transports::HttpRequest req,
            std::string remote) -> asio::awaitable<void> {
          return endpoint->upgrade(std::move(socket), std::move(req), std::move(remote));
        },
        [&] {
          std::vector<asio::io_context*> io_workers;
          for (auto& c : contexts) io_workers.push_back(c.get());
          return io_workers;
        }());
    server->start();
    spdlog::info(
        "serving MCP at http://{}:{}{} (sources: {}, I/O threads: {}, allocator: {})",
        address.host.find(':') != std::string::npos ? "[" + address.host + "]" : address.host,
        server->port(), cfg.http.path, sources.size(), contexts.size(), allocator_name());
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining", sig);
    shutdown();
  });

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    threads.emplace_back([&c = *contexts[i]] {
      auto busy = asio::make_work_guard(c);  // idle until shutdown stops it
      c.run();
    });
  }
  io.run();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("sluice");
  spdlog::set_default_logger(logger);
  try {
    const auto cli = gateway::CommandLine::parse(argc, argv);
    using Action = gateway::CommandLine::Action;
    switch (cli.action) {
      case Action::help:
        std::cout << gateway::CommandLine::usage();
        return 0;
      case Action::version:
        std::cout << "sluice " << SLUICE_VERSION << "\n";
        return 0;
      case Action::check_config:
        try {
          const auto cfg = gateway::resolve_config(cli, environment());
          std::cout << cfg.summary();
          return 0;
        } catch (const gateway::ConfigError& e) {
          std::cerr << "sluice: " << e.what() << "\n";
          return 1;
        }
      case Action::serve:
      case Action::stdio:
        break;
    }
    const auto cfg = gateway::resolve_config(cli, environment());
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    return serve(cfg, cli.action == Action::stdio);
  } catch (const gateway::ConfigError& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 1;
  }
}
