#include "gateway/mcp_engine.hpp"

#include <spdlog/spdlog.h>

#include <array>

#include "gateway/json_writer.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 3> kLegacyVersions = {"2025-11-25", "2025-06-18",
                                                             "2025-03-26"};
constexpr std::string_view kNewestLegacy = "2025-11-25";
constexpr std::string_view kMetaVersion = "io.modelcontextprotocol/protocolVersion";
constexpr std::string_view kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";

// JSON-RPC and MCP error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kHeaderMismatch = -32020;
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

}  // namespace

struct McpEngine::Request {
  json message;
  std::string id;  // serialised; "null" for notifications
  bool has_id = false;
  std::string method;
  json params = json::object();
  std::string version;  // the revision this request speaks
};

McpEngine::McpEngine(DatabaseTools& tools, session::SessionTokens& sessions, Params params)
    : tools_(tools), sessions_(sessions), params_(std::move(params)) {
  server_info_ = json{{"name", params_.name}, {"version", params_.version}}.dump();
}

bool McpEngine::is_legacy_version(std::string_view v) noexcept {
  return std::find(kLegacyVersions.begin(), kLegacyVersions.end(), v) != kLegacyVersions.end();
}

asio::awaitable<Outcome> McpEngine::handle(std::string_view body, MessageContext& ctx,
                                           Notify notify) {
  json message = json::parse(body, nullptr, false);
  if (message.is_discarded()) {
    co_return error(400, "null", kParseError, "Parse error: the message is not valid JSON", false);
  }
  if (!message.is_array()) co_return co_await handle_one(std::move(message), ctx, notify);
  // Batches: only 2025-03-26 allowed them, and there receivers must accept them.
  if (message.empty() || !batch_allowed(ctx)) {
    co_return error(400, "null", kInvalidRequest,
                    "Invalid Request: batches (JSON arrays) are accepted only in 2025-03-26 "
                    "sessions; send one message per request",
                    false);
  }
  std::string out = "[";
  bool any = false;
  for (auto& element : message) {
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

asio::awaitable<Outcome> McpEngine::handle_one(json message, MessageContext& ctx, Notify& notify) {
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
    req.id = it->dump();
  } else {
    req.id = "null";
  }
  if (m.value("jsonrpc", json()) != "2.0") {
    co_return error(400, req.id, kInvalidRequest, "Invalid Request: \"jsonrpc\" must be \"2.0\"",
                    false);
  }
  auto method = m.find("method");
  if (method == m.end()) {
    // A response or error from the client; this server sends no requests, so nothing waits.
    Outcome o;
    o.http_status = 202;
    co_return o;
  }
  if (!method->is_string()) {
    co_return error(400, req.id, kInvalidRequest, "Invalid Request: \"method\" must be a string",
                    false);
  }
  req.method = method->get<std::string>();
  if (auto p = m.find("params"); p != m.end() && !p->is_null()) {
    if (!p->is_object()) {
      co_return error(400, req.id, kInvalidParams, "Invalid params: \"params\" must be an object",
                      false);
    }
    req.params = *p;
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
        "\"2025-03-26\",\"2024-11-05\"],\"capabilities\":{\"tools\":{}},\"ttlMs\":3600000,"
        "\"cacheScope\":\"public\"";
    if (!params_.instructions.empty()) {
      body += ",\"instructions\":";
      JsonWriter(body).string(params_.instructions);
    }
    body += "}";
    co_return Outcome{200, result(req, body, true), std::nullopt, true};
  }
  if (req.method == "tools/list") co_return Outcome{200, tools_list(req, true), std::nullopt, true};
  if (req.method == "tools/call") co_return co_await call_tool(req, ctx, notify, true, req.version);
  co_return error(404, req.id, kMethodNotFound,
                  "Method not found: '" + req.method + "' is not served in revision " +
                      std::string(kModernVersion),
                  true);
}

asio::awaitable<Outcome> McpEngine::legacy(Request& req, MessageContext& ctx, Notify& notify) {
  if (req.method == "initialize") {
    // Sent as a notification it asks for nothing: no session, no answer.
    if (!req.has_id) co_return notification(req, ctx);
    co_return initialize(req, ctx);
  }
  std::string version;
  if (ctx.transport == Transport::http) {
    if (!ctx.session_id) {
      co_return error(400, req.id, kBadSession,
                      "Bad Request: Mcp-Session-Id header is required; start with initialize",
                      false);
    }
    auto session = sessions_.find(*ctx.session_id);
    if (!session) {
      co_return error(404, req.id, kBadSession,
                      "Session not found: it ended or was never issued; initialize again", false);
    }
    version = session->protocol_version;
    if (ctx.protocol_version_header) {
      if (!is_legacy_version(*ctx.protocol_version_header)) {
        co_return error(
            400, req.id, kBadSession,
            "Bad Request: unsupported MCP-Protocol-Version '" + *ctx.protocol_version_header + "'",
            false);
      }
      version = *ctx.protocol_version_header;
    }
    // Without the header the revision negotiated at initialize, which the signed session id
    // carries, still holds: 2025-03-26 is assumed only when nothing else tells.
  } else if (ctx.connection != nullptr && ctx.connection->initialized) {
    version = ctx.connection->protocol_version;
  } else if (req.method != "ping" && req.has_id) {
    co_return error(200, req.id, kInvalidParams,
                    "Invalid params: send initialize first, or use the 2026-07-28 revision with "
                    "params._meta on every request",
                    false);
  }
  req.version = version;
  if (!req.has_id) co_return notification(req, ctx);
  if (req.method == "ping" || req.method == "logging/setLevel") {
    co_return Outcome{200, result(req, "{}", false), std::nullopt, false};
  }
  if (req.method == "tools/list")
    co_return Outcome{200, tools_list(req, false), std::nullopt, false};
  if (req.method == "tools/call") co_return co_await call_tool(req, ctx, notify, false, version);
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
  Outcome o;
  if (ctx.transport == Transport::http) {
    o.session_id = sessions_.mint(version);
  } else if (ctx.connection != nullptr) {
    ctx.connection->initialized = true;
    ctx.connection->protocol_version = version;
  }
  std::string body = "{\"protocolVersion\":\"" + version +
                     "\",\"capabilities\":{\"tools\":{\"listChanged\":false},\"logging\":{}},"
                     "\"serverInfo\":" +
                     server_info_;
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
    if (id != req.params.end() && (id->is_string() || id->is_number_integer())) {
      std::lock_guard lock(in_flight_mutex_);
      auto it = in_flight_.find(ctx.cancel_scope + '\x1f' + id->dump());
      if (it != in_flight_.end()) {
        asio::post(it->second.executor, [signal = it->second.signal] {
          signal->emit(asio::cancellation_type::terminal);
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

asio::awaitable<Outcome> McpEngine::call_tool(Request& req, MessageContext& ctx, Notify& notify,
                                              bool modern, std::string_view version) {
  auto name = req.params.find("name");
  if (name == req.params.end() || !name->is_string()) {
    throw ToolRequestError("params.name must be the tool's name");
  }
  static const json kNoArguments = json::object();
  auto args_it = req.params.find("arguments");
  const json& args = args_it == req.params.end() || args_it->is_null() ? kNoArguments : *args_it;
  if (!tools_.has(name->get<std::string>())) {
    throw ToolRequestError("unknown tool '" + name->get<std::string>() + "'");
  }

  // Progress, if asked for: rows fetched so far, sent from the request's executor.
  DatabaseTools::Progress progress;
  const json* meta = nullptr;
  if (auto it = req.params.find("_meta"); it != req.params.end() && it->is_object()) meta = &*it;
  if (notify && meta != nullptr && meta->contains("progressToken")) {
    const std::string token = (*meta)["progressToken"].dump();
    auto ex = co_await asio::this_coro::executor;
    auto sink = std::make_shared<Notify>(notify);
    progress = [ex, sink, token](std::uint64_t rows) {
      std::string msg =
          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
          "\"progressToken\":" +
          token + ",\"progress\":" + std::to_string(rows) + ",\"message\":\"" +
          std::to_string(rows) + " rows fetched\"}}";
      asio::post(ex, [sink, msg = std::move(msg)]() mutable { (*sink)(std::move(msg)); });
    };
  }

  // One cancellation signal for this request, fired by notifications/cancelled (legacy,
  // stdio, WebSocket) or by the transport when the requester goes away (modern HTTP).
  auto signal = std::make_shared<asio::cancellation_signal>();
  const std::string key = ctx.cancel_scope + '\x1f' + req.id;
  {
    const auto here = co_await asio::this_coro::executor;
    std::lock_guard lock(in_flight_mutex_);
    in_flight_[key] = InFlight{here, signal};
  }
  // The signal must outlive the co_spawn below, whose completion handler still touches its
  // slot after resuming this coroutine; its last owner is released from a later handler.
  struct Unregister {
    McpEngine& e;
    const std::string& k;
    asio::cancellation_slot& slot;
    std::shared_ptr<asio::cancellation_signal> signal;
    asio::any_io_executor ex;
    ~Unregister() {
      if (slot.is_connected()) slot.clear();
      {
        std::lock_guard lock(e.in_flight_mutex_);
        e.in_flight_.erase(k);
      }
      asio::post(ex, [keep = std::move(signal)] {});
    }
  };
  const auto executor = co_await asio::this_coro::executor;
  Unregister unregister{*this, key, ctx.disconnect, signal, executor};
  // Over HTTP only the modern era treats a closed response stream as cancellation (legacy
  // streams may be resumed); a closed WebSocket or stdio leaves nobody to answer.
  if ((modern || ctx.transport != Transport::http) && ctx.disconnect.is_connected()) {
    ctx.disconnect.assign([signal](asio::cancellation_type t) { signal->emit(t); });
  }

  auto work =
      tools_.call(name->get<std::string>(), args, pool::Deadline::max(), std::move(progress));
  auto token = asio::bind_cancellation_slot(signal->slot(), asio::use_awaitable);
  ToolResult r;
  try {
    r = co_await asio::co_spawn(executor, std::move(work), token);
  } catch (const boost::system::system_error& e) {
    // A cancelled coroutine may end at any co_await with operation_aborted; to the callers
    // that is the same as a cancelled statement: nobody waits for an answer.
    if (e.code() != asio::error::operation_aborted) throw;
    throw pool::DbError(pool::errc::cancelled, "request", {"", 0, "request cancelled"});
  }

  std::string out = "{\"jsonrpc\":\"2.0\",\"id\":" + req.id +
                    ",\"result\":{\"content\":[{\"type\":"
                    "\"text\",\"text\":";
  out.reserve(out.size() + r.structured.size() + r.text.size() + 256);
  JsonWriter w(out);
  w.string(r.text);
  out += "}]";
  // structuredContent arrived with 2025-06-18.
  if (!r.is_error && version != "2025-03-26" && version != "2024-11-05") {
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
  co_return Outcome{200, std::move(out), std::nullopt, modern};
}

}  // namespace sluice::gateway
