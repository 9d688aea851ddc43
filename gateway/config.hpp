#pragma once

// The gateway's whole configuration and where it comes from. Each layer overrides the one
// before it: built-in defaults, a YAML file (--config FILE, else $SLUICE_CONFIG), SLUICE_*
// environment variables, command-line flags. resolve_config() applies them in that order and
// validates the result once, so every other component can trust what it is given.
//
// The file, every key optional (shown with its default unless noted):
//
//   http:
//     listen: 127.0.0.1:8080          # HOST:PORT, port 1..65535; quote IPv6: "[::1]:8080"
//     path: /mcp
//     allowed_origins: []             # exact origins, e.g. [http://localhost:6274]
//     allowed_hosts: []
//     max_body_bytes: 1048576
//     header_timeout_ms: 10000
//     body_timeout_ms: 30000
//     idle_timeout_ms: 120000
//     sse_keepalive_ms: 15000
//   session_key: ""                   # hex or base64 of >= 32 bytes; "" = random per process
//   log_level: info                   # trace | debug | info | warn | error | off
//   io_threads: 0                     # 0 = one per CPU this process may use (cpuset, CPU quota)
//   worker_threads: 0                 # 0 = sum of the sources' pool max_size, plus one
//   demo_db: /path/demo.sqlite        # default chosen by the caller
//   sources:                          # none = the built-in demo source
//     - name: warehouse               # required, [A-Za-z0-9_-]{1,64}, unique ignoring case
//       connection_string: "Driver={PostgreSQL Unicode};Server=127.0.0.1;Database=sales;..."
//         # or "postgresql://user:pw@host:5432/sales": PostgreSQL's native protocol, no ODBC
//       dialect: postgresql           # postgresql | sqlite | snowflake | e6data | "" (detect)
//       allow_writes: false
//       pool: {min_size: 1, max_size: 8, connect_timeout_ms: 10000,
//              validate_after_idle_ms: 30000, validate_timeout_ms: 5000,
//              idle_timeout_ms: 600000, max_lifetime_ms: 3600000, backoff_initial_ms: 100,
//              backoff_max_ms: 30000, backoff_jitter: 0.2}
//       limits: {max_rows: 1000, max_bytes: 1048576, timeout_ms: 30000, max_timeout_ms: 300000}
//       multiplexer:
//         per_client_in_flight: 4       # default: half of pool.max_size, at least 1
//         context_affinity: true
//         pipeline_depth: 8             # reads sharing one round trip (native PostgreSQL)
//   sessions:
//     idle_timeout_ms: 1800000
//     max_per_client: 64              # 0 = unlimited
//     max: 10000                      # 0 = unlimited
//   limits:                           # per client; 0 switches a limit off
//     default: {rate: 50, burst: 100, max_in_flight: 16, hourly_quota: 0, daily_quota: 0}
//     clients: {}                     # by client id: {"claude-code@127.0.0.1": {rate: 5}}
//     sources: {}                     # by source name: {warehouse: {daily_quota: 10000}}
//     in_flight_retry_after_ms: 1000
//
// Durations are integers in milliseconds (their keys end in _ms). A key with an empty (null)
// value keeps its default. A policy under limits.clients or limits.sources starts from
// limits.default as the file gives it and changes only the keys it names. Unknown keys, keys
// given twice and values of the wrong type are errors: a typo must never be silently ignored.
//
// Nothing here echoes a connection string or the session key in an error message or in
// summary(): both hold secrets and error messages end up in logs.
//
// Thread safety: these are plain values; the usual rules for standard containers apply.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pool/pool_params.hpp"
#include "session/client_limits.hpp"
#include "session/session_registry.hpp"

namespace sluice::gateway {

// A configuration that cannot be used, with a message naming the key (e.g.
// "sources[1].pool.max_size: must be at least 1"), the variable or the flag at fault.
class ConfigError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// What one client request may cost on one source.
struct QueryLimits {
  // Rows returned by one query; beyond them the result is cut and marked truncated.
  std::size_t max_rows = 1000;
  // Bytes of result JSON; beyond them the result is cut and marked truncated.
  std::size_t max_bytes = 1 << 20;
  // Deadline of a query whose client asks for none.
  std::chrono::milliseconds timeout{30'000};
  // A client may ask for a shorter deadline than this, never a longer one.
  std::chrono::milliseconds max_timeout{300'000};
};

// One warehouse the gateway exposes.
struct SourceConfig {
  // Names the source in tools and logs: [A-Za-z0-9_-]{1,64}, unique ignoring case.
  std::string name;
  // ODBC connection string, or a postgresql:// URL for the native PostgreSQL client (for
  // e6data, later, a URL). Holds credentials: never log it.
  std::string connection_string;
  // "postgresql", "sqlite", "snowflake", "e6data", or "" to detect it from the connection
  // string's Driver (see detect_dialect). resolve_config() fills in the detected value.
  std::string dialect;
  // The execute tool (writes) is refused unless this is true.
  bool allow_writes = false;
  pool::PoolParams pool;
  QueryLimits limits;
  // Requests one client may run at once on this source; the rest of its requests wait
  // their turn in the multiplexer. 1..pool.max_size. The default, half of pool.max_size
  // (at least 1), means no single client can hold the whole pool: others always find room.
  // from_yaml() derives it from the pool it reads; code that builds a SourceConfig and
  // changes pool.max_size sets it with default_per_client_in_flight().
  std::size_t per_client_in_flight = default_per_client_in_flight(pool::PoolParams{}.max_size);
  // Hand a request preferably a connection already in its database context (database,
  // schema, warehouse, role), which saves the statements that would switch one.
  bool context_affinity = true;
  // Reads in the same context that may share one connection: the multiplexer sends up to this
  // many together and reads the answers in one pass (pool::MultiplexerParams::batch_depth).
  // Native PostgreSQL sources only; 1 turns it off. 1..32.
  std::size_t pipeline_depth = 8;

  static constexpr std::size_t default_per_client_in_flight(std::size_t pool_max_size) {
    return pool_max_size >= 2 ? pool_max_size / 2 : 1;
  }

  // The dialect named by the Driver= attribute of an ODBC connection string, matched
  // ignoring case: a driver containing "postgres" is postgresql, "sqlite" sqlite,
  // "snowflake" snowflake. Returns "" when there is no Driver or it is none of these (a DSN,
  // for example, names no driver: such a source must set its dialect).
  static std::string detect_dialect(std::string_view connection_string);
};

struct HttpConfig {
  // HOST:PORT to bind, port 1..65535; an IPv6 host goes in brackets: [::1]:8080.
  std::string listen = "127.0.0.1:8080";
  // The MCP endpoint.
  std::string path = "/mcp";
  // Origin header values accepted, compared exactly (scheme://host[:port]). Empty accepts
  // only requests without an Origin or with a localhost, 127.0.0.1 or [::1] origin, which
  // is what protects a local server from DNS rebinding.
  std::vector<std::string> allowed_origins;
  // Host header values accepted. Empty accepts localhost, 127.0.0.1 and [::1] (any port)
  // when bound to loopback, and any host when bound elsewhere.
  std::vector<std::string> allowed_hosts;
  std::size_t max_body_bytes = 1 << 20;
  // Deadlines for receiving a request's headers and its body.
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  // A keep-alive connection idle this long is closed.
  std::chrono::milliseconds idle_timeout{120'000};
  // Interval of SSE comment lines that keep proxies from closing quiet streams.
  std::chrono::milliseconds sse_keepalive{15'000};

  struct ListenAddress {
    std::string host;  // without IPv6 brackets: "::1"
    std::uint16_t port = 0;
  };
  // `listen` split into host and port. Throws ConfigError naming http.listen if malformed.
  ListenAddress listen_address() const;
};

struct Config {
  HttpConfig http;
  // Empty: the built-in demo source is used.
  std::vector<SourceConfig> sources;
  // Secret for signing session ids and context handles: hex or base64 of at least 32 bytes.
  // Empty: the caller makes a random per-process key, and should warn that sessions then
  // neither survive a restart nor span replicas.
  std::string session_key;
  // trace | debug | info | warn | error | off
  std::string log_level = "info";
  // Threads for blocking ODBC calls; 0 = the sum of the sources' pool max_size, plus one.
  std::size_t worker_threads = 0;
  // Threads running the I/O context (HTTP, WebSocket, the native PostgreSQL client); 0 = one
  // per CPU this process may use (`io_thread_count()`).
  std::size_t io_threads = 0;
  // Where the demo warehouse lives; empty = a default chosen by the caller.
  std::filesystem::path demo_db;
  // How many sessions may exist and how long an idle one lives (YAML:
  // sessions.idle_timeout_ms, sessions.max_per_client, sessions.max).
  session::SessionRegistryParams sessions;
  // Admission control per client (YAML: limits.default, limits.clients, limits.sources; a
  // policy's `rate` is rate_per_second). A refused request gets JSON-RPC error -32029, on
  // HTTP status 429 with Retry-After.
  session::ClientLimiterParams limits = default_limits();

  // What limits holds when nothing is configured: 50 requests/s sustained, bursts of 100,
  // 16 in flight, no quotas. No interactive client (a model's turn takes seconds) comes near
  // that, while a runaway loop or script does and is stopped before it starves the others;
  // 16 in flight is twice a default pool, enough to keep a client's share of it busy with
  // a short queue behind. Quotas are budgets only an operator can set.
  static session::ClientLimiterParams default_limits();

  // Parses YAML text over the defaults; `origin` (usually the file name) prefixes error
  // messages, with the line: "sluice.yaml:7: sources[0].pool.max_sise: unknown key; did
  // you mean max_size?". Checks keys and types only; validate() checks the values.
  // Throws ConfigError.
  static Config from_yaml(std::string_view yaml, std::string_view origin);
  // from_yaml() on the file's contents. Throws ConfigError, also if it cannot be read.
  static Config load_file(const std::filesystem::path& path);

  // Applies SLUICE_* overrides from `env`, a list of "KEY=VALUE" entries like environ:
  // SLUICE_LISTEN, SLUICE_LOG_LEVEL, SLUICE_SESSION_KEY, SLUICE_MAX_BODY_BYTES,
  // SLUICE_ALLOWED_ORIGINS and SLUICE_ALLOWED_HOSTS (comma-separated), SLUICE_IO_THREADS,
  // SLUICE_WORKER_THREADS, SLUICE_DEMO_DB, SLUICE_RATE_LIMIT and SLUICE_MAX_IN_FLIGHT
  // (limits.default.rate and .max_in_flight; policies under limits.clients and
  // limits.sources keep what the file gave them), and
  // SLUICE_SOURCE_<NAME>=<connection string>, which sets the connection string of source <name>
  // (lower-cased; matched ignoring case, its other settings kept) or adds that source.
  // SLUICE_CONFIG and SLUICE_PG_BINDIR are read elsewhere and skipped; any other SLUICE_* variable
  // is an error. Values are taken as given: an empty SLUICE_ALLOWED_ORIGINS empties the list.
  // Throws ConfigError naming the variable.
  void apply_env(const std::vector<std::string>& env);

  // Throws ConfigError naming the first offending field by its path in this struct, e.g.
  // "sources[1].pool.max_size: must be at least 1" or
  // "sources[0].name: 'ware house' must match [A-Za-z0-9_-]{1,64}". Limit policies are named
  // by their YAML keys ("limits.default.rate", "limits.clients['a@10.0.0.1'].burst") and
  // durations, as everywhere, without _ms ("sessions.idle_timeout"). A limits.sources entry
  // must name a configured source exactly (with none configured, the demo source "demo").
  void validate() const;

  // session_key decoded to raw bytes; empty when session_key is. Throws ConfigError when it
  // is neither hex nor base64 or decodes to fewer than 32 bytes.
  std::string session_key_bytes() const;

  // io_threads, or when it is 0 the number of CPUs in this process's affinity mask (a
  // container's cpuset), lowered to a control group's CPU quota rounded up (`docker run
  // --cpus`, a Kubernetes CPU limit: cgroup_cpu_limit()), at least 1 and at most 1024.
  std::size_t io_thread_count() const;

  // A human-readable description for `sluice check-config` and the startup log: addresses,
  // sources with dialect, writes, pool, limits and multiplexer, sessions, client limits;
  // never connection strings or the key.
  std::string summary() const;
};

// The command line:
//   sluice [--config FILE] [--listen HOST:PORT] [--source NAME=CONNSTR]...
//          [--allow-writes NAME]... [--demo-db PATH] [--log-level LEVEL] [--stdio]
//   sluice check-config FILE [options]
//   sluice --help | --version
// Every value flag also takes the form --flag=VALUE.
struct CommandLine {
  enum class Action { serve, stdio, check_config, help, version };
  Action action = Action::serve;
  // --config, or check-config's FILE. When absent resolve_config() looks at $SLUICE_CONFIG.
  std::optional<std::filesystem::path> config_file;
  std::optional<std::string> listen;
  // --source NAME=CONNSTR, split at the first '='; in the order given.
  std::vector<std::pair<std::string, std::string>> sources;
  // --allow-writes NAME
  std::vector<std::string> allow_writes;
  std::optional<std::filesystem::path> demo_db;
  std::optional<std::string> log_level;

  // argv[0] is the program name. --help and --version end parsing. Throws ConfigError
  // naming the flag: "--listen needs a value HOST:PORT", "unknown option '--lisen'; see
  // sluice --help".
  static CommandLine parse(int argc, const char* const* argv);
  // The --help text: commands, flags, SLUICE_* variables, the file format, examples.
  static std::string_view usage();
};

// The effective configuration: defaults, then the file (cli.config_file, else a non-empty
// $SLUICE_CONFIG from `env`), then `env`, then the flags; then validate(), and each source
// without a dialect gets the detected one. Throws ConfigError.
Config resolve_config(const CommandLine& cli, const std::vector<std::string>& env);

}  // namespace sluice::gateway
