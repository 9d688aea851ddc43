// sluice: the MCP gateway. Until the MCP server lands, running it opens the embedded demo
// warehouse through the connection pool and prints what it holds, so a new user sees the
// whole data path (ODBC driver, blocking workers, async pool) work end to end.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/demo_database.hpp"
#include "pool/connection_pool.hpp"
#include "pool/odbc_backend.hpp"
#include "pool/result_buffer.hpp"

namespace {

using namespace sluice;

constexpr std::string_view kUsage = R"(Usage: sluice [OPTIONS]

Sluice is an MCP gateway to SQL warehouses. This build opens the embedded demo
warehouse (SQLite) through the connection pool and lists its tables and views.

Options:
  --demo-db PATH   where the demo warehouse lives; created on first use
                   (default: $SLUICE_DEMO_DB, else $XDG_DATA_HOME/sluice/demo.sqlite,
                   else ~/.local/share/sluice/demo.sqlite)
  --help           show this help and exit
  --version        print the version and exit
)";

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

asio::awaitable<int> list_demo(std::filesystem::path path, pool::BlockingPool& workers,
                               pool::Watchdog& watchdog) {
  auto make_backend = [&](std::string cs) {
    return std::make_shared<pool::OdbcBackend>(pool::OdbcBackendParams{"demo", std::move(cs)},
                                               workers, watchdog);
  };
  if (co_await gateway::DemoDatabase::ensure(path, make_backend)) {
    std::cout << "Created the demo warehouse at " << path.string() << "\n";
  }
  pool::PoolParams params;
  params.min_size = 1;
  params.max_size = 2;
  pool::ConnectionPool pool(co_await asio::this_coro::executor,
                            make_backend(gateway::DemoDatabase::connection_string(path)), params);
  pool.start();
  const auto deadline = pool::Clock::now() + std::chrono::seconds(10);
  {
    auto conn = co_await pool.acquire(deadline);
    pool::ResultBuffer objects;
    const pool::Statement list{
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
        {}};
    co_await conn->execute(list, objects, deadline);
    std::cout << "Demo warehouse " << path.string() << "\n\n";
    std::printf("  %-18s %-6s %10s\n", "name", "kind", "rows");
    for (const auto& row : objects.rows()) {
      const auto& name = std::get<std::string>(row[0]);
      const auto& kind = std::get<std::string>(row[1]);
      pool::ResultBuffer count;
      const std::string sql = "SELECT count(*) FROM " + quote_identifier(name);
      co_await conn->execute({sql, {}}, count, deadline);
      std::printf("  %-18s %-6s %10lld\n", name.c_str(), kind.c_str(),
                  static_cast<long long>(std::get<std::int64_t>(count.rows().at(0).at(0))));
    }
  }
  const auto s = pool.stats();
  std::cout << "\nPool: " << s.total << " open, " << s.created << " created, " << s.busy
            << " busy\n";
  co_await pool.close(pool::Clock::now() + std::chrono::seconds(5));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path demo = gateway::DemoDatabase::default_path();
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (args[i] == "--version") {
      std::cout << "sluice " << SLUICE_VERSION << "\n";
      return 0;
    }
    if (args[i] == "--demo-db" && i + 1 < args.size()) {
      demo = args[++i];
      continue;
    }
    std::cerr << "sluice: unknown option '" << args[i] << "'\n\n" << kUsage;
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("sluice"));
  try {
    pool::OdbcEnvironment::get();  // on the main thread, before any worker starts
    pool::BlockingPool workers(4);
    pool::Watchdog watchdog;
    asio::io_context io;
    int rc = 1;
    asio::co_spawn(io, list_demo(demo, workers, watchdog), [&](std::exception_ptr e, int r) {
      if (e) std::rethrow_exception(e);
      rc = r;
    });
    io.run();
    return rc;
  } catch (const std::exception& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 1;
  }
}
