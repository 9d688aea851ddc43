#include "session/client_limits.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace sluice::session {

namespace {

// Longest bucket (burst / rate) accepted: keeps every time point far from overflow.
constexpr double max_bucket_seconds = 1e8;

}  // namespace

void LimitPolicy::validate(std::string_view where) const {
  auto bad = [where](const char* field, const char* why) {
    throw std::invalid_argument(std::string(where) + "." + field + ": " + why);
  };
  if (!(std::isfinite(rate_per_second) && rate_per_second >= 0)) {
    bad("rate_per_second", "must be a finite number, at least 0 (0 = unlimited)");
  }
  if (rate_per_second > 0) {
    if (!(std::isfinite(burst) && burst >= 1)) {
      bad("burst", "must be at least 1 when rate_per_second is set");
    }
    if (burst / rate_per_second > max_bucket_seconds) {
      bad("burst", "burst / rate_per_second must not exceed 1e8 seconds");
    }
  }
}

void ClientLimiterParams::validate() const {
  defaults.validate("limits.default");
  for (const auto& [client, policy] : per_client) policy.validate("limits.clients." + client);
  for (const auto& [source, policy] : per_source) policy.validate("limits.sources." + source);
  if (in_flight_retry_after.count() < 0) {
    throw std::invalid_argument("limits.in_flight_retry_after: must not be negative");
  }
}

std::string_view to_string(Refusal r) noexcept {
  switch (r) {
    case Refusal::rate_limited:
      return "rate_limited";
    case Refusal::too_many_in_flight:
      return "too_many_in_flight";
    case Refusal::hourly_quota:
      return "hourly_quota";
    case Refusal::daily_quota:
      return "daily_quota";
  }
  return "unknown";
}

std::uint64_t& ClientLimiter::Rejections::operator[](Refusal r) noexcept {
  switch (r) {
    case Refusal::rate_limited:
      return rate_limited;
    case Refusal::too_many_in_flight:
      return too_many_in_flight;
    case Refusal::hourly_quota:
      return hourly_quota;
    case Refusal::daily_quota:
      break;
  }
  return daily_quota;
}

ClientLimiter::Permit::Permit(Permit&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), entry_(std::exchange(other.entry_, nullptr)) {}

ClientLimiter::Permit& ClientLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::exchange(other.owner_, nullptr);
    entry_ = std::exchange(other.entry_, nullptr);
  }
  return *this;
}

void ClientLimiter::Permit::reset() noexcept {
  if (owner_ == nullptr) return;
  owner_->release(entry_);
  owner_ = nullptr;
  entry_ = nullptr;
}

std::size_t ClientLimiter::KeyHash::operator()(KeyView k) const noexcept {
  const std::size_t a = std::hash<std::string_view>{}(k.client);
  const std::size_t b = std::hash<std::string_view>{}(k.source);
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

ClientLimiter::ClientLimiter(ClientLimiterParams params) : policies_(resolve_all(params)) {}

ClientLimiter::Policies ClientLimiter::resolve_all(const ClientLimiterParams& params) {
  params.validate();
  auto resolve = [](const LimitPolicy& p) {
    Resolved r;
    if (p.rate_per_second > 0) {
      using Seconds = std::chrono::duration<double>;
      r.interval = std::max(Clock::duration(1),
                            std::chrono::round<Clock::duration>(Seconds(1.0 / p.rate_per_second)));
      // From the rounded interval, so that a whole burst admits exactly that many at once.
      r.capacity = Clock::duration(std::llround(p.burst * static_cast<double>(r.interval.count())));
    }
    r.max_in_flight = p.max_in_flight;
    r.hourly_quota = p.hourly_quota;
    r.daily_quota = p.daily_quota;
    return r;
  };
  Policies out;
  out.defaults = resolve(params.defaults);
  for (const auto& [client, policy] : params.per_client) out.per_client[client] = resolve(policy);
  for (const auto& [source, policy] : params.per_source) out.per_source[source] = resolve(policy);
  out.in_flight_retry_after = params.in_flight_retry_after;
  return out;
}

ClientLimiter::Admission ClientLimiter::admit(std::string_view client, std::string_view source,
                                              TimePoint now) {
  std::lock_guard lock(mutex_);
  const Resolved* policy = &policies_.defaults;
  std::string_view scope;
  if (auto c = policies_.per_client.find(client); c != policies_.per_client.end()) {
    policy = &c->second;
  } else if (auto s = policies_.per_source.find(source); s != policies_.per_source.end()) {
    policy = &s->second;
    scope = source;
  }
  auto it = entries_.find(KeyView{client, scope});
  if (it == entries_.end()) {
    it = entries_.emplace(Key{std::string(client), std::string(scope)}, Entry{}).first;
  }
  Entry& e = it->second;
  e.policy = *policy;

  std::optional<Refusal> refusal;
  Clock::duration wait{0};
  // Strictly longer wins, so earlier checks win ties.
  auto refuse = [&](Refusal r, Clock::duration d) {
    if (!refusal || d > wait) {
      refusal = r;
      wait = d;
    }
  };
  if (policy->daily_quota > 0 && e.day.open_at(now, day_window) &&
      e.day.count >= policy->daily_quota) {
    refuse(Refusal::daily_quota, e.day.start + day_window - now);
  }
  if (policy->hourly_quota > 0 && e.hour.open_at(now, hour_window) &&
      e.hour.count >= policy->hourly_quota) {
    refuse(Refusal::hourly_quota, e.hour.start + hour_window - now);
  }
  if (policy->max_in_flight > 0 && e.in_flight >= policy->max_in_flight) {
    refuse(Refusal::too_many_in_flight, policies_.in_flight_retry_after);
  }
  TimePoint tat = e.tat;
  if (policy->interval.count() > 0) {
    tat = std::max(e.tat, now) + policy->interval;
    if (tat - now > policy->capacity) refuse(Refusal::rate_limited, tat - now - policy->capacity);
  }
  if (refusal) {
    ++e.rejected[*refusal];
    ++totals_.rejected[*refusal];
    return {Permit{}, refusal, wait};
  }

  e.tat = tat;
  auto count = [now](Window& w, Clock::duration length) {
    if (!w.open_at(now, length)) w = {now, 0};
    ++w.count;
  };
  if (policy->hourly_quota > 0) count(e.hour, hour_window);
  if (policy->daily_quota > 0) count(e.day, day_window);
  ++e.in_flight;
  ++e.admitted;
  ++totals_.in_flight;
  ++totals_.admitted;
  return {Permit{this, &e}, std::nullopt, Clock::duration{0}};
}

void ClientLimiter::release(Entry* e) noexcept {
  std::lock_guard lock(mutex_);
  // Entries with requests in flight are never pruned, so `e` is alive.
  --e->in_flight;
  --totals_.in_flight;
}

void ClientLimiter::reconfigure(ClientLimiterParams params) {
  Policies fresh = resolve_all(params);
  std::lock_guard lock(mutex_);
  policies_ = std::move(fresh);
}

bool ClientLimiter::idle(const Entry& e, TimePoint now) noexcept {
  return e.in_flight == 0 && e.tat <= now && !e.hour.open_at(now, hour_window) &&
         !e.day.open_at(now, day_window);
}

std::size_t ClientLimiter::prune(TimePoint now) {
  std::lock_guard lock(mutex_);
  const std::size_t erased =
      std::erase_if(entries_, [now](const auto& kv) { return idle(kv.second, now); });
  totals_.pruned += erased;
  return erased;
}

std::vector<ClientLimiter::ClientStats> ClientLimiter::snapshot(TimePoint now) const {
  std::vector<ClientStats> out;
  {
    std::lock_guard lock(mutex_);
    out.reserve(entries_.size());
    for (const auto& [key, e] : entries_) {
      ClientStats s;
      s.client = key.client;
      s.source = key.source;
      s.in_flight = e.in_flight;
      s.admitted = e.admitted;
      s.rejected = e.rejected;
      if (e.hour.open_at(now, hour_window)) s.hourly_used = e.hour.count;
      if (e.day.open_at(now, day_window)) s.daily_used = e.day.count;
      out.push_back(std::move(s));
    }
  }
  std::sort(out.begin(), out.end(), [](const ClientStats& a, const ClientStats& b) {
    return std::tie(a.client, a.source) < std::tie(b.client, b.source);
  });
  return out;
}

ClientLimiter::Totals ClientLimiter::totals() const {
  std::lock_guard lock(mutex_);
  Totals t = totals_;
  t.tracked = entries_.size();
  return t;
}

}  // namespace sluice::session
