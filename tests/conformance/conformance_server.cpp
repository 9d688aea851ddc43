// conformance_server: the real McpEngine, McpHttpEndpoint and HttpServer serving the MCP
// conformance suite's fixtures (fixtures.json) instead of database tools. Test-only.
//
//   conformance_server --fixtures FILE [--port N]
//
// Listens on 127.0.0.1 (port 0: any free port) and prints "listening on PORT" once ready.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "gateway/mcp_engine.hpp"
#include "gateway/mcp_http_endpoint.hpp"
#include "session/session_tokens.hpp"
#include "tests/conformance/fixtures.hpp"
#include "transports/http_server.hpp"

int main(int argc, char** argv) {
  using namespace sluice;
  std::string fixtures_file;
  std::uint16_t port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fixtures" && i + 1 < argc) {
      fixtures_file = argv[++i];
    } else if (arg == "--port" && i + 1 < argc) {
      port = static_cast<std::uint16_t>(std::stoi(argv[++i]));
    } else {
      std::cerr << "usage: conformance_server --fixtures FILE [--port N]\n";
      return 2;
    }
  }
  if (fixtures_file.empty()) {
    std::cerr << "conformance_server: --fixtures FILE is required\n";
    return 2;
  }
  try {
    conformance::Fixtures fixtures(fixtures_file);
    session::SessionTokens sessions(session::TokenSigner::random(), std::chrono::hours(1));
    const session::TokenSigner state_signer = session::TokenSigner::random();
    gateway::McpEngine::Params params;
    params.name = "sluice-conformance-fixtures";
    params.version = "1.0.0";
    params.resources = &fixtures;
    params.prompts = &fixtures;
    params.completions = &fixtures;
    params.logging = true;
    params.state_signer = &state_signer;
    gateway::McpEngine engine(fixtures, sessions, params);

    asio::io_context io(1);
    gateway::McpHttpEndpoint endpoint(engine, sessions, gateway::McpHttpEndpoint::Params{});
    transports::HttpServerParams hp;
    hp.host = "127.0.0.1";
    hp.port = port;
    transports::HttpServer server(
        io, hp, [&](transports::HttpExchange& ex) -> asio::awaitable<void> { return endpoint(ex); },
        [&](asio::ip::tcp::socket socket, transports::HttpRequest req,
            std::string remote) -> asio::awaitable<void> {
          return endpoint.upgrade(std::move(socket), std::move(req), std::move(remote));
        });
    server.start();
    std::cout << "listening on " << server.port() << std::endl;

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
      if (ec) return;
      server.stop();
      io.stop();
    });
    io.run();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "conformance_server: " << e.what() << "\n";
    return 1;
  }
}
