#include "gateway/config.hpp"
#include "gateway/cpu_limit.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

// The message of the ConfigError `f` throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string yaml_error(const std::string& yaml) {
  return error_of([&] { Config::from_yaml(yaml, "sluice.yaml"); });
}

std::string validate_error(const Config& c) {
  return error_of([&] { c.validate(); });
}

CommandLine parse(const std::vector<const char*>& args) {
  std::vector<const char*> argv = {"sluice"};
  for (const char* arg : args) argv.push_back(arg);
  return CommandLine::parse(static_cast<int>(argv.size()), argv.data());
}

std::string parse_error(const std::vector<const char*>& args) {
  return error_of([&] { parse(args); });
}

SourceConfig source(std::string name, std::string connection_string) {
  SourceConfig s;
  s.name = std::move(name);
  s.connection_string = std::move(connection_string);
  return s;
}

constexpr const char* kPg =
    "Driver={PostgreSQL Unicode};Server=127.0.0.1;Database=sales;Uid=me;Pwd=hunter2;";
constexpr const char* kSqlite = "Driver=SQLite3;Database=/tmp/x.sqlite;";
// 32 bytes, hex.
constexpr const char* kHexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

// A file in a fresh directory that the test removes again.
class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("sluice_config_test_") + info->name());
    std::filesystem::create_directories(dir_);
    path_ = dir_ / "sluice.yaml";
    std::ofstream(path_) << contents;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

TEST(ConfigTest, DefaultsAreDocumentedValuesAndValid) {
  const Config c;
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.http.path, "/mcp");
  EXPECT_TRUE(c.http.allowed_origins.empty());
  EXPECT_TRUE(c.http.allowed_hosts.empty());
  EXPECT_EQ(c.http.max_body_bytes, 1u << 20);
  EXPECT_EQ(c.http.header_timeout, 10s);
  EXPECT_EQ(c.http.body_timeout, 30s);
  EXPECT_EQ(c.http.idle_timeout, 120s);
  EXPECT_EQ(c.http.sse_keepalive, 15s);
  EXPECT_TRUE(c.sources.empty());
  EXPECT_EQ(c.session_key, "");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.worker_threads, 0u);
  EXPECT_EQ(c.io_threads, 0u);
  EXPECT_GE(c.io_thread_count(), 1u);
  EXPECT_TRUE(c.demo_db.empty());
  const QueryLimits l;
  EXPECT_EQ(l.max_rows, 1000u);
  EXPECT_EQ(l.max_bytes, 1u << 20);
  EXPECT_EQ(l.timeout, 30s);
  EXPECT_EQ(l.max_timeout, 300s);
  EXPECT_EQ(validate_error(c), "");
}

// The default sizes the I/O pool to the CPUs the process may use (a container's cpuset, and
// its CPU quota where one applies), not to the machine; an explicit count is kept as given.
TEST(ConfigTest, IoThreadsDefaultToTheCpusInTheAffinityMask) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  Config c;
  EXPECT_EQ(c.io_thread_count(),
            threads_for(static_cast<std::size_t>(CPU_COUNT(&saved)), cgroup_cpu_limit()));
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &saved)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const std::size_t pinned = c.io_thread_count();
  c.io_threads = 3;
  const std::size_t explicit_count = c.io_thread_count();
  ASSERT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(pinned, 1u);
  EXPECT_EQ(explicit_count, 3u);
}

TEST(ConfigTest, EmptyOrCommentOnlyYamlGivesDefaults) {
  for (const char* text : {"", "# nothing configured\n", "---\n"}) {
    const Config c = Config::from_yaml(text, "sluice.yaml");
    EXPECT_EQ(c.http.listen, "127.0.0.1:8080") << text;
    EXPECT_TRUE(c.sources.empty()) << text;
  }
}

TEST(ConfigTest, FullYamlIsReadIntoEveryField) {
  const Config c = Config::from_yaml(R"(
http:
  listen: 0.0.0.0:9090
  path: /gateway/mcp
  allowed_origins: [http://localhost:6274, https://app.example.com]
  allowed_hosts: [sluice.internal, "sluice.internal:9090"]
  max_body_bytes: 2048
  header_timeout_ms: 1000
  body_timeout_ms: 2000
  idle_timeout_ms: 3000
  sse_keepalive_ms: 4000
session_key: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
log_level: debug
io_threads: 2
worker_threads: 12
demo_db: /var/lib/sluice/demo.sqlite
sources:
  - name: warehouse
    connection_string: "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=sales;Uid=me;Pwd=secret;"
    dialect: postgresql
    allow_writes: true
    pool: {min_size: 2, max_size: 6, connect_timeout_ms: 5000, validate_after_idle_ms: 0,
           validate_timeout_ms: 2500, idle_timeout_ms: 60000, max_lifetime_ms: 0,
           backoff_initial_ms: 50, backoff_max_ms: 1000, backoff_jitter: 0.5}
    limits: {max_rows: 10, max_bytes: 4096, timeout_ms: 1500, max_timeout_ms: 9000}
  - name: lake
    connection_string: "Driver=SQLite3;Database=/data/lake.sqlite;"
)",
                                     "sluice.yaml");
  EXPECT_EQ(c.http.listen, "0.0.0.0:9090");
  EXPECT_EQ(c.http.path, "/gateway/mcp");
  EXPECT_EQ(c.http.allowed_origins,
            (std::vector<std::string>{"http://localhost:6274", "https://app.example.com"}));
  EXPECT_EQ(c.http.allowed_hosts,
            (std::vector<std::string>{"sluice.internal", "sluice.internal:9090"}));
  EXPECT_EQ(c.http.max_body_bytes, 2048u);
  EXPECT_EQ(c.http.header_timeout, 1s);
  EXPECT_EQ(c.http.body_timeout, 2s);
  EXPECT_EQ(c.http.idle_timeout, 3s);
  EXPECT_EQ(c.http.sse_keepalive, 4s);
  EXPECT_EQ(c.session_key, kHexKey);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.io_threads, 2u);
  EXPECT_EQ(c.worker_threads, 12u);
  EXPECT_EQ(c.demo_db, "/var/lib/sluice/demo.sqlite");
  ASSERT_EQ(c.sources.size(), 2u);
  const SourceConfig& w = c.sources[0];
  EXPECT_EQ(w.name, "warehouse");
  EXPECT_EQ(w.connection_string,
            "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=sales;Uid=me;Pwd="
            "secret;");
  EXPECT_EQ(w.dialect, "postgresql");
  EXPECT_TRUE(w.allow_writes);
  EXPECT_EQ(w.pool.min_size, 2u);
  EXPECT_EQ(w.pool.max_size, 6u);
  EXPECT_EQ(w.pool.connect_timeout, 5s);
  EXPECT_EQ(w.pool.validate_after_idle, 0ms);
  EXPECT_EQ(w.pool.validate_timeout, 2500ms);
  EXPECT_EQ(w.pool.idle_timeout, 60s);
  EXPECT_EQ(w.pool.max_lifetime, 0ms);
  EXPECT_EQ(w.pool.backoff_initial, 50ms);
  EXPECT_EQ(w.pool.backoff_max, 1s);
  EXPECT_DOUBLE_EQ(w.pool.backoff_jitter, 0.5);
  EXPECT_EQ(w.limits.max_rows, 10u);
  EXPECT_EQ(w.limits.max_bytes, 4096u);
  EXPECT_EQ(w.limits.timeout, 1500ms);
  EXPECT_EQ(w.limits.max_timeout, 9s);
  const SourceConfig& lake = c.sources[1];
  EXPECT_EQ(lake.name, "lake");
  EXPECT_EQ(lake.dialect, "");
  EXPECT_FALSE(lake.allow_writes);
  EXPECT_EQ(lake.pool.max_size, pool::PoolParams{}.max_size);
  EXPECT_EQ(lake.limits.max_rows, QueryLimits{}.max_rows);
  EXPECT_EQ(validate_error(c), "");
}

TEST(ConfigTest, EmptyValueKeepsTheDefault) {
  const Config c = Config::from_yaml("http:\n  listen:\nsources:\nlog_level: ~\n", "f.yaml");
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(c.sources.empty());
}

TEST(ConfigTest, UnknownKeyNamesItsPathAndLineAndSuggestsTheNearestKey) {
  EXPECT_EQ(yaml_error("sources:\n"
                       "  - name: w\n"
                       "    connection_string: x\n"
                       "    pool:\n"
                       "      max_sise: 4\n"),
            "sluice.yaml:5: sources[0].pool.max_sise: unknown key; did you mean max_size?");
  EXPECT_EQ(yaml_error("http:\n  listn: 1.2.3.4:80\n"),
            "sluice.yaml:2: http.listn: unknown key; did you mean listen?");
  EXPECT_EQ(yaml_error("sourcs: []\n"),
            "sluice.yaml:1: sourcs: unknown key; did you mean sources?");
}

TEST(ConfigTest, UnknownKeyFarFromAnyKnownOneGetsNoSuggestion) {
  EXPECT_EQ(yaml_error("log_level: info\nbanana: 3\n"), "sluice.yaml:2: banana: unknown key");
}

TEST(ConfigTest, KeyGivenTwiceIsAnError) {
  EXPECT_EQ(yaml_error("log_level: info\nlog_level: debug\n"),
            "sluice.yaml:2: log_level: given more than once");
}

TEST(ConfigTest, WrongTypeNamesTheKeyAndTheExpectedType) {
  EXPECT_EQ(yaml_error("http:\n  max_body_bytes: lots\n"),
            "sluice.yaml:2: http.max_body_bytes: expected a non-negative integer, got 'lots'");
  EXPECT_EQ(yaml_error("io_threads: -1\n"),
            "sluice.yaml:1: io_threads: expected a non-negative integer, got '-1'");
  EXPECT_EQ(yaml_error("http:\n  header_timeout_ms: 10s\n"),
            "sluice.yaml:2: http.header_timeout_ms: expected a non-negative integer "
            "(milliseconds), got '10s'");
  EXPECT_EQ(yaml_error("sources:\n  - allow_writes: yes\n"),
            "sluice.yaml:2: sources[0].allow_writes: expected true or false, got 'yes'");
  EXPECT_EQ(yaml_error("sources:\n  - pool: {backoff_jitter: much}\n"),
            "sluice.yaml:2: sources[0].pool.backoff_jitter: expected a number, got 'much'");
  EXPECT_EQ(yaml_error("sources:\n  name: w\n"),
            "sluice.yaml:2: sources: expected a list of sources, got a mapping");
  EXPECT_EQ(yaml_error("http: [1]\n"), "sluice.yaml:1: http: expected a mapping, got a list");
  EXPECT_EQ(yaml_error("http:\n  allowed_hosts: example.com\n"),
            "sluice.yaml:2: http.allowed_hosts: expected a list of strings, got 'example.com'");
  EXPECT_EQ(yaml_error("worker_threads: 99999999999999999999999\n"),
            "sluice.yaml:1: worker_threads: expected a non-negative integer, got "
            "'99999999999999999999999' (too large)");
  EXPECT_EQ(yaml_error("just a string\n"),
            "sluice.yaml:1: expected a mapping of settings, got 'just a string'");
}

TEST(ConfigTest, UnquotedIpv6ListenGetsAHintToQuoteIt) {
  EXPECT_EQ(yaml_error("http:\n  listen: [::1]\n"),
            "sluice.yaml:2: http.listen: expected a string, got a list (quote values that start "
            "with '[' or '{', such as \"[::1]:8080\")");
  const Config c = Config::from_yaml("http:\n  listen: \"[::1]:8080\"\n", "sluice.yaml");
  EXPECT_EQ(c.http.listen, "[::1]:8080");
}

TEST(ConfigTest, YamlSyntaxErrorNamesFileAndLine) {
  EXPECT_EQ(yaml_error("http:\n  allowed_origins: [http://a.example\n  path: /mcp\n"),
            "sluice.yaml:3:7: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(yaml_error("log_level: info\n---\nlog_level: debug\n"),
            "sluice.yaml: expected one YAML document, found 2");
}

TEST(ConfigTest, LoadFileReadsTheFileAndNamesItInErrors) {
  const TempFile good("log_level: warn\n");
  EXPECT_EQ(Config::load_file(good.path()).log_level, "warn");

  const TempFile bad("log_levl: warn\n");
  EXPECT_EQ(error_of([&] { Config::load_file(bad.path()); }),
            bad.path().string() + ":1: log_levl: unknown key; did you mean log_level?");

  const auto missing = bad.path().parent_path() / "missing.yaml";
  EXPECT_EQ(error_of([&] { Config::load_file(missing); }),
            missing.string() + ": cannot open: No such file or directory");
  EXPECT_EQ(error_of([&] { Config::load_file(bad.path().parent_path()); }),
            bad.path().parent_path().string() + ": is a directory, not a config file");
}

TEST(ConfigTest, ListenMustBeHostAndPortFrom1To65535) {
  Config c;
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":8080", "localhost:http",
                          "::1:8080", "[::1]", "[]:80", "[::1]8080", "host name:80", ""}) {
    c.http.listen = bad;
    EXPECT_EQ(validate_error(c), "http.listen: '" + std::string(bad) +
                                     "' must be HOST:PORT with a port from 1 to 65535 (IPv6: "
                                     "[::1]:PORT)");
  }
  c.http.listen = "[::1]:8443";
  EXPECT_EQ(validate_error(c), "");
  EXPECT_EQ(c.http.listen_address().host, "::1");
  EXPECT_EQ(c.http.listen_address().port, 8443);
  c.http.listen = "sluice.internal:65535";
  EXPECT_EQ(c.http.listen_address().host, "sluice.internal");
  EXPECT_EQ(c.http.listen_address().port, 65535);
}

TEST(ConfigTest, DuplicateSourceNamesAreAnErrorIgnoringCase) {
  Config c;
  c.sources = {source("warehouse", kPg), source("lake", kSqlite), source("Warehouse", kSqlite)};
  EXPECT_EQ(validate_error(c),
            "sources[2].name: 'Warehouse' is already the name of sources[0] (names are compared "
            "ignoring case)");
}

TEST(ConfigTest, SourceNameMustMatchThePattern) {
  Config c;
  c.sources = {source("ware house", kPg)};
  EXPECT_EQ(validate_error(c), "sources[0].name: 'ware house' must match [A-Za-z0-9_-]{1,64}");
  c.sources[0].name = std::string(65, 'a');
  EXPECT_EQ(validate_error(c),
            "sources[0].name: '" + std::string(65, 'a') + "' must match [A-Za-z0-9_-]{1,64}");
  c.sources[0].name = std::string(64, 'a');
  EXPECT_EQ(validate_error(c), "");
  c.sources[0].name = "";
  EXPECT_EQ(validate_error(c), "sources[0].name: is required");
  c.sources[0] = source("w", "");
  EXPECT_EQ(validate_error(c), "sources[0].connection_string: is required");
}

TEST(ConfigTest, PoolErrorsArePrefixedWithTheSource) {
  Config c;
  c.sources = {source("warehouse", kPg), source("lake", kSqlite)};
  c.sources[1].pool.max_size = 0;
  EXPECT_EQ(validate_error(c), "sources[1].pool.max_size: must be at least 1");
  c.sources[1].pool = {};
  c.sources[1].pool.min_size = 9;
  EXPECT_EQ(validate_error(c), "sources[1].pool.min_size: must not exceed max_size (8)");
}

TEST(ConfigTest, PoolErrorFromYamlIsPrefixedToo) {
  const Config c = Config::from_yaml(
      "sources:\n  - name: w\n    connection_string: 'Driver=SQLite3;Database=x'\n"
      "    pool: {connect_timeout_ms: 0}\n",
      "sluice.yaml");
  EXPECT_EQ(validate_error(c), "sources[0].pool.connect_timeout: must be positive");
}

TEST(ConfigTest, LimitsAndDurationsAreChecked) {
  Config c;
  c.sources = {source("w", kPg)};
  c.sources[0].limits.timeout = 10min;
  EXPECT_EQ(validate_error(c),
            "sources[0].limits.timeout: must not exceed max_timeout (300000 ms)");
  c.sources[0].limits = {};
  c.sources[0].limits.max_rows = 0;
  EXPECT_EQ(validate_error(c), "sources[0].limits.max_rows: must be at least 1");
  c.sources[0].limits = {};
  c.http.body_timeout = 0ms;
  EXPECT_EQ(validate_error(c), "http.body_timeout: must be positive");
  EXPECT_EQ(yaml_error("http:\n  idle_timeout_ms: 1000000000001\n"),
            "sluice.yaml:2: http.idle_timeout_ms: must be at most 1000000000000 ms");
}

TEST(ConfigTest, TopLevelValuesAreChecked) {
  Config c;
  c.log_level = "verbose";
  EXPECT_EQ(validate_error(c),
            "log_level: 'verbose' must be one of trace, debug, info, warn, error, off");
  c = {};
  c.io_threads = 1025;
  EXPECT_EQ(validate_error(c), "io_threads: must be at most 1024 (0 = one per CPU)");
  c = {};
  c.http.path = "mcp";
  EXPECT_EQ(validate_error(c),
            "http.path: 'mcp' must start with '/' and hold no spaces, '?' or '#'");
  c = {};
  c.http.max_body_bytes = 0;
  EXPECT_EQ(validate_error(c), "http.max_body_bytes: must be at least 1");
}

TEST(ConfigTest, AllowedOriginsMustBeExactOrigins) {
  Config c;
  c.http.allowed_origins = {"http://localhost:6274", "https://[::1]:8443", "https://app.example"};
  EXPECT_EQ(validate_error(c), "");
  c.http.allowed_origins = {"http://localhost:6274", "http://localhost:6274/"};
  EXPECT_EQ(validate_error(c),
            "http.allowed_origins[1]: 'http://localhost:6274/' is not an origin: expected "
            "scheme://host[:port] with no path, e.g. http://localhost:6274");
  for (const char* bad : {"localhost:6274", "*", "null", "http://", "http://a:0", "http://u@a"}) {
    c.http.allowed_origins = {bad};
    EXPECT_NE(validate_error(c), "") << bad;
  }
  c.http.allowed_origins = {};
  c.http.allowed_hosts = {"example.com/"};
  EXPECT_EQ(validate_error(c),
            "http.allowed_hosts[0]: 'example.com/' is not a Host header value, e.g. example.com "
            "or example.com:8080");
}

TEST(ConfigTest, SessionKeyMustDecodeToAtLeast32BytesAndIsNeverEchoed) {
  Config c;
  c.session_key = kHexKey;
  EXPECT_EQ(validate_error(c), "");
  EXPECT_EQ(c.session_key_bytes().size(), 32u);
  EXPECT_EQ(c.session_key_bytes()[31], '\x1f');
  const std::string bytes = c.session_key_bytes();
  c.session_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";  // the same 32 bytes
  EXPECT_EQ(c.session_key_bytes(), bytes);
  c.session_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";  // unpadded
  EXPECT_EQ(validate_error(c), "");
  c.session_key = "c2hvcnRzZWNyZXQ=";
  EXPECT_EQ(validate_error(c), "session_key: must decode to at least 32 bytes, got 11");
  c.session_key = "not a key at all!";
  EXPECT_EQ(validate_error(c), "session_key: must be hex or base64");
  EXPECT_EQ(Config{}.session_key_bytes(), "");
}

TEST(ConfigTest, DialectIsDetectedFromTheDriver) {
  EXPECT_EQ(SourceConfig::detect_dialect(kPg), "postgresql");
  EXPECT_EQ(SourceConfig::detect_dialect("DRIVER=PostgreSQL ANSI;Server=x"), "postgresql");
  EXPECT_EQ(SourceConfig::detect_dialect(kSqlite), "sqlite");
  EXPECT_EQ(SourceConfig::detect_dialect("Server=x; driver = {SQLite3} ;Database=y"), "sqlite");
  EXPECT_EQ(
      SourceConfig::detect_dialect("Driver=/usr/lib/snowflake/odbc/lib/libSnowflake.so;Server=a"),
      "snowflake");
  EXPECT_EQ(SourceConfig::detect_dialect("Driver={Odd;}}Snowflake};Server=x"), "snowflake");
  // Only the Driver counts, not a database that happens to be named like one.
  EXPECT_EQ(SourceConfig::detect_dialect("DSN=warehouse;Database=postgres"), "");
  EXPECT_EQ(SourceConfig::detect_dialect("Driver={MySQL ODBC 8.0};Server=x"), "");
  EXPECT_EQ(SourceConfig::detect_dialect(""), "");
  EXPECT_EQ(SourceConfig::detect_dialect("postgresql://me@db/sales"), "postgresql");
  EXPECT_EQ(SourceConfig::detect_dialect("postgres://me@db/sales"), "postgresql");
}

TEST(ConfigTest, APostgresqlUrlIsCheckedWhenTheConfigIsAndNeverEchoesThePassword) {
  Config c;
  c.sources = {source("w", "postgresql://me:hunter2@db:5432/sales?sslmode=disable")};
  EXPECT_NO_THROW(c.validate());
  c.sources[0].connection_string = "postgresql://me:hunter2@db:5432/sales?sslmode=require";
  const std::string tls = validate_error(c);
  EXPECT_EQ(tls.rfind("sources[0].connection_string: PostgreSQL URL: sslmode=require needs TLS", 0),
            0u)
      << tls;
  EXPECT_EQ(tls.find("hunter2"), std::string::npos);
  c.sources[0].connection_string = "postgresql://me:hunter2@db:99999/sales";
  EXPECT_NE(validate_error(c).find("port must be 1..65535"), std::string::npos);
  c.sources[0].connection_string = "postgresql://me:hunter2@db/sales";
  c.sources[0].dialect = "sqlite";
  EXPECT_EQ(validate_error(c),
            "sources[0].dialect: 'sqlite' cannot be used with a postgresql:// URL");
}

TEST(ConfigTest, DialectMustBeKnownOrDetectableAndErrorsNeverShowTheConnectionString) {
  Config c;
  c.sources = {source("w", "DSN=warehouse;Uid=me;Pwd=hunter2")};
  const std::string undetectable = validate_error(c);
  EXPECT_EQ(undetectable,
            "sources[0].dialect: cannot be detected from the connection string's Driver; set it "
            "to postgresql, sqlite, snowflake or e6data");
  c.sources[0].dialect = "snowflake";
  EXPECT_EQ(validate_error(c), "");
  c.sources[0].dialect = "mysql";
  EXPECT_EQ(validate_error(c),
            "sources[0].dialect: 'mysql' must be one of postgresql, sqlite, snowflake, e6data, or "
            "empty to detect it from the connection string");
  c.sources[0] = source("bad name", kPg);
  EXPECT_EQ(validate_error(c).find("hunter2"), std::string::npos);
  EXPECT_EQ(yaml_error("sources:\n  - connection_string: {Pwd: hunter2}\n").find("hunter2"),
            std::string::npos);
}

TEST(ConfigTest, EnvironmentOverridesEachSetting) {
  Config c;
  c.apply_env({
      "PATH=/usr/bin",
      "SLUICE_LISTEN=0.0.0.0:9000",
      "SLUICE_LOG_LEVEL=trace",
      std::string("SLUICE_SESSION_KEY=") + kHexKey,
      "SLUICE_MAX_BODY_BYTES=4096",
      "SLUICE_ALLOWED_ORIGINS=http://localhost:6274, https://app.example ,",
      "SLUICE_ALLOWED_HOSTS=sluice.internal",
      "SLUICE_IO_THREADS=3",
      "SLUICE_WORKER_THREADS=7",
      "SLUICE_DEMO_DB=/tmp/demo.sqlite",
      "SLUICE_CONFIG=/etc/sluice.yaml",
      "SLUICE_PG_BINDIR=/usr/lib/postgresql/15/bin",
      "NOT_AN_ASSIGNMENT",
  });
  EXPECT_EQ(c.http.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.log_level, "trace");
  EXPECT_EQ(c.session_key, kHexKey);
  EXPECT_EQ(c.http.max_body_bytes, 4096u);
  EXPECT_EQ(c.http.allowed_origins,
            (std::vector<std::string>{"http://localhost:6274", "https://app.example"}));
  EXPECT_EQ(c.http.allowed_hosts, (std::vector<std::string>{"sluice.internal"}));
  EXPECT_EQ(c.io_threads, 3u);
  EXPECT_EQ(c.worker_threads, 7u);
  EXPECT_EQ(c.demo_db, "/tmp/demo.sqlite");
  EXPECT_EQ(validate_error(c), "");
  c.apply_env({"SLUICE_ALLOWED_ORIGINS="});
  EXPECT_TRUE(c.http.allowed_origins.empty());
}

TEST(ConfigTest, EnvironmentSourceAddsOrReplacesTheConnectionString) {
  Config c = Config::from_yaml(
      "sources:\n  - name: warehouse\n    connection_string: 'Driver=SQLite3;Database=a'\n"
      "    allow_writes: true\n    pool: {max_size: 3}\n",
      "sluice.yaml");
  c.apply_env({std::string("SLUICE_SOURCE_WAREHOUSE=") + kPg,
               "SLUICE_SOURCE_LAKE=Driver=SQLite3;Database=/data/lake.sqlite"});
  ASSERT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.sources[0].name, "warehouse");
  EXPECT_EQ(c.sources[0].connection_string, kPg);
  EXPECT_TRUE(c.sources[0].allow_writes);
  EXPECT_EQ(c.sources[0].pool.max_size, 3u);
  EXPECT_EQ(c.sources[1].name, "lake");
  EXPECT_EQ(c.sources[1].connection_string, "Driver=SQLite3;Database=/data/lake.sqlite");
  EXPECT_EQ(validate_error(c), "");
}

TEST(ConfigTest, EnvironmentErrorsNameTheVariable) {
  Config c;
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_FOO=1"}); }),
            "SLUICE_FOO: unknown environment variable (see sluice --help)");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_LISTN=1.2.3.4:80"}); }),
            "SLUICE_LISTN: unknown environment variable; did you mean SLUICE_LISTEN?");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_IO_THREADS=two"}); }),
            "SLUICE_IO_THREADS: expected a non-negative integer, got 'two'");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_SOURCE_=Driver=SQLite3"}); }),
            "SLUICE_SOURCE_: source name '' must match [A-Za-z0-9_-]{1,64}");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_SOURCE_LAKE="}); }),
            "SLUICE_SOURCE_LAKE: needs a connection string");
  // Not ours: left alone whatever they hold.
  EXPECT_EQ(error_of([&] { c.apply_env({"sluice_foo=1", "XSLUICE_FOO=1"}); }), "");
}

TEST(ConfigTest, PrecedenceIsFileThenEnvironmentThenFlags) {
  const TempFile file(
      "http:\n  listen: 10.0.0.1:1111\n  max_body_bytes: 100\nlog_level: warn\n"
      "io_threads: 4\ndemo_db: /file/demo.sqlite\n"
      "sources:\n  - name: warehouse\n    connection_string: 'Driver=SQLite3;Database=file'\n");
  const std::vector<std::string> env = {"SLUICE_CONFIG=" + file.path().string(),
                                        "SLUICE_LISTEN=10.0.0.2:2222", "SLUICE_LOG_LEVEL=error",
                                        "SLUICE_IO_THREADS=5",
                                        "SLUICE_SOURCE_WAREHOUSE=Driver=SQLite3;Database=env"};

  const Config from_file = resolve_config(CommandLine{}, {"SLUICE_CONFIG=" + file.path().string()});
  EXPECT_EQ(from_file.http.listen, "10.0.0.1:1111");
  EXPECT_EQ(from_file.log_level, "warn");

  const Config from_env = resolve_config(CommandLine{}, env);
  EXPECT_EQ(from_env.http.listen, "10.0.0.2:2222");
  EXPECT_EQ(from_env.log_level, "error");
  EXPECT_EQ(from_env.io_threads, 5u);
  EXPECT_EQ(from_env.http.max_body_bytes, 100u);  // only in the file
  EXPECT_EQ(from_env.sources.at(0).connection_string, "Driver=SQLite3;Database=env");

  const CommandLine cli =
      parse({"--listen", "10.0.0.3:3333", "--log-level", "debug", "--source",
             "warehouse=Driver=SQLite3;Database=flag", "--demo-db", "/flag/demo.sqlite"});
  const Config from_flags = resolve_config(cli, env);
  EXPECT_EQ(from_flags.http.listen, "10.0.0.3:3333");
  EXPECT_EQ(from_flags.log_level, "debug");
  EXPECT_EQ(from_flags.io_threads, 5u);
  EXPECT_EQ(from_flags.demo_db, "/flag/demo.sqlite");
  ASSERT_EQ(from_flags.sources.size(), 1u);
  EXPECT_EQ(from_flags.sources[0].connection_string, "Driver=SQLite3;Database=flag");
  EXPECT_EQ(from_flags.sources[0].dialect, "sqlite");  // filled in once detected
}

TEST(ConfigTest, ConfigFlagWinsOverTheEnvironmentsFile) {
  const TempFile file("log_level: warn\n");
  const CommandLine cli = parse({"--config", file.path().c_str()});
  EXPECT_EQ(resolve_config(cli, {"SLUICE_CONFIG=/nonexistent.yaml"}).log_level, "warn");
  EXPECT_EQ(error_of([] { resolve_config(CommandLine{}, {"SLUICE_CONFIG=/nonexistent.yaml"}); }),
            "/nonexistent.yaml: cannot open: No such file or directory");
}

TEST(ConfigTest, AllowWritesFlagNeedsAnExistingSource) {
  const CommandLine cli =
      parse({"--source", "lake=Driver=SQLite3;Database=x", "--allow-writes", "LAKE"});
  const Config c = resolve_config(cli, {});
  ASSERT_EQ(c.sources.size(), 1u);
  EXPECT_TRUE(c.sources[0].allow_writes);
  EXPECT_EQ(error_of([] {
              resolve_config(parse({"--allow-writes", "lake"}), {});
            }),
            "--allow-writes: no source named 'lake'");
}

TEST(ConfigTest, ResolveValidatesTheResult) {
  EXPECT_EQ(error_of([] {
              resolve_config(parse({"--listen", "localhost"}), {});
            }),
            "http.listen: 'localhost' must be HOST:PORT with a port from 1 to 65535 (IPv6: "
            "[::1]:PORT)");
  EXPECT_EQ(resolve_config(CommandLine{}, {}).http.listen, "127.0.0.1:8080");
}

TEST(CommandLineTest, NoArgumentsServesWithNothingSet) {
  const CommandLine cl = parse({});
  EXPECT_EQ(cl.action, CommandLine::Action::serve);
  EXPECT_FALSE(cl.config_file);
  EXPECT_FALSE(cl.listen);
  EXPECT_TRUE(cl.sources.empty());
  EXPECT_TRUE(cl.allow_writes.empty());
  EXPECT_FALSE(cl.demo_db);
  EXPECT_FALSE(cl.log_level);
}

TEST(CommandLineTest, EveryFlagIsParsed) {
  const CommandLine cl =
      parse({"--config", "/etc/sluice.yaml", "--listen", "[::1]:8080", "--source",
             "warehouse=Driver={PostgreSQL Unicode};Pwd=a=b", "--source=lake=Driver=SQLite3",
             "--allow-writes", "lake", "--allow-writes=warehouse", "--demo-db", "/tmp/demo.sqlite",
             "--log-level=debug", "--stdio"});
  EXPECT_EQ(cl.action, CommandLine::Action::stdio);
  EXPECT_EQ(cl.config_file, std::filesystem::path("/etc/sluice.yaml"));
  EXPECT_EQ(cl.listen, "[::1]:8080");
  const std::vector<std::pair<std::string, std::string>> sources = {
      {"warehouse", "Driver={PostgreSQL Unicode};Pwd=a=b"}, {"lake", "Driver=SQLite3"}};
  EXPECT_EQ(cl.sources, sources);
  EXPECT_EQ(cl.allow_writes, (std::vector<std::string>{"lake", "warehouse"}));
  EXPECT_EQ(cl.demo_db, std::filesystem::path("/tmp/demo.sqlite"));
  EXPECT_EQ(cl.log_level, "debug");
}

TEST(CommandLineTest, CheckConfigTakesTheFile) {
  const CommandLine cl = parse({"check-config", "sluice.yaml", "--log-level", "warn"});
  EXPECT_EQ(cl.action, CommandLine::Action::check_config);
  EXPECT_EQ(cl.config_file, std::filesystem::path("sluice.yaml"));
  EXPECT_EQ(cl.log_level, "warn");
  EXPECT_EQ(parse_error({"check-config"}), "check-config needs a FILE to check");
  EXPECT_EQ(parse_error({"check-config", "a.yaml", "--config", "b.yaml"}),
            "--config cannot be combined with check-config, which names the file");
  EXPECT_EQ(parse_error({"check-config", "a.yaml", "--stdio"}),
            "--stdio cannot be combined with check-config");
  EXPECT_EQ(parse_error({"--listen", "127.0.0.1:1", "check-config", "a.yaml"}),
            "unexpected argument 'check-config' (check-config must come first); see sluice --help");
}

TEST(CommandLineTest, HelpAndVersionEndParsing) {
  EXPECT_EQ(parse({"--help"}).action, CommandLine::Action::help);
  EXPECT_EQ(parse({"-h"}).action, CommandLine::Action::help);
  EXPECT_EQ(parse({"--listen", "x:1", "--help", "--bogus"}).action, CommandLine::Action::help);
  EXPECT_EQ(parse({"check-config", "--help"}).action, CommandLine::Action::help);
  EXPECT_EQ(parse({"--version"}).action, CommandLine::Action::version);
  EXPECT_EQ(parse_error({"--version=2"}), "--version takes no value");
}

TEST(CommandLineTest, UnknownOptionIsNamedWithoutItsValue) {
  EXPECT_EQ(parse_error({"--lisen", "1.2.3.4:80"}), "unknown option '--lisen'; see sluice --help");
  EXPECT_EQ(parse_error({"--sorce=w=Driver=x;Pwd=hunter2"}),
            "unknown option '--sorce'; see sluice --help");
  EXPECT_EQ(parse_error({"-x"}), "unknown option '-x'; see sluice --help");
  EXPECT_EQ(parse_error({"serve"}), "unexpected argument 'serve'; see sluice --help");
  const std::string stray = parse_error({"--listen", "1.2.3.4:80", "Driver=x;Pwd=hunter2"});
  EXPECT_EQ(stray,
            "unexpected argument #3 (not shown: it may hold a connection string; sources are "
            "given as --source NAME=CONNSTR); see sluice --help");
}

TEST(CommandLineTest, MissingValueNamesTheFlagAndWhatItNeeds) {
  EXPECT_EQ(parse_error({"--listen"}), "--listen needs a value HOST:PORT");
  EXPECT_EQ(parse_error({"--listen", "--stdio"}), "--listen needs a value HOST:PORT");
  EXPECT_EQ(parse_error({"--listen="}), "--listen needs a value HOST:PORT");
  EXPECT_EQ(parse_error({"--config"}), "--config needs a value FILE");
  EXPECT_EQ(parse_error({"--source", "warehouse"}), "--source needs a value NAME=CONNSTR");
  EXPECT_EQ(parse_error({"--source", "=Driver=x"}), "--source needs a value NAME=CONNSTR");
  EXPECT_EQ(parse_error({"--allow-writes"}), "--allow-writes needs a value NAME");
  EXPECT_EQ(parse_error({"--demo-db"}), "--demo-db needs a value PATH");
  EXPECT_EQ(parse_error({"--log-level"}), "--log-level needs a value LEVEL");
}

TEST(CommandLineTest, RepeatedOrMalformedFlagsAreErrors) {
  EXPECT_EQ(parse_error({"--listen", "a:1", "--listen", "b:2"}), "--listen given more than once");
  EXPECT_EQ(parse_error({"--source", "w=Driver=x", "--source", "W=Driver=y"}),
            "--source: 'W' given more than once");
  EXPECT_EQ(parse_error({"--source", "ware house=Driver=x"}),
            "--source: source name 'ware house' must match [A-Za-z0-9_-]{1,64}");
}

TEST(CommandLineTest, UsageDocumentsEveryFlagVariableAndExample) {
  const std::string_view usage = CommandLine::usage();
  for (const char* needle : {"--config FILE",
                             "--listen HOST:PORT",
                             "--source NAME=CONNSTR",
                             "--allow-writes NAME",
                             "--demo-db PATH",
                             "--log-level LEVEL",
                             "--stdio",
                             "--help",
                             "--version",
                             "check-config FILE",
                             "SLUICE_CONFIG",
                             "SLUICE_LISTEN",
                             "SLUICE_LOG_LEVEL",
                             "SLUICE_SESSION_KEY",
                             "SLUICE_MAX_BODY_BYTES",
                             "SLUICE_ALLOWED_ORIGINS",
                             "SLUICE_ALLOWED_HOSTS",
                             "SLUICE_IO_THREADS",
                             "SLUICE_WORKER_THREADS",
                             "SLUICE_DEMO_DB",
                             "SLUICE_RATE_LIMIT",
                             "SLUICE_MAX_IN_FLIGHT",
                             "SLUICE_SOURCE_<NAME>",
                             "max_size",
                             "sse_keepalive_ms",
                             "backoff_jitter",
                             "max_timeout_ms",
                             "per_client_in_flight",
                             "context_affinity",
                             "pipeline_depth",
                             "max_per_client",
                             "hourly_quota",
                             "in_flight_retry_after_ms",
                             "-32029",
                             "http://127.0.0.1:8080/mcp",
                             "MCP Inspector",
                             "Claude Code"}) {
    EXPECT_NE(usage.find(needle), std::string_view::npos) << needle;
  }
}

TEST(CommandLineTest, UsageConfigSampleIsAValidConfigOfDefaults) {
  const std::string usage(CommandLine::usage());
  const auto begin = usage.find("\n  http:\n");
  const auto end = usage.find("\n\n", begin + 1);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::string sample;
  std::istringstream lines(usage.substr(begin + 1, end - begin));
  for (std::string line; std::getline(lines, line);) sample += line.substr(2) + "\n";
  const Config c = Config::from_yaml(sample, "usage");
  EXPECT_EQ(validate_error(c), "");
  const Config defaults;
  EXPECT_EQ(c.http.listen, defaults.http.listen);
  EXPECT_EQ(c.http.max_body_bytes, defaults.http.max_body_bytes);
  EXPECT_EQ(c.http.sse_keepalive, defaults.http.sse_keepalive);
  EXPECT_EQ(c.worker_threads, defaults.worker_threads);
  ASSERT_EQ(c.sources.size(), 1u);
  const pool::PoolParams p;
  EXPECT_EQ(c.sources[0].pool.validate_timeout, p.validate_timeout);
  EXPECT_EQ(c.sources[0].pool.max_lifetime, p.max_lifetime);
  EXPECT_DOUBLE_EQ(c.sources[0].pool.backoff_jitter, p.backoff_jitter);
  EXPECT_EQ(c.sources[0].limits.max_timeout, QueryLimits{}.max_timeout);
  EXPECT_EQ(c.sources[0].per_client_in_flight, SourceConfig{}.per_client_in_flight);
  EXPECT_EQ(c.sources[0].context_affinity, SourceConfig{}.context_affinity);
  EXPECT_EQ(c.sources[0].pipeline_depth, SourceConfig{}.pipeline_depth);
  EXPECT_EQ(c.sessions.idle_timeout, defaults.sessions.idle_timeout);
  EXPECT_EQ(c.sessions.max_sessions_per_client, defaults.sessions.max_sessions_per_client);
  EXPECT_EQ(c.sessions.max_sessions, defaults.sessions.max_sessions);
  EXPECT_EQ(c.limits.defaults, defaults.limits.defaults);
  EXPECT_TRUE(c.limits.per_client.empty());
  EXPECT_TRUE(c.limits.per_source.empty());
  EXPECT_EQ(c.limits.in_flight_retry_after, defaults.limits.in_flight_retry_after);
}

TEST(ConfigTest, SummaryDescribesSourcesButNeverSecrets) {
  Config c;
  c.session_key = kHexKey;
  c.sources = {source("warehouse", kPg)};
  c.sources[0].allow_writes = true;
  const std::string s = c.summary();
  EXPECT_NE(s.find("http://127.0.0.1:8080/mcp"), std::string::npos) << s;
  EXPECT_NE(s.find("warehouse: postgresql, writes allowed, pool 1..8"), std::string::npos) << s;
  EXPECT_NE(s.find("Session key: configured (32 bytes)"), std::string::npos) << s;
  EXPECT_NE(s.find("9 ODBC workers (automatic)"), std::string::npos) << s;
  EXPECT_EQ(s.find("hunter2"), std::string::npos) << s;
  EXPECT_EQ(s.find(kHexKey), std::string::npos) << s;
  EXPECT_NE(Config{}.summary().find("built-in demo warehouse"), std::string::npos);
}

TEST(ConfigTest, SessionAndLimitDefaultsSuitAProductionGateway) {
  const Config c;
  EXPECT_EQ(c.sessions.idle_timeout, 30min);
  EXPECT_EQ(c.sessions.max_sessions_per_client, 64u);
  EXPECT_EQ(c.sessions.max_sessions, 10'000u);
  EXPECT_DOUBLE_EQ(c.limits.defaults.rate_per_second, 50);
  EXPECT_DOUBLE_EQ(c.limits.defaults.burst, 100);
  EXPECT_EQ(c.limits.defaults.max_in_flight, 16u);
  EXPECT_EQ(c.limits.defaults.hourly_quota, 0u);
  EXPECT_EQ(c.limits.defaults.daily_quota, 0u);
  EXPECT_TRUE(c.limits.per_client.empty());
  EXPECT_TRUE(c.limits.per_source.empty());
  EXPECT_EQ(c.limits.in_flight_retry_after, 1s);
  const SourceConfig s;
  EXPECT_EQ(s.per_client_in_flight, 4u);  // half of the default pool of 8
  EXPECT_TRUE(s.context_affinity);
  EXPECT_EQ(validate_error(c), "");
}

TEST(ConfigTest, SessionsAreReadFromYaml) {
  const Config c = Config::from_yaml(
      "sessions:\n  idle_timeout_ms: 60000\n  max_per_client: 0\n  max: 500\n", "sluice.yaml");
  EXPECT_EQ(c.sessions.idle_timeout, 1min);
  EXPECT_EQ(c.sessions.max_sessions_per_client, 0u);
  EXPECT_EQ(c.sessions.max_sessions, 500u);
  EXPECT_EQ(validate_error(c), "");
  EXPECT_EQ(yaml_error("sessions:\n  max_per_clent: 3\n"),
            "sluice.yaml:2: sessions.max_per_clent: unknown key; did you mean max_per_client?");
  EXPECT_EQ(yaml_error("sessions:\n  idle_timeout: 60000\n"),
            "sluice.yaml:2: sessions.idle_timeout: unknown key; did you mean idle_timeout_ms?");
  EXPECT_EQ(yaml_error("sessions:\n  max: many\n"),
            "sluice.yaml:2: sessions.max: expected a non-negative integer, got 'many'");
}

TEST(ConfigTest, SessionIdleTimeoutMustBePositiveAndBounded) {
  EXPECT_EQ(validate_error(Config::from_yaml("sessions: {idle_timeout_ms: 0}\n", "sluice.yaml")),
            "sessions.idle_timeout: must be positive");
  Config c;
  c.sessions.idle_timeout = std::chrono::milliseconds(1'000'000'000'001);
  EXPECT_EQ(validate_error(c), "sessions.idle_timeout: must be at most 1000000000000 ms");
}

TEST(ConfigTest, LimitsAreReadAndOverridesStartFromTheDefault) {
  const Config c = Config::from_yaml(R"(
limits:
  clients: {"claude-code@127.0.0.1": {rate: 5, burst: 10}, "ci@10.0.0.7": ~}
  sources: {warehouse: {daily_quota: 10000}}
  default: {rate: 20, burst: 40, max_in_flight: 8, hourly_quota: 600, daily_quota: 0}
  in_flight_retry_after_ms: 250
sources:
  - name: warehouse
    connection_string: "Driver=SQLite3;Database=/data/w.sqlite"
)",
                                     "sluice.yaml");
  const session::LimitPolicy& d = c.limits.defaults;
  EXPECT_DOUBLE_EQ(d.rate_per_second, 20);
  EXPECT_DOUBLE_EQ(d.burst, 40);
  EXPECT_EQ(d.max_in_flight, 8u);
  EXPECT_EQ(d.hourly_quota, 600u);
  EXPECT_EQ(d.daily_quota, 0u);
  EXPECT_EQ(c.limits.in_flight_retry_after, 250ms);
  ASSERT_EQ(c.limits.per_client.size(), 2u);
  // Written before default in the file, and still based on it.
  session::LimitPolicy claude = d;
  claude.rate_per_second = 5;
  claude.burst = 10;
  EXPECT_EQ(c.limits.per_client.at("claude-code@127.0.0.1"), claude);
  EXPECT_EQ(c.limits.per_client.at("ci@10.0.0.7"), d);  // no value: the default
  ASSERT_EQ(c.limits.per_source.size(), 1u);
  session::LimitPolicy warehouse = d;
  warehouse.daily_quota = 10'000;
  EXPECT_EQ(c.limits.per_source.at("warehouse"), warehouse);
  EXPECT_EQ(validate_error(c), "");
}

TEST(ConfigTest, LimitsWithoutADefaultSectionBuildOnTheBuiltInDefault) {
  const Config c = Config::from_yaml("limits:\n  clients: {bot: {max_in_flight: 2}}\n", "f.yaml");
  session::LimitPolicy bot = Config::default_limits().defaults;
  bot.max_in_flight = 2;
  EXPECT_EQ(c.limits.per_client.at("bot"), bot);
  EXPECT_EQ(c.limits.defaults, Config::default_limits().defaults);
}

TEST(ConfigTest, LimitYamlErrorsNameTheKeyAndLine) {
  EXPECT_EQ(yaml_error("limits:\n  default: {rat: 5}\n"),
            "sluice.yaml:2: limits.default.rat: unknown key; did you mean rate?");
  EXPECT_EQ(yaml_error("limits:\n  defaults: {rate: 5}\n"),
            "sluice.yaml:2: limits.defaults: unknown key; did you mean default?");
  EXPECT_EQ(yaml_error("limits:\n  default: {rate: fast}\n"),
            "sluice.yaml:2: limits.default.rate: expected a number, got 'fast'");
  EXPECT_EQ(yaml_error("limits:\n  default: {max_in_flight: 4294967296}\n"),
            "sluice.yaml:2: limits.default.max_in_flight: must be at most 4294967295");
  EXPECT_EQ(yaml_error("limits:\n  clients: [a]\n"),
            "sluice.yaml:2: limits.clients: expected a mapping of client ids to limits, got a "
            "list");
  EXPECT_EQ(yaml_error("limits:\n  sources: {warehouse: {dayly_quota: 1}}\n"),
            "sluice.yaml:2: limits.sources.warehouse.dayly_quota: unknown key; did you mean "
            "daily_quota?");
  EXPECT_EQ(yaml_error("limits:\n  clients:\n    a@host: {rate: 1}\n    a@host: {rate: 2}\n"),
            "sluice.yaml:4: limits.clients['a@host']: given more than once");
  EXPECT_EQ(yaml_error("limits:\n  clients:\n    \"a.b@10.0.0.1\": {burst: [1]}\n"),
            "sluice.yaml:3: limits.clients['a.b@10.0.0.1'].burst: expected a number, got a list");
}

TEST(ConfigTest, LimitValuesAreCheckedUnderTheNamesTheFileUses) {
  EXPECT_EQ(validate_error(Config::from_yaml("limits: {default: {rate: -1}}\n", "f.yaml")),
            "limits.default.rate: must be a finite number, at least 0 (0 = unlimited)");
  EXPECT_EQ(
      validate_error(Config::from_yaml(
          "limits: {clients: {\"claude-code@127.0.0.1\": {rate: 5, burst: 0.5}}}\n", "f.yaml")),
      "limits.clients['claude-code@127.0.0.1'].burst: must be at least 1 when rate is set");
  Config c;
  c.limits.defaults.rate_per_second = 0;
  c.limits.defaults.burst = 0;  // ignored without a rate
  EXPECT_EQ(validate_error(c), "");
  c.limits.per_client[""] = c.limits.defaults;
  EXPECT_EQ(validate_error(c), "limits.clients['']: a client id must not be empty");
  c.limits = {};
  c.limits.in_flight_retry_after = -1ms;
  EXPECT_EQ(validate_error(c), "limits.in_flight_retry_after: must not be negative");
}

TEST(ConfigTest, LimitSourceOverrideMustNameAConfiguredSource) {
  Config c;
  c.sources = {source("warehouse", kPg)};
  c.limits.per_source["lake"] = {};
  EXPECT_EQ(validate_error(c), "limits.sources.lake: no source is named 'lake'");
  c.limits.per_source.clear();
  c.limits.per_source["Warehouse"] = {};
  EXPECT_EQ(validate_error(c),
            "limits.sources.Warehouse: no source is named 'Warehouse'; did you mean warehouse?");
  c.limits.per_source.clear();
  c.limits.per_source["warehouse"] = {};
  EXPECT_EQ(validate_error(c), "");

  // With no source configured, the demo source is the one served.
  c.sources.clear();
  EXPECT_EQ(validate_error(c),
            "limits.sources.warehouse: no source is named 'warehouse' (none is configured; the "
            "demo source is named demo)");
  c.limits.per_source.clear();
  c.limits.per_source["demo"] = {};
  EXPECT_EQ(validate_error(c), "");
}

TEST(ConfigTest, LimitSourceOverrideMayNameASourceGivenByTheEnvironment) {
  const TempFile file("limits:\n  sources: {lake: {daily_quota: 5}}\n");
  const Config c = resolve_config(CommandLine{},
                                  {"SLUICE_CONFIG=" + file.path().string(),
                                   "SLUICE_SOURCE_LAKE=Driver=SQLite3;Database=/data/lake.sqlite"});
  EXPECT_EQ(c.limits.per_source.at("lake").daily_quota, 5u);
  EXPECT_EQ(error_of([&] {
              resolve_config(CommandLine{}, {"SLUICE_CONFIG=" + file.path().string(),
                                             "SLUICE_SOURCE_SEA=Driver=SQLite3;Database=x"});
            }),
            "limits.sources.lake: no source is named 'lake'");
}

TEST(ConfigTest, EnvironmentSetsTheDefaultRateAndInFlightCap) {
  Config c = Config::from_yaml("limits:\n  clients: {bot: {burst: 3}}\n", "f.yaml");
  c.apply_env({"SLUICE_RATE_LIMIT=2.5", "SLUICE_MAX_IN_FLIGHT=3"});
  EXPECT_DOUBLE_EQ(c.limits.defaults.rate_per_second, 2.5);
  EXPECT_EQ(c.limits.defaults.max_in_flight, 3u);
  EXPECT_DOUBLE_EQ(c.limits.defaults.burst, Config::default_limits().defaults.burst);
  // An override is complete once read; the environment changes only the default.
  EXPECT_DOUBLE_EQ(c.limits.per_client.at("bot").rate_per_second, 50);
  EXPECT_EQ(validate_error(c), "");
  c.apply_env({"SLUICE_RATE_LIMIT=0", "SLUICE_MAX_IN_FLIGHT=0"});  // both off
  EXPECT_EQ(validate_error(c), "");

  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_RATE_LIMIT=fast"}); }),
            "SLUICE_RATE_LIMIT: expected a number, got 'fast'");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_RATE_LIMIT="}); }),
            "SLUICE_RATE_LIMIT: expected a number, got ''");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_MAX_IN_FLIGHT=4294967296"}); }),
            "SLUICE_MAX_IN_FLIGHT: must be at most 4294967295");
  EXPECT_EQ(error_of([&] { c.apply_env({"SLUICE_RATE_LIMT=5"}); }),
            "SLUICE_RATE_LIMT: unknown environment variable; did you mean SLUICE_RATE_LIMIT?");
  c.apply_env({"SLUICE_RATE_LIMIT=-1"});
  EXPECT_EQ(validate_error(c),
            "limits.default.rate: must be a finite number, at least 0 (0 = unlimited)");
}

TEST(ConfigTest, MultiplexerPerClientDefaultsToHalfThePool) {
  const Config c = Config::from_yaml(R"(
sources:
  - {name: a, connection_string: "Driver=SQLite3;Database=a"}
  - {name: b, connection_string: "Driver=SQLite3;Database=b", pool: {max_size: 5}}
  - {name: c, connection_string: "Driver=SQLite3;Database=c", pool: {min_size: 1, max_size: 1}}
  - name: d
    multiplexer: {context_affinity: false}
    pool: {max_size: 20}
    connection_string: "Driver=SQLite3;Database=d"
)",
                                     "sluice.yaml");
  ASSERT_EQ(c.sources.size(), 4u);
  EXPECT_EQ(c.sources[0].per_client_in_flight, 4u);
  EXPECT_EQ(c.sources[1].per_client_in_flight, 2u);
  EXPECT_EQ(c.sources[2].per_client_in_flight, 1u);   // never 0
  EXPECT_EQ(c.sources[3].per_client_in_flight, 10u);  // pool read after multiplexer
  EXPECT_FALSE(c.sources[3].context_affinity);
  EXPECT_TRUE(c.sources[0].context_affinity);
  EXPECT_EQ(validate_error(c), "");
  EXPECT_EQ(SourceConfig::default_per_client_in_flight(0), 1u);
  EXPECT_EQ(SourceConfig::default_per_client_in_flight(3), 1u);
}

TEST(ConfigTest, MultiplexerPerClientIsReadAndMustFitThePool) {
  const Config c = Config::from_yaml(
      "sources:\n  - name: w\n    connection_string: 'Driver=SQLite3;Database=x'\n"
      "    multiplexer: {per_client_in_flight: 8, context_affinity: true}\n",
      "sluice.yaml");
  EXPECT_EQ(c.sources[0].per_client_in_flight, 8u);  // the whole default pool: allowed
  EXPECT_EQ(validate_error(c), "");

  Config bad = c;
  bad.sources[0].per_client_in_flight = 9;
  EXPECT_EQ(validate_error(bad),
            "sources[0].multiplexer.per_client_in_flight: must not exceed pool.max_size (8)");
  bad.sources[0].per_client_in_flight = 0;
  EXPECT_EQ(validate_error(bad), "sources[0].multiplexer.per_client_in_flight: must be at least 1");
  EXPECT_EQ(yaml_error("sources:\n  - multiplexer: {per_client: 2}\n"),
            "sluice.yaml:2: sources[0].multiplexer.per_client: unknown key");
  EXPECT_EQ(yaml_error("sources:\n  - multiplexer:\n      context_affinity: maybe\n"),
            "sluice.yaml:3: sources[0].multiplexer.context_affinity: expected true or false, got "
            "'maybe'");
}

TEST(ConfigTest, PipelineDepthIsReadAndBounded) {
  const Config c = Config::from_yaml(
      "sources:\n  - name: w\n    connection_string: 'postgresql://u@h/d?sslmode=disable'\n"
      "    multiplexer: {pipeline_depth: 16}\n",
      "sluice.yaml");
  EXPECT_EQ(c.sources[0].pipeline_depth, 16u);
  EXPECT_EQ(validate_error(c), "");
  EXPECT_EQ(SourceConfig{}.pipeline_depth, 8u);
  Config bad = c;
  for (const std::size_t depth : {std::size_t{0}, std::size_t{33}}) {
    bad.sources[0].pipeline_depth = depth;
    EXPECT_EQ(validate_error(bad),
              "sources[0].multiplexer.pipeline_depth: must be between 1 and 32 (1 turns it off)");
  }
}

TEST(ConfigTest, SummaryDescribesSessionsLimitsAndTheMultiplexer) {
  Config c = Config::from_yaml(R"(
sessions: {max: 0}
limits:
  clients: {"claude-code@127.0.0.1": {rate: 5, burst: 10}}
  sources: {warehouse: {daily_quota: 10000, hourly_quota: 1000}}
sources:
  - name: warehouse
    connection_string: "Driver={PostgreSQL Unicode};Server=db;Pwd=hunter2"
    multiplexer: {context_affinity: false}
)",
                               "sluice.yaml");
  const std::string s = c.summary();
  EXPECT_NE(s.find("Sessions: ended after 1800000 ms idle; 64 per client, unlimited in all"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("Client limits: 50 requests/s (burst 100), 16 in flight\n"), std::string::npos)
      << s;
  EXPECT_NE(s.find("  client 'claude-code@127.0.0.1': 5 requests/s (burst 10), 16 in flight\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("  each client on warehouse: 50 requests/s (burst 100), 16 in flight, 1000 "
                   "per hour, 10000 per day\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("4 in flight per client, context affinity off"), std::string::npos) << s;
  EXPECT_EQ(s.find("hunter2"), std::string::npos) << s;
  c.limits.defaults = {};
  EXPECT_NE(c.summary().find("Client limits: no rate limit, no cap in flight\n"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::gateway
