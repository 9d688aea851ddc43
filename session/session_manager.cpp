#include "session/session_manager.hpp"

#include <map>

namespace sluice::session {

using json = nlohmann::json;

SessionManager::SessionManager(asio::any_io_executor executor, SessionManagerParams params,
                               SessionTokens& tokens)
    : tokens_(tokens),
      limiter_(std::move(params.limits)),
      sweep_interval_(params.sweep_interval),
      timer_(std::move(executor)),
      registry_(params.sessions) {}

SessionManager::~SessionManager() = default;

void SessionManager::start() {
  running_ = true;
  arm();
}

void SessionManager::stop() {
  asio::post(timer_.get_executor(), [this] {
    running_ = false;
    timer_.cancel();
  });
}

void SessionManager::arm() {
  timer_.expires_after(sweep_interval_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    sweep();
    arm();
  });
}

void SessionManager::sweep() {
  std::vector<std::string> expired;
  {
    std::lock_guard lock(mutex_);
    expired = registry_.sweep(Clock::now());
  }
  end(expired);
  limiter_.prune(Clock::now());
}

bool SessionManager::open(const std::string& id, SessionKind kind, const std::string& client,
                          Closer closer) {
  SessionRegistry::OpenResult r;
  {
    std::lock_guard lock(mutex_);
    r = registry_.open(id, kind, client, Clock::now());
    if (r.ok() && closer) closers_[id] = std::move(closer);
  }
  end(r.expired);
  end(r.evicted);
  return r.ok() || r.status == SessionRegistry::OpenStatus::duplicate_id;
}

void SessionManager::touch(const std::string& id, SessionKind kind, const std::string& client) {
  bool known = false;
  {
    std::lock_guard lock(mutex_);
    known = registry_.touch(id, Clock::now());
  }
  if (!known) open(id, kind, client);
}

void SessionManager::close(const std::string& id) {
  std::lock_guard lock(mutex_);
  registry_.close(id);
  closers_.erase(id);
}

void SessionManager::end(const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    Closer closer;
    {
      std::lock_guard lock(mutex_);
      if (auto it = closers_.find(id); it != closers_.end()) {
        closer = std::move(it->second);
        closers_.erase(it);
      }
    }
    if (closer) {
      closer();
    } else {
      tokens_.end(id);  // an HTTP session: its id stops working (404), as after DELETE
    }
  }
}

ClientLimiter::Admission SessionManager::admit(std::string_view client, std::string_view source) {
  return limiter_.admit(client, source, Clock::now());
}

json SessionManager::status() const {
  SessionRegistry::Stats stats;
  std::vector<SessionRegistry::ClientSessions> per_client;
  {
    std::lock_guard lock(mutex_);
    stats = registry_.stats();
    per_client = registry_.snapshot();
  }
  json by_kind = json::object();
  for (std::size_t k = 0; k < session_kind_count; ++k) {
    by_kind[std::string(to_string(static_cast<SessionKind>(k)))] = stats.open_by_kind[k];
  }
  json sessions = {{"open", stats.open},       {"byKind", by_kind},
                   {"opened", stats.opened},   {"closed", stats.closed},
                   {"expired", stats.expired}, {"evicted", stats.evicted},
                   {"refused", stats.refused}};

  // One row per client: its sessions, and per limit scope its requests.
  std::map<std::string, json> clients;
  for (const auto& c : per_client) {
    clients[c.client] = {{"client", c.client}, {"sessions", c.sessions}, {"limits", json::array()}};
  }
  for (const auto& s : limiter_.snapshot(Clock::now())) {
    auto& row = clients[s.client];
    if (row.is_null()) row = {{"client", s.client}, {"sessions", 0}, {"limits", json::array()}};
    row["limits"].push_back({{"source", s.source},
                             {"inFlight", s.in_flight},
                             {"admitted", s.admitted},
                             {"rejected",
                              {{"rateLimited", s.rejected.rate_limited},
                               {"tooManyInFlight", s.rejected.too_many_in_flight},
                               {"hourlyQuota", s.rejected.hourly_quota},
                               {"dailyQuota", s.rejected.daily_quota}}},
                             {"hourlyUsed", s.hourly_used},
                             {"dailyUsed", s.daily_used}});
  }
  json list = json::array();
  for (auto& [name, row] : clients) list.push_back(std::move(row));
  const auto totals = limiter_.totals();
  json limits = {{"inFlight", totals.in_flight},
                 {"admitted", totals.admitted},
                 {"rejected", totals.rejected.total()}};
  return {{"sessions", std::move(sessions)}, {"clients", std::move(list)}, {"requests", limits}};
}

}  // namespace sluice::session
