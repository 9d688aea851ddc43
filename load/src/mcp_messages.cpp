#include "load/src/mcp_messages.hpp"

#include <nlohmann/json.hpp>

namespace sluice::load {
namespace {

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(v >> shift) & 63]);
  }
  if (i + 1 == in.size()) {
    const unsigned v = byte(i) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace

std::string encode_header_value(std::string_view value) {
  bool plain = !value.empty() && value.front() != ' ' && value.back() != ' ' &&
               !value.starts_with("=?base64?");
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) plain = false;
  }
  return plain ? std::string(value) : "=?base64?" + base64(value) + "?=";
}

std::vector<PreparedCall> prepare_calls(const Scenario& scenario, Era era, std::string_view version,
                                        const ClientIdentity& identity) {
  std::vector<PreparedCall> out;
  out.reserve(scenario.calls.size());
  for (const auto& call : scenario.calls) {
    nlohmann::json params = call.params;
    PreparedCall p;
    if (era == Era::modern) {
      params["_meta"] = {{"io.modelcontextprotocol/protocolVersion", version},
                         {"io.modelcontextprotocol/clientCapabilities", nlohmann::json::object()},
                         {"io.modelcontextprotocol/clientInfo",
                          {{"name", identity.name}, {"version", identity.version}}}};
      p.modern_headers = "MCP-Protocol-Version: " + std::string(version) +
                         "\r\nMcp-Method: " + encode_header_value(call.method) + "\r\n";
      if (!call.mcp_name.empty()) {
        p.modern_headers += "Mcp-Name: " + encode_header_value(call.mcp_name) + "\r\n";
      }
    }
    p.tail =
        ",\"method\":" + nlohmann::json(call.method).dump() + ",\"params\":" + params.dump() + "}";
    out.push_back(std::move(p));
  }
  return out;
}

std::string initialize_request(std::int64_t id, std::string_view version,
                               const ClientIdentity& identity) {
  const nlohmann::json message = {
      {"jsonrpc", "2.0"},
      {"id", id},
      {"method", "initialize"},
      {"params",
       {{"protocolVersion", version},
        {"capabilities", nlohmann::json::object()},
        {"clientInfo", {{"name", identity.name}, {"version", identity.version}}}}}};
  return message.dump();
}

std::string_view initialized_notification() {
  return R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
}

}  // namespace sluice::load
