#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::load {

// Why a request failed. Together with a code this is the "kind" reports group errors by.
enum class ErrorKind : std::uint8_t {
  none,        // success
  http,        // HTTP status other than 2xx (code: the status)
  jsonrpc,     // a JSON-RPC error response (code: error.code)
  tool,        // a result with isError: true
  timeout,     // no answer by the deadline
  connection,  // connect, handshake, reset or closed by the peer
  protocol,    // an answer that is not the expected JSON-RPC response
  dropped,     // open loop: due, but not sent before the run ended
};

// One request's result. `detail` (an error message or the start of the tool's text) points
// into the client's buffers and is valid until its next request.
struct CallOutcome {
  ErrorKind kind = ErrorKind::none;
  std::int64_t code = 0;
  std::string_view detail;

  bool ok() const noexcept { return kind == ErrorKind::none; }
};

// "http_429", "jsonrpc_-32602", "tool_error", "timeout", "connection", "protocol", "dropped".
std::string error_kind_name(ErrorKind kind, std::int64_t code);

}  // namespace sluice::load
