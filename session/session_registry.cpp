#include "session/session_registry.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace sluice::session {

std::string_view to_string(SessionKind k) noexcept {
  switch (k) {
    case SessionKind::http:
      return "http";
    case SessionKind::websocket:
      return "websocket";
    case SessionKind::sse:
      return "sse";
    case SessionKind::stdio:
      return "stdio";
  }
  return "unknown";
}

void SessionRegistryParams::validate() const {
  if (idle_timeout.count() <= 0) {
    throw std::invalid_argument("sessions.idle_timeout: must be positive");
  }
}

SessionRegistry::SessionRegistry(SessionRegistryParams params) : params_(params) {
  params_.validate();
}

SessionRegistry::OpenResult SessionRegistry::open(std::string_view id, SessionKind kind,
                                                  std::string_view client, TimePoint now) {
  OpenResult result;
  result.expired = sweep(now);
  if (sessions_.contains(id)) {
    result.status = OpenStatus::duplicate_id;
    return result;
  }
  auto owner = clients_.find(client);
  std::size_t to_evict = 0;
  if (params_.max_sessions_per_client > 0 && owner != clients_.end() &&
      owner->second.size() >= params_.max_sessions_per_client) {
    to_evict = owner->second.size() - params_.max_sessions_per_client + 1;
  }
  if (params_.max_sessions > 0 && sessions_.size() - to_evict >= params_.max_sessions) {
    ++counters_.refused;
    result.status = OpenStatus::full;
    return result;
  }
  for (; to_evict > 0; --to_evict) {
    result.evicted.push_back(remove(*owner->second.begin()->second));
    ++counters_.evicted;
  }
  // remove() drops an emptied index (a cap of 1 empties it), so look it up again.
  owner = clients_.find(client);
  if (owner == clients_.end()) owner = clients_.emplace(std::string(client), Index{}).first;

  Record& r = sessions_.emplace(std::string(id), Record{}).first->second;
  r.session = {std::string(id), kind, std::string(client), now, now};
  const Order order{now, next_seq_++};
  r.global_pos = by_last_seen_.emplace(order, &r).first;
  r.client_index = &owner->second;
  r.client_pos = owner->second.emplace(order, &r).first;
  ++counters_.open_by_kind[static_cast<std::size_t>(kind)];
  ++counters_.opened;
  return result;
}

bool SessionRegistry::touch(std::string_view id, TimePoint now) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  Record& r = it->second;
  if (now <= r.session.last_seen) return true;
  r.session.last_seen = now;
  // Re-key in place: no allocation, and the end() hint makes it O(1) when time moves forward.
  auto move_to = [now](Index& index, Index::iterator pos) {
    auto node = index.extract(pos);
    node.key().last_seen = now;
    return index.insert(index.end(), std::move(node));
  };
  r.global_pos = move_to(by_last_seen_, r.global_pos);
  r.client_pos = move_to(*r.client_index, r.client_pos);
  return true;
}

bool SessionRegistry::close(std::string_view id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  remove(it->second);
  ++counters_.closed;
  return true;
}

std::vector<std::string> SessionRegistry::sweep(TimePoint now) {
  std::vector<std::string> ended;
  while (!by_last_seen_.empty() &&
         now - by_last_seen_.begin()->first.last_seen >= params_.idle_timeout) {
    ended.push_back(remove(*by_last_seen_.begin()->second));
    ++counters_.expired;
  }
  return ended;
}

std::optional<SessionRegistry::TimePoint> SessionRegistry::next_expiry() const {
  if (by_last_seen_.empty()) return std::nullopt;
  return by_last_seen_.begin()->first.last_seen + params_.idle_timeout;
}

const SessionRegistry::Session* SessionRegistry::find(std::string_view id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second.session;
}

SessionRegistry::Stats SessionRegistry::stats() const {
  Stats s = counters_;
  s.open = sessions_.size();
  s.clients = clients_.size();
  return s;
}

std::vector<SessionRegistry::ClientSessions> SessionRegistry::snapshot() const {
  std::vector<ClientSessions> out;
  out.reserve(clients_.size());
  for (const auto& [client, index] : clients_) out.push_back({client, index.size()});
  std::sort(out.begin(), out.end(),
            [](const ClientSessions& a, const ClientSessions& b) { return a.client < b.client; });
  return out;
}

std::string SessionRegistry::remove(Record& r) {
  std::string id = std::move(r.session.id);
  by_last_seen_.erase(r.global_pos);
  r.client_index->erase(r.client_pos);
  if (r.client_index->empty()) clients_.erase(r.session.client);
  --counters_.open_by_kind[static_cast<std::size_t>(r.session.kind)];
  sessions_.erase(id);
  return id;
}

}  // namespace sluice::session
