#include "load/src/call_outcome.hpp"

namespace sluice::load {

std::string error_kind_name(ErrorKind kind, std::int64_t code) {
  switch (kind) {
    case ErrorKind::none:
      return "ok";
    case ErrorKind::http:
      return "http_" + std::to_string(code);
    case ErrorKind::jsonrpc:
      return "jsonrpc_" + std::to_string(code);
    case ErrorKind::tool:
      return "tool_error";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::connection:
      return "connection";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::dropped:
      return "dropped";
  }
  return "unknown";
}

}  // namespace sluice::load
