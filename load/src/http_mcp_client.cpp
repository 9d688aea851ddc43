#include "load/src/http_mcp_client.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace sluice::load {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunkBytes = 16 * 1024;
// After the response arrived on an event stream, how long its end may take.
constexpr auto kStreamEndWait = std::chrono::milliseconds(200);
// Of an error response's body, what is kept to quote from.
constexpr std::size_t kErrorBodyLimit = 64 * 1024;

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != prefix[i]) return false;
  }
  return true;
}

// The connection went away before the answer began: the request may be sent again.
bool is_stale_connection(boost::system::error_code ec) {
  return ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::eof;
}

}  // namespace

HttpMcpClient::HttpMcpClient(asio::any_io_executor executor, const ClientParams& params,
                             ClientIdentity identity)
    : params_(params),
      identity_(std::move(identity)),
      stream_(std::move(executor)),
      chunk_(kChunkBytes) {
  // Beast reads no more than the buffer's free capacity (at least 512 bytes) per call, and the
  // parser empties the buffer into chunk_ as it goes, so an unreserved buffer stays small and
  // a 10 kB answer takes twenty reads. Reserved, it takes one or two.
  buffer_.reserve(kChunkBytes);
  shared_headers_ = "Host: " + params_.url.host_header + "\r\nUser-Agent: sluice-load\r\n";
  for (const auto& [name, value] : params_.headers) shared_headers_ += name + ": " + value + "\r\n";
}

void HttpMcpClient::begin_request(std::string_view method) {
  request_.clear();
  request_ += method;
  request_ += ' ';
  request_ += params_.url.target;
  request_ += " HTTP/1.1\r\n";
  request_ += shared_headers_;
  if (method == "POST") {
    request_ += "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n";
  }
}

void HttpMcpClient::end_request(std::string_view head, std::string_view id, std::string_view tail) {
  char length[24];
  const auto [end, ec] =
      std::to_chars(length, length + sizeof length, head.size() + id.size() + tail.size());
  request_ += "Content-Length: ";
  request_.append(length, end);
  request_ += "\r\n\r\n";
  request_ += head;
  request_ += id;
  request_ += tail;
}

void HttpMcpClient::close_socket() noexcept {
  boost::system::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
  connected_ = false;
}

void HttpMcpClient::abort() noexcept {
  close_socket();
}

CallOutcome HttpMcpClient::io_failure(boost::system::error_code ec) {
  close_socket();
  if (ec == beast::error::timeout) return {ErrorKind::timeout, 0, "no answer by the deadline"};
  detail_ = ec.message();
  if (ec.category() == make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream) {
    detail_.insert(0, "bad HTTP response: ");
    return {ErrorKind::protocol, 0, detail_};
  }
  return {ErrorKind::connection, 0, detail_};
}

asio::awaitable<CallOutcome> HttpMcpClient::connect(Clock::time_point deadline) {
  close_socket();
  stream_.expires_at(deadline);
  auto [ec, endpoint] = co_await stream_.async_connect(params_.endpoints, nothrow);
  if (ec) co_return io_failure(ec);
  stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  buffer_.clear();
  connected_ = true;
  served_on_connection_ = 0;
  co_return CallOutcome{};
}

asio::awaitable<CallOutcome> HttpMcpClient::open(Clock::time_point deadline) {
  if (!connected_) {
    const CallOutcome o = co_await connect(deadline);
    if (!o.ok()) co_return o;
  }
  if (params_.era == Era::legacy && !session_ready_) co_return co_await initialize(deadline);
  co_return CallOutcome{};
}

asio::awaitable<CallOutcome> HttpMcpClient::initialize(Clock::time_point deadline) {
  const std::int64_t id = next_id_++;
  const std::string body = initialize_request(id, params_.protocol_version, identity_);
  begin_request("POST");
  end_request(body, "", "");
  std::string response;
  CallOutcome o = co_await exchange(deadline, id, &response);
  if (!o.ok()) co_return o;
  session_id_ = std::string(parser_->get()["Mcp-Session-Id"]);
  std::string version = params_.protocol_version;
  const auto parsed = nlohmann::json::parse(response, nullptr, false);
  if (parsed.is_object() && parsed.contains("result") && parsed["result"].is_object()) {
    const auto& result = parsed["result"];
    if (result.contains("protocolVersion") && result["protocolVersion"].is_string()) {
      version = result["protocolVersion"].get<std::string>();
    }
  }
  session_headers_.clear();
  if (!session_id_.empty()) session_headers_ += "Mcp-Session-Id: " + session_id_ + "\r\n";
  session_headers_ += "MCP-Protocol-Version: " + version + "\r\n";

  begin_request("POST");
  request_ += session_headers_;
  end_request(initialized_notification(), "", "");
  o = co_await exchange(deadline, -1, nullptr);
  if (o.ok()) session_ready_ = true;
  co_return o;
}

asio::awaitable<CallOutcome> HttpMcpClient::call(const PreparedCall& call,
                                                 Clock::time_point deadline) {
  if (!connected_ || (params_.era == Era::legacy && !session_ready_)) {
    const CallOutcome o = co_await open(deadline);
    if (!o.ok()) co_return o;
  }
  const std::int64_t id = next_id_++;
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, id);
  begin_request("POST");
  request_ += params_.era == Era::modern ? call.modern_headers : session_headers_;
  end_request(PreparedCall::kBodyHead,
              std::string_view(digits, static_cast<std::size_t>(end - digits)), call.tail);
  const CallOutcome o = co_await exchange(deadline, id, nullptr);
  // A legacy session the server no longer knows is opened again on the next request.
  if (o.kind == ErrorKind::http && o.code == 404 && params_.era == Era::legacy) {
    session_ready_ = false;
  }
  co_return o;
}

asio::awaitable<CallOutcome> HttpMcpClient::exchange(Clock::time_point deadline, std::int64_t id,
                                                     std::string* keep) {
  const bool reused = served_on_connection_ > 0;
  auto [outcome, retryable] = co_await exchange_once(deadline, id, keep);
  if (retryable && reused && Clock::now() < deadline) {
    // connect() keeps request_, so the same bytes go out again.
    const CallOutcome c = co_await connect(deadline);
    if (!c.ok()) co_return c;
    auto [again, unused] = co_await exchange_once(deadline, id, keep);
    co_return again;
  }
  co_return outcome;
}

asio::awaitable<std::pair<CallOutcome, bool>> HttpMcpClient::exchange_once(
    Clock::time_point deadline, std::int64_t id, std::string* keep) {
  stream_.expires_at(deadline);
  {
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(request_), nothrow);
    if (ec) co_return std::pair{io_failure(ec), is_stale_connection(ec)};
  }
  parser_.emplace();
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  {
    auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser_, nothrow);
    if (ec) co_return std::pair{io_failure(ec), is_stale_connection(ec) && n == 0};
  }
  const unsigned status = parser_->get().result_int();
  const bool success = status / 100 == 2;
  const bool event_stream =
      success && starts_with_nocase(parser_->get()[http::field::content_type], "text/event-stream");
  body_.clear();
  sse_.reset();
  bool matched = false;
  CallOutcome outcome;
  while (!parser_->is_done()) {
    parser_->get().body().data = chunk_.data();
    parser_->get().body().size = chunk_.size();
    auto [ec, n] = co_await http::async_read(stream_, buffer_, *parser_, nothrow);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      // Once the response has arrived, what follows it on the stream does not matter.
      if (matched) {
        close_socket();
        co_return std::pair{outcome, false};
      }
      co_return std::pair{io_failure(ec), false};
    }
    const std::string_view data(chunk_.data(), chunk_.size() - parser_->get().body().size);
    if (event_stream) {
      if (matched) continue;
      sse_.feed(data, [&](std::string_view message) {
        parse_jsonrpc_reply(message, reply_);
        if (reply_.type == JsonRpcReply::Type::notification ||
            reply_.type == JsonRpcReply::Type::request) {
          return false;
        }
        matched = true;
        if (keep) keep->assign(message);
        outcome = judge_reply(reply_, id);
        return true;
      });
      // Servers end the stream right after the response; one that keeps it open costs this
      // connection, not the request's whole deadline.
      if (matched && !parser_->is_done()) {
        stream_.expires_at(std::min(deadline, Clock::now() + kStreamEndWait));
      }
    } else if (success || body_.size() < kErrorBodyLimit) {
      body_.append(data);
    }
  }
  stream_.expires_never();
  ++served_on_connection_;
  if (!parser_->keep_alive()) close_socket();

  if (!success) {
    outcome = {ErrorKind::http, status, {}};
    parse_jsonrpc_reply(body_, reply_);
    if (reply_.type == JsonRpcReply::Type::response && !reply_.detail.empty()) {
      outcome.detail = reply_.detail;
    } else {
      outcome.detail = std::string_view(body_).substr(0, JsonRpcReply::kDetailLimit);
    }
    co_return std::pair{outcome, false};
  }
  if (id < 0) co_return std::pair{CallOutcome{}, false};
  if (event_stream) {
    if (!matched) {
      outcome = {ErrorKind::protocol, 0, "the event stream ended without the response"};
    }
    co_return std::pair{outcome, false};
  }
  parse_jsonrpc_reply(body_, reply_);
  if (keep) *keep = body_;
  co_return std::pair{judge_reply(reply_, id), false};
}

asio::awaitable<void> HttpMcpClient::close(Clock::time_point deadline) {
  if (connected_ && params_.era == Era::legacy && session_ready_ && !session_id_.empty()) {
    begin_request("DELETE");
    request_ += session_headers_;
    end_request("", "", "");
    co_await exchange_once(deadline, -1, nullptr);
  }
  session_ready_ = false;
  close_socket();
}

}  // namespace sluice::load
