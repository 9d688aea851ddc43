#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::session {

// What one client may do. A zero switches that limit off.
struct LimitPolicy {
  // Sustained admitted requests per second (the token bucket's refill rate); 0 = unlimited.
  double rate_per_second = 0;
  // Bucket capacity in requests: how many may be admitted back to back after a quiet spell.
  // At least 1 when rate_per_second is set; may be fractional (1.5 = one now, the next after
  // half an interval). Ignored when rate_per_second is 0.
  double burst = 1;
  // Admitted requests not yet released; 0 = unlimited.
  std::uint32_t max_in_flight = 0;
  // Admitted requests per one-hour / 24-hour window (see ClientLimiter); 0 = no quota.
  std::uint64_t hourly_quota = 0;
  std::uint64_t daily_quota = 0;

  // Throws std::invalid_argument naming `where` and the field, e.g.
  // "limits.sources.warehouse.burst: must be at least 1 when rate_per_second is set".
  void validate(std::string_view where) const;
  friend bool operator==(const LimitPolicy&, const LimitPolicy&) = default;
};

// Configuration of a ClientLimiter.
struct ClientLimiterParams {
  // Applies to a client with no override of its own, calling a source with no override.
  LimitPolicy defaults;
  // By client id: the client's whole budget, whatever source it calls.
  std::map<std::string, LimitPolicy, std::less<>> per_client;
  // By source name: each client's budget on that source.
  std::map<std::string, LimitPolicy, std::less<>> per_source;
  // The retry_after hint given with too_many_in_flight; nothing predicts when a running
  // request ends, so this is a guess, not a promise.
  std::chrono::milliseconds in_flight_retry_after{1000};

  // Throws std::invalid_argument naming the first offending field ("limits.default.burst",
  // "limits.clients.<id>.rate_per_second", "limits.sources.<name>.burst", ...).
  void validate() const;
};

enum class Refusal : std::uint8_t { rate_limited, too_many_in_flight, hourly_quota, daily_quota };

// "rate_limited", "too_many_in_flight", "hourly_quota", "daily_quota".
std::string_view to_string(Refusal r) noexcept;

// Admission control per client: a token bucket, a cap on requests in flight, and hourly and
// daily quotas. Pure logic: no I/O, no clock (every call takes `now`), no threads of its own.
//
// Policy resolution, for a request from `client` to `source`: the client's own override if
// there is one, else the source's override, else the default. The state a policy governs
// (bucket, in-flight count, quota windows, counters) is kept per client and per *scope*:
//  - a client override is one budget for that client across all sources;
//  - a source override is a separate budget per client on that source;
//  - the default is one budget per client, shared by every source without an override.
// So a source's daily quota counts only that source's requests, and a client's own
// override caps everything it does.
//
// Rate: a token bucket kept as a theoretical arrival time (GCRA) in integer clock ticks, so
// "rate 10/s, burst 5" admits exactly 5 at once, refuses the 6th with retry_after = 100 ms,
// and admits one more exactly 100 ms later; no floating-point drift.
//
// Quotas use fixed windows, not sliding ones: a window opens at the first request admitted
// after the previous window ended and lasts exactly one hour (or 24 hours) of steady time;
// at most hourly_quota (daily_quota) requests are admitted within it. A refusal for a quota
// carries retry_after = time until that window ends. Windows are per client, so clients do
// not all reset at the same instant.
//
// Refusals consume nothing (no token, no quota); they only count. When several limits
// refuse at once, the reason reported is the one with the longest retry_after (ties go to
// daily_quota, hourly_quota, too_many_in_flight, rate_limited, in that order), so a client
// that waits retry_after is not refused again by another limit it was not told about, bar
// the in-flight hint.
//
// An admitted request holds a Permit: it counts in flight until the Permit is destroyed or
// reset. Entries with nothing in flight, a full bucket and no open quota window carry no
// information and are dropped by prune(), so memory stays bounded by the clients active in
// the last day (last hour without daily quotas, last burst/rate seconds without quotas).
//
// Thread-safe: one mutex, held for a few hash lookups per call; admit() and Permit release
// do not allocate once a client has been seen. The limiter must outlive its Permits.
class ClientLimiter {
  struct Entry;

 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  static constexpr Clock::duration hour_window = std::chrono::hours(1);
  static constexpr Clock::duration day_window = std::chrono::hours(24);

  // Move-only proof of admission; destroying it (or reset()) releases the in-flight slot.
  class Permit {
   public:
    Permit() noexcept = default;
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { reset(); }

    // Releases now; later calls do nothing.
    void reset() noexcept;
    explicit operator bool() const noexcept { return owner_ != nullptr; }

   private:
    friend class ClientLimiter;
    Permit(ClientLimiter* owner, Entry* entry) noexcept : owner_(owner), entry_(entry) {}
    ClientLimiter* owner_ = nullptr;
    Entry* entry_ = nullptr;
  };

  struct Admission {
    Permit permit;                   // held while the request runs; empty when refused
    std::optional<Refusal> refusal;  // set when refused
    // When refused: how long until a retry can succeed (for too_many_in_flight, the
    // configured hint). Zero when admitted. Round up to whole seconds for Retry-After.
    Clock::duration retry_after{};
    bool ok() const noexcept { return !refusal.has_value(); }
  };

  struct Rejections {
    std::uint64_t rate_limited = 0;
    std::uint64_t too_many_in_flight = 0;
    std::uint64_t hourly_quota = 0;
    std::uint64_t daily_quota = 0;
    std::uint64_t total() const noexcept {
      return rate_limited + too_many_in_flight + hourly_quota + daily_quota;
    }
    std::uint64_t& operator[](Refusal r) noexcept;
    friend bool operator==(const Rejections&, const Rejections&) = default;
  };

  // One tracked (client, scope) for /status. Counters restart if the entry was pruned.
  struct ClientStats {
    std::string client;
    std::string source;  // the source whose override applies; empty for client or default
    std::uint32_t in_flight = 0;
    std::uint64_t admitted = 0;
    Rejections rejected;
    std::uint64_t hourly_used = 0;  // admitted in the open hour window; 0 without a quota
    std::uint64_t daily_used = 0;   // admitted in the open day window; 0 without a quota
  };

  // Limiter-wide counters; admitted and rejected are monotonic (they survive pruning).
  struct Totals {
    std::size_t tracked = 0;  // (client, scope) entries held
    std::uint64_t in_flight = 0;
    std::uint64_t admitted = 0;
    Rejections rejected;
    std::uint64_t pruned = 0;
  };

  // Throws std::invalid_argument (see ClientLimiterParams::validate).
  explicit ClientLimiter(ClientLimiterParams params);
  ClientLimiter(const ClientLimiter&) = delete;
  ClientLimiter& operator=(const ClientLimiter&) = delete;

  // Admits a request from `client` to `source` at `now`, or says why not and for how long.
  [[nodiscard]] Admission admit(std::string_view client, std::string_view source, TimePoint now);

  // Replaces the policies (a config reload). Tracked state stays: a client whose policy
  // changes keeps its bucket, windows and in-flight count, and the new limits apply from
  // its next request. A client that moves to another scope (an override added or removed)
  // starts that scope afresh; its old entry is pruned once idle. Throws like the constructor
  // and then changes nothing.
  void reconfigure(ClientLimiterParams params);

  // Drops idle entries; returns how many. O(entries): call it periodically (every minute).
  std::size_t prune(TimePoint now);

  // Tracked entries sorted by (client, source). O(entries) under the lock: for /status.
  std::vector<ClientStats> snapshot(TimePoint now) const;
  Totals totals() const;

 private:
  // A policy in the units admit() works in.
  struct Resolved {
    Clock::duration interval{0};  // between tokens; 0 = no rate limit
    Clock::duration capacity{0};  // burst × interval
    std::uint32_t max_in_flight = 0;
    std::uint64_t hourly_quota = 0;
    std::uint64_t daily_quota = 0;
  };
  struct Window {
    TimePoint start{};
    std::uint64_t count = 0;  // 0: no window open
    bool open_at(TimePoint now, Clock::duration length) const noexcept {
      return count > 0 && now - start < length;
    }
  };
  struct Entry {
    Resolved policy;  // the one last applied, for prune()
    // The bucket is full when tat <= now; admitting moves it one interval later.
    TimePoint tat = TimePoint::min();
    std::uint32_t in_flight = 0;
    Window hour;
    Window day;
    std::uint64_t admitted = 0;
    Rejections rejected;
  };
  struct Key {
    std::string client;
    std::string source;
  };
  struct KeyView {
    std::string_view client;
    std::string_view source;
  };
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(KeyView k) const noexcept;
    std::size_t operator()(const Key& k) const noexcept {
      return (*this)(KeyView{k.client, k.source});
    }
  };
  struct KeyEq {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return a.client == b.client && a.source == b.source;
    }
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using PolicyMap = std::unordered_map<std::string, Resolved, StringHash, std::equal_to<>>;
  struct Policies {
    Resolved defaults;
    PolicyMap per_client;
    PolicyMap per_source;
    Clock::duration in_flight_retry_after{0};
  };

  static Policies resolve_all(const ClientLimiterParams& params);
  static bool idle(const Entry& e, TimePoint now) noexcept;
  void release(Entry* e) noexcept;

  mutable std::mutex mutex_;
  Policies policies_;
  std::unordered_map<Key, Entry, KeyHash, KeyEq> entries_;
  Totals totals_;
};

}  // namespace sluice::session
