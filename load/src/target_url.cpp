#include "load/src/target_url.hpp"

#include <stdexcept>

namespace sluice::load {

TargetUrl TargetUrl::parse(std::string_view url) {
  const auto fail = [&](const std::string& problem) {
    return std::invalid_argument("--url " + std::string(url) + ": " + problem);
  };
  TargetUrl u;
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("ws://")) {
    u.websocket = true;
    rest.remove_prefix(5);
  } else if (rest.starts_with("https://") || rest.starts_with("wss://")) {
    throw fail("TLS is not supported; use http:// or ws:// (or a local TLS-terminating proxy)");
  } else {
    throw fail("expected http://HOST[:PORT]/PATH or ws://HOST[:PORT]/PATH");
  }
  const std::size_t slash = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (authority.empty()) throw fail("the host is missing");
  if (authority.find('@') != std::string_view::npos) throw fail("user info is not supported");
  u.host_header = std::string(authority);
  std::string_view host = authority;
  std::string_view port;
  if (host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos) throw fail("unbalanced [ in the host");
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') throw fail("expected :PORT after ]");
      port = host.substr(close + 2);
    }
    host = host.substr(1, close - 1);
  } else if (const std::size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty()) throw fail("the host is missing");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      throw fail("the port must be a number from 1 to 65535");
    }
  }
  u.host = std::string(host);
  u.port = port.empty() ? "80" : std::string(port);
  return u;
}

TargetUrl TargetUrl::as_websocket(bool ws) const {
  TargetUrl u = *this;
  u.websocket = ws;
  return u;
}

std::string TargetUrl::to_string() const {
  return (websocket ? "ws://" : "http://") + host_header + target;
}

}  // namespace sluice::load
