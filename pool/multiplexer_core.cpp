#include "pool/multiplexer_core.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>

namespace sluice::pool {

using Kind = MultiplexerCore::Action::Kind;

void MultiplexerParams::validate() const {
  auto bad = [](const char* field, const char* why) {
    throw std::invalid_argument(std::string("multiplexer.") + field + ": " + why);
  };
  if (global_cap == 0) bad("global_cap", "must be at least 1");
  if (quantum == 0) bad("quantum", "must be at least 1");
  if (batch_depth == 0 || batch_depth > 32) bad("batch_depth", "must be between 1 and 32");
}

MultiplexerCore::MultiplexerCore(MultiplexerParams params) : params_(params) {
  params_.validate();
}

void MultiplexerCore::enqueue(std::string_view client, RequestId id, Cost cost, TimePoint deadline,
                              TimePoint now, Actions& out, BatchKey key) {
  if (cost == 0) throw std::invalid_argument("multiplexer: request cost must be at least 1");
  if (requests_.contains(id)) {
    throw std::invalid_argument("multiplexer: request id " + std::to_string(id) +
                                " is already queued or in flight");
  }
  const ClientIdx c = intern(client);
  Client& cl = clients_[c];
  cl.queue.push_back({id, cost, key, now, deadlines_.emplace(deadline, id)});
  requests_.emplace(id, Request{c, true, std::prev(cl.queue.end())});
  place(c);
  expire_due(now, out);
  pump(now, out);
}

bool MultiplexerCore::cancel(RequestId id, TimePoint now, Actions& out) {
  // Cancellation is honoured before expiry: a client that gave up wants no timeout answer.
  bool removed = false;
  if (auto r = requests_.find(id); r != requests_.end() && r->second.queued) {
    const ClientIdx c = r->second.client;
    remove_queued(r);
    ++clients_[c].cancelled_total;
    ++totals_.cancelled_total;
    place(c);
    removed = true;
  }
  expire_due(now, out);
  pump(now, out);
  return removed;
}

bool MultiplexerCore::done(RequestId id, TimePoint now, Actions& out) {
  bool known = false;
  if (auto r = requests_.find(id); r != requests_.end() && !r->second.queued) {
    const ClientIdx c = r->second.client;
    if (r->second.rider) {
      --riders_;
      --clients_[c].riders;
    } else {
      --in_flight_;
      --clients_[c].in_flight;
    }
    requests_.erase(r);
    place(c);
    known = true;
  }
  expire_due(now, out);
  pump(now, out);
  return known;
}

void MultiplexerCore::tick(TimePoint now, Actions& out) {
  expire_due(now, out);
  pump(now, out);
}

std::optional<MultiplexerCore::TimePoint> MultiplexerCore::next_wake() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

MultiplexerStats MultiplexerCore::snapshot(TimePoint now) const {
  MultiplexerStats s = totals_;
  s.queued = deadlines_.size();
  s.in_flight = in_flight_ + riders_;
  s.clients.reserve(client_index_.size());
  for (const auto& [name, c] : client_index_) {
    const Client& cl = clients_[c];
    MultiplexerStats::Client& out = s.clients.emplace_back();
    out.name = name;
    out.queued = cl.queue.size();
    out.in_flight = cl.in_flight + cl.riders;
    out.admitted_total = cl.admitted_total;
    out.expired_total = cl.expired_total;
    out.cancelled_total = cl.cancelled_total;
    if (!cl.queue.empty()) out.oldest_wait = now - cl.queue.front().enqueued;
    out.max_wait = cl.max_wait;
    out.total_wait = cl.total_wait;
  }
  std::sort(s.clients.begin(), s.clients.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return s;
}

MultiplexerCore::ClientIdx MultiplexerCore::intern(std::string_view name) {
  if (auto it = client_index_.find(name); it != client_index_.end()) return it->second;
  ClientIdx c;
  if (!free_clients_.empty()) {
    c = free_clients_.back();
    free_clients_.pop_back();
  } else {
    if (clients_.size() >= std::numeric_limits<ClientIdx>::max()) {
      throw std::length_error("multiplexer: too many clients");
    }
    c = static_cast<ClientIdx>(clients_.size());
    clients_.emplace_back();
  }
  clients_[c].name = std::string(name);
  client_index_.emplace(clients_[c].name, c);
  return c;
}

void MultiplexerCore::place(ClientIdx c) {
  Client& cl = clients_[c];
  const bool below_cap = params_.per_client_cap == 0 || cl.in_flight < params_.per_client_cap;
  const bool eligible = !cl.queue.empty() && below_cap;
  if (eligible && !cl.in_round) {
    cl.round_entry = round_.insert(round_.end(), c);
    cl.in_round = true;
  } else if (!eligible && cl.in_round) {
    if (cl.round_entry == round_.begin()) turn_started_ = false;
    round_.erase(cl.round_entry);
    cl.in_round = false;
    cl.deficit = 0;
  }

  const bool idle = cl.queue.empty() && cl.in_flight == 0 && cl.riders == 0;
  if (idle && !cl.idle) {
    cl.idle_entry = idle_clients_.insert(idle_clients_.end(), c);
    cl.idle = true;
    if (idle_clients_.size() > params_.max_idle_clients) {
      // `cl` may be the one forgotten; it is not used below.
      const ClientIdx victim = idle_clients_.front();
      idle_clients_.pop_front();
      client_index_.erase(clients_[victim].name);
      clients_[victim] = Client{};
      free_clients_.push_back(victim);
    }
  } else if (!idle && cl.idle) {
    idle_clients_.erase(cl.idle_entry);
    cl.idle = false;
  }
}

void MultiplexerCore::remove_queued(std::unordered_map<RequestId, Request>::iterator r) {
  Client& cl = clients_[r->second.client];
  deadlines_.erase(r->second.position->deadline_entry);
  cl.queue.erase(r->second.position);
  requests_.erase(r);
}

void MultiplexerCore::expire_due(TimePoint now, Actions& out) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const RequestId id = deadlines_.begin()->second;
    auto r = requests_.find(id);
    const ClientIdx c = r->second.client;
    out.push_back({Kind::expire, id});
    remove_queued(r);
    ++clients_[c].expired_total;
    ++totals_.expired_total;
    place(c);
  }
}

void MultiplexerCore::pump(TimePoint now, Actions& out) {
  // Turns in a row that admitted nothing. Membership of the round only changes on an
  // admission, so once every client in it has had such a turn, none can afford its head.
  std::size_t futile = 0;
  while (in_flight_ < params_.global_cap && !round_.empty()) {
    const ClientIdx c = round_.front();
    Client& cl = clients_[c];
    if (!turn_started_) {
      cl.deficit += params_.quantum;
      turn_started_ = true;
    }
    if (cl.queue.front().cost <= cl.deficit) {
      const Queued head = cl.queue.front();
      const TimePoint deadline = head.deadline_entry->first;
      admit_head(c, now, out);
      if (head.key != 0 && params_.batch_depth > 1) {
        add_riders(c, head.id, head.key, deadline, now, out);
      }
      futile = 0;
      continue;
    }
    round_.splice(round_.end(), round_, round_.begin());
    turn_started_ = false;
    if (++futile == round_.size()) {
      skip_futile_rounds();
      futile = 0;
    }
  }
}

void MultiplexerCore::admit_head(ClientIdx c, TimePoint now, Actions& out, RequestId leader) {
  Client& cl = clients_[c];
  const Queued head = cl.queue.front();
  deadlines_.erase(head.deadline_entry);
  cl.queue.pop_front();
  Request& r = requests_.at(head.id);
  r.queued = false;
  if (leader == 0) {
    cl.deficit -= head.cost;
    ++cl.in_flight;
    ++in_flight_;
  } else {
    r.rider = true;
    ++cl.riders;
    ++riders_;
    ++totals_.riders_total;
  }

  const auto wait = now - head.enqueued;
  ++cl.admitted_total;
  cl.total_wait += wait;
  cl.max_wait = std::max(cl.max_wait, wait);
  ++totals_.admitted_total;
  totals_.total_wait += wait;
  totals_.max_wait = std::max(totals_.max_wait, wait);

  out.push_back({Kind::admit, head.id, leader});
  place(c);
}

// The riders come from the heads of the clients next in the round, in round order, one per
// client per pass, starting with the leader's: a batch takes what would have been admitted
// soonest and keeps each client's order; a head with another key stays where it is. The
// per-client cap does not apply: it limits the connections a client holds, and a rider holds
// none. A request due before the leader does not ride: the leader checks the connection out by
// its own deadline, and no rider may wait for that past its own. The look-ahead is bounded, so
// an admission costs O(batch_depth), however many clients wait.
void MultiplexerCore::add_riders(ClientIdx first, RequestId leader, BatchKey key, TimePoint by,
                                 TimePoint now, Actions& out) {
  std::size_t room = params_.batch_depth - 1;
  // The leader's client first (at its cap it has left the round), then the round.
  std::vector<ClientIdx> next{first};
  const std::size_t look = 4 * params_.batch_depth;
  for (auto it = round_.begin(); it != round_.end() && next.size() < look; ++it) {
    if (*it != first) next.push_back(*it);
  }
  bool took = true;
  while (room > 0 && took) {
    took = false;
    for (const ClientIdx c : next) {
      if (room == 0) break;
      const Client& cl = clients_[c];
      if (cl.queue.empty() || cl.queue.front().key != key) continue;
      if (cl.queue.front().deadline_entry->first < by) continue;
      admit_head(c, now, out, leader);
      --room;
      took = true;
    }
  }
}

// Every client in the round has just had a turn in which its head did not fit. Running
// more rounds one by one would only add `quantum` to each deficit until the first head
// fits, so add all but the last of those rounds at once: the next round then admits,
// exactly as it would have, and a cost far above the quantum cannot make an event spin.
void MultiplexerCore::skip_futile_rounds() {
  const std::uint64_t q = params_.quantum;
  std::uint64_t rounds = std::numeric_limits<std::uint64_t>::max();
  for (const ClientIdx c : round_) {
    const Client& cl = clients_[c];
    const std::uint64_t missing = cl.queue.front().cost - cl.deficit;
    rounds = std::min(rounds, (missing + q - 1) / q);
  }
  for (const ClientIdx c : round_) clients_[c].deficit += (rounds - 1) * q;
}

}  // namespace sluice::pool
