#pragma once

#include <tuple>
#include <utility>

#include "pool/asio.hpp"

namespace sluice::pool {

// A waiter's completion handler with the outcome decided for it, gathered under a lock and
// resumed after the lock is released, on the executor the waiter came from. Used by the
// connection pool and the multiplexer.
//
// Move-only on purpose: any_completion_handler (Boost 1.81) has a converting constructor
// that takes its own type by lvalue, so a copy, or its own move assignment (which copies by
// mistake), wraps it in itself without end. Never assign a handler; swap it.
template <class... Results>
struct ParkedCompletion {
  using Handler = asio::any_completion_handler<void(Results...)>;

  ParkedCompletion(Handler h, asio::any_io_executor e, Results... r)
      : handler(std::move(h)), home(std::move(e)), results(std::move(r)...) {}
  ParkedCompletion(ParkedCompletion&&) noexcept = default;
  ParkedCompletion& operator=(ParkedCompletion&&) = delete;
  ParkedCompletion(const ParkedCompletion&) = delete;
  ParkedCompletion& operator=(const ParkedCompletion&) = delete;

  // Posts the handler to its home executor, where its cancellation slot (which only that
  // executor touches) is cleared before it runs.
  void resume() && {
    asio::post(home, [h = std::move(handler), r = std::move(results)]() mutable {
      asio::get_associated_cancellation_slot(h).clear();
      std::apply(std::move(h), std::move(r));
    });
  }

  Handler handler;
  asio::any_io_executor home;
  std::tuple<Results...> results;
};

}  // namespace sluice::pool
