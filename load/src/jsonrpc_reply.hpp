#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "load/src/call_outcome.hpp"

namespace sluice::load {

// The parts of one JSON-RPC message a load generator judges, read in one pass without
// building a document (gateway::JsonScanner; nlohmann's SAX parser for what it leaves).
struct JsonRpcReply {
  enum class Type : std::uint8_t {
    invalid,       // not JSON, or not a JSON-RPC object
    notification,  // has a method and no id (progress, logging, ...)
    request,       // has a method and an id (a server-to-client request)
    response,      // has result or error
  };
  Type type = Type::invalid;
  bool id_is_integer = false;
  std::int64_t id = 0;
  bool id_is_null = false;
  bool has_result = false;
  bool is_error_result = false;  // result.isError == true (a tool error)
  bool has_error = false;        // a JSON-RPC error object
  std::int64_t error_code = 0;
  // error.message, or for a result the first content item's text; at most kDetailLimit bytes.
  std::string detail;

  static constexpr std::size_t kDetailLimit = 200;

  bool matches(std::int64_t expected_id) const noexcept {
    return id_is_integer && id == expected_id;
  }
};

// Reads `message` into `out` (its detail buffer is reused, so call after call with the same
// object does not allocate once warmed up).
void parse_jsonrpc_reply(std::string_view message, JsonRpcReply& out);

// The verdict on a reply to the request `expected_id`: ok, a JSON-RPC error (by code), a tool
// error (isError), or a protocol error for anything that is not that request's response.
// The outcome's detail points into `reply`.
CallOutcome judge_reply(const JsonRpcReply& reply, std::int64_t expected_id);

}  // namespace sluice::load
