#include "gateway/mcp_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "gateway/json_reader.hpp"
#include "gateway/json_writer.hpp"
#include "pool/db_error.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 3> kLegacyVersions = {"2025-11-25", "2025-06-18",
                                                             "2025-03-26"};
constexpr std::string_view kNewestLegacy = "2025-11-25";
constexpr std::string_view kMetaVersion = "io.modelcontextprotocol/protocolVersion";
constexpr std::string_view kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";
constexpr std::string_view kMetaLogLevel = "io.modelcontextprotocol/logLevel";
// How long a server-to-client request (sampling, elicitation) may wait for its answer.
constexpr auto kAskTimeout = std::chrono::seconds(60);
// HTTP session states remembered; beyond this, arbitrary old entries are dropped.
constexpr std::size_t kMaxSessionStates = 65536;

// JSON-RPC and MCP error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kHeaderMismatch = -32020;
constexpr int kMissingCapability = -32021;
// Over a per-client limit (rate, requests in flight, quota) or the gateway's session limit.
// Implementation-defined; the data says which limit and when to retry.
constexpr int kLimited = -32029;
constexpr int kUnsupportedVersion = -32022;
constexpr int kBadSession = -32000;  // what the TypeScript SDK answers for session errors

std::string error_body(const std::string& id, int code, std::string_view message,
                       const json* data = nullptr) {
  std::string out = "{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"error\":{\"code\":";
  JsonWriter w(out);
  w.integer(code).raw(",\"message\":").string(message);
  if (data != nullptr) w.raw(",\"data\":").raw(data->dump());
  w.raw("}}");
  return out;
}

Outcome error(unsigned status, const std::string& id, int code, std::string_view message,
              bool modern, const json* data = nullptr) {
  Outcome o;
  o.http_status = status;
  o.body = error_body(id, code, message, data);
  o.modern = modern;
  return o;
}

// `=?base64?...?=` values of Mcp-Name and Mcp-Param-* headers; nullopt when malformed.
std::optional<std::string> decode_header_value(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (!v.starts_with("=?base64?") || !v.ends_with("?=") || v.size() < 11) return std::string(v);
  std::string_view b64 = v.substr(9, v.size() - 11);
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (b64.size() % 4 != 0) return std::nullopt;
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < b64.size(); ++i) {
    const char c = b64[i];
    if (c == '=') {
      if (i + 2 < b64.size()) return std::nullopt;
      ++pad;
      continue;
    }
    if (pad > 0) return std::nullopt;
    const auto pos = kAlphabet.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

bool visible_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7F) {
      return false;
    }
  }
  return true;
}

// Whether `declared` (a ClientCapabilities object) has every capability `required` names.
bool has_capabilities(const json& declared, const json& required) {
  if (!declared.is_object()) return required.empty();
  for (const auto& [name, value] : required.items()) {
    auto it = declared.find(name);
    if (it == declared.end() || !it->is_object()) return false;
    if (value.is_object() && !value.empty() && !has_capabilities(*it, value)) return false;
  }
  return true;
}

// The `cursor` of a list request: every list here fits on one page, so none was ever issued.
void check_no_cursor(const json& params) {
  if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
    throw ToolRequestError("unknown cursor");
  }
}

// The host part of "host:port" or "[v6]:port".
std::string_view host_of(std::string_view remote) {
  if (remote.starts_with('[')) {
    const auto close = remote.find(']');
    return close == std::string_view::npos ? remote : remote.substr(1, close - 1);
  }
  const auto colon = remote.rfind(':');
  if (colon != std::string_view::npos && remote.find(':') == colon) return remote.substr(0, colon);
  return remote;
}

// "name@host", the client's self-declared name reduced to visible ASCII and 64 characters.
std::string client_id(const json* client_info, std::string_view remote) {
  std::string name;
  if (client_info != nullptr && client_info->is_object()) {
    auto n = client_info->find("name");
    if (n != client_info->end() && n->is_string()) {
      for (char c : n->get_ref<const std::string&>()) {
        if (name.size() >= 64) break;
        const auto u = static_cast<unsigned char>(c);
        if (u > 0x20 && u < 0x7F && c != '@') name += c;
      }
    }
  }
  if (name.empty()) name = "anonymous";
  const std::string_view host = host_of(remote);
  return name + "@" + std::string(host.empty() ? "local" : host);
}

// The trace id of a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"), or a fresh one.
std::string trace_id_of(const std::string* traceparent) {
  auto is_hex = [](std::string_view v) {
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  };
  if (traceparent && traceparent->size() >= 55 && (*traceparent)[2] == '-') {
    const std::string_view id = std::string_view(*traceparent).substr(3, 32);
    if (is_hex(id) && id.find_first_not_of('0') != std::string_view::npos) return std::string(id);
  }
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t i = 0; i < id.size(); i += 16) {
    std::uint64_t r = random();
    for (std::size_t j = 0; j < 16; ++j, r >>= 4) id[i + j] = kHex[r & 0xF];
  }
  return id;
}

session::SessionKind kind_of(Transport t) {
  switch (t) {
    case Transport::http:
      return session::SessionKind::http;
    case Transport::sse:
      return session::SessionKind::sse;
    case Transport::stdio:
      return session::SessionKind::stdio;
    case Transport::websocket:
      return session::SessionKind::websocket;
  }
  return session::SessionKind::http;
}

// Whole numbers without a fraction, so that progress reads 50 rather than 50.0.
void write_number(JsonWriter& w, double v) {
  if (std::floor(v) == v && std::fabs(v) < 9.0e15) {
    w.integer(static_cast<std::int64_t>(v));
  } else {
    w.floating(v);
  }
}

const std::string& required_string_param(const json& params, const char* name) {
  auto it = params.find(name);
  if (it == params.end() || !it->is_string()) {
    throw ToolRequestError(std::string("params.") + name + " must be a string");
  }
  return it->get_ref<const std::string&>();
}

// The 429 for a call the client's limits refuse.
Outcome refused(const std::string& id, const session::RequestContext& request,
                const session::ClientLimiter::Admission& admission, bool modern) {
  const auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(admission.retry_after).count();
  const std::string_view reason = session::to_string(*admission.refusal);
  const json data = {{"reason", reason}, {"retryAfterMs", wait_ms}, {"client", request.client}};
  std::string why;
  switch (*admission.refusal) {
    case session::Refusal::rate_limited:
      why = "more requests per second than allowed";
      break;
    case session::Refusal::too_many_in_flight:
      why = "too many requests running at once";
      break;
    case session::Refusal::hourly_quota:
      why = "the hourly quota is used up";
      break;
    case session::Refusal::daily_quota:
      why = "the daily quota is used up";
      break;
  }
  spdlog::info("{} refused: {}", request.describe(), reason);
  Outcome o = error(429, id, kLimited,
                    "Too many requests from client '" + request.client + "': " + why +
                        "; retry in " + std::to_string(wait_ms) + " ms",
                    modern, &data);
  o.retry_after = std::chrono::ceil<std::chrono::seconds>(admission.retry_after);
  if (o.retry_after->count() < 1) o.retry_after = std::chrono::seconds(1);
  return o;
}

// Runs a tool into `out`. Spawned with a cancellation slot of the request's own; spawning an
// awaitable<void> hands nothing back, where one of an awaitable<ToolResult> moves the result
// through the spawned frame, two handlers and the awaiting frame.
asio::awaitable<void> call_into(ToolProvider& tools, const std::string& name, ToolCall& call,
                                ToolResult& out) {
  out = co_await tools.call(name, call);
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
  for (int i = 0; i <= static_cast<int>(LogLevel::emergency); ++i) {
    const auto level = static_cast<LogLevel>(i);
    if (log_level_name(level) == name) return level;
  }
  return std::nullopt;
}

std::string_view log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::notice:
      return "notice";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
    case LogLevel::critical:
      return "critical";
    case LogLevel::alert:
      return "alert";
    case LogLevel::emergency:
      return "emergency";
  }
  return "info";
}

struct McpEngine::Asking {
  explicit Asking(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;  // the answer's deadline; cancelled when it arrives
  std::optional<json> answer;
};

struct McpEngine::Request {
  json message;
  std::string id;  // serialised; "null" for notifications
  bool has_id = false;
  std::string method;
  json params = json::object();
  std::string version;  // the revision this request speaks
  std::string session;  // the legacy session or connection it belongs to, if any
  std::string client;   // who sends it, once known
};

// What a tool call keeps while it runs (see call_tool).
struct McpEngine::ToolRun {
  ToolRun(const json& arguments, const json& capabilities)
      : call{.arguments = arguments, .client_capabilities = capabilities, .request = request} {}
  session::RequestContext request;
  session::ClientLimiter::Admission admission;  // holds the client's slot while it runs
  ToolCall call;
  const nlohmann::json* meta = nullptr;  // params._meta, if any
  asio::any_io_executor ex;              // the request's
  const Notify* notify = nullptr;        // the request's
  const std::string* scope = nullptr;    // where `ask` waits for the client's answer
  std::shared_ptr<Notify> sink;          // see shared_notify()
  std::shared_ptr<transports::RequestCancellation> cancellation;  // see wire_call
  std::uint64_t cancel_id = 0;                                    // this call's number there
  std::string key;                                                // in in_flight_
  ToolResult result;

  // `notify`, shared with what may outlive the call (posted notifications); made on first
  // need, since most calls send the client nothing.
  const std::shared_ptr<Notify>& shared_notify() {
    if (!sink) sink = std::make_shared<Notify>(*notify);
    return sink;
  }
};

McpEngine::McpEngine(ToolProvider& tools, session::SessionTokens& sessions, Params params)
    : tools_(tools), sessions_(sessions), params_(std::move(params)) {
  server_info_ = json{{"name", params_.name}, {"version", params_.version}}.dump();
  json legacy = {{"tools", {{"listChanged", false}}}};
  json modern = {{"tools", json::object()}};
  if (params_.logging) {
    legacy["logging"] = json::object();
    modern["logging"] = json::object();
  }
  if (params_.resources != nullptr) {
    legacy["resources"] = {{"listChanged", false},
                           {"subscribe", params_.resources->subscribable()}};
    modern["resources"] = json::object();
  }
  if (params_.prompts != nullptr) {
    legacy["prompts"] = {{"listChanged", false}};
    modern["prompts"] = json::object();
  }
  if (params_.completions != nullptr) {
    legacy["completions"] = json::object();
    modern["completions"] = json::object();
  }
  legacy_capabilities_ = legacy.dump();
  modern_capabilities_ = modern.dump();
}

bool McpEngine::is_legacy_version(std::string_view v) noexcept {
  return std::find(kLegacyVersions.begin(), kLegacyVersions.end(), v) != kLegacyVersions.end();
}

// Not a coroutine: a single message goes straight to handle_one, without a frame here.
asio::awaitable<Outcome> McpEngine::handle(std::string_view body, MessageContext& ctx,
                                           Notify notify) {
  json message = parse_json(body);
  if (message.is_discarded()) {
    return ready(
        error(400, "null", kParseError, "Parse error: the message is not valid JSON", false));
  }
  if (!message.is_array()) return handle_one(std::move(message), ctx, std::move(notify));
  // Batches: only 2025-03-26 allowed them, and there receivers must accept them.
  if (message.empty() || !batch_allowed(ctx)) {
    return ready(error(400, "null", kInvalidRequest,
                       "Invalid Request: batches (JSON arrays) are accepted only in 2025-03-26 "
                       "sessions; send one message per request",
                       false));
  }
  return handle_batch(std::move(message), ctx, std::move(notify));
}

asio::awaitable<Outcome> McpEngine::handle_batch(json batch, MessageContext& ctx, Notify notify) {
  std::string out = "[";
  bool any = false;
  for (auto& element : batch) {
    Outcome one = co_await handle_one(std::move(element), ctx, notify);
    if (one.body.empty() || one.http_status == 202) continue;
    if (any) out += ',';
    out += one.body;
    any = true;
  }
  Outcome o;
  if (any) {
    o.body = std::move(out) + "]";
  } else {
    o.http_status = 202;
  }
  co_return o;
}

bool McpEngine::batch_allowed(const MessageContext& ctx) const {
  if (ctx.transport == Transport::http) {
    if (!ctx.session_id) return false;
    auto session = sessions_.find(*ctx.session_id);
    const std::string version =
        ctx.protocol_version_header.value_or(session ? session->protocol_version : std::string());
    return session && version == "2025-03-26";
  }
  return ctx.connection != nullptr && ctx.connection->initialized &&
         ctx.connection->protocol_version == "2025-03-26";
}

asio::awaitable<Outcome> McpEngine::handle_one(json message, MessageContext& ctx, Notify notify) {
  Request req;
  req.message = std::move(message);
  const json& m = req.message;
  if (!m.is_object()) {
    co_return error(400, "null", kInvalidRequest, "Invalid Request: expected a JSON-RPC 2.0 object",
                    false);
  }
  // The id first, so that every later error can echo it.
  if (auto it = m.find("id"); it != m.end()) {
    if (!(it->is_string() || it->is_number_integer())) {
      co_return error(400, "null", kInvalidRequest,
                      "Invalid Request: \"id\" must be a string or an integer", false);
    }
    req.has_id = true;
    // Echoed as written back: an integer needs no serializer.
    if (it->is_number_unsigned()) {
      req.id = std::to_string(it->get<std::uint64_t>());
    } else if (it->is_number_integer()) {
      req.id = std::to_string(it->get<std::int64_t>());
    } else {
      req.id = it->dump();
    }
  } else {
    req.id = "null";
  }
  if (auto v = m.find("jsonrpc");
      v == m.end() || !v->is_string() || v->get_ref<const std::string&>() != "2.0") {
    co_return error(400, req.id, kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"",
                    false);
  }
  auto method = m.find("method");
  if (method == m.end()) {
    // A response or error from the client, to a request this server sent in the same scope.
    if (req.has_id && (m.contains("result") || m.contains("error"))) {
      deliver_answer(ctx.cancel_scope, req.id, std::move(req.message));
    }
    Outcome o;
    o.http_status = 202;
    co_return o;
  }
  if (!method->is_string()) {
    co_return error(400, req.id, kInvalidRequest, "Invalid Request: \"method\" must be a string",
                    false);
  }
  req.method = method->get<std::string>();
  if (auto p = req.message.find("params"); p != req.message.end() && !p->is_null()) {
    if (!p->is_object()) {
      co_return error(400, req.id, kInvalidParams, "Invalid params: \"params\" must be an object",
                      false);
    }
    req.params = std::move(*p);  // nothing reads them from the message again
  }

  const json* meta = nullptr;
  if (auto it = req.params.find("_meta"); it != req.params.end() && it->is_object()) meta = &*it;
  const bool modern_signal =
      (meta != nullptr && meta->contains(kMetaVersion)) ||
      (ctx.protocol_version_header && !is_legacy_version(*ctx.protocol_version_header) &&
       *ctx.protocol_version_header != "2024-11-05") ||
      req.method == "server/discover" || req.method == "subscriptions/listen";
  try {
    if (modern_signal) co_return co_await modern(req, ctx, notify);
    co_return co_await legacy(req, ctx, notify);
  } catch (const ToolRequestError& e) {
    co_return error(200, req.id, kInvalidParams, std::string("Invalid params: ") + e.what(),
                    modern_signal);
  } catch (const pool::DbError&) {
    throw;  // cancelled: the transport decides whether anyone still listens
  } catch (const std::exception& e) {
    spdlog::error("request {} {} failed: {}", req.id, req.method, e.what());
    co_return error(500, req.id, kInternalError, "Internal error", modern_signal);
  }
}

asio::awaitable<Outcome> McpEngine::modern(Request& req, MessageContext& ctx, Notify& notify) {
  if (!req.has_id) co_return notification(req, ctx);
  const json* meta = nullptr;
  if (auto it = req.params.find("_meta"); it != req.params.end() && it->is_object()) meta = &*it;
  if (meta == nullptr || !meta->contains(kMetaVersion) || !(*meta)[kMetaVersion].is_string()) {
    co_return error(400, req.id, kInvalidParams,
                    "Invalid params: params._meta[\"io.modelcontextprotocol/protocolVersion\"] "
                    "is required on every request",
                    true);
  }
  if (!meta->contains(kMetaCapabilities) || !(*meta)[kMetaCapabilities].is_object()) {
    co_return error(400, req.id, kInvalidParams,
                    "Invalid params: params._meta[\"io.modelcontextprotocol/clientCapabilities\"] "
                    "is required on every request (use {} for none)",
                    true);
  }
  req.version = (*meta)[kMetaVersion].get<std::string>();
  if (ctx.transport == Transport::http) {
    auto mismatch = [&](std::string_view what) {
      return error(400, req.id, kHeaderMismatch,
                   std::string("Header mismatch: ") + std::string(what), true);
    };
    if (!ctx.protocol_version_header || *ctx.protocol_version_header != req.version) {
      co_return mismatch(
          "MCP-Protocol-Version must be present and equal the request's "
          "_meta protocolVersion");
    }
    if (!ctx.method_header || *ctx.method_header != req.method) {
      co_return mismatch("Mcp-Method must be present and equal the request's method");
    }
    if (req.method == "tools/call") {
      const json& name = req.params.contains("name") ? req.params["name"] : json();
      if (!ctx.name_header) co_return mismatch("Mcp-Name is required for tools/call");
      auto decoded = decode_header_value(*ctx.name_header);
      if (!decoded) co_return mismatch("Mcp-Name has malformed base64");
      if (!name.is_string() || *decoded != name.get<std::string>()) {
        co_return mismatch("Mcp-Name must equal params.name");
      }
    }
    if (!visible_ascii(*ctx.method_header)) co_return mismatch("Mcp-Method has illegal characters");
  }
  if (req.version != kModernVersion) {
    json data = {{"supported", {std::string(kModernVersion)}}, {"requested", req.version}};
    co_return error(400, req.id, kUnsupportedVersion,
                    "Unsupported protocol version '" + req.version + "'; this server supports " +
                        std::string(kModernVersion) + " (and legacy revisions via initialize)",
                    true, &data);
  }
  if (req.method == "server/discover") {
    std::string body =
        "{\"supportedVersions\":[\"2026-07-28\",\"2025-11-25\",\"2025-06-18\","
        "\"2025-03-26\",\"2024-11-05\"],\"capabilities\":" +
        modern_capabilities_ + ",\"ttlMs\":3600000,\"cacheScope\":\"public\"";
    if (!params_.instructions.empty()) {
      body += ",\"instructions\":";
      JsonWriter(body).string(params_.instructions);
    }
    body += "}";
    co_return Outcome{200, result(req, body, true), std::nullopt, true, std::nullopt};
  }
  if (meta->contains(kMetaLogLevel)) {
    const json& level = (*meta)[kMetaLogLevel];
    if (!level.is_string() || !parse_log_level(level.get<std::string>())) {
      co_return error(200, req.id, kInvalidParams,
                      "Invalid params: _meta[\"io.modelcontextprotocol/logLevel\"] must be one of "
                      "debug, info, notice, warning, error, critical, alert, emergency",
                      true);
    }
  }
  if (req.method == "tools/list")
    co_return Outcome{200, tools_list(req, true), std::nullopt, true, std::nullopt};
  if (req.method == "tools/call") {
    if (auto name = req.params.find("name"); name != req.params.end() && name->is_string()) {
      const json* required = tools_.required_capabilities(name->get<std::string>());
      if (required != nullptr && !has_capabilities((*meta)[kMetaCapabilities], *required)) {
        json data = {{"requiredCapabilities", *required}};
        co_return error(400, req.id, kMissingCapability,
                        "Missing client capability: tool '" + name->get<std::string>() +
                            "' needs " + required->dump() +
                            " in _meta[\"io.modelcontextprotocol/clientCapabilities\"]",
                        true, &data);
      }
    }
    co_return co_await call_tool(req, ctx, notify, true, req.version);
  }
  if (auto served = co_await content(req, true)) co_return std::move(*served);
  co_return error(404, req.id, kMethodNotFound,
                  "Method not found: '" + req.method + "' is not served in revision " +
                      std::string(kModernVersion),
                  true);
}

// Not a coroutine: it answers at once or hands over to the coroutine that does, so a tool
// call pays for no frame here.
asio::awaitable<Outcome> McpEngine::legacy(Request& req, MessageContext& ctx, Notify& notify) {
  if (req.method == "initialize") {
    // Sent as a notification it asks for nothing: no session, no answer.
    if (!req.has_id) return ready(notification(req, ctx));
    return ready(initialize(req, ctx));
  }
  std::string version;
  if (ctx.transport == Transport::http) {
    if (!ctx.session_id) {
      return ready(error(400, req.id, kBadSession,
                         "Bad Request: Mcp-Session-Id header is required; start with initialize",
                         false));
    }
    auto session = sessions_.find(*ctx.session_id);
    if (!session) {
      return ready(error(404, req.id, kBadSession,
                         "Session not found: it ended or was never issued; initialize again",
                         false));
    }
    version = session->protocol_version;
    req.session = *ctx.session_id;
    req.client = session->client.empty() ? client_id(nullptr, ctx.remote) : session->client;
    if (ctx.protocol_version_header) {
      if (!is_legacy_version(*ctx.protocol_version_header)) {
        return ready(error(
            400, req.id, kBadSession,
            "Bad Request: unsupported MCP-Protocol-Version '" + *ctx.protocol_version_header + "'",
            false));
      }
      version = *ctx.protocol_version_header;
    }
    // Without the header the revision negotiated at initialize, which the signed session id
    // carries, still holds: 2025-03-26 is assumed only when nothing else tells.
  } else if (ctx.connection != nullptr && ctx.connection->initialized) {
    version = ctx.connection->protocol_version;
    req.session = ctx.cancel_scope;
    req.client = ctx.connection->client;
  } else if (req.method != "ping" && req.has_id) {
    return ready(error(200, req.id, kInvalidParams,
                       "Invalid params: send initialize first, or use the 2026-07-28 revision with "
                       "params._meta on every request",
                       false));
  }
  req.version = version;
  touch_session(req, ctx);
  if (!req.has_id) return ready(notification(req, ctx));
  if (req.method == "ping")
    return ready(Outcome{200, result(req, "{}", false), std::nullopt, false, std::nullopt});
  if (req.method == "logging/setLevel" && params_.logging) return ready(set_level(req, ctx));
  if (req.method == "tools/list")
    return ready(Outcome{200, tools_list(req, false), std::nullopt, false, std::nullopt});
  if (req.method == "tools/call") return call_tool(req, ctx, notify, false, std::move(version));
  return legacy_content(req);
}

asio::awaitable<Outcome> McpEngine::legacy_content(Request& req) {
  if (auto served = co_await content(req, false)) co_return std::move(*served);
  co_return error(200, req.id, kMethodNotFound, "Method not found: '" + req.method + "'", false);
}

Outcome McpEngine::initialize(Request& req, MessageContext& ctx) {
  std::string requested;
  if (auto it = req.params.find("protocolVersion"); it != req.params.end() && it->is_string()) {
    requested = it->get<std::string>();
  } else {
    return error(200, req.id, kInvalidParams, "Invalid params: protocolVersion is required", false);
  }
  // 2024-11-05 is served too (HTTP+SSE and stdio clients of that age); everything else
  // unknown gets the newest legacy revision, and the client decides whether it can cope.
  const std::string version = is_legacy_version(requested) || requested == "2024-11-05"
                                  ? requested
                                  : std::string(kNewestLegacy);
  const json* info = nullptr;
  if (auto it = req.params.find("clientInfo"); it != req.params.end()) info = &*it;
  const std::string client = client_id(info, ctx.remote);
  Outcome o;
  if (ctx.transport == Transport::http) {
    o.session_id = sessions_.mint(version, client);
    if (params_.manager != nullptr &&
        !params_.manager->open(*o.session_id, session::SessionKind::http, client)) {
      Outcome busy = error(503, req.id, kLimited,
                           "Server busy: the gateway holds as many sessions as it may; retry "
                           "later, or use the stateless 2026-07-28 revision",
                           false);
      busy.retry_after = std::chrono::seconds(5);
      return busy;
    }
  } else if (ctx.connection != nullptr) {
    if (params_.manager != nullptr &&
        !params_.manager->open(ctx.cancel_scope, kind_of(ctx.transport), client,
                               ctx.connection->close)) {
      return error(503, req.id, kLimited,
                   "Server busy: the gateway holds as many sessions as it may; retry later", false);
    }
    ctx.connection->initialized = true;
    ctx.connection->protocol_version = version;
    ctx.connection->client = client;
  }
  std::string body = "{\"protocolVersion\":\"" + version +
                     "\",\"capabilities\":" + legacy_capabilities_ +
                     ",\"serverInfo\":" + server_info_;
  if (!params_.instructions.empty()) {
    body += ",\"instructions\":";
    JsonWriter(body).string(params_.instructions);
  }
  body += "}";
  o.body = result(req, body, false);
  return o;
}

Outcome McpEngine::notification(Request& req, MessageContext& ctx) {
  if (req.method == "notifications/cancelled") {
    auto id = req.params.find("requestId");
    if (id != req.params.end() && (id->is_string() || id->is_number_integer()) &&
        !ctx.cancel_scope.empty()) {
      std::lock_guard lock(in_flight_mutex_);
      auto it = in_flight_.find(ctx.cancel_scope + '\x1f' + id->dump());
      if (it != in_flight_.end()) {
        asio::post(it->second.executor,
                   [c = it->second.cancellation, request = it->second.request] {
                     c->cancel(request, asio::cancellation_type::terminal);
                   });
      }
    }
  }
  Outcome o;
  o.http_status = 202;
  return o;
}

std::string McpEngine::result(const Request& req, std::string_view body, bool modern) const {
  std::string out = "{\"jsonrpc\":\"2.0\",\"id\":" + req.id + ",\"result\":";
  out.append(body);
  if (modern) {
    out.pop_back();  // reopen the result object
    out += ",\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":";
    out += server_info_;
    out += "}}";
  }
  out += "}";
  return out;
}

std::string McpEngine::list_result(const Request& req, std::string_view key,
                                   const std::string& items, bool modern) const {
  std::string body = "{\"";
  body += key;
  body += "\":" + items;
  if (modern) body += ",\"ttlMs\":300000,\"cacheScope\":\"public\"";
  body += "}";
  return result(req, body, modern);
}

asio::awaitable<std::optional<Outcome>> McpEngine::content(Request& req, bool modern) {
  const std::string& m = req.method;
  auto done = [&](std::string body) {
    return std::optional<Outcome>(
        Outcome{200, std::move(body), std::nullopt, modern, std::nullopt});
  };
  if (ResourceProvider* r = params_.resources) {
    if (m == "resources/list") {
      check_no_cursor(req.params);
      co_return done(list_result(req, "resources", r->resources(), modern));
    }
    if (m == "resources/templates/list") {
      check_no_cursor(req.params);
      co_return done(list_result(req, "resourceTemplates", r->templates(), modern));
    }
    if (m == "resources/read") {
      std::string uri = required_string_param(req.params, "uri");
      const std::optional<std::string> contents = co_await r->read(uri);
      if (!contents) {
        const json data = {{"uri", uri}};
        co_return error(200, req.id, kInvalidParams,
                        "Resource not found: '" + uri + "'; resources/list names those served",
                        modern, &data);
      }
      std::string body = "{\"contents\":" + *contents;
      if (modern) body += ",\"ttlMs\":60000,\"cacheScope\":\"public\"";
      body += "}";
      co_return done(result(req, body, modern));
    }
    // Subscriptions need a session to deliver updates in: legacy only.
    if (!modern && r->subscribable() &&
        (m == "resources/subscribe" || m == "resources/unsubscribe")) {
      required_string_param(req.params, "uri");
      co_return done(result(req, "{}", false));
    }
  }
  if (PromptProvider* p = params_.prompts) {
    if (m == "prompts/list") {
      check_no_cursor(req.params);
      co_return done(list_result(req, "prompts", p->prompts(), modern));
    }
    if (m == "prompts/get") {
      std::string name = required_string_param(req.params, "name");
      static const json kNoArguments = json::object();
      auto a = req.params.find("arguments");
      const json& args = a == req.params.end() || a->is_null() ? kNoArguments : *a;
      if (!args.is_object()) throw ToolRequestError("params.arguments must be an object");
      const std::string body = co_await p->get(std::move(name), args);
      co_return done(result(req, body, modern));
    }
  }
  if (CompletionProvider* c = params_.completions; c != nullptr && m == "completion/complete") {
    auto ref = req.params.find("ref");
    auto argument = req.params.find("argument");
    if (ref == req.params.end() || !ref->is_object() || argument == req.params.end() ||
        !argument->is_object()) {
      throw ToolRequestError("params.ref and params.argument must be objects");
    }
    co_return done(result(req, "{\"completion\":" + c->complete(*ref, *argument) + "}", modern));
  }
  co_return std::nullopt;
}

McpEngine::SessionState& McpEngine::session_state(const std::string& id) {
  if (session_states_.size() >= kMaxSessionStates && !session_states_.contains(id)) {
    session_states_.erase(session_states_.begin());
  }
  return session_states_[id];
}

void McpEngine::session_ended(const std::string& id) {
  {
    std::lock_guard lock(states_mutex_);
    session_states_.erase(id);
  }
  if (params_.manager != nullptr) params_.manager->close(id);
}

std::string McpEngine::client_of(const Request& req, const MessageContext& ctx) const {
  if (!req.client.empty()) return req.client;
  if (ctx.connection != nullptr && !ctx.connection->client.empty()) return ctx.connection->client;
  const json* info = nullptr;
  if (auto meta = req.params.find("_meta"); meta != req.params.end() && meta->is_object()) {
    if (auto it = meta->find("io.modelcontextprotocol/clientInfo"); it != meta->end()) info = &*it;
  }
  return client_id(info, ctx.remote);
}

void McpEngine::touch_session(const Request& req, const MessageContext& ctx) {
  if (params_.manager == nullptr || req.session.empty()) return;
  params_.manager->touch(req.session, kind_of(ctx.transport), client_of(req, ctx));
}

Outcome McpEngine::set_level(Request& req, MessageContext& ctx) {
  std::optional<LogLevel> level;
  if (auto it = req.params.find("level"); it != req.params.end() && it->is_string()) {
    level = parse_log_level(it->get<std::string>());
  }
  if (!level) {
    return error(200, req.id, kInvalidParams,
                 "Invalid params: level must be one of debug, info, notice, warning, error, "
                 "critical, alert, emergency",
                 false);
  }
  if (ctx.transport == Transport::http) {
    if (ctx.session_id) {
      std::lock_guard lock(states_mutex_);
      session_state(*ctx.session_id).log_level = level;
    }
  } else if (ctx.connection != nullptr) {
    ctx.connection->log_level = level;
  }
  return Outcome{200, result(req, "{}", false), std::nullopt, false, std::nullopt};
}

std::optional<LogLevel> McpEngine::log_level(const Request& req, const MessageContext& ctx,
                                             bool modern) const {
  if (!params_.logging) return std::nullopt;
  if (modern) {
    // Only a request that carries a level gets log messages (validated in modern()).
    auto meta = req.params.find("_meta");
    if (meta == req.params.end() || !meta->is_object()) return std::nullopt;
    auto level = meta->find(kMetaLogLevel);
    if (level == meta->end() || !level->is_string()) return std::nullopt;
    return parse_log_level(level->get<std::string>());
  }
  if (ctx.transport == Transport::http) {
    if (!ctx.session_id) return std::nullopt;
    std::lock_guard lock(states_mutex_);
    auto it = session_states_.find(*ctx.session_id);
    if (it == session_states_.end()) return std::nullopt;
    return it->second.log_level;
  }
  return ctx.connection != nullptr ? ctx.connection->log_level : std::nullopt;
}

asio::awaitable<json> McpEngine::ask_client(std::string scope, std::shared_ptr<Notify> notify,
                                            std::string method, json params,
                                            pool::Deadline deadline) {
  const std::string id = "\"sluice-" + std::to_string(next_ask_.fetch_add(1)) + "\"";
  const std::string key = scope + '\x1f' + id;
  const auto ex = co_await asio::this_coro::executor;
  auto asking = std::make_shared<Asking>(ex);
  {
    std::lock_guard lock(asking_mutex_);
    asking_[key] = asking;
  }
  struct Forget {
    McpEngine& e;
    const std::string& k;
    ~Forget() {
      std::lock_guard lock(e.asking_mutex_);
      e.asking_.erase(k);
    }
  } forget{*this, key};

  std::string msg = "{\"jsonrpc\":\"2.0\",\"id\":" + id + ",\"method\":";
  JsonWriter(msg).string(method);
  msg += ",\"params\":" + params.dump() + "}";
  (*notify)(std::move(msg));

  asking->timer.expires_at(std::min(deadline, pool::Clock::now() + kAskTimeout));
  auto [ec] = co_await asking->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!asking->answer) {
    // Cancelled with the request: the caller treats it like a cancelled statement.
    if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
    throw ClientRequestError("the client did not answer " + method + " within " +
                             std::to_string(kAskTimeout.count()) + " s");
  }
  json& answer = *asking->answer;
  if (auto e = answer.find("error"); e != answer.end()) {
    std::string why = e->dump();
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
      why = (*e)["message"].get<std::string>();
    }
    throw ClientRequestError("the client refused " + method + ": " + why);
  }
  co_return std::move(answer["result"]);
}

void McpEngine::deliver_answer(const std::string& scope, const std::string& id, json message) {
  std::shared_ptr<Asking> asking;
  {
    std::lock_guard lock(asking_mutex_);
    auto it = asking_.find(scope + '\x1f' + id);
    if (it == asking_.end()) return;  // unknown, answered already, or timed out
    asking = it->second;
    asking_.erase(it);
  }
  const auto ex = asking->timer.get_executor();
  asio::post(ex, [asking, message = std::move(message)]() mutable {
    if (asking->answer) return;
    asking->answer = std::move(message);
    asking->timer.cancel();
  });
}

std::string McpEngine::tools_list(const Request& req, bool modern) const {
  if (auto c = req.params.find("cursor"); c != req.params.end() && !c->is_null()) {
    // Everything fits on one page, so no cursor was ever issued.
    return error_body(req.id, kInvalidParams, "Invalid params: unknown cursor");
  }
  std::string body = "{\"tools\":" + tools_.definitions();
  if (modern) body += ",\"ttlMs\":300000,\"cacheScope\":\"public\"";
  body += "}";
  return result(req, body, modern);
}

// Not a coroutine: checks the request and builds the call's state, answering at once when
// the client's limits refuse it; run_tool runs the rest. (g++ gives every local and
// temporary of a coroutine a slot of its own, and a frame over 1 KB bypasses both Asio's and
// glibc's per-thread caches: a slow malloc that also consolidates glibc's fast bins.)
asio::awaitable<Outcome> McpEngine::call_tool(Request& req, MessageContext& ctx, Notify& notify,
                                              bool modern, std::string version) {
  auto name = req.params.find("name");
  if (name == req.params.end() || !name->is_string()) {
    throw ToolRequestError("params.name must be the tool's name");
  }
  static const json kNoArguments = json::object();
  auto args_it = req.params.find("arguments");
  const json& args = args_it == req.params.end() || args_it->is_null() ? kNoArguments : *args_it;
  const std::string& tool = name->get_ref<const std::string&>();
  if (!tools_.has(tool)) throw ToolRequestError("unknown tool '" + tool + "'");

  static const json kNoCapabilities = json::object();
  const json* meta = nullptr;
  if (auto it = req.params.find("_meta"); it != req.params.end() && it->is_object()) meta = &*it;
  const json* capabilities = &kNoCapabilities;
  if (meta != nullptr && modern) capabilities = &(*meta)[kMetaCapabilities];
  auto run = std::make_unique<ToolRun>(args, *capabilities);
  run->meta = meta;
  session::RequestContext& request = run->request;
  request.request_id = req.id;
  request.client = client_of(req, ctx);
  request.session = req.session;
  request.tool = tool;
  {
    const std::string* traceparent = ctx.traceparent ? &*ctx.traceparent : nullptr;
    if (meta != nullptr) {
      if (auto t = meta->find("traceparent"); t != meta->end() && t->is_string()) {
        traceparent = &t->get_ref<const std::string&>();
      }
    }
    request.trace_id = trace_id_of(traceparent);
  }

  // Per-client limits: a refused call never reaches a database.
  if (params_.manager != nullptr) {
    std::string source;
    if (auto s = args.find("source"); s != args.end() && s->is_string()) source = *s;
    run->admission = params_.manager->admit(request.client, source);
    if (!run->admission.ok()) return ready(refused(req.id, request, run->admission, modern));
  }

  ToolCall& call = run->call;
  // A retry after input_required: the answers, and the state, whose signature must hold.
  if (modern) {
    if (auto in = req.params.find("inputResponses"); in != req.params.end() && !in->is_null()) {
      if (!in->is_object()) throw ToolRequestError("params.inputResponses must be an object");
      call.input_responses = &*in;
    }
    if (auto st = req.params.find("requestState"); st != req.params.end() && !st->is_null()) {
      std::optional<std::string> state;
      if (st->is_string() && params_.state_signer != nullptr) {
        state = params_.state_signer->verify(st->get<std::string>());
      }
      const std::string prefix = "r1\x1f" + request.client + '\x1f' + request.tool + '\x1f';
      if (!state || !state->starts_with(prefix)) {
        throw ToolRequestError(
            "params.requestState was not issued by this server for this client and tool, or "
            "was altered; start again without it");
      }
      call.request_state = state->substr(prefix.size());
    }
  }
  // The session's default database context: per connection, or per legacy HTTP session on
  // this replica. Stateless requests carry theirs as a context handle instead.
  if (ctx.connection != nullptr && !modern) {
    call.session_context = ctx.connection->context;
    call.set_session_context = [state = ctx.connection](session::ContextHandles::Context c) {
      state->context = std::move(c);
    };
  } else if (!req.session.empty() && !modern) {
    {
      std::lock_guard lock(states_mutex_);
      if (auto it = session_states_.find(req.session); it != session_states_.end()) {
        call.session_context = it->second.context;
      }
    }
    // By reference: `req` outlives the call, and two pointers fit std::function's own storage.
    call.set_session_context = [this, &id = req.session](session::ContextHandles::Context c) {
      std::lock_guard lock(states_mutex_);
      session_state(id).context = std::move(c);
    };
  }
  return run_tool(std::move(run), req, ctx, notify, modern, std::move(version));
}

// The request's notifications (progress, log messages) and requests to the client, which go
// out through `notify`, always from the request's executor; and its entry in in_flight_.
void McpEngine::wire_call(ToolRun& run, Request& req, MessageContext& ctx, Notify& notify,
                          bool modern) {
  ToolCall& call = run.call;
  const json* meta = run.meta;
  const auto& ex = run.ex;
  run.notify = &notify;
  if (notify && meta != nullptr && meta->contains("progressToken")) {
    call.progress = [ex, sink = run.shared_notify(), token = (*meta)["progressToken"].dump()](
                        double progress, std::optional<double> total, std::string message) {
      std::string msg =
          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
          "\"progressToken\":" +
          token + ",\"progress\":";
      JsonWriter w(msg);
      write_number(w, progress);
      if (total) write_number(w.raw(",\"total\":"), *total);
      if (!message.empty()) w.raw(",\"message\":").string(message);
      msg += "}}";
      asio::post(ex, [sink, msg = std::move(msg)]() mutable { (*sink)(std::move(msg)); });
    };
  }
  if (const auto threshold = notify ? log_level(req, ctx, modern) : std::nullopt) {
    call.log = [ex, sink = run.shared_notify(), threshold = *threshold](LogLevel level, json data) {
      if (level < threshold) return;
      std::string msg =
          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"";
      msg += log_level_name(level);
      msg += "\",\"data\":" + data.dump() + "}}";
      asio::post(ex, [sink, msg = std::move(msg)]() mutable { (*sink)(std::move(msg)); });
    };
  }
  // Requests to the client: only in legacy sessions and on connections, where the client
  // reads a stream this request owns and answers in the same scope. The tool asks only while
  // the call runs, so the closure points at the call's state.
  if (notify && !modern) {
    run.scope = &ctx.cancel_scope;
    call.ask = [this, state = &run](std::string method, json params) {
      return ask_client(*state->scope, state->shared_notify(), std::move(method), std::move(params),
                        pool::Deadline::max());
    };
  }

  // The request's cancellation, fired by notifications/cancelled (legacy, stdio, WebSocket)
  // or by the transport when the requester goes away (modern HTTP): the one the transport
  // bound to this coroutine, else one of the call's own (see run_tool).
  run.cancellation =
      ctx.cancellation ? ctx.cancellation : std::make_shared<transports::RequestCancellation>();
  run.cancel_id = run.cancellation->begin();
  if (ctx.cancel_scope.empty()) return;  // stateless: no notification can name it
  run.key = ctx.cancel_scope + '\x1f' + req.id;
  std::lock_guard lock(in_flight_mutex_);
  in_flight_.insert_or_assign(run.key, InFlight{ex, run.cancellation, run.cancel_id});
}

asio::awaitable<Outcome> McpEngine::run_tool(std::unique_ptr<ToolRun> run, Request& req,
                                             MessageContext& ctx, Notify& notify, bool modern,
                                             std::string version) {
  run->ex = co_await asio::this_coro::executor;
  wire_call(*run, req, ctx, notify, modern);
  const auto& cancellation = run->cancellation;
  const std::uint64_t cancel_id = run->cancel_id;
  // Bound by the transport to this coroutine: the call runs here, and is cancelled through
  // this coroutine's own cancellation state.
  const bool in_place = cancellation == ctx.cancellation;
  const session::RequestContext& request = run->request;
  struct Unregister {
    McpEngine& e;
    const std::string& k;
    asio::cancellation_slot& slot;
    std::shared_ptr<transports::RequestCancellation> cancellation;
    std::uint64_t id;
    bool in_place;
    const asio::any_io_executor& ex;
    ~Unregister() {
      cancellation->end();
      if (slot.is_connected()) slot.clear();
      if (!k.empty()) {
        std::lock_guard lock(e.in_flight_mutex_);
        // A later request reusing the id in this scope may have taken the entry over; it
        // stays cancellable.
        auto it = e.in_flight_.find(k);
        if (it != e.in_flight_.end() && it->second.cancellation == cancellation &&
            it->second.request == id) {
          e.in_flight_.erase(it);
        }
      }
      // A signal of the call's own must outlive the co_spawn below, whose completion handler
      // still touches its slot after resuming this coroutine: its last owner goes later.
      if (!in_place) asio::post(ex, [keep = std::move(cancellation)] {});
    }
  };
  Unregister unregister{*this,     run->key, ctx.disconnect, cancellation,
                        cancel_id, in_place, run->ex};
  // Over HTTP only the modern era treats a closed response stream as cancellation (legacy
  // streams may be resumed); a closed WebSocket or stdio leaves nobody to answer.
  if (modern || ctx.transport != Transport::http) {
    if (!ctx.disconnect.is_connected() && ctx.watch_disconnect) {
      ctx.disconnect = ctx.watch_disconnect();
    }
    if (ctx.disconnect.is_connected()) {
      ctx.disconnect.assign(
          [c = cancellation, cancel_id](asio::cancellation_type t) { c->cancel(cancel_id, t); });
    }
  }

  ToolResult& r = run->result;
  const auto started = std::chrono::steady_clock::now();
  std::exception_ptr failure;
  try {
    if (in_place) {
      auto call = tools_.call(request.tool, run->call);
      r = co_await std::move(call);
    } else {
      auto work = call_into(tools_, request.tool, run->call, run->result);
      auto token = asio::bind_cancellation_slot(cancellation->signal.slot(), asio::use_awaitable);
      co_await asio::co_spawn(run->ex, std::move(work), token);
    }
  } catch (...) {
    failure = std::current_exception();
  }
  cancellation->end();
  // A cancel that reached this coroutine's own state would fail what it awaits next.
  if (in_place && cancellation->fired) co_await asio::this_coro::reset_cancellation_state();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const boost::system::system_error& e) {
      // A cancelled coroutine may end at any co_await with operation_aborted; to the callers
      // that is the same as a cancelled statement: nobody waits for an answer.
      if (e.code() != asio::error::operation_aborted) throw;
      spdlog::debug("{} cancelled", request.describe());
      throw pool::DbError(pool::errc::cancelled, "request", {"", 0, "request cancelled"});
    } catch (const pool::DbError& e) {
      spdlog::debug("{} ended: {}", request.describe(), e.what());
      throw;
    }
  }
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug(
        "{} {} in {:.1f} ms", request.describe(), r.is_error ? "tool error" : "done",
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count());
  }

  co_return tool_outcome(req, request, r, modern, version);
}

Outcome McpEngine::tool_outcome(const Request& req, const session::RequestContext& request,
                                ToolResult& r, bool modern, std::string_view version) const {
  if (!r.input_requests.empty()) {
    // The tool needs the client's input first (2026-07-28 only: older clients get an error).
    if (!modern || params_.state_signer == nullptr) {
      r = ToolResult{};
      r.is_error = true;
      r.text =
          "This tool needs input from the client, which only the 2026-07-28 revision can "
          "give (input_required results).";
    } else {
      std::string out =
          "{\"jsonrpc\":\"2.0\",\"id\":" + req.id +
          ",\"result\":{\"resultType\":\"input_required\",\"inputRequests\":" + r.input_requests;
      if (!r.request_state.empty()) {
        out += ",\"requestState\":";
        JsonWriter(out).string(params_.state_signer->sign("r1\x1f" + request.client + '\x1f' +
                                                          request.tool + '\x1f' + r.request_state));
      }
      out += ",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":" + server_info_ + "}}}";
      return Outcome{200, std::move(out), std::nullopt, modern, std::nullopt};
    }
  }
  std::string out;
  out.reserve(req.id.size() + r.structured.size() + r.text.size() + r.content.size() + 256);
  out += "{\"jsonrpc\":\"2.0\",\"id\":";
  out += req.id;
  out += ",\"result\":{\"content\":";
  if (r.content.empty()) {
    out += "[{\"type\":\"text\",\"text\":";
    JsonWriter(out).string(r.text);
    out += "}]";
  } else {
    out += r.content;
  }
  // structuredContent arrived with 2025-06-18.
  if (!r.structured.empty() && !r.is_error && version != "2025-03-26" && version != "2024-11-05") {
    out += ",\"structuredContent\":";
    out += r.structured;
  }
  out += ",\"isError\":";
  out += r.is_error ? "true" : "false";
  if (modern) {
    out += ",\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":";
    out += server_info_;
    out += "}";
  }
  out += "}}";
  return Outcome{200, std::move(out), std::nullopt, modern, std::nullopt};
}

}  // namespace sluice::gateway
