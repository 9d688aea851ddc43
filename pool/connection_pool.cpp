#include "pool/connection_pool.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <optional>
#include <unordered_map>

#include "pool/parked_completion.hpp"
#include "pool/pool_core.hpp"

namespace sluice::pool {

using Kind = PoolCore::Action::Kind;
using Handler = ParkedCompletion<std::error_code, std::uint64_t>::Handler;

namespace {

// A connection whose context is unknown must match no request.
constexpr PoolCore::AffinityKey unknown_affinity = ~PoolCore::AffinityKey{0};

// The core only compares keys, so a hash serves: two contexts that collide cost a context
// switch, never a wrong context, because the borrower checks PooledConnection::context().
PoolCore::AffinityKey affinity_key(const std::optional<DbContext>& ctx) {
  if (!ctx) return unknown_affinity;
  if (ctx->empty()) return PoolCore::fresh_affinity;  // where a new connection starts
  const PoolCore::AffinityKey key = DbContextHash{}(*ctx);
  return key == unknown_affinity || key == PoolCore::fresh_affinity ? 1 : key;
}

}  // namespace

// The pool's state, shared by the ConnectionPool, its background tasks and every borrowed
// handle. One mutex guards everything here except the timer, which lives on `strand_`.
class PoolShared : public std::enable_shared_from_this<PoolShared> {
 public:
  PoolShared(asio::any_io_executor ex, std::shared_ptr<Backend> backend, PoolParams params)
      : executor_(ex),
        strand_(asio::make_strand(ex)),
        timer_(strand_),
        backend_(std::move(backend)),
        core_(params) {}

  struct Waiter {
    Handler handler;
    asio::any_io_executor home;  // where the waiter resumes
    std::optional<std::pair<std::error_code, std::uint64_t>> result;
  };
  using Pending = ParkedCompletion<std::error_code, std::uint64_t>;
  // Side effects gathered under the lock and carried out after it is released.
  struct Effects {
    std::vector<Pending> completions;
    std::vector<PoolCore::Action> tasks;
    std::vector<std::unique_ptr<Connection>> to_close;
    bool rearm = false;
  };

  void start() {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      PoolCore::Actions actions;
      core_.start(Clock::now(), actions);
      apply(actions, fx);
    }
    auto self = shared_from_this();
    asio::co_spawn(strand_, timer_loop(self), asio::detached);
    run(fx);
  }

  // Fast path: returns a connection id if one was granted at once, else the waiter id.
  std::pair<std::optional<std::uint64_t>, std::uint64_t> enqueue(
      Deadline deadline, std::optional<PoolCore::AffinityKey> prefer, std::error_code& ec) {
    Effects fx;
    std::optional<std::uint64_t> granted;
    std::uint64_t w;
    {
      std::lock_guard lock(mutex_);
      w = next_waiter_++;
      waiters_.emplace(w, Waiter{});
      PoolCore::Actions actions;
      core_.acquire(w, deadline, prefer, Clock::now(), actions);
      apply(actions, fx);
      auto it = waiters_.find(w);
      if (it->second.result) {
        ec = it->second.result->first;
        granted = it->second.result->second;
        waiters_.erase(it);
      }
    }
    run(fx);
    return {granted, w};
  }

  void attach(std::uint64_t w, Handler handler, asio::any_io_executor home) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    std::optional<Pending> ready;
    {
      std::lock_guard lock(mutex_);
      auto it = waiters_.find(w);
      if (it->second.result) {
        ready.emplace(std::move(handler), std::move(home), it->second.result->first,
                      it->second.result->second);
        waiters_.erase(it);
      } else {
        if (slot.is_connected()) {
          std::weak_ptr<PoolShared> weak = shared_from_this();
          slot.assign([weak, w](asio::cancellation_type) {
            if (auto self = weak.lock()) self->cancel_waiter(w);
          });
        }
        it->second.handler.swap(handler);  // its move assignment recurses in Boost 1.81
        it->second.home = std::move(home);
      }
    }
    if (ready) std::move(*ready).resume();
  }

  void cancel_waiter(std::uint64_t w) {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      PoolCore::Actions actions;
      if (!core_.cancel_waiter(w, Clock::now(), actions)) return;
      auto it = waiters_.find(w);
      if (it != waiters_.end()) {
        fx.completions.emplace_back(std::move(it->second.handler), std::move(it->second.home),
                                    make_error_code(errc::cancelled), 0);
        waiters_.erase(it);
      }
      apply(actions, fx);
    }
    run(fx);
  }

  void release(std::uint64_t id, bool reusable) {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      PoolCore::Actions actions;
      auto it = conns_.find(id);
      if (it != conns_.end()) {
        core_.release(id, reusable, affinity_key(it->second.context), Clock::now(), actions);
      } else {
        core_.release(id, reusable, Clock::now(), actions);
      }
      apply(actions, fx);
    }
    run(fx);
  }

  PoolEntry* entry(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    return &conns_.at(id);  // unordered_map keeps its elements in place
  }

  void close_now() {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      if (core_.closing()) return;
      PoolCore::Actions actions;
      core_.close(Clock::now(), actions);
      apply(actions, fx);
    }
    run(fx);
  }

  bool drained() {
    std::lock_guard lock(mutex_);
    return core_.drained() && tasks_ == 0;
  }

  void stop_timer() {
    stopped_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  PoolStats stats() {
    std::lock_guard lock(mutex_);
    return core_.stats();
  }

  std::string last_error() {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  DbError acquire_error(std::error_code ec) {
    const auto kind = static_cast<errc>(ec.value());
    std::string msg = make_error_code(kind).message();
    if (kind == errc::acquire_timeout) {
      std::lock_guard lock(mutex_);
      const PoolStats s = core_.stats();
      msg = "no connection became available before the deadline (" + std::to_string(s.busy) +
            " of " + std::to_string(core_.params().max_size) + " busy, " +
            std::to_string(s.waiters) + " waiting)";
      if (!last_error_.empty()) msg += "; last connect error: " + last_error_;
    }
    return DbError(kind, backend_->source(), {"", 0, std::move(msg)});
  }

  const std::string& source() const noexcept { return backend_->source(); }
  // Set at construction and never changed, so no lock.
  const PoolParams& params() const noexcept { return core_.params(); }
  asio::any_io_executor executor() const { return executor_; }

 private:
  void apply(const PoolCore::Actions& actions, Effects& fx) {
    for (const auto& a : actions) {
      switch (a.kind) {
        case Kind::grant:
        case Kind::fail: {
          const std::error_code ec =
              a.kind == Kind::fail ? make_error_code(a.error) : std::error_code{};
          auto it = waiters_.find(a.waiter);
          if (it == waiters_.end()) break;
          if (!it->second.handler) {
            it->second.result.emplace(ec, a.conn);  // acquire() has not suspended yet
          } else {
            fx.completions.emplace_back(std::move(it->second.handler), std::move(it->second.home),
                                        ec, a.conn);
            waiters_.erase(it);
          }
          break;
        }
        case Kind::close: {
          auto it = conns_.find(a.conn);
          if (it != conns_.end()) {
            ++tasks_;
            fx.to_close.push_back(std::move(it->second.conn));
            conns_.erase(it);
          }
          break;
        }
        case Kind::connect:
        case Kind::validate:
          ++tasks_;
          fx.tasks.push_back(a);
          break;
      }
    }
    const auto wake = core_.next_wake();
    if (wake && (!armed_ || *wake < *armed_)) {
      armed_ = wake;
      fx.rearm = true;
    }
  }

  void run(Effects& fx) {
    for (auto& p : fx.completions) std::move(p).resume();
    auto self = shared_from_this();
    for (auto& conn : fx.to_close) {
      asio::co_spawn(executor_, close_task(self, std::move(conn)), asio::detached);
    }
    for (const auto& a : fx.tasks) {
      if (a.kind == Kind::connect) {
        asio::co_spawn(executor_, connect_task(self, a.conn), asio::detached);
      } else {
        asio::co_spawn(executor_, validate_task(self, a.conn), asio::detached);
      }
    }
    if (fx.rearm) asio::post(strand_, [self] { self->timer_.cancel(); });
  }

  template <class F>
  void event(F&& f) {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      PoolCore::Actions actions;
      f(actions);
      apply(actions, fx);
    }
    run(fx);
  }

  static asio::awaitable<void> connect_task(std::shared_ptr<PoolShared> self, std::uint64_t id) {
    const auto& params = self->core_.params();
    try {
      auto conn = co_await self->backend_->connect(Clock::now() + params.connect_timeout);
      self->event([&](PoolCore::Actions& actions) {
        --self->tasks_;
        self->conns_.emplace(id, PoolEntry{std::move(conn)});
        self->core_.connect_succeeded(id, Clock::now(), actions);
      });
    } catch (const std::exception& e) {
      spdlog::warn("pool '{}': connect failed: {}", self->source(), e.what());
      self->event([&](PoolCore::Actions& actions) {
        --self->tasks_;
        self->last_error_ = e.what();
        self->core_.connect_failed(id, Clock::now(), actions);
      });
    }
  }

  static asio::awaitable<void> validate_task(std::shared_ptr<PoolShared> self, std::uint64_t id) {
    Connection* conn = self->entry(id)->conn.get();
    bool ok = false;
    try {
      co_await conn->validate(Clock::now() + self->core_.params().validate_timeout);
      ok = conn->reusable();
    } catch (const std::exception& e) {
      spdlog::info("pool '{}': connection failed validation and is replaced: {}", self->source(),
                   e.what());
    }
    self->event([&](PoolCore::Actions& actions) {
      --self->tasks_;
      self->core_.validation_done(id, ok, Clock::now(), actions);
    });
  }

  static asio::awaitable<void> close_task(std::shared_ptr<PoolShared> self,
                                          std::unique_ptr<Connection> conn) {
    co_await conn->close();
    conn.reset();
    std::lock_guard lock(self->mutex_);
    --self->tasks_;
  }

  static asio::awaitable<void> timer_loop(std::shared_ptr<PoolShared> self) {
    while (!self->stopped_) {
      std::optional<Deadline> wake;
      {
        std::lock_guard lock(self->mutex_);
        wake = self->core_.next_wake();
        self->armed_ = wake;
      }
      self->timer_.expires_at(wake.value_or(Deadline::max()));
      co_await self->timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (self->stopped_) break;
      self->event([&](PoolCore::Actions& actions) { self->core_.tick(Clock::now(), actions); });
    }
  }

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  std::shared_ptr<Backend> backend_;

  std::mutex mutex_;
  PoolCore core_;
  std::unordered_map<std::uint64_t, PoolEntry> conns_;
  std::unordered_map<std::uint64_t, Waiter> waiters_;
  std::uint64_t next_waiter_ = 1;
  std::size_t tasks_ = 0;  // connect, validate and close operations in flight
  std::optional<Deadline> armed_;
  std::string last_error_;
  std::atomic<bool> stopped_{false};
};

void PooledConnection::give_back(bool discard) noexcept {
  if (entry_ == nullptr) return;
  const bool reusable = !discard && entry_->conn->reusable();
  entry_ = nullptr;
  pool_->release(id_, reusable);
  pool_.reset();
}

namespace {

asio::awaitable<PooledConnection> acquire_from(std::shared_ptr<PoolShared> shared,
                                               Deadline deadline,
                                               std::optional<PoolCore::AffinityKey> prefer) {
  std::error_code ec;
  auto [granted, waiter] = shared->enqueue(deadline, prefer, ec);
  std::uint64_t id = 0;
  if (granted || ec) {
    id = granted.value_or(0);
  } else {
    auto initiate = [shared, waiter](auto handler) {
      asio::any_io_executor home = asio::get_associated_executor(handler, shared->executor());
      shared->attach(waiter, Handler(std::move(handler)), std::move(home));
    };
    auto token = asio::as_tuple(asio::use_awaitable);
    std::tie(ec, id) =
        co_await asio::async_initiate<decltype(token), void(std::error_code, std::uint64_t)>(
            std::move(initiate), token);
  }
  if (ec) throw shared->acquire_error(ec);
  co_return PooledConnection(shared, id, shared->entry(id));
}

}  // namespace

ConnectionPool::ConnectionPool(asio::any_io_executor executor, std::shared_ptr<Backend> backend,
                               PoolParams params)
    : shared_(std::make_shared<PoolShared>(executor, std::move(backend), params)) {}

ConnectionPool::~ConnectionPool() {
  shared_->close_now();
  shared_->stop_timer();
}

void ConnectionPool::start() {
  shared_->start();
}

asio::awaitable<PooledConnection> ConnectionPool::acquire(Deadline deadline) {
  return acquire_from(shared_, deadline, std::nullopt);
}

asio::awaitable<PooledConnection> ConnectionPool::acquire(Deadline deadline,
                                                          const DbContext& prefer) {
  return acquire_from(shared_, deadline, affinity_key(prefer));
}

asio::awaitable<bool> ConnectionPool::close(Deadline deadline) {
  std::shared_ptr<PoolShared> shared = shared_;
  shared->close_now();
  asio::steady_timer poll(co_await asio::this_coro::executor);
  while (!shared->drained() && Clock::now() < deadline) {
    poll.expires_after(std::chrono::milliseconds(5));
    co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  shared->stop_timer();
  co_return shared->drained();
}

PoolStats ConnectionPool::stats() const {
  return shared_->stats();
}
const PoolParams& ConnectionPool::params() const noexcept {
  return shared_->params();
}
const std::string& ConnectionPool::source() const noexcept {
  return shared_->source();
}
std::string ConnectionPool::last_connect_error() const {
  return shared_->last_error();
}

}  // namespace sluice::pool
