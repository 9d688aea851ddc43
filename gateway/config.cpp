#include "gateway/config.hpp"

#include "gateway/cpu_limit.hpp"
#include "pool/pg_wire.hpp"

#include <sched.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <concepts>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>

namespace sluice::gateway {

namespace {

using std::chrono::milliseconds;

// Past this, adding a duration to a steady_clock time point (nanoseconds in 64 bits) could
// overflow; about 31 years is far beyond any sensible timeout.
constexpr std::int64_t kMaxDurationMs = 1'000'000'000'000;
// Thread counts above this are typos, not capacity planning.
constexpr std::size_t kMaxThreads = 1024;
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMinSessionKeyBytes = 32;
// What main.cpp names the built-in source it serves when none is configured.
constexpr std::string_view kDemoSourceName = "demo";

// Sizes, thread counts, quotas: read from YAML as unsigned integers, range-checked per type.
template <class T>
concept Count = std::unsigned_integral<T> && !std::same_as<T, bool>;

constexpr std::array<std::string_view, 6> kLogLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
constexpr std::array<std::string_view, 4> kDialects = {"postgresql", "sqlite", "snowflake",
                                                       "e6data"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return lower(a) == lower(b);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Values are echoed in messages so the user sees what was read, but a runaway value must not
// flood a log line.
std::string shown(std::string_view s) {
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return "'" + std::string(s) + "'";
  return "'" + std::string(s.substr(0, kMax)) + "...'";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`, when it is close enough to be a typo of it rather than a
// different word.
template <class Candidates>
std::optional<std::string_view> closest(std::string_view word, const Candidates& candidates) {
  const std::size_t threshold = std::clamp<std::size_t>(word.size() / 3, 1, 3);
  std::optional<std::string_view> best;
  std::size_t best_distance = threshold + 1;
  for (std::string_view candidate : candidates) {
    const std::size_t d = edit_distance(lower(word), lower(candidate));
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

// Digits only: no sign, no spaces, no hex, no unit suffix.
std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool valid_source_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
         });
}

std::string source_name_problem(std::string_view name) {
  return shown(name) + " must match [A-Za-z0-9_-]{1,64}";
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    const auto item = trim(s.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

SourceConfig* find_source(std::vector<SourceConfig>& sources, std::string_view name) {
  for (auto& s : sources) {
    if (iequals(s.name, name)) return &s;
  }
  return nullptr;
}

// Environment and flags name a source to give it credentials kept out of the file, so an
// existing source keeps everything but its connection string.
void upsert_source(std::vector<SourceConfig>& sources, std::string_view name,
                   std::string connection_string) {
  if (SourceConfig* existing = find_source(sources, name)) {
    existing->connection_string = std::move(connection_string);
    return;
  }
  SourceConfig added;
  added.name = std::string(name);
  added.connection_string = std::move(connection_string);
  sources.push_back(std::move(added));
}

// One attribute of an ODBC connection string ("Key=Value;..."); a value may be braced, with
// "}}" standing for '}', which is how drivers with ';' in their names are written.
std::optional<std::string> odbc_attribute(std::string_view cs, std::string_view key) {
  std::size_t i = 0;
  while (i < cs.size()) {
    const auto eq = cs.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string_view name = cs.substr(i, eq - i);
    if (const auto semi = name.rfind(';'); semi != std::string_view::npos) {
      name.remove_prefix(semi + 1);
    }
    std::string value;
    std::size_t j = eq + 1;
    if (j < cs.size() && cs[j] == '{') {
      for (++j; j < cs.size(); ++j) {
        if (cs[j] == '}') {
          if (j + 1 < cs.size() && cs[j + 1] == '}') {
            value += '}';
            ++j;
            continue;
          }
          ++j;
          break;
        }
        value += cs[j];
      }
      const auto semi = cs.find(';', j);
      j = semi == std::string_view::npos ? cs.size() : semi + 1;
    } else {
      const auto semi = cs.find(';', j);
      value = std::string(cs.substr(j, semi == std::string_view::npos ? semi : semi - j));
      j = semi == std::string_view::npos ? cs.size() : semi + 1;
    }
    if (iequals(trim(name), key)) return value;
    i = j;
  }
  return std::nullopt;
}

std::optional<std::string> decode_hex(std::string_view s) {
  if (s.empty() || s.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(s.size() / 2);
  for (std::size_t i = 0; i < s.size(); i += 2) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(s.data() + i, s.data() + i + 2, value, 16);
    if (ec != std::errc() || end != s.data() + i + 2) return std::nullopt;
    out += static_cast<char>(value);
  }
  return out;
}

// Standard or URL-safe alphabet, padding optional: keys come from `openssl rand -base64`
// as often as from tools that emit the URL-safe form.
std::optional<std::string> decode_base64(std::string_view s) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  if (s.empty() || s.size() % 4 == 1) return std::nullopt;
  auto sextet = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : s) {
    const int v = sextet(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

bool valid_port(std::string_view s) {
  const auto port = parse_unsigned(s);
  return port && *port >= 1 && *port <= 65535;
}

bool has_space_or_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isspace(u) || std::iscntrl(u);
  });
}

// scheme://host[:port] exactly as a browser sends it: no path, no trailing slash, no
// userinfo. Anything else could never match an Origin header, so it is a mistake.
bool valid_origin(std::string_view s) {
  const auto sep = s.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  const auto scheme = s.substr(0, sep);
  if (!std::isalpha(static_cast<unsigned char>(scheme[0])) ||
      !std::all_of(scheme.begin(), scheme.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      })) {
    return false;
  }
  std::string_view authority = s.substr(sep + 3);
  if (authority.empty() || has_space_or_control(authority) ||
      authority.find_first_of("/?#@") != std::string_view::npos) {
    return false;
  }
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    const auto rest = authority.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
  }
  const auto colon = authority.find(':');
  if (colon == 0) return false;
  return colon == std::string_view::npos || valid_port(authority.substr(colon + 1));
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError(path + ": " + what);
}

// A client id may hold dots, '@' and anything else, so it is quoted rather than joined with
// a dot: limits.clients['claude-code@127.0.0.1'].rate.
std::string client_path(std::string_view base, std::string_view client) {
  return std::string(base) + "[" + shown(client) + "]";
}

// LimitPolicy names its fields as the struct does; the file calls rate_per_second `rate`.
std::string in_yaml_words(std::string message) {
  constexpr std::string_view kField = "rate_per_second";
  constexpr std::string_view kKey = "rate";
  for (auto at = message.find(kField); at != std::string::npos;
       at = message.find(kField, at + kKey.size())) {
    message.replace(at, kField.size(), kKey);
  }
  return message;
}

void check_duration(const std::string& path, milliseconds d, bool zero_allowed) {
  if (d.count() < 0) fail(path, "must not be negative");
  if (d.count() == 0 && !zero_allowed) fail(path, "must be positive");
  if (d.count() > kMaxDurationMs) {
    fail(path, "must be at most " + std::to_string(kMaxDurationMs) + " ms");
  }
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return shown(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// Reads one YAML document into a Config, failing on the first key that is unknown, given
// twice, or of the wrong type. Messages carry origin and line so the user can jump there.
class YamlReader {
 public:
  explicit YamlReader(std::string_view origin) : origin_(origin) {}

  using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
  using Field = std::pair<std::string_view, Handler>;

  [[noreturn]] void fail_at(const YAML::Node& at, const std::string& path,
                            const std::string& what) const {
    std::string where = origin_;
    const YAML::Mark mark = at.Mark();
    if (mark.line >= 0) where += ":" + std::to_string(mark.line + 1);
    throw ConfigError(where + ": " + (path.empty() ? what : path + ": " + what));
  }

  // Runs the handler of each key present; a null value keeps the default.
  void read_map(const YAML::Node& map, const std::string& path,
                std::initializer_list<Field> fields) const {
    if (!map.IsMap()) {
      fail_at(map, path,
              path.empty() ? "expected a mapping of settings, got " + describe(map)
                           : "expected a mapping, got " + describe(map));
    }
    std::set<std::string> seen;
    for (const auto& entry : map) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) fail_at(key_node, path, "keys must be plain names");
      const std::string& key = key_node.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      const auto field = std::find_if(fields.begin(), fields.end(),
                                      [&](const Field& f) { return f.first == key; });
      if (field == fields.end()) {
        std::vector<std::string_view> names;
        for (const auto& f : fields) names.push_back(f.first);
        const auto near = closest(key, names);
        fail_at(key_node, child,
                "unknown key" + (near ? "; did you mean " + std::string(*near) + "?" : ""));
      }
      if (!seen.insert(key).second) fail_at(key_node, child, "given more than once");
      if (entry.second.IsNull()) continue;
      field->second(entry.second, child);
    }
  }

  Handler into(std::string& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) { out = text(n, path); };
  }
  Handler into(std::filesystem::path& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) { out = text(n, path); };
  }
  template <Count T>
  Handler into(T& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) {
      const std::uint64_t value = integer(n, path, "expected a non-negative integer");
      if (value > std::numeric_limits<T>::max()) {
        fail_at(n, path, "must be at most " + std::to_string(std::numeric_limits<T>::max()));
      }
      out = static_cast<T>(value);
    };
  }
  Handler into(milliseconds& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) {
      const auto ms = integer(n, path, "expected a non-negative integer (milliseconds)");
      if (ms > static_cast<std::uint64_t>(kMaxDurationMs)) {
        fail_at(n, path, "must be at most " + std::to_string(kMaxDurationMs) + " ms");
      }
      out = milliseconds(static_cast<milliseconds::rep>(ms));
    };
  }
  Handler into(bool& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) {
      const std::string& s = scalar(n, path, "expected true or false");
      if (s == "true" || s == "True" || s == "TRUE") {
        out = true;
      } else if (s == "false" || s == "False" || s == "FALSE") {
        out = false;
      } else {
        fail_at(n, path, "expected true or false, got " + shown(s));
      }
    };
  }
  Handler into(double& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) {
      const std::string& s = scalar(n, path, "expected a number");
      double value = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
      if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
        fail_at(n, path, "expected a number, got " + shown(s));
      }
      out = value;
    };
  }
  Handler into(std::vector<std::string>& out) const {
    return [this, &out](const YAML::Node& n, const std::string& path) {
      if (!n.IsSequence()) fail_at(n, path, "expected a list of strings, got " + describe(n));
      std::vector<std::string> items;
      for (std::size_t i = 0; i < n.size(); ++i) {
        items.push_back(text(n[i], path + "[" + std::to_string(i) + "]"));
      }
      out = std::move(items);
    };
  }

  void read_config(const YAML::Node& root, Config& c) const {
    read_map(
        root, "",
        {
            {"http", [&](const YAML::Node& n, const std::string& p) { read_http(n, p, c.http); }},
            {"sources",
             [&](const YAML::Node& n, const std::string& p) { read_sources(n, p, c.sources); }},
            {"session_key", into(c.session_key)},
            {"log_level", into(c.log_level)},
            {"io_threads", into(c.io_threads)},
            {"worker_threads", into(c.worker_threads)},
            {"demo_db", into(c.demo_db)},
            {"sessions",
             [&](const YAML::Node& n, const std::string& p) { read_sessions(n, p, c.sessions); }},
            {"limits", [&](const YAML::Node& n,
                           const std::string& p) { read_client_limits(n, p, c.limits); }},
        });
  }

 private:
  const std::string& scalar(const YAML::Node& n, const std::string& path,
                            const std::string& expected) const {
    if (!n.IsScalar()) fail_at(n, path, expected + ", got " + describe(n));
    return n.Scalar();
  }

  // Never echoes the value: a string can only be wrong by not being a scalar, so secrets in
  // connection strings and keys never reach the message.
  std::string text(const YAML::Node& n, const std::string& path) const {
    if (n.IsSequence() || n.IsMap()) {
      fail_at(n, path,
              "expected a string, got " + describe(n) +
                  " (quote values that start with '[' or '{', such as \"[::1]:8080\")");
    }
    if (!n.IsScalar()) fail_at(n, path, "expected a string, got nothing");
    return n.Scalar();
  }

  std::uint64_t integer(const YAML::Node& n, const std::string& path,
                        const std::string& expected) const {
    const std::string& s = scalar(n, path, expected);
    const auto value = parse_unsigned(s);
    if (!value) {
      fail_at(n, path, expected + ", got " + shown(s) + (all_digits(s) ? " (too large)" : ""));
    }
    return *value;
  }

  void read_http(const YAML::Node& n, const std::string& path, HttpConfig& h) const {
    read_map(n, path,
             {
                 {"listen", into(h.listen)},
                 {"path", into(h.path)},
                 {"allowed_origins", into(h.allowed_origins)},
                 {"allowed_hosts", into(h.allowed_hosts)},
                 {"max_body_bytes", into(h.max_body_bytes)},
                 {"header_timeout_ms", into(h.header_timeout)},
                 {"body_timeout_ms", into(h.body_timeout)},
                 {"idle_timeout_ms", into(h.idle_timeout)},
                 {"sse_keepalive_ms", into(h.sse_keepalive)},
             });
  }

  void read_sources(const YAML::Node& n, const std::string& path,
                    std::vector<SourceConfig>& sources) const {
    if (!n.IsSequence()) fail_at(n, path, "expected a list of sources, got " + describe(n));
    std::vector<SourceConfig> out(n.size());
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string item = path + "[" + std::to_string(i) + "]";
      SourceConfig& s = out[i];
      bool per_client_given = false;
      read_map(
          n[i], item,
          {
              {"name", into(s.name)},
              {"connection_string", into(s.connection_string)},
              {"dialect", into(s.dialect)},
              {"allow_writes", into(s.allow_writes)},
              {"pool", [&](const YAML::Node& v, const std::string& p) { read_pool(v, p, s.pool); }},
              {"limits",
               [&](const YAML::Node& v, const std::string& p) { read_limits(v, p, s.limits); }},
              {"multiplexer",
               [&](const YAML::Node& v, const std::string& p) {
                 read_multiplexer(v, p, s, per_client_given);
               }},
          });
      // Derived after the whole entry is read: pool may come after multiplexer.
      if (!per_client_given) {
        s.per_client_in_flight = SourceConfig::default_per_client_in_flight(s.pool.max_size);
      }
    }
    sources = std::move(out);
  }

  void read_multiplexer(const YAML::Node& n, const std::string& path, SourceConfig& s,
                        bool& per_client_given) const {
    const Handler per_client = into(s.per_client_in_flight);
    read_map(n, path,
             {
                 {"per_client_in_flight",
                  [&](const YAML::Node& v, const std::string& p) {
                    per_client(v, p);
                    per_client_given = true;
                  }},
                 {"context_affinity", into(s.context_affinity)},
                 {"pipeline_depth", into(s.pipeline_depth)},
             });
  }

  void read_sessions(const YAML::Node& n, const std::string& path,
                     session::SessionRegistryParams& s) const {
    read_map(n, path,
             {
                 {"idle_timeout_ms", into(s.idle_timeout)},
                 {"max_per_client", into(s.max_sessions_per_client)},
                 {"max", into(s.max_sessions)},
             });
  }

  // The overrides are read once the whole section is, because they start from the default
  // wherever it appears: `sources: {warehouse: {daily_quota: 10000}}` adds a quota and
  // keeps the default rate, not no rate at all.
  void read_client_limits(const YAML::Node& n, const std::string& path,
                          session::ClientLimiterParams& l) const {
    std::optional<YAML::Node> clients;
    std::optional<YAML::Node> sources;
    read_map(n, path,
             {
                 {"default", [&](const YAML::Node& v,
                                 const std::string& p) { read_policy(v, p, l.defaults); }},
                 {"clients", [&](const YAML::Node& v, const std::string&) { clients.emplace(v); }},
                 {"sources", [&](const YAML::Node& v, const std::string&) { sources.emplace(v); }},
                 {"in_flight_retry_after_ms", into(l.in_flight_retry_after)},
             });
    if (clients) read_policies(*clients, path + ".clients", true, l.defaults, l.per_client);
    if (sources) read_policies(*sources, path + ".sources", false, l.defaults, l.per_source);
  }

  void read_policies(const YAML::Node& n, const std::string& path, bool by_client,
                     const session::LimitPolicy& base,
                     std::map<std::string, session::LimitPolicy, std::less<>>& out) const {
    const std::string keys = by_client ? "client ids" : "source names";
    if (!n.IsMap()) {
      fail_at(n, path, "expected a mapping of " + keys + " to limits, got " + describe(n));
    }
    std::map<std::string, session::LimitPolicy, std::less<>> policies;
    for (const auto& entry : n) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) fail_at(key_node, path, "keys must be " + keys);
      const std::string& key = key_node.Scalar();
      const std::string child = by_client ? client_path(path, key) : path + "." + key;
      if (policies.contains(key)) fail_at(key_node, child, "given more than once");
      session::LimitPolicy policy = base;
      if (!entry.second.IsNull()) read_policy(entry.second, child, policy);
      policies.emplace(key, policy);
    }
    out = std::move(policies);
  }

  void read_policy(const YAML::Node& n, const std::string& path, session::LimitPolicy& p) const {
    read_map(n, path,
             {
                 {"rate", into(p.rate_per_second)},
                 {"burst", into(p.burst)},
                 {"max_in_flight", into(p.max_in_flight)},
                 {"hourly_quota", into(p.hourly_quota)},
                 {"daily_quota", into(p.daily_quota)},
             });
  }

  void read_pool(const YAML::Node& n, const std::string& path, pool::PoolParams& p) const {
    read_map(n, path,
             {
                 {"min_size", into(p.min_size)},
                 {"max_size", into(p.max_size)},
                 {"connect_timeout_ms", into(p.connect_timeout)},
                 {"validate_after_idle_ms", into(p.validate_after_idle)},
                 {"validate_timeout_ms", into(p.validate_timeout)},
                 {"idle_timeout_ms", into(p.idle_timeout)},
                 {"max_lifetime_ms", into(p.max_lifetime)},
                 {"backoff_initial_ms", into(p.backoff_initial)},
                 {"backoff_max_ms", into(p.backoff_max)},
                 {"backoff_jitter", into(p.backoff_jitter)},
             });
  }

  void read_limits(const YAML::Node& n, const std::string& path, QueryLimits& l) const {
    read_map(n, path,
             {
                 {"max_rows", into(l.max_rows)},
                 {"max_bytes", into(l.max_bytes)},
                 {"timeout_ms", into(l.timeout)},
                 {"max_timeout_ms", into(l.max_timeout)},
             });
  }

  std::string origin_;
};

constexpr std::string_view kSourcePrefix = "SLUICE_SOURCE_";

constexpr std::array<std::string_view, 14> kEnvNames = {
    "SLUICE_LISTEN",         "SLUICE_LOG_LEVEL",       "SLUICE_SESSION_KEY",
    "SLUICE_MAX_BODY_BYTES", "SLUICE_ALLOWED_ORIGINS", "SLUICE_ALLOWED_HOSTS",
    "SLUICE_IO_THREADS",     "SLUICE_WORKER_THREADS",  "SLUICE_DEMO_DB",
    "SLUICE_RATE_LIMIT",     "SLUICE_MAX_IN_FLIGHT",   "SLUICE_CONFIG",
    "SLUICE_PG_BINDIR",      "SLUICE_SOURCE_<NAME>",
};

std::size_t env_size(std::string_view key, std::string_view value) {
  const auto parsed = parse_unsigned(value);
  if (!parsed) {
    throw ConfigError(std::string(key) + ": expected a non-negative integer, got " + shown(value) +
                      (all_digits(value) ? " (too large)" : ""));
  }
  return *parsed;
}

std::uint32_t env_uint32(std::string_view key, std::string_view value) {
  const std::size_t parsed = env_size(key, value);
  if (parsed > std::numeric_limits<std::uint32_t>::max()) {
    throw ConfigError(std::string(key) + ": must be at most " +
                      std::to_string(std::numeric_limits<std::uint32_t>::max()));
  }
  return static_cast<std::uint32_t>(parsed);
}

double env_number(std::string_view key, std::string_view value) {
  double parsed = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
      !std::isfinite(parsed)) {
    throw ConfigError(std::string(key) + ": expected a number, got " + shown(value));
  }
  return parsed;
}

// Limits are checked here rather than by ClientLimiterParams::validate() alone so that the
// message names the key as the file spells it, and a client id is quoted.
void check_policy(const session::LimitPolicy& policy, const std::string& at) {
  try {
    policy.validate(at);
  } catch (const std::invalid_argument& e) {
    const std::string_view message = e.what();
    const std::string_view rest = message.starts_with(at) ? message.substr(at.size()) : message;
    throw ConfigError(at + in_yaml_words(std::string(rest)));
  }
}

std::string describe_policy(const session::LimitPolicy& p) {
  std::ostringstream out;
  if (p.rate_per_second > 0) {
    out << p.rate_per_second << " requests/s (burst " << p.burst << ")";
  } else {
    out << "no rate limit";
  }
  if (p.max_in_flight > 0) {
    out << ", " << p.max_in_flight << " in flight";
  } else {
    out << ", no cap in flight";
  }
  if (p.hourly_quota > 0) out << ", " << p.hourly_quota << " per hour";
  if (p.daily_quota > 0) out << ", " << p.daily_quota << " per day";
  return out.str();
}

}  // namespace

session::ClientLimiterParams Config::default_limits() {
  session::ClientLimiterParams params;
  params.defaults.rate_per_second = 50;
  params.defaults.burst = 100;
  params.defaults.max_in_flight = 16;
  return params;
}

std::string SourceConfig::detect_dialect(std::string_view connection_string) {
  if (pool::pg::is_url(connection_string)) return "postgresql";
  const auto driver = odbc_attribute(connection_string, "driver");
  if (!driver) return "";
  const std::string d = lower(*driver);
  if (d.find("postgres") != std::string::npos) return "postgresql";
  if (d.find("sqlite") != std::string::npos) return "sqlite";
  if (d.find("snowflake") != std::string::npos) return "snowflake";
  return "";
}

HttpConfig::ListenAddress HttpConfig::listen_address() const {
  const std::string_view s = listen;
  auto bad = [&]() -> ListenAddress {
    fail("http.listen",
         shown(s) + " must be HOST:PORT with a port from 1 to 65535 (IPv6: [::1]:PORT)");
  };
  std::string_view host;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return bad();
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad();
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    // An unbracketed IPv6 address makes the port ambiguous ("::1:8080").
    if (host.find(':') != std::string_view::npos) return bad();
  }
  if (host.empty() || has_space_or_control(host) ||
      host.find_first_of("/[]") != std::string_view::npos || !valid_port(port)) {
    return bad();
  }
  return {std::string(host), static_cast<std::uint16_t>(*parse_unsigned(port))};
}

Config Config::from_yaml(std::string_view yaml, std::string_view origin) {
  const std::string where(origin);
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    std::string at = where;
    if (e.mark.line >= 0) {
      at += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    throw ConfigError(at + ": YAML syntax error: " + e.msg);
  }
  if (documents.size() > 1) {
    throw ConfigError(where + ": expected one YAML document, found " +
                      std::to_string(documents.size()));
  }
  Config config;
  if (documents.empty() || documents.front().IsNull()) return config;
  try {
    YamlReader(where).read_config(documents.front(), config);
  } catch (const YAML::Exception& e) {
    // Not expected once the document parsed; kept so that no yaml-cpp type escapes.
    throw ConfigError(where + ": " + e.msg);
  }
  return config;
}

Config Config::load_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw ConfigError(path.string() + ": is a directory, not a config file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path.string() + ": cannot open: " + std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    throw ConfigError(path.string() + ": cannot read: " + std::generic_category().message(errno));
  }
  return from_yaml(text.str(), path.string());
}

void Config::apply_env(const std::vector<std::string>& env) {
  for (const std::string& entry : env) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    const std::string_view key = std::string_view(entry).substr(0, eq);
    const std::string_view value = std::string_view(entry).substr(eq + 1);
    if (!key.starts_with("SLUICE_")) continue;
    if (key == "SLUICE_LISTEN") {
      http.listen = value;
    } else if (key == "SLUICE_LOG_LEVEL") {
      log_level = value;
    } else if (key == "SLUICE_SESSION_KEY") {
      session_key = value;
    } else if (key == "SLUICE_MAX_BODY_BYTES") {
      http.max_body_bytes = env_size(key, value);
    } else if (key == "SLUICE_ALLOWED_ORIGINS") {
      http.allowed_origins = split_list(value);
    } else if (key == "SLUICE_ALLOWED_HOSTS") {
      http.allowed_hosts = split_list(value);
    } else if (key == "SLUICE_IO_THREADS") {
      io_threads = env_size(key, value);
    } else if (key == "SLUICE_WORKER_THREADS") {
      worker_threads = env_size(key, value);
    } else if (key == "SLUICE_DEMO_DB") {
      demo_db = value;
    } else if (key == "SLUICE_RATE_LIMIT") {
      limits.defaults.rate_per_second = env_number(key, value);
    } else if (key == "SLUICE_MAX_IN_FLIGHT") {
      limits.defaults.max_in_flight = env_uint32(key, value);
    } else if (key == "SLUICE_CONFIG" || key == "SLUICE_PG_BINDIR") {
      continue;
    } else if (key.starts_with(kSourcePrefix)) {
      const std::string name = lower(key.substr(kSourcePrefix.size()));
      if (!valid_source_name(name)) {
        throw ConfigError(std::string(key) + ": source name " + source_name_problem(name));
      }
      if (value.empty()) throw ConfigError(std::string(key) + ": needs a connection string");
      upsert_source(sources, name, std::string(value));
    } else {
      // Compared without the common prefix, which would make every name look close.
      constexpr std::size_t kPrefix = std::string_view("SLUICE_").size();
      std::vector<std::string_view> suffixes;
      for (std::string_view known : kEnvNames) suffixes.push_back(known.substr(kPrefix));
      const auto near = closest(key.substr(kPrefix), suffixes);
      throw ConfigError(
          std::string(key) + ": unknown environment variable" +
          (near ? "; did you mean SLUICE_" + std::string(*near) + "?" : " (see sluice --help)"));
    }
  }
}

std::size_t Config::io_thread_count() const {
  if (io_threads != 0) return std::min(io_threads, kMaxThreads);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const auto cpus = std::min(static_cast<std::size_t>(CPU_COUNT(&set)), kMaxThreads);
  return threads_for(cpus, cgroup_cpu_limit());
}

std::string Config::session_key_bytes() const {
  if (session_key.empty()) return "";
  auto decoded = decode_hex(session_key);
  if (!decoded) decoded = decode_base64(session_key);
  if (!decoded) fail("session_key", "must be hex or base64");
  if (decoded->size() < kMinSessionKeyBytes) {
    fail("session_key", "must decode to at least " + std::to_string(kMinSessionKeyBytes) +
                            " bytes, got " + std::to_string(decoded->size()));
  }
  return *decoded;
}

void Config::validate() const {
  http.listen_address();
  if (http.path.empty() || http.path.front() != '/' || has_space_or_control(http.path) ||
      http.path.find_first_of("?#") != std::string::npos) {
    fail("http.path", shown(http.path) + " must start with '/' and hold no spaces, '?' or '#'");
  }
  for (std::size_t i = 0; i < http.allowed_origins.size(); ++i) {
    if (!valid_origin(http.allowed_origins[i])) {
      fail("http.allowed_origins[" + std::to_string(i) + "]",
           shown(http.allowed_origins[i]) +
               " is not an origin: expected scheme://host[:port] with no path, e.g. "
               "http://localhost:6274");
    }
  }
  for (std::size_t i = 0; i < http.allowed_hosts.size(); ++i) {
    const std::string& host = http.allowed_hosts[i];
    if (host.empty() || has_space_or_control(host) ||
        host.find_first_of("/?#@") != std::string::npos) {
      fail("http.allowed_hosts[" + std::to_string(i) + "]",
           shown(host) + " is not a Host header value, e.g. example.com or example.com:8080");
    }
  }
  if (http.max_body_bytes == 0) fail("http.max_body_bytes", "must be at least 1");
  check_duration("http.header_timeout", http.header_timeout, false);
  check_duration("http.body_timeout", http.body_timeout, false);
  check_duration("http.idle_timeout", http.idle_timeout, false);
  check_duration("http.sse_keepalive", http.sse_keepalive, false);

  session_key_bytes();
  if (std::find(kLogLevels.begin(), kLogLevels.end(), log_level) == kLogLevels.end()) {
    fail("log_level", shown(log_level) + " must be one of trace, debug, info, warn, error, off");
  }
  if (io_threads > kMaxThreads) {
    fail("io_threads", "must be at most " + std::to_string(kMaxThreads) + " (0 = one per CPU)");
  }
  if (worker_threads > kMaxThreads) {
    fail("worker_threads", "must be at most " + std::to_string(kMaxThreads) + " (0 = automatic)");
  }

  for (std::size_t i = 0; i < sources.size(); ++i) {
    const SourceConfig& s = sources[i];
    const std::string at = "sources[" + std::to_string(i) + "]";
    if (s.name.empty()) fail(at + ".name", "is required");
    if (!valid_source_name(s.name)) fail(at + ".name", source_name_problem(s.name));
    for (std::size_t j = 0; j < i; ++j) {
      if (iequals(sources[j].name, s.name)) {
        fail(at + ".name", shown(s.name) + " is already the name of sources[" + std::to_string(j) +
                               "] (names are compared ignoring case)");
      }
    }
    if (s.connection_string.empty()) fail(at + ".connection_string", "is required");
    if (pool::pg::is_url(s.connection_string)) {
      try {
        (void)pool::pg::parse_url(s.connection_string);
      } catch (const std::invalid_argument& e) {
        fail(at + ".connection_string", e.what());
      }
      if (!s.dialect.empty() && s.dialect != "postgresql") {
        fail(at + ".dialect", shown(s.dialect) + " cannot be used with a postgresql:// URL");
      }
    }
    if (s.dialect.empty()) {
      if (SourceConfig::detect_dialect(s.connection_string).empty()) {
        fail(at + ".dialect",
             "cannot be detected from the connection string's Driver; set it to postgresql, "
             "sqlite, snowflake or e6data");
      }
    } else if (std::find(kDialects.begin(), kDialects.end(), s.dialect) == kDialects.end()) {
      fail(at + ".dialect", shown(s.dialect) +
                                " must be one of postgresql, sqlite, snowflake, e6data, or empty "
                                "to detect it from the connection string");
    }
    const std::pair<const char*, milliseconds> pool_durations[] = {
        {"connect_timeout", s.pool.connect_timeout},
        {"validate_after_idle", s.pool.validate_after_idle},
        {"validate_timeout", s.pool.validate_timeout},
        {"idle_timeout", s.pool.idle_timeout},
        {"max_lifetime", s.pool.max_lifetime},
        {"backoff_initial", s.pool.backoff_initial},
        {"backoff_max", s.pool.backoff_max},
    };
    for (const auto& [field, d] : pool_durations) {
      // Only the upper bound: PoolParams::validate() owns the lower ones and their wording.
      if (d.count() > kMaxDurationMs) check_duration(at + ".pool." + field, d, true);
    }
    try {
      s.pool.validate();
    } catch (const std::invalid_argument& e) {
      throw ConfigError(at + "." + e.what());
    }
    if (s.limits.max_rows == 0) fail(at + ".limits.max_rows", "must be at least 1");
    if (s.limits.max_bytes == 0) fail(at + ".limits.max_bytes", "must be at least 1");
    check_duration(at + ".limits.timeout", s.limits.timeout, false);
    check_duration(at + ".limits.max_timeout", s.limits.max_timeout, false);
    if (s.limits.timeout > s.limits.max_timeout) {
      fail(at + ".limits.timeout",
           "must not exceed max_timeout (" + std::to_string(s.limits.max_timeout.count()) + " ms)");
    }
    if (s.per_client_in_flight == 0) {
      fail(at + ".multiplexer.per_client_in_flight", "must be at least 1");
    }
    if (s.per_client_in_flight > s.pool.max_size) {
      fail(at + ".multiplexer.per_client_in_flight",
           "must not exceed pool.max_size (" + std::to_string(s.pool.max_size) + ")");
    }
    if (s.pipeline_depth == 0 || s.pipeline_depth > 32) {
      fail(at + ".multiplexer.pipeline_depth", "must be between 1 and 32 (1 turns it off)");
    }
  }

  // Only the upper bound: SessionRegistryParams::validate() owns the lower one.
  if (sessions.idle_timeout.count() > kMaxDurationMs) {
    check_duration("sessions.idle_timeout", sessions.idle_timeout, true);
  }
  try {
    sessions.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }

  check_policy(limits.defaults, "limits.default");
  for (const auto& [client, policy] : limits.per_client) {
    const std::string at = client_path("limits.clients", client);
    if (client.empty()) fail(at, "a client id must not be empty");
    check_policy(policy, at);
  }
  std::vector<std::string_view> source_names;
  for (const auto& s : sources) source_names.push_back(s.name);
  if (sources.empty()) source_names.push_back(kDemoSourceName);
  for (const auto& [name, policy] : limits.per_source) {
    const std::string at = "limits.sources." + name;
    // Exactly, not ignoring case: the limiter looks the override up by the source's name.
    if (std::find(source_names.begin(), source_names.end(), name) == source_names.end()) {
      std::string hint;
      if (const auto near = closest(name, source_names)) {
        hint = "; did you mean " + std::string(*near) + "?";
      } else if (sources.empty()) {
        hint =
            " (none is configured; the demo source is named " + std::string(kDemoSourceName) + ")";
      }
      fail(at, "no source is named " + shown(name) + hint);
    }
    check_policy(policy, at);
  }
  check_duration("limits.in_flight_retry_after", limits.in_flight_retry_after, true);
  try {
    limits.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(in_yaml_words(e.what()));
  }
}

std::string Config::summary() const {
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
  };
  std::ostringstream out;
  out << "HTTP: http://" << http.listen << http.path << "\n";
  out << "  allowed origins: "
      << (http.allowed_origins.empty() ? "none but localhost, 127.0.0.1 and [::1]"
                                       : join(http.allowed_origins))
      << "\n";
  out << "  allowed hosts: "
      << (http.allowed_hosts.empty() ? "loopback names when bound to loopback, else any"
                                     : join(http.allowed_hosts))
      << "\n";
  out << "  max body " << http.max_body_bytes << " bytes; timeouts: header "
      << http.header_timeout.count() << " ms, body " << http.body_timeout.count() << " ms, idle "
      << http.idle_timeout.count() << " ms; SSE keep-alive " << http.sse_keepalive.count()
      << " ms\n";
  out << "Session key: ";
  if (session_key.empty()) {
    out << "random per process (sessions do not survive restarts or span replicas)\n";
  } else {
    try {
      out << "configured (" << session_key_bytes().size() << " bytes)\n";
    } catch (const ConfigError&) {
      out << "invalid\n";
    }
  }
  out << "Log level: " << log_level << "\n";
  auto count_or_unlimited = [](std::size_t n) {
    return n == 0 ? std::string("unlimited") : std::to_string(n);
  };
  out << "Sessions: ended after " << sessions.idle_timeout.count() << " ms idle; "
      << count_or_unlimited(sessions.max_sessions_per_client) << " per client, "
      << count_or_unlimited(sessions.max_sessions) << " in all\n";
  out << "Client limits: " << describe_policy(limits.defaults) << "\n";
  for (const auto& [client, policy] : limits.per_client) {
    out << "  client " << shown(client) << ": " << describe_policy(policy) << "\n";
  }
  for (const auto& [name, policy] : limits.per_source) {
    out << "  each client on " << name << ": " << describe_policy(policy) << "\n";
  }
  out << "Threads: " << io_thread_count() << " I/O";
  if (io_threads == 0) {
    const auto quota = cgroup_cpu_limit();
    if (quota) {
      out << " (one per CPU it may use; CPU quota " << *quota << ")";
    } else {
      out << " (one per CPU it may use)";
    }
  }
  out << ", ";
  if (worker_threads != 0) {
    out << worker_threads << " ODBC workers\n";
  } else if (sources.empty()) {
    out << "ODBC workers sized for the demo source\n";
  } else {
    std::size_t sum = 1;
    for (const auto& s : sources) sum += s.pool.max_size;
    out << sum << " ODBC workers (automatic)\n";
  }
  if (sources.empty()) {
    out << "Sources: none configured; the built-in demo warehouse is used ("
        << (demo_db.empty() ? std::string("default location") : demo_db.string()) << ")\n";
    return out.str();
  }
  out << "Sources:\n";
  for (const auto& s : sources) {
    std::string dialect =
        s.dialect.empty() ? SourceConfig::detect_dialect(s.connection_string) : s.dialect;
    if (dialect.empty()) dialect = "unknown dialect";
    out << "  " << s.name << ": " << dialect << ", "
        << (s.allow_writes ? "writes allowed" : "read-only") << ", pool " << s.pool.min_size << ".."
        << s.pool.max_size << ", at most " << s.limits.max_rows << " rows / " << s.limits.max_bytes
        << " bytes per query, timeout " << s.limits.timeout.count() << " ms (max "
        << s.limits.max_timeout.count() << " ms), " << s.per_client_in_flight
        << " in flight per client, context affinity " << (s.context_affinity ? "on" : "off")
        << ", pipeline depth " << s.pipeline_depth << "\n";
  }
  return out.str();
}

namespace {

constexpr std::string_view kUsage = R"(Usage:
  sluice [OPTIONS]              serve MCP over HTTP at http://127.0.0.1:8080/mcp
  sluice --stdio [OPTIONS]      serve one MCP client over stdin and stdout
  sluice check-config FILE [OPTIONS]
                                validate FILE (with the environment and OPTIONS
                                applied), print a summary; exit status 0 or 1
  sluice --help | --version

Sluice is an MCP gateway to SQL warehouses. MCP clients connect to it and get
tools to explore and query the configured sources, run on a small pool of
connections. With no source configured it serves a built-in demo warehouse.

Options:
  --config FILE          YAML config file (default: $SLUICE_CONFIG, else none)
  --listen HOST:PORT     HTTP address (default 127.0.0.1:8080; IPv6 [::1]:8080)
  --source NAME=CONNSTR  add source NAME with an ODBC connection string, or
                         replace that source's connection string; repeatable
  --allow-writes NAME    enable the execute tool (writes) on source NAME;
                         repeatable
  --demo-db PATH         where the demo warehouse lives; created on first use
  --log-level LEVEL      trace, debug, info, warn, error or off (default info)
  --stdio                serve over stdin/stdout instead of HTTP
  -h, --help             show this help and exit
  --version              print the version and exit
Value options also take the form --option=VALUE.

Each layer overrides the one before it:
  defaults < config file < SLUICE_* environment < command-line options

Environment:
  SLUICE_CONFIG           config file, when --config is not given
  SLUICE_LISTEN           http.listen
  SLUICE_LOG_LEVEL        log_level
  SLUICE_SESSION_KEY      session_key
  SLUICE_MAX_BODY_BYTES   http.max_body_bytes
  SLUICE_ALLOWED_ORIGINS  http.allowed_origins, comma-separated
  SLUICE_ALLOWED_HOSTS    http.allowed_hosts, comma-separated
  SLUICE_IO_THREADS       io_threads
  SLUICE_WORKER_THREADS   worker_threads
  SLUICE_DEMO_DB          demo_db
  SLUICE_RATE_LIMIT       limits.default.rate (requests per second)
  SLUICE_MAX_IN_FLIGHT    limits.default.max_in_flight
  SLUICE_SOURCE_<NAME>    connection string of source <name> (lower-cased);
                          replaces that source's connection string, or adds it
  SLUICE_PG_BINDIR        PostgreSQL binaries for the test fixtures; not used
Any other SLUICE_* variable is an error, so that a misspelt one is not ignored.

Config file (YAML). Every key is optional and shown with its default;
durations are integers in milliseconds; unknown keys are errors.
  http:
    listen: 127.0.0.1:8080      # quote IPv6: "[::1]:8080"
    path: /mcp
    allowed_origins: []         # exact origins, e.g. [http://localhost:6274];
                                # empty = none, or localhost/127.0.0.1/[::1]
    allowed_hosts: []           # Host values; empty = loopback names when
                                # bound to loopback, any host otherwise
    max_body_bytes: 1048576
    header_timeout_ms: 10000
    body_timeout_ms: 30000
    idle_timeout_ms: 120000
    sse_keepalive_ms: 15000
  session_key: ""               # hex or base64, >= 32 bytes; empty = random
                                # per process (sessions then do not survive
                                # restarts or span replicas)
  log_level: info
  io_threads: 0                 # 0 = one per CPU this process may use (cpuset, CPU quota)
  worker_threads: 0             # 0 = sum of the sources' pool max_size + 1
  demo_db: /path/demo.sqlite    # default: chosen at startup
  sources:                      # none = the built-in demo warehouse
    - name: warehouse           # [A-Za-z0-9_-]{1,64}, unique
      connection_string: "Driver={PostgreSQL Unicode};Server=db;Uid=me;Pwd=..."
                                # or "postgresql://me:pw@db:5432/sales":
                                # PostgreSQL's own protocol, no ODBC driver
      dialect: postgresql       # postgresql | sqlite | snowflake | e6data;
                                # empty = detect from the Driver or URL
      allow_writes: false
      pool: {min_size: 1, max_size: 8, connect_timeout_ms: 10000,
             validate_after_idle_ms: 30000, validate_timeout_ms: 5000,
             idle_timeout_ms: 600000, max_lifetime_ms: 3600000,
             backoff_initial_ms: 100, backoff_max_ms: 30000,
             backoff_jitter: 0.2}
      limits: {max_rows: 1000, max_bytes: 1048576, timeout_ms: 30000,
               max_timeout_ms: 300000}
      multiplexer:
        per_client_in_flight: 4 # 1..max_size; default half of max_size
        context_affinity: true  # prefer a connection in the request's
                                # database context
        pipeline_depth: 8       # 1..32 reads in one context sent together on
                                # one connection (postgresql:// sources); 1 = off
  sessions:
    idle_timeout_ms: 1800000
    max_per_client: 64          # 0 = unlimited; beyond it a client's least
                                # recently seen session ends
    max: 10000                  # 0 = unlimited; beyond it new ones are refused
  limits:                       # per client; 0 switches a limit off
    default: {rate: 50, burst: 100, max_in_flight: 16, hourly_quota: 0,
              daily_quota: 0}   # rate: requests per second
    clients: {}                 # by client id, e.g.
                                # "claude-code@127.0.0.1": {rate: 5}
    sources: {}                 # each client's budget on that source, e.g.
                                # warehouse: {daily_quota: 10000}
    in_flight_retry_after_ms: 1000
                                # overrides start from default; a refused
                                # request gets error -32029 (HTTP 429)

Examples:
  sluice
      Serve the demo warehouse. Connect MCP Inspector
      (npx @modelcontextprotocol/inspector) or Claude Code
      (claude mcp add --transport http sluice http://127.0.0.1:8080/mcp)
      to http://127.0.0.1:8080/mcp.
  SLUICE_SOURCE_WAREHOUSE='Driver={PostgreSQL Unicode};Server=db;Pwd=...' \
    sluice --allow-writes warehouse
      Serve one PostgreSQL source, its password kept out of files and the
      command line.
  sluice --config /etc/sluice/sluice.yaml --listen 0.0.0.0:8080
  sluice check-config /etc/sluice/sluice.yaml
  sluice --stdio
      For desktop clients that start the server themselves, e.g. Claude
      Desktop: {"command": "sluice", "args": ["--stdio"]}
)";

struct ValueOption {
  std::string_view name;
  std::string_view metavar;
};

constexpr std::array<ValueOption, 6> kValueOptions = {{
    {"--config", "FILE"},
    {"--listen", "HOST:PORT"},
    {"--source", "NAME=CONNSTR"},
    {"--allow-writes", "NAME"},
    {"--demo-db", "PATH"},
    {"--log-level", "LEVEL"},
}};

[[noreturn]] void usage_error(const std::string& what) {
  throw ConfigError(what + "; see sluice --help");
}

template <class T>
void set_once(std::optional<T>& slot, std::string_view option, std::string_view value) {
  if (slot) throw ConfigError(std::string(option) + " given more than once");
  slot = T(value);
}

}  // namespace

std::string_view CommandLine::usage() {
  return kUsage;
}

CommandLine CommandLine::parse(int argc, const char* const* argv) {
  CommandLine cl;
  const std::vector<std::string_view> args(argv + std::min(argc, 1), argv + std::max(argc, 0));
  std::size_t i = 0;
  if (!args.empty() && args[0] == "check-config") {
    if (args.size() >= 2 && (args[1] == "--help" || args[1] == "-h")) {
      cl.action = Action::help;
      return cl;
    }
    if (args.size() < 2 || args[1].starts_with("-")) {
      throw ConfigError("check-config needs a FILE to check");
    }
    cl.action = Action::check_config;
    cl.config_file = args[1];
    i = 2;
  }
  for (; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (!arg.starts_with("-") || arg == "-") {
      // A stray connection string must not be echoed: it may carry a password.
      if (arg.find('=') != std::string_view::npos) {
        usage_error("unexpected argument #" + std::to_string(i + 1) +
                    " (not shown: it may hold a connection string; sources are given as "
                    "--source NAME=CONNSTR)");
      }
      usage_error("unexpected argument " + shown(arg) +
                  (arg == "check-config" ? " (check-config must come first)" : ""));
    }
    std::string_view option = arg;
    std::optional<std::string_view> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      option = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    if (option == "--help" || option == "-h" || option == "--version" || option == "--stdio") {
      if (inline_value) throw ConfigError(std::string(option) + " takes no value");
      if (option == "--stdio") {
        if (cl.action == Action::check_config) {
          throw ConfigError("--stdio cannot be combined with check-config");
        }
        cl.action = Action::stdio;
        continue;
      }
      cl.action = option == "--version" ? Action::version : Action::help;
      return cl;
    }
    const auto known = std::find_if(kValueOptions.begin(), kValueOptions.end(),
                                    [&](const ValueOption& o) { return o.name == option; });
    if (known == kValueOptions.end()) usage_error("unknown option '" + std::string(option) + "'");
    std::string_view value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
      value = args[++i];
    }
    const std::string needs = std::string(option) + " needs a value " + std::string(known->metavar);
    if (value.empty()) throw ConfigError(needs);

    if (option == "--config") {
      if (cl.action == Action::check_config) {
        throw ConfigError("--config cannot be combined with check-config, which names the file");
      }
      set_once(cl.config_file, option, value);
    } else if (option == "--listen") {
      set_once(cl.listen, option, value);
    } else if (option == "--source") {
      const auto eq = value.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == value.size()) {
        throw ConfigError(needs);
      }
      const std::string_view name = value.substr(0, eq);
      if (!valid_source_name(name)) {
        throw ConfigError("--source: source name " + source_name_problem(name));
      }
      for (const auto& [existing, ignored] : cl.sources) {
        if (iequals(existing, name)) {
          throw ConfigError("--source: " + shown(name) + " given more than once");
        }
      }
      cl.sources.emplace_back(name, value.substr(eq + 1));
    } else if (option == "--allow-writes") {
      cl.allow_writes.emplace_back(value);
    } else if (option == "--demo-db") {
      set_once(cl.demo_db, option, value);
    } else {
      set_once(cl.log_level, option, value);
    }
  }
  return cl;
}

Config resolve_config(const CommandLine& cli, const std::vector<std::string>& env) {
  std::optional<std::filesystem::path> file = cli.config_file;
  if (!file) {
    constexpr std::string_view kConfigVar = "SLUICE_CONFIG=";
    for (const std::string& entry : env) {
      if (entry.starts_with(kConfigVar) && entry.size() > kConfigVar.size()) {
        file = entry.substr(kConfigVar.size());
      }
    }
  }
  Config config = file ? Config::load_file(*file) : Config{};
  config.apply_env(env);
  if (cli.listen) config.http.listen = *cli.listen;
  if (cli.log_level) config.log_level = *cli.log_level;
  if (cli.demo_db) config.demo_db = *cli.demo_db;
  for (const auto& [name, connection_string] : cli.sources) {
    upsert_source(config.sources, name, connection_string);
  }
  for (const std::string& name : cli.allow_writes) {
    SourceConfig* source = find_source(config.sources, name);
    if (source == nullptr) throw ConfigError("--allow-writes: no source named " + shown(name));
    source->allow_writes = true;
  }
  config.validate();
  for (SourceConfig& s : config.sources) {
    if (s.dialect.empty()) s.dialect = SourceConfig::detect_dialect(s.connection_string);
  }
  return config;
}

}  // namespace sluice::gateway
