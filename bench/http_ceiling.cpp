// http_ceiling: the ceiling for any HTTP MCP gateway on this machine. One thread, one epoll
// loop, plain non-blocking sockets, and canned answers: no database, no JSON parser, no
// sessions, no allocation per request. Whatever it reaches under sluice-load is what the
// load generator and the kernel's loopback TCP allow before a gateway does any work at all,
// so bench/run.sh measures it next to the gateways and the floors.
//
//   http_ceiling --listen 127.0.0.1:PORT --answer select1=FILE [--answer rows100=FILE ...]
//
// FILE holds the JSON text of a `tools/call` result (bench/run.sh saves Sluice's own answer
// to the same statement, so both put the same bytes on the wire). It speaks just enough of
// the legacy Streamable HTTP transport for sluice-load and bench/check_tool.mjs: `initialize`
// gets a result and an Mcp-Session-Id, a notification 202, `tools/call` the canned result of
// the named tool. It reads the method, id and tool name by looking for `"method":"`, `"id":`
// and `"name":"` in the compact JSON those two clients send; it is a yardstick, not a server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

constexpr std::size_t kMaxRequest = 1 << 20;

struct Connection {
  int fd = -1;
  std::string in;   // bytes received and not yet answered
  std::string out;  // answer bytes the socket did not take yet
  std::size_t sent = 0;
  bool blocked = false;  // waiting for room to send the rest of out
};

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char a = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] + 32) : text[i];
    if (a != prefix[i]) return false;
  }
  return true;
}

// The text after `key` up to the next `"` (a JSON string value without escapes).
std::string_view string_after(std::string_view body, std::string_view key) {
  const auto at = body.find(key);
  if (at == std::string_view::npos) return {};
  const auto from = at + key.size();
  const auto to = body.find('"', from);
  return to == std::string_view::npos ? std::string_view{} : body.substr(from, to - from);
}

// The JSON number after `"id":`, as written; empty for a notification.
std::string_view id_of(std::string_view body) {
  const auto at = body.find("\"id\":");
  if (at == std::string_view::npos) return {};
  std::size_t from = at + 5;
  std::size_t to = from;
  while (to < body.size() && (body[to] == '-' || (body[to] >= '0' && body[to] <= '9'))) ++to;
  return body.substr(from, to - from);
}

class Server {
 public:
  explicit Server(std::map<std::string, std::string, std::less<>> answers)
      : answers_(std::move(answers)) {}

  // Appends the answer to one complete request to `out`.
  void answer(std::string_view head, std::string_view body, std::string& out) const {
    if (!head.starts_with("POST ")) {
      out += "HTTP/1.1 405 Method Not Allowed\r\nAllow: POST\r\nContent-Length: 0\r\n\r\n";
      return;
    }
    const std::string_view id = id_of(body);
    if (id.empty()) {
      out += "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
      return;
    }
    const std::string_view method = string_after(body, "\"method\":\"");
    std::string_view extra_header;
    std::string result;
    if (method == "initialize") {
      std::string_view version = string_after(body, "\"protocolVersion\":\"");
      if (version.empty()) version = "2025-06-18";
      result = R"({"protocolVersion":")";
      result += version;
      result +=
          R"(","capabilities":{"tools":{}},"serverInfo":{"name":"http_ceiling","version":"1"}})";
      extra_header = "Mcp-Session-Id: 5b1d7c2e9f4a4e0b8c6d3a1f2e7b9c40\r\n";
    } else if (method == "tools/call") {
      const auto tool = answers_.find(string_after(body, "\"name\":\""));
      if (tool != answers_.end()) result = tool->second;
    }
    std::string json = R"({"jsonrpc":"2.0","id":)";
    json += id;
    if (result.empty()) {
      json +=
          R"(,"error":{"code":-32601,"message":"http_ceiling answers initialize and tools/call of the tools it was given"}})";
    } else {
      json += R"(,"result":)";
      json += result;
      json += '}';
    }
    char length[24];
    const auto [end, ec] = std::to_chars(length, length + sizeof length, json.size());
    out += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    out += extra_header;
    out += "Content-Length: ";
    out.append(length, end);
    out += "\r\n\r\n";
    out += json;
  }

  // Answers every complete request in c.in; false when the peer sent something unusable.
  bool drain(Connection& c) const {
    std::size_t used = 0;
    const std::string_view in = c.in;
    for (;;) {
      const auto head_end = in.find("\r\n\r\n", used);
      if (head_end == std::string_view::npos) break;
      const std::string_view head = in.substr(used, head_end - used);
      std::size_t length = 0;
      for (std::size_t line = head.find("\r\n"); line != std::string_view::npos;
           line = head.find("\r\n", line + 2)) {
        const std::string_view rest = head.substr(line + 2);
        if (iequals_prefix(rest, "content-length:")) {
          std::size_t i = 15;
          while (i < rest.size() && rest[i] == ' ') ++i;
          std::from_chars(rest.data() + i, rest.data() + rest.size(), length);
        }
      }
      if (length > kMaxRequest) return false;
      const std::size_t body_at = head_end + 4;
      if (in.size() - body_at < length) break;
      answer(head, in.substr(body_at, length), c.out);
      used = body_at + length;
    }
    c.in.erase(0, used);
    return c.in.size() <= kMaxRequest;
  }

 private:
  std::map<std::string, std::string, std::less<>> answers_;
};

int listen_on(const std::string& where) {
  const auto colon = where.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--listen wants HOST:PORT");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(where.substr(colon + 1))));
  if (inet_pton(AF_INET, where.substr(0, colon).c_str(), &address.sin_addr) != 1) {
    throw std::runtime_error("--listen: " + where + " is not an IPv4 address and port");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(fd, 4096) != 0) {
    throw std::runtime_error("cannot listen on " + where + ": " + std::strerror(errno));
  }
  return fd;
}

void watch(int epoll, int op, Connection* c, std::uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = c;
  epoll_ctl(epoll, op, c->fd, &event);
}

// Sends what is pending; false if the connection is gone. While the socket holds back part of
// an answer the connection waits for room only, so no request is read before its predecessor
// is answered (level-triggered input would otherwise wake the loop in vain).
bool flush(int epoll, Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      if (!c.blocked) watch(epoll, EPOLL_CTL_MOD, &c, EPOLLOUT);
      c.blocked = true;
      return true;
    } else {
      return false;
    }
  }
  c.out.clear();
  c.sent = 0;
  if (c.blocked) watch(epoll, EPOLL_CTL_MOD, &c, EPOLLIN);
  c.blocked = false;
  return true;
}

int run(int listener, const Server& server) {
  const int epoll = epoll_create1(EPOLL_CLOEXEC);
  Connection accept_marker;
  accept_marker.fd = listener;
  watch(epoll, EPOLL_CTL_ADD, &accept_marker, EPOLLIN);
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
  epoll_event events[256];
  char buffer[64 * 1024];
  for (;;) {
    const int ready = epoll_wait(epoll, events, std::size(events), -1);
    if (ready < 0 && errno != EINTR) return 1;
    for (int i = 0; i < ready; ++i) {
      auto* c = static_cast<Connection*>(events[i].data.ptr);
      if (c == &accept_marker) {
        for (int fd;
             (fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          const int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto owned = std::make_unique<Connection>();
          owned->fd = fd;
          watch(epoll, EPOLL_CTL_ADD, owned.get(), EPOLLIN);
          connections.emplace(owned.get(), std::move(owned));
        }
        continue;
      }
      bool alive = true;
      if (events[i].events & EPOLLOUT) alive = flush(epoll, *c);
      if (alive && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->out.empty()) {
        const ssize_t n = recv(c->fd, buffer, sizeof buffer, 0);
        if (n > 0) {
          c->in.append(buffer, static_cast<std::size_t>(n));
          alive = server.drain(*c) && flush(epoll, *c);
        } else if (n == 0 || errno != EAGAIN) {
          alive = false;
        }
      }
      if (!alive) {
        close(c->fd);
        connections.erase(c);
      }
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string listen = "127.0.0.1:18081";
    std::map<std::string, std::string, std::less<>> answers;
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::cout << "usage: http_ceiling --listen HOST:PORT --answer TOOL=FILE [--answer ...]\n"
                     "A canned-answer MCP endpoint (legacy Streamable HTTP) for bench/run.sh: the\n"
                     "ceiling any HTTP gateway can reach under the same load generator.\n";
        return 0;
      }
      if (i + 1 >= argc) throw std::runtime_error(std::string(arg) + " wants a value");
      const std::string value = argv[++i];
      if (arg == "--listen") {
        listen = value;
      } else if (arg == "--answer") {
        const auto eq = value.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--answer wants TOOL=FILE");
        answers[value.substr(0, eq)] = read_file(value.substr(eq + 1));
      } else {
        throw std::runtime_error("unknown option " + std::string(arg) + " (see --help)");
      }
    }
    if (answers.empty()) throw std::runtime_error("no --answer TOOL=FILE given");
    const int listener = listen_on(listen);
    return run(listener, Server(std::move(answers)));
  } catch (const std::exception& e) {
    std::cerr << "http_ceiling: " << e.what() << '\n';
    return 2;
  }
}
