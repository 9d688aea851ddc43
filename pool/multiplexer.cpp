#include "pool/multiplexer.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/parked_completion.hpp"

namespace sluice::pool {

using Kind = MultiplexerCore::Action::Kind;
using RequestId = MultiplexerCore::RequestId;

namespace {

using Handler = ParkedCompletion<std::error_code>::Handler;

MultiplexerParams capped_by(MultiplexerParams params, const ConnectionPool& pool) {
  params.global_cap = pool.params().max_size;
  return params;
}

}  // namespace

// The multiplexer's state, shared by the Multiplexer, its timer, every acquire() in progress
// and every checked-out connection. One mutex guards the core and the waiters; the timer lives
// on `strand_`; the counters are atomics because checkouts update them without the lock.
class MuxShared : public std::enable_shared_from_this<MuxShared> {
 public:
  MuxShared(asio::any_io_executor ex, ConnectionPool& pool, const Dialect& dialect,
            MultiplexerParams params)
      : executor_(ex),
        strand_(asio::make_strand(ex)),
        timer_(strand_),
        pool_(pool),
        dialect_(dialect),
        core_(capped_by(params, pool)) {}

  struct Counters {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> statements{0};
    std::atomic<std::uint64_t> resets{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<std::uint64_t> discarded{0};
  };

  void start() { asio::co_spawn(strand_, timer_loop(shared_from_this()), asio::detached); }

  // Queues request `id`. Returns its outcome when decided at once (an empty error code means
  // admitted), else nullopt: attach() a handler next.
  // With `item` (a read, from query()) in context `ctx`, the request may lead a batch or ride
  // on another's connection.
  std::optional<std::error_code> enqueue(RequestId& id, const std::string& client,
                                         MultiplexerCore::Cost cost, Deadline deadline,
                                         BatchItem* item = nullptr,
                                         const DbContext* ctx = nullptr) {
    Effects fx;
    std::optional<std::error_code> decided;
    {
      std::lock_guard lock(mutex_);
      id = next_request_++;
      if (closed_) return make_error_code(errc::pool_closed);
      Waiter& w = waiters_.emplace(id, Waiter{}).first->second;
      MultiplexerCore::BatchKey key = 0;
      if (item != nullptr && core_.params().batch_depth > 1) {
        w.item = item;
        w.context = &*keys_.try_emplace(*ctx, Interned{next_key_, 0}).first;
        if (w.context->second.key == next_key_) ++next_key_;
        ++w.context->second.refs;
        key = w.context->second.key;
      }
      MultiplexerCore::Actions actions;
      core_.enqueue(client, id, cost, deadline, Clock::now(), actions, key);
      apply(actions, fx);
      auto it = waiters_.find(id);
      if (it->second.result) {
        decided = *it->second.result;
        waiters_.erase(it);
      }
    }
    run(fx);
    return decided;
  }

  void attach(RequestId id, Handler handler, asio::any_io_executor home) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    std::optional<Pending> ready;
    {
      std::lock_guard lock(mutex_);
      auto it = waiters_.find(id);
      if (it->second.result) {
        ready.emplace(std::move(handler), std::move(home), *it->second.result);
        waiters_.erase(it);
      } else {
        if (slot.is_connected()) {
          std::weak_ptr<MuxShared> weak = shared_from_this();
          slot.assign([weak, id](asio::cancellation_type) {
            if (auto self = weak.lock()) self->cancel(id);
          });
        }
        it->second.handler.swap(handler);  // its move assignment recurses in Boost 1.81
        it->second.home = std::move(home);
      }
    }
    if (ready) std::move(*ready).resume();
  }

  void cancel(RequestId id) {
    event([&](MultiplexerCore::Actions& actions, Effects& fx) {
      if (core_.cancel(id, Clock::now(), actions)) {
        finish(id, make_error_code(errc::cancelled), fx);
      } else if (auto it = waiters_.find(id); it != waiters_.end() && it->second.riding) {
        // Under the lock: the rider, and so its item, cannot be resumed and gone meanwhile.
        it->second.item->cancel.request();
      }
    });
  }

  struct Rider {
    RequestId id;
    BatchItem* item;
  };
  // The riders admitted onto `leader`'s connection, all at its own admission.
  std::vector<Rider> take_riders(RequestId leader) {
    std::lock_guard lock(mutex_);
    auto node = batches_.extract(leader);
    return node ? std::move(node.mapped()) : std::vector<Rider>{};
  }

  // The riders' statements have run (their items say how): they resume, and leave the caps.
  void complete(std::span<const Rider> riders) {
    event([&](MultiplexerCore::Actions& actions, Effects& fx) {
      for (const Rider& r : riders) {
        if (!core_.done(r.id, Clock::now(), actions)) {
          spdlog::error("multiplexer '{}': rider {} was not in flight", pool_.source(), r.id);
        }
        auto it = waiters_.find(r.id);
        if (it != waiters_.end()) it->second.riding = false;
        finish(r.id, {}, fx);
      }
    });
  }

  void done(RequestId id) {
    event([&](MultiplexerCore::Actions& actions, Effects&) {
      if (!core_.done(id, Clock::now(), actions)) {
        spdlog::error("multiplexer '{}': done() for request {}, which is not in flight",
                      pool_.source(), id);
      }
    });
  }

  void close() {
    event([&](MultiplexerCore::Actions& actions, Effects& fx) {
      closed_ = true;
      std::vector<RequestId> queued;
      queued.reserve(waiters_.size());
      for (const auto& [id, w] : waiters_) queued.push_back(id);
      for (const RequestId id : queued) {
        if (core_.cancel(id, Clock::now(), actions)) {
          finish(id, make_error_code(errc::pool_closed), fx);
        }
      }
    });
  }

  void stop_timer() {
    stopped_ = true;
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  MultiplexerSnapshot snapshot() const {
    MultiplexerSnapshot s;
    {
      std::lock_guard lock(mutex_);
      s.queue = core_.snapshot(Clock::now());
    }
    s.context.affinity_hits = counters_.hits;
    s.context.affinity_misses = counters_.misses;
    s.context.switch_statements = counters_.statements;
    s.context.resets = counters_.resets;
    s.context.switch_failures = counters_.failures;
    s.context.discarded = counters_.discarded;
    return s;
  }

  DbError queue_error(std::error_code ec) const {
    const auto kind = static_cast<errc>(ec.value());
    std::string msg = make_error_code(kind).message();
    if (kind == errc::acquire_timeout) {
      std::lock_guard lock(mutex_);
      msg =
          "the deadline passed while the request was queued behind other requests; it never "
          "reached the database (" +
          std::to_string(core_.in_flight()) + " of " + std::to_string(core_.params().global_cap) +
          " connections in use, " + std::to_string(core_.queued()) + " requests queued)";
    } else if (kind == errc::pool_closed) {
      msg = "the source is closing and takes no more requests";
    }
    return DbError(kind, pool_.source(), {"", 0, std::move(msg)});
  }

  // Set at construction and never changed, so no lock.
  const MultiplexerParams& params() const noexcept { return core_.params(); }
  ConnectionPool& pool() const noexcept { return pool_; }
  const Dialect& dialect() const noexcept { return dialect_; }
  asio::any_io_executor executor() const { return executor_; }
  Counters& counters() noexcept { return counters_; }

 private:
  // A context that queued reads share, and the batch key standing for it while any is queued.
  struct Interned {
    MultiplexerCore::BatchKey key;
    std::size_t refs;  // queued requests in it
  };
  using Keys = std::unordered_map<DbContext, Interned, DbContextHash>;
  struct Waiter {
    Handler handler;
    asio::any_io_executor home;  // where the waiter resumes
    std::optional<std::error_code> result;
    BatchItem* item = nullptr;            // a read that may be batched (query())
    Keys::value_type* context = nullptr;  // while queued with a batch key
    bool riding = false;                  // admitted onto a leader's connection, not done
  };
  using Pending = ParkedCompletion<std::error_code>;
  // Side effects gathered under the lock and carried out after it is released.
  struct Effects {
    std::vector<Pending> completions;
    std::vector<RequestId> refused;  // admitted after close(): reported done at once
    bool rearm = false;
  };

  template <class F>
  void event(F&& f) {
    Effects fx;
    {
      std::lock_guard lock(mutex_);
      MultiplexerCore::Actions actions;
      f(actions, fx);
      apply(actions, fx);
      // done() for a refused request may admit another, which is refused in turn.
      while (!fx.refused.empty()) {
        const RequestId id = fx.refused.back();
        fx.refused.pop_back();
        MultiplexerCore::Actions more;
        core_.done(id, Clock::now(), more);
        apply(more, fx);
      }
    }
    run(fx);
  }

  void apply(const MultiplexerCore::Actions& actions, Effects& fx) {
    for (const auto& a : actions) {
      if (a.kind == Kind::admit && a.leader != 0 && !closed_) {
        // A rider waits on until its leader has run its statement.
        Waiter& w = waiters_.at(a.request);
        unqueue(w);
        w.riding = true;
        batches_[a.leader].push_back({a.request, w.item});
        continue;
      }
      std::error_code ec;
      if (a.kind == Kind::expire) {
        ec = make_error_code(errc::acquire_timeout);
      } else if (closed_) {
        ec = make_error_code(errc::pool_closed);
        fx.refused.push_back(a.request);
      }
      finish(a.request, ec, fx);
    }
    const auto wake = core_.next_wake();
    if (wake && (!armed_ || *wake < *armed_)) {
      armed_ = wake;
      fx.rearm = true;
    }
  }

  // Answers waiter `id` with `ec`, now if it has suspended, else when it attaches.
  void finish(RequestId id, std::error_code ec, Effects& fx) {
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;
    unqueue(it->second);
    if (!it->second.handler) {
      it->second.result = ec;  // acquire() has not suspended yet
    } else {
      fx.completions.emplace_back(std::move(it->second.handler), std::move(it->second.home), ec);
      waiters_.erase(it);
    }
  }

  // The request left the queue: its context's batch key is one request less in use.
  void unqueue(Waiter& w) {
    if (w.context == nullptr) return;
    if (--w.context->second.refs == 0) keys_.erase(w.context->first);
    w.context = nullptr;
  }

  void run(Effects& fx) {
    for (auto& p : fx.completions) std::move(p).resume();
    if (fx.rearm) asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

  // The cancellation slot is cleared on the waiter's own executor, where the awaiting
  // operation may emit into it; a cancel() arriving meanwhile finds the request gone and does
  // nothing.

  static asio::awaitable<void> timer_loop(std::shared_ptr<MuxShared> self) {
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
      self->event([&](MultiplexerCore::Actions& actions, Effects&) {
        self->core_.tick(Clock::now(), actions);
      });
    }
  }

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  ConnectionPool& pool_;
  const Dialect& dialect_;

  mutable std::mutex mutex_;
  MultiplexerCore core_;
  std::unordered_map<RequestId, Waiter> waiters_;  // queued, riding, or decided before attaching
  std::unordered_map<RequestId, std::vector<Rider>> batches_;  // by leader, until it takes them
  Keys keys_;
  MultiplexerCore::BatchKey next_key_ = 1;
  RequestId next_request_ = 1;
  bool closed_ = false;
  std::optional<Deadline> armed_;
  std::atomic<bool> stopped_{false};
  Counters counters_;
};

// An admitted request and, once it has one, its connection. It is the Connection the borrower
// sees: statements pass through it so that a failed one marks the context unknown. On
// destruction it gives the connection back first, then the request's place under the caps,
// so that the request admitted next finds the connection idle.
class MuxLease final : public Connection {
 public:
  MuxLease(std::shared_ptr<MuxShared> mux, RequestId request, DbContext ctx)
      : mux_(std::move(mux)), request_(request), context_(std::move(ctx)) {}
  MuxLease(const MuxLease&) = delete;
  MuxLease& operator=(const MuxLease&) = delete;
  ~MuxLease() override {
    if (conn_) {
      if (!context_known_) conn_.set_context(std::nullopt);
      conn_.release();
    }
    mux_->done(request_);
  }

  asio::awaitable<ExecResult> execute(Statement stmt, RowSink& sink, Deadline deadline) override {
    // Unknown until it succeeds: a failure, a cancellation or a frame destroyed midway all
    // leave it so.
    const bool known = context_known_;
    context_known_ = false;
    ExecResult result = co_await conn_->execute(stmt, sink, deadline);
    context_known_ = known;
    co_return result;
  }
  asio::awaitable<void> execute_batch(std::span<BatchItem* const> items, std::size_t caller,
                                      const std::function<void(BatchItem&)>& on_settled) override {
    const bool known = context_known_;
    context_known_ = false;
    bool failed = false;
    const std::function<void(BatchItem&)> watch = [&](BatchItem& item) {
      failed = failed || item.error != nullptr;
      if (on_settled) on_settled(item);
    };
    co_await conn_->execute_batch(items, caller, watch);
    context_known_ = known && !failed;
  }
  asio::awaitable<void> validate(Deadline deadline) override { return conn_->validate(deadline); }
  asio::awaitable<void> close() noexcept override { return conn_->close(); }
  void use_context(const DbContext& ctx) override { conn_->use_context(ctx); }
  bool reusable() const noexcept override { return conn_ && conn_->reusable(); }

  const DbContext& context() const noexcept { return context_; }
  std::uint64_t connection_id() const noexcept { return conn_.id(); }
  void mark_context_unknown() noexcept { context_known_ = false; }
  void hold(PooledConnection conn) noexcept { conn_ = std::move(conn); }

 private:
  std::shared_ptr<MuxShared> mux_;
  RequestId request_;
  DbContext context_;
  PooledConnection conn_;
  bool context_known_ = true;
};

namespace {

// Takes `conn` into `to`, recording its context as unknown until every statement succeeded.
asio::awaitable<void> run_switch(MuxShared& mux, PooledConnection& conn,
                                 const std::vector<std::string>& statements, const DbContext& to,
                                 Deadline deadline) {
  conn.set_context(std::nullopt);
  for (const std::string& sql : statements) {
    ++mux.counters().statements;
    DiscardRows sink;
    const Statement stmt{sql, {}};
    try {
      co_await conn->execute(stmt, sink, deadline);
    } catch (...) {
      ++mux.counters().failures;
      throw;
    }
  }
  conn.set_context(to);
}

// Refuses, before anything is queued, what can never be admitted.
void check_request(const MuxShared& mux, const DbContext& ctx, MultiplexerCore::Cost cost) {
  const std::string& source = mux.pool().source();
  if (cost == 0) {
    throw DbError(errc::invalid_argument, source, {"", 0, "request cost must be at least 1"});
  }
  try {
    const DbContext from_default;
    (void)mux.dialect().switch_context(from_default, ctx);
  } catch (const ContextError& e) {
    throw DbError(errc::invalid_argument, source, {"", 0, e.what()});
  }
}

asio::awaitable<void> admission(const std::shared_ptr<MuxShared>& mux, RequestId& request,
                                const std::string& client, MultiplexerCore::Cost cost,
                                Deadline deadline, BatchItem* item = nullptr,
                                const DbContext* ctx = nullptr);
asio::awaitable<MultiplexedConnection> lease_for(std::shared_ptr<MuxShared> mux, RequestId request,
                                                 DbContext ctx, Deadline deadline);

asio::awaitable<MultiplexedConnection> checkout(std::shared_ptr<MuxShared> mux, std::string client,
                                                DbContext ctx, Deadline deadline,
                                                MultiplexerCore::Cost cost) {
  check_request(*mux, ctx, cost);

  RequestId request = 0;
  co_await admission(mux, request, client, cost, deadline);
  co_return co_await lease_for(mux, request, std::move(ctx), deadline);
}

// Queues the request and waits until it is admitted (or, with `item`, until it rode on
// another's connection: item->error or item->result is then set). Throws the queue's errors.
asio::awaitable<void> admission(const std::shared_ptr<MuxShared>& mux, RequestId& request,
                                const std::string& client, MultiplexerCore::Cost cost,
                                Deadline deadline, BatchItem* item, const DbContext* ctx) {
  std::optional<std::error_code> decided = mux->enqueue(request, client, cost, deadline, item, ctx);
  std::error_code ec;
  if (decided) {
    ec = *decided;
  } else {
    auto initiate = [mux, request](auto handler) {
      asio::any_io_executor home = asio::get_associated_executor(handler, mux->executor());
      mux->attach(request, Handler(std::move(handler)), std::move(home));
    };
    auto token = asio::as_tuple(asio::use_awaitable);
    std::tie(ec) = co_await asio::async_initiate<decltype(token), void(std::error_code)>(
        std::move(initiate), token);
  }
  if (ec) throw mux->queue_error(ec);
}

// Checks out a connection for admitted `request` and puts it into `ctx`.
asio::awaitable<MultiplexedConnection> lease_for(std::shared_ptr<MuxShared> mux, RequestId request,
                                                 DbContext ctx, Deadline deadline) {
  const std::string& source = mux->pool().source();
  // From here on the lease reports the request done, however this ends.
  auto lease = std::make_unique<MuxLease>(mux, request, std::move(ctx));
  const DbContext& to = lease->context();
  const Dialect& dialect = mux->dialect();
  bool switched = false;
  for (;;) {
    PooledConnection conn;
    if (mux->params().context_affinity) {
      conn = co_await mux->pool().acquire(deadline, to);
    } else {
      conn = co_await mux->pool().acquire(deadline);
    }
    const std::optional<DbContext> from = conn.context();
    if (from == to) {
      lease->hold(std::move(conn));
      break;
    }
    std::optional<std::vector<std::string>> statements;
    try {
      statements = from ? dialect.switch_context(*from, to) : dialect.reset_context(to);
    } catch (const ContextError& e) {
      spdlog::info(
          "source '{}': connection {} cannot be switched to the context asked for ({}); "
          "replacing it",
          source, conn.id(), e.what());
    }
    if (!statements) {
      // A new connection starts in its default context, from which `to` is reachable.
      ++mux->counters().discarded;
      conn.discard();
      continue;
    }
    switched = true;
    if (!from) ++mux->counters().resets;
    co_await run_switch(*mux, conn, *statements, to, deadline);
    lease->hold(std::move(conn));
    break;
  }
  ++(switched ? mux->counters().misses : mux->counters().hits);
  lease->use_context(to);
  co_return MultiplexedConnection(std::move(lease));
}

// The riders a leader took: whatever happens to the leader, each is resumed exactly once, its
// item holding a result or an error.
class RiderSet {
 public:
  RiderSet(std::shared_ptr<MuxShared> mux, std::vector<MuxShared::Rider> riders)
      : mux_(std::move(mux)), riders_(std::move(riders)) {}
  RiderSet(const RiderSet&) = delete;
  RiderSet& operator=(const RiderSet&) = delete;
  ~RiderSet() {
    if (!riders_.empty()) {
      fail(std::make_exception_ptr(DbError(
          errc::cancelled, mux_->pool().source(),
          {"", 0, "the request that was running this statement with its own was stopped"})));
    }
  }

  const std::vector<MuxShared::Rider>& riders() const noexcept { return riders_; }
  // The rider whose item this is (if any) resumes now, while the batch goes on.
  void complete(const BatchItem& item) {
    const auto it = std::find_if(riders_.begin(), riders_.end(),
                                 [&](const MuxShared::Rider& r) { return r.item == &item; });
    if (it == riders_.end()) return;
    mux_->complete(std::span(&*it, 1));
    riders_.erase(it);
  }
  // Every item that has no outcome yet gets `e`; then all resume.
  void fail(const std::exception_ptr& e) {
    fail_unsettled(e);
    complete();
  }
  void complete() {
    if (riders_.empty()) return;
    fail_unsettled(std::make_exception_ptr(
        DbError(errc::connection_lost, mux_->pool().source(),
                {"", 0, "the batch ended before this statement's answer arrived"})));
    mux_->complete(riders_);
    riders_.clear();
  }

 private:
  void fail_unsettled(const std::exception_ptr& e) {
    for (const auto& r : riders_) {
      if (!r.item->settled) {
        // Each its own copy: every rider reads and frees its error on its own thread.
        r.item->error = copy_error(e, errc::connection_lost, mux_->pool().source());
        r.item->settled = true;
      }
    }
  }

  std::shared_ptr<MuxShared> mux_;
  std::vector<MuxShared::Rider> riders_;
};

asio::awaitable<ExecResult> run_query(std::shared_ptr<MuxShared> mux, std::string client,
                                      DbContext ctx, Statement stmt, RowSink& sink,
                                      Deadline deadline, MultiplexerCore::Cost cost) {
  check_request(*mux, ctx, cost);
  BatchItem own;
  own.stmt = stmt;
  own.sink = &sink;
  own.deadline = deadline;
  RequestId request = 0;
  co_await admission(mux, request, client, cost, deadline, &own, &ctx);
  if (!own.settled) {
    // Admitted as a leader: check out the connection, then run this statement and the
    // riders' in one batch, earliest deadline first.
    RiderSet riders(mux, mux->take_riders(request));
    // With riders, the caller giving up must not fail the checkout that their statements
    // need too: its own statement is cancelled in the batch instead.
    const bool shield = !riders.riders().empty();
    if (shield) {
      co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
    }
    // No rider is due before the leader (MultiplexerCore takes none), so none waits for the
    // checkout past its deadline.
    MultiplexedConnection conn;
    std::exception_ptr failure;
    try {
      conn = co_await lease_for(mux, request, std::move(ctx), deadline);
    } catch (...) {
      failure = std::current_exception();
    }
    if (shield) co_await asio::this_coro::reset_cancellation_state();
    if (failure) {
      riders.fail(failure);
      std::rethrow_exception(failure);
    }
    std::vector<BatchItem*> items;
    items.reserve(riders.riders().size() + 1);
    items.push_back(&own);
    for (const auto& r : riders.riders()) items.push_back(r.item);
    std::stable_sort(items.begin(), items.end(), [](const BatchItem* a, const BatchItem* b) {
      return a->deadline < b->deadline;
    });
    const std::size_t caller =
        static_cast<std::size_t>(std::find(items.begin(), items.end(), &own) - items.begin());
    // Each rider resumes as soon as its own answer is in, not when the whole batch is.
    const std::function<void(BatchItem&)> on_settled = [&riders](BatchItem& item) {
      riders.complete(item);
    };
    try {
      co_await conn->execute_batch(items, caller, on_settled);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure) {
      riders.fail(failure);
    } else {
      riders.complete();  // any left (a backend that failed to settle them)
    }
    if (!own.settled) {
      if (failure) std::rethrow_exception(failure);
      throw DbError(errc::connection_lost, mux->pool().source(),
                    {"", 0, "the batch ended before this statement's answer arrived"});
    }
  }
  if (own.error) std::rethrow_exception(own.error);
  co_return own.result;
}

}  // namespace

Multiplexer::Multiplexer(asio::any_io_executor executor, ConnectionPool& pool,
                         const Dialect& dialect, MultiplexerParams params)
    : shared_(std::make_shared<MuxShared>(executor, pool, dialect, params)) {
  shared_->start();
}

Multiplexer::~Multiplexer() {
  shared_->close();
  shared_->stop_timer();
}

asio::awaitable<MultiplexedConnection> Multiplexer::acquire(std::string_view client,
                                                            const DbContext& ctx, Deadline deadline,
                                                            MultiplexerCore::Cost cost) {
  return checkout(shared_, std::string(client), ctx, deadline, cost);
}

asio::awaitable<ExecResult> Multiplexer::query(std::string_view client, const DbContext& ctx,
                                               Statement stmt, RowSink& sink, Deadline deadline,
                                               MultiplexerCore::Cost cost) {
  return run_query(shared_, std::string(client), ctx, stmt, sink, deadline, cost);
}

void Multiplexer::close() {
  shared_->close();
}

MultiplexerSnapshot Multiplexer::snapshot() const {
  return shared_->snapshot();
}

const MultiplexerParams& Multiplexer::params() const noexcept {
  return shared_->params();
}

MultiplexedConnection::MultiplexedConnection() noexcept = default;
MultiplexedConnection::MultiplexedConnection(std::unique_ptr<MuxLease> lease) noexcept
    : lease_(std::move(lease)) {}
MultiplexedConnection::MultiplexedConnection(MultiplexedConnection&&) noexcept = default;
MultiplexedConnection& MultiplexedConnection::operator=(MultiplexedConnection&&) noexcept = default;
MultiplexedConnection::~MultiplexedConnection() = default;

Connection& MultiplexedConnection::operator*() const noexcept {
  return *lease_;
}
Connection* MultiplexedConnection::operator->() const noexcept {
  return lease_.get();
}
const DbContext& MultiplexedConnection::context() const noexcept {
  return lease_->context();
}
std::uint64_t MultiplexedConnection::connection_id() const noexcept {
  return lease_->connection_id();
}
void MultiplexedConnection::mark_context_unknown() noexcept {
  lease_->mark_context_unknown();
}
void MultiplexedConnection::release() noexcept {
  lease_.reset();
}

}  // namespace sluice::pool
