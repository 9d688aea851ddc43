#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::session {

enum class SessionKind : std::uint8_t { http, websocket, sse, stdio };
inline constexpr std::size_t session_kind_count = 4;

// "http", "websocket", "sse", "stdio".
std::string_view to_string(SessionKind k) noexcept;

// Configuration of a SessionRegistry.
struct SessionRegistryParams {
  // A session not seen (opened or touched) for this long is ended by sweep().
  std::chrono::milliseconds idle_timeout{1'800'000};
  // Sessions one client may hold; opening one more evicts its least recently seen.
  // 0 = unlimited.
  std::size_t max_sessions_per_client = 64;
  // Sessions in all; once reached (after expiring idle ones) new sessions are refused,
  // except a client at its own cap, which replaces one of its own. 0 = unlimited.
  std::size_t max_sessions = 10'000;

  // Throws std::invalid_argument naming the field ("sessions.idle_timeout: ...").
  void validate() const;
};

// Which sessions exist, whose they are, and when each was last seen: the bookkeeping part
// of the session manager. Pure logic: no I/O, no clock (every call takes `now`). It never
// ends a session itself; it returns the ids the caller must end (close the stream, cancel
// what runs for it), and forgets them at once.
//
// Cost: touch() is O(log n) (O(1) amortised when time only moves forward); sweep() is
// O(k log n) for k expired sessions and O(1) when none is; open() and close() are O(log n).
// Sessions are ordered by last seen in one index overall and one per client, so nothing
// scans all sessions except snapshot().
//
// Not thread-safe; the caller serialises.
class SessionRegistry {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  struct Session {
    std::string id;
    SessionKind kind = SessionKind::http;
    std::string client;
    TimePoint created{};
    TimePoint last_seen{};
  };

  enum class OpenStatus : std::uint8_t {
    opened,
    full,          // max_sessions reached; nothing was registered or evicted
    duplicate_id,  // a live session already has this id; it is left alone
  };
  struct OpenResult {
    OpenStatus status = OpenStatus::opened;
    // This client's sessions ended to make room under max_sessions_per_client, least
    // recently seen first. Only when opened.
    std::vector<std::string> evicted;
    // Idle sessions of any client that open() expired first (it begins with sweep(now)).
    // Whatever the status, the caller must end these.
    std::vector<std::string> expired;
    bool ok() const noexcept { return status == OpenStatus::opened; }
  };

  struct Stats {
    std::size_t open = 0;
    std::array<std::size_t, session_kind_count> open_by_kind{};  // indexed by SessionKind
    std::size_t clients = 0;  // clients with at least one session
    // Counters since construction.
    std::uint64_t opened = 0;
    std::uint64_t closed = 0;   // by close()
    std::uint64_t expired = 0;  // by sweep(), including the one open() does
    std::uint64_t evicted = 0;  // by the per-client cap
    std::uint64_t refused = 0;  // open() answered full
  };

  struct ClientSessions {
    std::string client;
    std::size_t sessions = 0;
  };

  // Throws std::invalid_argument (see SessionRegistryParams::validate).
  explicit SessionRegistry(SessionRegistryParams params);
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // Registers a session at `now`, after expiring idle sessions. If `client` already holds
  // max_sessions_per_client sessions, its least recently seen ones (ties: the earliest
  // opened) are evicted to make room; a per-client eviction never counts against
  // max_sessions, so it always succeeds.
  [[nodiscard]] OpenResult open(std::string_view id, SessionKind kind, std::string_view client,
                                TimePoint now);
  // Marks the session seen at `now` (never moves last_seen backwards). False if unknown.
  bool touch(std::string_view id, TimePoint now);
  // Forgets the session (the caller ended it). False if unknown.
  bool close(std::string_view id);
  // Forgets the sessions idle for idle_timeout or longer and returns their ids, least
  // recently seen first.
  [[nodiscard]] std::vector<std::string> sweep(TimePoint now);
  // When sweep() next has something to do; nullopt when no session is open.
  std::optional<TimePoint> next_expiry() const;

  // The session, or nullptr. The pointer is valid until the next non-const call.
  const Session* find(std::string_view id) const;
  std::size_t size() const noexcept { return sessions_.size(); }
  Stats stats() const;
  // Sessions per client, sorted by client. O(clients): for /status.
  std::vector<ClientSessions> snapshot() const;
  const SessionRegistryParams& params() const noexcept { return params_; }

 private:
  struct Record;
  // Last seen, then the open sequence number: unique, and ties go to the earlier open.
  struct Order {
    TimePoint last_seen;
    std::uint64_t seq;
    friend auto operator<=>(const Order&, const Order&) = default;
  };
  using Index = std::map<Order, Record*>;
  struct Record {
    Session session;
    Index::iterator global_pos;
    Index::iterator client_pos;
    Index* client_index = nullptr;  // the per-client index, owned by clients_
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  // Forgets a session; returns its id.
  std::string remove(Record& r);

  SessionRegistryParams params_;
  StringMap<Record> sessions_;
  StringMap<Index> clients_;  // never holds an empty index
  Index by_last_seen_;
  std::uint64_t next_seq_ = 0;
  Stats counters_;
};

}  // namespace sluice::session
