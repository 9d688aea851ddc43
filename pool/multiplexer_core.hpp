#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::pool {

// Configuration of one Multiplexer.
struct MultiplexerParams {
  // Requests admitted to the pool at once, over all clients. Set it to the pool's max_size
  // (the Multiplexer does): an admitted request then finds a connection (or one being opened)
  // instead of queueing again in the pool, where order is first come, first served rather
  // than fair.
  std::size_t global_cap = 8;
  // Requests one client may have admitted at once; 0 means only global_cap limits it.
  // Values at or above global_cap have the same effect as 0.
  std::size_t per_client_cap = 0;
  // Deficit round robin quantum: cost units a client earns per turn. A request costs 1
  // unless the caller says otherwise. With quantum >= the largest cost every turn admits
  // something. With larger costs some turns admit nothing, but rounds in which nobody could
  // admit are skipped in one step, so an event never costs more than O(clients waiting),
  // whatever cost / quantum is.
  std::uint32_t quantum = 1;
  // Clients with nothing queued or in flight whose statistics are kept for snapshot(); the
  // least recently active beyond this are forgotten, so that a gateway serving many
  // short-lived clients does not grow without bound. Totals in MultiplexerStats survive.
  std::size_t max_idle_clients = 1024;
  // Read by the Multiplexer only: prefer an idle connection already in the request's database
  // context, saving the statements that switch one. Off, a request gets the most recently
  // used idle connection and switches it when needed (for comparison and diagnosis).
  bool context_affinity = true;
  // Requests that may share one connection's pipeline: admitting a request that carries a
  // batch key (see MultiplexerCore::enqueue) also admits, as riders on its connection, up to
  // batch_depth - 1 queued requests with the same key and no earlier deadline, taken from the
  // heads of the clients next in the round; riders hold no place under either cap. 1 turns it
  // off. At most 32.
  std::size_t batch_depth = 1;

  // Throws std::invalid_argument naming the first offending field.
  void validate() const;
};

// What /status shows of the multiplexer. Waits run from enqueue to admission.
struct MultiplexerStats {
  using Duration = std::chrono::steady_clock::duration;

  struct Client {
    std::string name;
    std::uint64_t queued = 0;     // waiting now
    std::uint64_t in_flight = 0;  // admitted, done() not yet reported
    std::uint64_t admitted_total = 0;
    std::uint64_t expired_total = 0;    // answered with a timeout while queued
    std::uint64_t cancelled_total = 0;  // left the queue by cancel()
    Duration oldest_wait{};             // age of the oldest queued request; 0 if none
    Duration max_wait{};                // longest wait of an admitted request
    Duration total_wait{};              // over admitted requests; mean = total / admitted
  };

  // Totals over all clients, including forgotten ones.
  std::uint64_t queued = 0;
  std::uint64_t in_flight = 0;
  std::uint64_t admitted_total = 0;
  std::uint64_t expired_total = 0;
  std::uint64_t cancelled_total = 0;
  std::uint64_t riders_total = 0;  // admitted onto another request's connection (batch_depth)
  Duration max_wait{};
  Duration total_wait{};
  // Sorted by name: every client with something queued or in flight, and up to
  // max_idle_clients idle ones.
  std::vector<Client> clients;
};

// The multiplexer's logic as a pure state machine: no I/O, no clock, no threads. Requests
// from all clients wait in per-client FIFO queues and are admitted to the pool in deficit
// round robin order (Shreedhar and Varghese) over the clients that may proceed, within a
// per-client and a global cap on requests in flight. Each event takes the current time and
// appends the actions the driver must carry out.
//
// Every request enqueued is answered exactly once: by an admit or expire action, or by a
// cancel() that returns true. A queued request never outlives its deadline: every event
// first expires the queued requests whose deadline is at or before `now`, so none is
// admitted late even when the driver's timer fires late; tick() exists for when nothing
// else happens. Admitted requests are not timed by the multiplexer; the query's own
// deadline covers them.
//
// Deficit round robin, precisely. The round holds the clients that have something queued
// and are below their per-client cap, in the order they became so. The client at the front
// has the turn: at its start the client earns `quantum`, then it admits the head of its
// queue while the head's cost fits its deficit. The turn ends, and the client goes to the
// back of the round keeping its deficit, when the head no longer fits. A turn cut short by
// the global cap resumes, without a new quantum, as soon as capacity frees. A client leaves
// the round when its queue empties or it reaches its per-client cap, and its deficit then
// resets to 0: credit it could not spend because of its own cap is not banked, so that a
// capped client cannot save up credit and later spend it on expensive requests. When
// done() takes it below its cap it rejoins at the back, like a newly arrived client; it
// held connections meanwhile, so it loses no share it could have used.
//
// Cost: O(log queued) per event plus O(1) per action when costs do not exceed the quantum.
// Not thread-safe; the driver serialises calls.
class MultiplexerCore {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;  // the same as pool::Clock's
  using RequestId = std::uint64_t;
  using Cost = std::uint32_t;
  // Requests with the same nonzero key may share a connection (MultiplexerParams::
  // batch_depth); 0: this one may not. The driver decides what a key means.
  using BatchKey = std::uint64_t;

  struct Action {
    enum class Kind : std::uint8_t {
      admit,   // `request` may proceed to the pool; report done() when it finishes
      expire,  // answer `request` with a timeout; it never reached the database
    };
    Kind kind;
    RequestId request = 0;
    // For an admit: 0, or the request on whose connection this one rides. Riders are
    // admitted in the same event as their leader, right after it, and take no place under
    // the global cap (the leader's connection serves them); report done() for each.
    RequestId leader = 0;
    friend bool operator==(const Action&, const Action&) = default;
  };
  using Actions = std::vector<Action>;

  // Throws std::invalid_argument if the params are invalid.
  explicit MultiplexerCore(MultiplexerParams params);

  // Client `client` submits request `id`, of `cost` >= 1, to be admitted by `deadline`.
  // Throws std::invalid_argument, changing nothing, if the cost is 0 or `id` is still
  // queued or in flight. A deadline at or before `now` expires the request at once.
  void enqueue(std::string_view client, RequestId id, Cost cost, TimePoint deadline, TimePoint now,
               Actions& out, BatchKey key = 0);
  void enqueue(std::string_view client, RequestId id, TimePoint deadline, TimePoint now,
               Actions& out) {
    enqueue(client, id, 1, deadline, now, out);
  }
  // The client gave up on `id`. Returns true if it was queued (even past its deadline, not
  // yet expired): it leaves its queue at once and gets no action. Returns false, changing nothing,
  // if `id` is unknown or already admitted; an admitted request is cancelled in the pool and then
  // reported by done().
  bool cancel(RequestId id, TimePoint now, Actions& out);
  // Admitted request `id` finished, in whatever way: its place in the caps frees. Returns
  // false, changing nothing, if `id` is not in flight (unknown, still queued, or already
  // done), which is a driver bug worth logging.
  bool done(RequestId id, TimePoint now, Actions& out);
  // Time passed: expire queued requests whose deadline has come.
  void tick(TimePoint now, Actions& out);

  // The earliest deadline of a queued request: when tick() next has something to do.
  std::optional<TimePoint> next_wake() const;
  MultiplexerStats snapshot(TimePoint now) const;
  std::size_t queued() const noexcept { return deadlines_.size(); }
  // Requests holding a place under global_cap (riders hold none).
  std::size_t in_flight() const noexcept { return in_flight_; }
  const MultiplexerParams& params() const noexcept { return params_; }

 private:
  // Clients are interned to an index so that events hash a string only on enqueue.
  using ClientIdx = std::uint32_t;
  struct Queued {
    RequestId id;
    Cost cost;
    BatchKey key;
    TimePoint enqueued;
    std::multimap<TimePoint, RequestId>::iterator deadline_entry;
  };
  struct Request {
    ClientIdx client;
    bool queued;
    std::list<Queued>::iterator position;  // while queued
    bool rider = false;                    // admitted onto another request's connection
  };
  struct Client {
    std::string name;
    std::list<Queued> queue;
    std::uint64_t deficit = 0;
    std::size_t in_flight = 0;  // leaders and lone requests: under per_client_cap
    std::size_t riders = 0;
    bool in_round = false;
    std::list<ClientIdx>::iterator round_entry;  // while in_round
    bool idle = false;
    std::list<ClientIdx>::iterator idle_entry;  // while idle
    std::uint64_t admitted_total = 0;
    std::uint64_t expired_total = 0;
    std::uint64_t cancelled_total = 0;
    MultiplexerStats::Duration max_wait{};
    MultiplexerStats::Duration total_wait{};
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  ClientIdx intern(std::string_view name);
  // Brings the client's round membership and idle bookkeeping up to date after a change.
  void place(ClientIdx c);
  void remove_queued(std::unordered_map<RequestId, Request>::iterator r);
  void expire_due(TimePoint now, Actions& out);
  void pump(TimePoint now, Actions& out);
  // Admits the head of the client's queue; a rider takes no place under the global cap and
  // none of the client's deficit.
  void admit_head(ClientIdx c, TimePoint now, Actions& out, RequestId leader = 0);
  // Admits riders for `leader`, of client `first`, that carries `key` and is due `by`.
  void add_riders(ClientIdx first, RequestId leader, BatchKey key, TimePoint by, TimePoint now,
                  Actions& out);
  void skip_futile_rounds();

  MultiplexerParams params_;
  std::vector<Client> clients_;
  std::vector<ClientIdx> free_clients_;
  std::unordered_map<std::string, ClientIdx, NameHash, std::equal_to<>> client_index_;
  std::unordered_map<RequestId, Request> requests_;
  // Queued requests only. Every event costs O(log queued), never a scan of the queues.
  std::multimap<TimePoint, RequestId> deadlines_;
  std::list<ClientIdx> round_;
  bool turn_started_ = false;          // the front of round_ has earned its quantum for this turn
  std::list<ClientIdx> idle_clients_;  // least recently active at the front
  std::size_t in_flight_ = 0;  // leaders and lone requests: the places under global_cap used
  std::size_t riders_ = 0;     // riders in flight
  MultiplexerStats totals_;  // counters and waits; queued and in_flight are filled in by snapshot()
};

}  // namespace sluice::pool
