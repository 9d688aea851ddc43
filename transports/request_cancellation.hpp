#pragma once

#include <cstdint>

#include "pool/asio.hpp"

namespace sluice::transports {

// The cancellation signal of the request a coroutine runs now, and which request that is.
//
// A transport that serves one request at a time on a connection's coroutine (HTTP/1.1) binds
// the signal to that coroutine once, when it spawns it: a request's operations are then
// cancelled through the coroutine's own cancellation state, without a coroutine of their own
// per request (which would cost a frame, a handler and a slot). `current` names the request
// that may be cancelled, so a cancel that arrives late does not reach the next request or the
// connection's own reads. Other transports get one per request from the engine.
//
// Used only on the executor of the coroutine it is bound to; cancels from elsewhere are
// posted there. After a request it fired for, that coroutine must reset its cancellation
// state (asio::this_coro::reset_cancellation_state) before it awaits anything else.
struct RequestCancellation {
  asio::cancellation_signal signal;
  std::uint64_t current = 0;  // the request that may be cancelled now; 0: none
  std::uint64_t issued = 0;   // the last request number handed out
  bool fired = false;         // the signal was emitted for the current request

  // A request starts: its number, for cancel().
  std::uint64_t begin() noexcept {
    fired = false;
    return current = ++issued;
  }
  // It ends: nothing can be cancelled until the next begin().
  void end() noexcept { current = 0; }
  // Cancels `request` if it is still the one running.
  void cancel(std::uint64_t request, asio::cancellation_type type) {
    if (request == 0 || request != current) return;
    fired = true;
    signal.emit(type);
  }
};

}  // namespace sluice::transports
