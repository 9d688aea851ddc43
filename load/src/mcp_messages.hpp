#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "load/src/scenario.hpp"

namespace sluice::load {

// Which MCP revision the virtual clients speak.
enum class Era : std::uint8_t {
  modern,  // 2026-07-28: stateless, _meta on every request, Mcp-* headers
  legacy,  // initialize, notifications/initialized, then requests in that session
};

inline constexpr std::string_view kModernVersion = "2026-07-28";
inline constexpr std::string_view kLegacyVersion = "2025-11-25";

// Who a virtual client says it is; the gateway keys its per-client limits on the name.
struct ClientIdentity {
  std::string name;     // clientInfo.name, e.g. "sluice-load-7"
  std::string version;  // clientInfo.version
};

// One scenario call, serialised once per virtual client so that sending it only splices the
// request id in: body = kBodyHead + id + tail.
struct PreparedCall {
  static constexpr std::string_view kBodyHead = R"({"jsonrpc":"2.0","id":)";
  std::string tail;            // ,"method":...,"params":{...}}
  std::string modern_headers;  // MCP-Protocol-Version, Mcp-Method and Mcp-Name lines (modern)
};

// Every call of `scenario`, in order, as `identity` sends them in `era` with `version`.
std::vector<PreparedCall> prepare_calls(const Scenario& scenario, Era era, std::string_view version,
                                        const ClientIdentity& identity);

// The legacy handshake's two messages.
std::string initialize_request(std::int64_t id, std::string_view version,
                               const ClientIdentity& identity);
std::string_view initialized_notification();

// A header value as the modern era wants it: as is when it is visible ASCII without edge
// whitespace, else the Base64 sentinel "=?base64?...?=".
std::string encode_header_value(std::string_view value);

}  // namespace sluice::load
