#include "pool/pool_core.hpp"

#include <algorithm>
#include <cmath>

namespace sluice::pool {

using Kind = PoolCore::Action::Kind;

PoolCore::PoolCore(PoolParams params, std::uint64_t seed) : params_(params), rng_(seed) {
  params_.validate();
}

void PoolCore::start(TimePoint now, Actions& out) {
  ensure_capacity(now, out);
}

void PoolCore::acquire(WaiterId w, TimePoint deadline, std::optional<AffinityKey> prefer,
                       TimePoint now, Actions& out) {
  if (closing_) {
    out.push_back({Kind::fail, 0, w, errc::pool_closed});
    return;
  }
  if (deadline <= now) {
    ++counters_.acquire_timeouts;
    out.push_back({Kind::fail, 0, w, errc::acquire_timeout});
    return;
  }
  waiters_.push_back({w, deadline, std::nullopt, deadlines_.emplace(deadline, w), prefer});
  waiter_index_[w] = std::prev(waiters_.end());
  serve(now, out);
}

bool PoolCore::cancel_waiter(WaiterId w, TimePoint now, Actions& out) {
  auto it = waiter_index_.find(w);
  if (it == waiter_index_.end()) return false;
  erase_waiter(it->second);
  // A connection being validated for it stays busy until validation_done.
  ensure_capacity(now, out);
  return true;
}

void PoolCore::release(ConnId c, bool reusable, AffinityKey affinity, TimePoint now, Actions& out) {
  auto it = slots_.find(c);
  if (it != slots_.end() && it->second.state == State::busy) it->second.affinity = affinity;
  release(c, reusable, now, out);
}

void PoolCore::release(ConnId c, bool reusable, TimePoint now, Actions& out) {
  auto it = slots_.find(c);
  if (it == slots_.end() || it->second.state != State::busy) return;
  if (!reusable || closing_ || too_old(it->second, now)) {
    close_slot(c, out);
  } else {
    it->second.state = State::idle;
    it->second.idle_since = now;
    idle_.push_back(c);
  }
  serve(now, out);
}

void PoolCore::connect_succeeded(ConnId c, TimePoint now, Actions& out) {
  auto it = slots_.find(c);
  if (it == slots_.end() || it->second.state != State::connecting) return;
  ++counters_.created;
  consecutive_failures_ = 0;
  connect_not_before_ = {};
  if (closing_) {
    close_slot(c, out);
    return;
  }
  it->second = {State::idle, now, now, {}};
  idle_.push_back(c);
  serve(now, out);
}

void PoolCore::connect_failed(ConnId c, TimePoint now, Actions& out) {
  auto it = slots_.find(c);
  if (it == slots_.end() || it->second.state != State::connecting) return;
  ++counters_.failed_connects;
  ++consecutive_failures_;
  connect_not_before_ = now + backoff_delay();
  if (closing_) {
    slots_.erase(it);
    return;
  }
  it->second.state = State::backoff;
  it->second.retry_at = connect_not_before_;
  ensure_capacity(now, out);
}

void PoolCore::validation_done(ConnId c, bool ok, TimePoint now, Actions& out) {
  auto it = slots_.find(c);
  if (it == slots_.end() || it->second.state != State::validating) return;
  auto w = waiters_.end();
  if (auto v = validating_for_.find(c); v != validating_for_.end()) {
    if (auto found = waiter_index_.find(v->second); found != waiter_index_.end()) {
      w = found->second;
    }
    validating_for_.erase(v);
  }
  if (!ok) {
    ++counters_.failed_validations;
    if (w != waiters_.end()) {
      w->validating.reset();
      --assigned_;
    }
    close_slot(c, out);
  } else if (closing_) {
    close_slot(c, out);
  } else if (w != waiters_.end()) {
    it->second.state = State::busy;
    out.push_back({Kind::grant, c, w->id, {}});
    erase_waiter(w);
  } else {
    // Its waiter gave up meanwhile; the connection is proven good, keep it.
    it->second.state = State::idle;
    it->second.idle_since = now;
    idle_.push_back(c);
  }
  serve(now, out);
}

void PoolCore::tick(TimePoint now, Actions& out) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const WaiterId id = deadlines_.begin()->second;
    ++counters_.acquire_timeouts;
    out.push_back({Kind::fail, 0, id, errc::acquire_timeout});
    erase_waiter(waiter_index_.at(id));
  }
  // Oldest-used first, so that the pool shrinks from the cold end.
  for (std::size_t i = 0; i < idle_.size();) {
    const ConnId c = idle_[i];
    const Slot& s = slots_.at(c);
    const bool expired_idle =
        now - s.idle_since >= params_.idle_timeout && slots_.size() > params_.min_size;
    if (too_old(s, now) || expired_idle) {
      close_slot(c, out);  // removes idle_[i]
    } else {
      ++i;
    }
  }
  for (auto& [id, s] : slots_) {
    if (s.state == State::backoff && s.retry_at <= now && !closing_) {
      s.state = State::connecting;
      out.push_back({Kind::connect, id, 0, {}});
    }
  }
  serve(now, out);
}

void PoolCore::close(TimePoint now, Actions& out) {
  (void)now;
  closing_ = true;
  for (const Waiter& w : waiters_) out.push_back({Kind::fail, 0, w.id, errc::pool_closed});
  waiters_.clear();
  waiter_index_.clear();
  deadlines_.clear();
  assigned_ = 0;
  while (!idle_.empty()) close_slot(idle_.front(), out);
  for (auto it = slots_.begin(); it != slots_.end();) {
    it = it->second.state == State::backoff ? slots_.erase(it) : std::next(it);
  }
}

std::optional<PoolCore::TimePoint> PoolCore::next_wake() const {
  std::optional<TimePoint> best;
  auto consider = [&](TimePoint t) {
    if (!best || t < *best) best = t;
  };
  if (!deadlines_.empty()) consider(deadlines_.begin()->first);
  for (const auto& [id, s] : slots_) {
    if (s.state == State::backoff) consider(s.retry_at);
    if (s.state == State::idle) {
      if (slots_.size() > params_.min_size) consider(s.idle_since + params_.idle_timeout);
      if (params_.max_lifetime.count() > 0) consider(s.created + params_.max_lifetime);
    }
  }
  return best;
}

PoolStats PoolCore::stats() const {
  PoolStats s = counters_;
  for (const auto& [id, slot] : slots_) {
    switch (slot.state) {
      case State::idle:
        ++s.idle;
        break;
      case State::busy:
      case State::validating:
        ++s.busy;
        break;
      case State::connecting:
      case State::backoff:
        ++s.connecting;
        break;
    }
  }
  s.total = slots_.size();
  s.waiters = waiters_.size();
  return s;
}

void PoolCore::serve(TimePoint now, Actions& out) {
  while (!idle_.empty()) {
    auto w = first_unassigned();
    if (w == waiters_.end()) break;
    const ConnId c = take_idle(w->prefer);
    Slot& s = slots_.at(c);
    if (too_old(s, now)) {
      close_slot(c, out);
      continue;
    }
    if (now - s.idle_since >= params_.validate_after_idle) {
      s.state = State::validating;
      w->validating = c;
      ++assigned_;
      validating_for_[c] = w->id;
      out.push_back({Kind::validate, c, w->id, {}});
      continue;
    }
    s.state = State::busy;
    out.push_back({Kind::grant, c, w->id, {}});
    erase_waiter(w);
  }
  ensure_capacity(now, out);
}

void PoolCore::ensure_capacity(TimePoint now, Actions& out) {
  if (closing_) return;
  const std::size_t unassigned = waiters_.size() - assigned_;
  std::size_t open = 0;
  std::size_t pending = 0;  // connecting or in backoff
  for (const auto& [id, s] : slots_) {
    (s.state == State::connecting || s.state == State::backoff ? pending : open) += 1;
  }
  const std::size_t wanted =
      std::min(params_.max_size, std::max(params_.min_size, open + unassigned));
  // Not yet needed: drop slots that are only waiting out a backoff.
  for (auto it = slots_.begin(); it != slots_.end() && open + pending > wanted;) {
    if (it->second.state == State::backoff) {
      it = slots_.erase(it);
      --pending;
    } else {
      ++it;
    }
  }
  while (open + pending < wanted) {
    const ConnId c = next_conn_++;
    if (now < connect_not_before_) {
      slots_.emplace(c, Slot{State::backoff, {}, {}, connect_not_before_});
    } else {
      slots_.emplace(c, Slot{State::connecting, {}, {}, {}});
      out.push_back({Kind::connect, c, 0, {}});
    }
    ++pending;
  }
}

void PoolCore::close_slot(ConnId c, Actions& out) {
  remove_idle(c);
  slots_.erase(c);
  ++counters_.closed;
  out.push_back({Kind::close, c, 0, {}});
}

void PoolCore::remove_idle(ConnId c) {
  auto it = std::find(idle_.begin(), idle_.end(), c);
  if (it != idle_.end()) idle_.erase(it);
}

PoolCore::ConnId PoolCore::take_idle(std::optional<AffinityKey> prefer) {
  auto pick = std::prev(idle_.end());
  if (prefer) {
    auto match = std::find_if(idle_.rbegin(), idle_.rend(),
                              [&](ConnId c) { return slots_.at(c).affinity == *prefer; });
    pick = match != idle_.rend() ? std::prev(match.base()) : idle_.begin();
  }
  const ConnId c = *pick;
  idle_.erase(pick);
  return c;
}

bool PoolCore::too_old(const Slot& s, TimePoint now) const {
  return params_.max_lifetime.count() > 0 && now - s.created >= params_.max_lifetime;
}

std::list<PoolCore::Waiter>::iterator PoolCore::first_unassigned() {
  return std::find_if(waiters_.begin(), waiters_.end(),
                      [](const Waiter& w) { return !w.validating; });
}

std::list<PoolCore::Waiter>::iterator PoolCore::erase_waiter(std::list<Waiter>::iterator w) {
  if (w->validating) --assigned_;
  deadlines_.erase(w->deadline_entry);
  waiter_index_.erase(w->id);
  return waiters_.erase(w);
}

std::chrono::milliseconds PoolCore::backoff_delay() {
  const double base = static_cast<double>(params_.backoff_initial.count()) *
                      std::pow(2.0, std::min<std::uint32_t>(consecutive_failures_ - 1, 30));
  const double capped = std::min(base, static_cast<double>(params_.backoff_max.count()));
  std::uniform_real_distribution<double> jitter(-params_.backoff_jitter, params_.backoff_jitter);
  const double delay = capped * (1.0 + jitter(rng_));
  return std::chrono::milliseconds(std::max<std::int64_t>(1, std::llround(delay)));
}

}  // namespace sluice::pool
