#pragma once

#include <string>
#include <string_view>

namespace sluice::load {

// An http:// or ws:// URL, split for the client. No TLS: benchmarks run on loopback or
// behind a terminating proxy.
struct TargetUrl {
  bool websocket = false;   // ws://
  std::string host;         // without brackets for IPv6
  std::string port;         // "80" when absent
  std::string target;       // path and query, "/" when absent
  std::string host_header;  // host[:port] as written

  // Throws std::invalid_argument saying what is wrong.
  static TargetUrl parse(std::string_view url);
  // The same endpoint with the other scheme (http:// <-> ws://).
  TargetUrl as_websocket(bool ws) const;
  std::string to_string() const;
};

}  // namespace sluice::load
