#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "pool/asio.hpp"

namespace sluice::pool {

// Threads for calls that block (ODBC has no asynchronous completion on Linux), so that
// they never run on an I/O thread. Thread-safe.
class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads) {}
  ~BlockingPool() { pool_.join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  asio::thread_pool::executor_type executor() noexcept { return pool_.get_executor(); }

 private:
  asio::thread_pool pool_;
};

namespace detail {
template <class R>
using Boxed = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

template <class OnCancel>
struct CancelForwarder {
  OnCancel* on_cancel;
  void operator()(asio::cancellation_type type) const {
    if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial)) !=
        asio::cancellation_type::none) {
      (*on_cancel)();
    }
  }
};
}  // namespace detail

// Runs `fn` on `workers` and resumes the caller on its own executor with fn's result or
// exception: one hop out and one back. If the awaiting operation is cancelled while `fn`
// runs, `on_cancel` is called on the cancelling thread (it must be thread-safe, e.g.
// SQLCancel), and the operation still completes only when `fn` returns, so nothing
// `fn` references is freed under it.
template <class Executor, class F, class OnCancel>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(Executor workers, F fn, OnCancel on_cancel) {
  using R = std::invoke_result_t<F&>;
  using Box = detail::Boxed<R>;
  auto initiate = [workers, &fn, &on_cancel](auto handler) mutable {
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.template emplace<detail::CancelForwarder<OnCancel>>(&on_cancel);
    auto home = asio::prefer(asio::get_associated_executor(handler),
                             asio::execution::outstanding_work.tracked);
    asio::post(workers, [&fn, home = std::move(home), handler = std::move(handler)]() mutable {
      std::exception_ptr error;
      std::optional<Box> result;
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          result.emplace();
        } else {
          result.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
      asio::dispatch(home,
                     [handler = std::move(handler), error, result = std::move(result)]() mutable {
                       asio::get_associated_cancellation_slot(handler).clear();
                       std::move(handler)(error, std::move(result));
                     });
    });
  };
  // fn and on_cancel live in this frame, which stays suspended until the handler runs.
  std::optional<Box> result =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                    void(std::exception_ptr, std::optional<Box>)>(
          std::move(initiate), asio::use_awaitable);
  if constexpr (std::is_void_v<R>) {
    co_return;
  } else {
    co_return std::move(*result);
  }
}

}  // namespace sluice::pool
