#include "load/src/load_options.hpp"

#include <charconv>
#include <cmath>

#include "load/src/duration_text.hpp"

namespace sluice::load {
namespace {

using namespace std::chrono_literals;

std::chrono::microseconds duration_arg(const std::string& flag, const std::string& value) {
  const auto d = parse_duration(value);
  if (!d) {
    throw UsageError(flag + " " + value + ": expected a duration with a unit, e.g. 30s, 2m, 500ms");
  }
  return *d;
}

std::uint64_t unsigned_arg(const std::string& flag, const std::string& value) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    throw UsageError(flag + " " + value + ": expected a whole number");
  }
  return n;
}

double number_arg(const std::string& flag, const std::string& value) {
  double x = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
  if (ec != std::errc{} || end != value.data() + value.size() || !std::isfinite(x)) {
    throw UsageError(flag + " " + value + ": expected a number");
  }
  return x;
}

}  // namespace

LoadOptions parse_load_options(const std::vector<std::string>& args) {
  LoadOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (flag.starts_with("--")) {
      if (const auto eq = flag.find('='); eq != std::string::npos) {
        inline_value = flag.substr(eq + 1);
        flag.erase(eq);
      }
    } else {
      throw UsageError("unexpected argument \"" + flag + "\"; flags start with --");
    }
    const auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
      return args[++i];
    };
    const auto no_value = [&] {
      if (inline_value) throw UsageError(flag + " takes no value");
    };
    if (flag == "--help" || flag == "-h") {
      no_value();
      o.help = true;
    } else if (flag == "--version") {
      no_value();
      o.version = true;
    } else if (flag == "--scenario") {
      o.scenario = value();
    } else if (flag == "--url") {
      o.url = value();
    } else if (flag == "--transport") {
      const std::string t = value();
      if (t == "http-modern") {
        o.transport = Transport::http_modern;
      } else if (t == "http-legacy") {
        o.transport = Transport::http_legacy;
      } else if (t == "websocket") {
        o.transport = Transport::websocket;
      } else {
        throw UsageError("--transport " + t + ": expected http-modern, http-legacy or websocket");
      }
    } else if (flag == "--protocol-version") {
      o.protocol_version = value();
      if (o.protocol_version.empty()) throw UsageError("--protocol-version must not be empty");
    } else if (flag == "--clients") {
      const std::uint64_t n = unsigned_arg(flag, value());
      if (n < 1 || n > 100'000) throw UsageError("--clients must be from 1 to 100000");
      o.clients = n;
    } else if (flag == "--rate") {
      const std::string v = value();
      const double r = number_arg(flag, v);
      if (r <= 0) throw UsageError("--rate " + v + ": must be > 0 requests per second");
      o.rate = r;
    } else if (flag == "--open-loop") {
      no_value();
      o.open_loop = true;
    } else if (flag == "--profile") {
      o.profile = value();
    } else if (flag == "--stages") {
      o.stages = value();
    } else if (flag == "--duration") {
      o.duration = duration_arg(flag, value());
      if (o.duration->count() <= 0) throw UsageError("--duration must be > 0");
    } else if (flag == "--warmup") {
      o.warmup = duration_arg(flag, value());
    } else if (flag == "--timeout") {
      o.timeout = duration_arg(flag, value());
      if (o.timeout.count() <= 0) throw UsageError("--timeout must be > 0");
    } else if (flag == "--max-clients") {
      const std::uint64_t n = unsigned_arg(flag, value());
      if (n < 1 || n > 100'000) throw UsageError("--max-clients must be from 1 to 100000");
      o.max_clients = n;
    } else if (flag == "--threshold") {
      o.thresholds.push_back(value());
    } else if (flag == "--json") {
      o.json = value();
    } else if (flag == "--html") {
      o.html = value();
    } else if (flag == "--quiet" || flag == "-q") {
      no_value();
      o.quiet = true;
    } else if (flag == "--client-name") {
      o.client_name = value();
      if (o.client_name.empty()) throw UsageError("--client-name must not be empty");
    } else if (flag == "--header") {
      const std::string h = value();
      const auto colon = h.find(':');
      if (colon == std::string::npos || colon == 0 ||
          h.find_first_of("\r\n") != std::string::npos) {
        throw UsageError("--header " + h + ": expected \"Name: value\"");
      }
      std::string v = h.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      o.headers.emplace_back(h.substr(0, colon), v);
    } else if (flag == "--seed") {
      o.seed = unsigned_arg(flag, value());
    } else {
      throw UsageError("unknown flag " + flag);
    }
  }
  if (o.help || o.version) return o;
  if (o.scenario.empty()) throw UsageError("--scenario FILE.yaml is required");
  if (o.stages && o.profile) throw UsageError("--stages and --profile exclude each other");
  if (o.stages && o.duration) {
    throw UsageError("--duration does not apply to --stages: the stages say how long");
  }
  if (o.stages && o.rate) {
    throw UsageError("--rate sets one rate; for stages of rates use --open-loop --stages");
  }
  if (o.stages && o.clients && !o.is_open_loop()) {
    throw UsageError("--clients sets one level; --stages says how many clients when");
  }
  return o;
}

LoadSchedule LoadOptions::schedule() const {
  const double level =
      is_open_loop() ? rate.value_or(10.0) : static_cast<double>(clients.value_or(8));
  try {
    if (stages) {
      LoadSchedule s = LoadSchedule::parse(*stages);
      if (warmup >= s.total()) throw UsageError("--warmup must be shorter than the stages");
      return s;
    }
    if (profile) {
      LoadSchedule s = LoadSchedule::profile(*profile, level, duration);
      if (warmup >= s.total()) throw UsageError("--warmup must be shorter than the profile");
      return s;
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string(stages ? "--stages: " : "--profile: ") + e.what());
  }
  return LoadSchedule::constant(level, warmup + duration.value_or(std::chrono::seconds(10)));
}

Era LoadOptions::era() const noexcept {
  switch (transport) {
    case Transport::http_modern:
      return Era::modern;
    case Transport::http_legacy:
      return Era::legacy;
    case Transport::websocket:
      return protocol_version == kModernVersion ? Era::modern : Era::legacy;
  }
  return Era::modern;
}

std::string LoadOptions::effective_protocol_version() const {
  if (!protocol_version.empty()) return protocol_version;
  return std::string(transport == Transport::http_modern ? kModernVersion : kLegacyVersion);
}

std::string LoadOptions::effective_url() const {
  const bool ws = transport == Transport::websocket;
  if (url.empty()) return ws ? "ws://127.0.0.1:8080/mcp" : "http://127.0.0.1:8080/mcp";
  return url;
}

std::string load_usage() {
  return R"(sluice-load: a load generator for MCP servers (Streamable HTTP, both eras, and WebSocket)

usage: sluice-load --scenario FILE.yaml [options]

What to call
  --scenario FILE         YAML: a weighted mix of tool calls (see load/scenarios/)
  --url URL               the MCP endpoint (default http://127.0.0.1:8080/mcp;
                          ws://... for websocket, where http:// is accepted too)
  --transport T           http-modern  2026-07-28 stateless POSTs with _meta and the
                                       MCP-Protocol-Version, Mcp-Method, Mcp-Name headers
                          http-legacy  a session per client: initialize, then requests
                                       with Mcp-Session-Id (JSON or event-stream answers)
                          websocket    subprotocol mcp, one connection (session) per client
                          (default http-modern)
  --protocol-version V    default 2026-07-28 (http-modern) or 2025-11-25; on websocket,
                          2026-07-28 sends stateless frames without initialize
  --header "NAME: VALUE"  extra header on every request and WebSocket handshake (repeatable)
  --client-name PREFIX    client n says clientInfo.name PREFIX-n (default sluice-load), so a
                          server limiting per client sees separate clients
  --timeout D             a request without an answer by then is an error (default 10s)

How much
  --clients N             closed loop: N virtual clients, each sending its next request when
                          the last is answered (default 8)
  --rate R                open loop: R requests per second, sent when due whether or not
                          earlier ones were answered; latency counts from when each was due,
                          so an overloaded server is not flattered (coordinated omission)
  --open-loop             make --stages and --profile targets requests per second
  --max-clients N         open loop: at most N connections (default 1024); --clients N
                          opens N before the start (default 1)
  --duration D            how long to run at --clients or --rate (default 10s); with
                          --profile, the time held at each plateau
  --warmup D              run, but do not measure, for D first (added before --duration;
                          with --stages or --profile, the schedule's first D)
  --profile P             ramp stages scaled to --clients (or --rate):
                            smoke   1 for 10s
                            load    ramp 15s, hold 60s, ramp down 15s
                            stress  steps of 1x, 2x, 3x, each 10s ramp + 20s hold, down
                            spike   a tenth for 10s, 2s up to the peak, hold 20s, back
                            soak    ramp 1m, hold 1h, ramp down 1m
  --stages LIST           explicit ramps "10s:8,30s:64,10s:0": each DURATION:TARGET moves
                          linearly from the previous target (0 at first); 0s jumps
  --seed N                for the weighted choice of calls (default 1)

Verdict and reports
  --threshold EXPR        fail the run unless EXPR holds (repeatable; a scenario may add
                          more): p50/p95/p99/p99.9/pN<50ms, mean<, max<, errors<1% (share),
                          errors<=0 (count), rps>1000 (successful requests per second)
  --json FILE             the results as JSON
  --html FILE             a self-contained report (charts; opens offline)
  --quiet                 no live progress line on stderr
  --help, --version

Errors are counted by kind: http_<status>, jsonrpc_<code>, tool_error (isError: true),
timeout, connection, protocol (not the expected response) and dropped (open loop: due but
not sent before the end). Latency percentiles are over successful requests.

Exit status: 0 every threshold held (without thresholds: some request succeeded);
1 a threshold failed (or, without thresholds, nothing succeeded); 2 bad flags or scenario;
3 the run could not happen (the host does not resolve, a report cannot be written).
)";
}

}  // namespace sluice::load
