#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include "pool/asio.hpp"
#include "transports/request_cancellation.hpp"

namespace sluice::transports {

namespace beast = boost::beast;
namespace http = beast::http;

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// One request and its response on an HTTP/1.1 connection. The handler answers either with
// one complete response (respond) or with a stream (begin_stream, then frames, then
// end_stream), for Server-Sent Events.
//
// Everything here runs on the connection's strand: the handler coroutine and anything that
// posts frames to it. Frames go through one queue drained by one writer, so concurrent
// producers (a progress callback and the handler) never interleave bytes.
class HttpExchange {
 public:
  // `remote` is the connection's and outlives the exchange. `cancellation` is bound to the
  // coroutine that runs the handler (see RequestCancellation); may be null.
  HttpExchange(beast::tcp_stream& stream, HttpRequest request, const std::string& remote,
               std::size_t max_queued_frames,
               std::shared_ptr<RequestCancellation> cancellation = nullptr);
  ~HttpExchange();
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  const HttpRequest& request() const noexcept { return request_; }
  const std::string& remote() const noexcept { return remote_; }
  // The connection's strand, where the handler runs.
  asio::any_io_executor executor() { return stream_.get_executor(); }
  bool keep_alive() const noexcept { return keep_alive_; }

  asio::awaitable<void> respond(HttpResponse response);

  // Sends the head of a chunked response. After it, frames go out with send() or post().
  asio::awaitable<void> begin_stream(http::response<http::empty_body> head);
  bool streaming() const noexcept { return streaming_; }
  // Queues a frame (one SSE event) and waits until it and those before it are written.
  asio::awaitable<void> send(std::string frame);
  // Queues a frame without waiting; false if the stream is gone or the queue is full (a
  // client that does not read is not buffered without limit).
  bool post(std::string frame);
  // Writes what is queued, then the final chunk.
  asio::awaitable<void> end_stream();

  // Once called, a peer that closes its side while the handler runs triggers cancellation
  // on disconnect_slot(). Used where closing the stream means cancelling the request.
  void watch_disconnect();
  asio::cancellation_slot disconnect_slot() noexcept { return disconnect_.slot(); }
  bool peer_gone() const noexcept { return peer_gone_; }
  // Cancels what the handler awaits while a request it began on it runs; null if the
  // server gave none.
  const std::shared_ptr<RequestCancellation>& cancellation() const noexcept {
    return cancellation_;
  }

 private:
  // What only a streamed response needs; most exchanges answer once and never build it.
  struct Frames {
    explicit Frames(const asio::any_io_executor& executor) : idle(executor) {}
    std::deque<std::string> queue;
    bool writing = false;
    beast::error_code write_error;
    asio::steady_timer idle;  // wakes drain() when the writer goes idle
  };

  Frames& frames();
  // Queues a frame and starts the writer if it is idle.
  void enqueue(Frames& f, std::string frame);
  // Set to false when the exchange ends, for completion handlers that may outlive it.
  const std::shared_ptr<bool>& alive();
  void write_next();
  asio::awaitable<void> drain();

  beast::tcp_stream& stream_;
  HttpRequest request_;
  const std::string& remote_;
  std::size_t max_queued_;
  bool keep_alive_ = true;
  bool streaming_ = false;
  bool responded_ = false;
  bool peer_gone_ = false;
  bool watching_ = false;
  std::unique_ptr<Frames> frames_;
  asio::cancellation_signal disconnect_;
  std::shared_ptr<bool> alive_;
  std::shared_ptr<RequestCancellation> cancellation_;
};

}  // namespace sluice::transports
