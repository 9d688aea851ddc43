#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pool/asio.hpp"
#include "session/client_limits.hpp"
#include "session/session_registry.hpp"
#include "session/session_tokens.hpp"

namespace sluice::session {

struct SessionManagerParams {
  SessionRegistryParams sessions;
  ClientLimiterParams limits;
  // How often idle sessions are swept and idle limiter entries pruned.
  std::chrono::milliseconds sweep_interval{5'000};
};

// Who is calling, and what they may do: the sessions of every transport (legacy HTTP
// sessions, WebSocket and HTTP+SSE connections, the stdio process) with idle expiry and a
// per-client cap, and the per-client limits (rate, in flight, quotas) every tool call is
// admitted through. Ending a session (idle, or evicted by the same client's newer ones) marks
// an HTTP session id ended, so later requests with it get 404, and closes a connection
// through the closer its transport registered.
//
// Thread-safe. A timer on `executor` sweeps idle sessions between start() and stop().
class SessionManager {
 public:
  using Clock = std::chrono::steady_clock;
  // Ends a connection-backed session; called from the sweep timer's executor.
  using Closer = std::function<void()>;

  SessionManager(asio::any_io_executor executor, SessionManagerParams params,
                 SessionTokens& tokens);
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  void start();
  void stop();

  // A new session. False when the gateway is at its session limit: the caller refuses it.
  bool open(const std::string& id, SessionKind kind, const std::string& client, Closer closer = {});
  // A request arrived in session `id`. HTTP session ids are valid on every replica, so one
  // this process has not seen yet is registered here rather than refused.
  void touch(const std::string& id, SessionKind kind, const std::string& client);
  // The session ended by its own side (DELETE, connection closed).
  void close(const std::string& id);

  // Admits one tool call of `client` on `source` ("" for the default), or says why not.
  // Hold the returned permit until the call is done.
  ClientLimiter::Admission admit(std::string_view client, std::string_view source);

  // Sessions and clients as JSON, for /status.
  nlohmann::json status() const;

  // One sweep now (the timer calls this too).
  void sweep();

 private:
  void end(const std::vector<std::string>& ids);
  void arm();

  SessionTokens& tokens_;
  ClientLimiter limiter_;
  std::chrono::milliseconds sweep_interval_;
  asio::steady_timer timer_;
  bool running_ = false;

  mutable std::mutex mutex_;  // registry_ and closers_
  SessionRegistry registry_;
  std::unordered_map<std::string, Closer> closers_;
};

}  // namespace sluice::session
