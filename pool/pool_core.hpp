#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <unordered_map>
#include <vector>

#include "pool/connection.hpp"
#include "pool/db_error.hpp"
#include "pool/pool_params.hpp"
#include "pool/pool_stats.hpp"

namespace sluice::pool {

// The connection pool's logic as a pure state machine: no I/O, no clock, no threads. Each
// event takes the current time and appends the actions the driver must carry out
// (ConnectionPool is that driver). This keeps every rule (FIFO waiters, deadlines, backoff,
// validation, idle timeout, lifetime, accounting) testable with a fake clock.
//
// Not thread-safe; the driver serialises calls.
class PoolCore {
 public:
  using TimePoint = Clock::time_point;
  using ConnId = std::uint64_t;
  using WaiterId = std::uint64_t;
  // What the driver knows about the session state of a connection (ConnectionPool: a hash of
  // its database context). The core only compares keys: a waiter may prefer an idle
  // connection whose key matches, which saves the driver the statements that would put
  // another connection into that state.
  using AffinityKey = std::uint64_t;
  // The key of a connection that was just opened.
  static constexpr AffinityKey fresh_affinity = 0;

  struct Action {
    enum class Kind : std::uint8_t {
      connect,   // open a connection for slot `conn`, then report connect_succeeded/failed
      close,     // close connection `conn`; it is no longer counted
      validate,  // validate `conn`, then report validation_done
      grant,     // hand `conn` to `waiter`
      fail,      // complete `waiter` with `error`
    };
    Kind kind;
    ConnId conn = 0;
    WaiterId waiter = 0;
    errc error{};
    friend bool operator==(const Action&, const Action&) = default;
  };
  using Actions = std::vector<Action>;

  explicit PoolCore(PoolParams params, std::uint64_t seed = std::random_device{}());

  // Opens min_size connections.
  void start(TimePoint now, Actions& out);
  // A caller asks for a connection by `deadline`. Waiters are served first come, first served,
  // each with the most recently used idle connection (the least recently used ones idle out).
  void acquire(WaiterId w, TimePoint deadline, TimePoint now, Actions& out) {
    acquire(w, deadline, std::nullopt, now, out);
  }
  // The same, but a waiter with a `prefer` key gets the most recently used idle connection
  // with that key, else the least recently used idle one: the connection whose state is the
  // least likely to be wanted again soon. It never waits for a matching connection.
  void acquire(WaiterId w, TimePoint deadline, std::optional<AffinityKey> prefer, TimePoint now,
               Actions& out);
  // The caller gave up (cancelled). Returns false if `w` was not waiting.
  bool cancel_waiter(WaiterId w, TimePoint now, Actions& out);
  // A borrowed connection comes back; `reusable` is false when its state is unknown. It keeps
  // its affinity key.
  void release(ConnId c, bool reusable, TimePoint now, Actions& out);
  // The same, recording the connection's new affinity key.
  void release(ConnId c, bool reusable, AffinityKey affinity, TimePoint now, Actions& out);
  void connect_succeeded(ConnId c, TimePoint now, Actions& out);
  void connect_failed(ConnId c, TimePoint now, Actions& out);
  void validation_done(ConnId c, bool ok, TimePoint now, Actions& out);
  // Time passed: expire waiters, retire idle and old connections, retry connects.
  void tick(TimePoint now, Actions& out);
  // Stops serving: fails every waiter, closes idle connections, and closes the rest as they
  // come back.
  void close(TimePoint now, Actions& out);

  // When tick() next has something to do, if ever.
  std::optional<TimePoint> next_wake() const;
  PoolStats stats() const;
  bool closing() const noexcept { return closing_; }
  // Closing and nothing left open or opening.
  bool drained() const noexcept { return closing_ && slots_.empty(); }
  const PoolParams& params() const noexcept { return params_; }

 private:
  enum class State : std::uint8_t { connecting, backoff, idle, busy, validating };
  struct Slot {
    State state = State::connecting;
    TimePoint created{};
    TimePoint idle_since{};
    TimePoint retry_at{};
    AffinityKey affinity = fresh_affinity;
  };
  struct Waiter {
    WaiterId id;
    TimePoint deadline;
    std::optional<ConnId> validating;  // an idle connection being checked for this waiter
    std::multimap<TimePoint, WaiterId>::iterator deadline_entry;
    std::optional<AffinityKey> prefer;
  };

  void serve(TimePoint now, Actions& out);
  void ensure_capacity(TimePoint now, Actions& out);
  void close_slot(ConnId c, Actions& out);
  void remove_idle(ConnId c);
  ConnId take_idle(std::optional<AffinityKey> prefer);
  bool too_old(const Slot& s, TimePoint now) const;
  std::list<Waiter>::iterator first_unassigned();
  std::list<Waiter>::iterator erase_waiter(std::list<Waiter>::iterator w);
  std::chrono::milliseconds backoff_delay();

  PoolParams params_;
  std::mt19937_64 rng_;
  std::map<ConnId, Slot> slots_;
  std::vector<ConnId> idle_;  // most recently used at the back
  std::list<Waiter> waiters_;
  std::unordered_map<WaiterId, std::list<Waiter>::iterator> waiter_index_;
  // Every event must cost O(log waiters), not O(waiters): under overload thousands wait, and
  // a scan per event turns draining the queue quadratic.
  std::multimap<TimePoint, WaiterId> deadlines_;
  std::size_t assigned_ = 0;  // waiters with a connection under validation
  std::unordered_map<ConnId, WaiterId> validating_for_;
  ConnId next_conn_ = 1;
  std::uint32_t consecutive_failures_ = 0;
  TimePoint connect_not_before_{};
  bool closing_ = false;
  PoolStats counters_;
};

}  // namespace sluice::pool
