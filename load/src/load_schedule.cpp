#include "load/src/load_schedule.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "load/src/duration_text.hpp"

namespace sluice::load {
namespace {

using std::chrono::microseconds;
using namespace std::chrono_literals;

double seconds(microseconds d) {
  return static_cast<double>(d.count()) / 1e6;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<double> parse_number(std::string_view s) {
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

LoadSchedule::LoadSchedule(std::vector<Stage> stages) : stages_(std::move(stages)) {
  if (stages_.empty()) throw std::invalid_argument("stages: none given");
  double previous = 0;
  double arrivals = 0;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const Stage& s = stages_[i];
    const std::string where = "stage " + std::to_string(i + 1);
    if (!std::isfinite(s.target) || s.target < 0) {
      throw std::invalid_argument(where + ": target must be a number >= 0");
    }
    if (s.duration < 0us) throw std::invalid_argument(where + ": duration must not be negative");
    starts_.push_back(previous);
    arrivals_.push_back(arrivals);
    offsets_.push_back(total_);
    arrivals += (previous + s.target) / 2 * seconds(s.duration);
    total_ += s.duration;
    peak_ = std::max(peak_, s.target);
    previous = s.target;
  }
  if (total_ <= 0us) throw std::invalid_argument("stages: the total duration is zero");
}

LoadSchedule LoadSchedule::constant(double target, microseconds duration) {
  return LoadSchedule({Stage{0us, target}, Stage{duration, target}});
}

LoadSchedule LoadSchedule::parse(std::string_view text) {
  std::vector<Stage> stages;
  std::size_t index = 0;
  while (true) {
    ++index;
    const std::size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    const std::string where = "stage " + std::to_string(index) + " (\"" + std::string(item) + "\")";
    const std::size_t colon = item.find(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument(where + ": expected DURATION:TARGET, e.g. 30s:64");
    }
    const auto duration = parse_duration(trim(item.substr(0, colon)));
    if (!duration) {
      throw std::invalid_argument(where + ": the duration needs a unit, e.g. 30s, 2m or 500ms");
    }
    const auto target = parse_number(trim(item.substr(colon + 1)));
    if (!target || !std::isfinite(*target) || *target < 0) {
      throw std::invalid_argument(where + ": the target must be a number >= 0");
    }
    stages.push_back({*duration, *target});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return LoadSchedule(std::move(stages));
}

const std::vector<std::string_view>& LoadSchedule::profile_names() {
  static const std::vector<std::string_view> names{"smoke", "load", "stress", "spike", "soak"};
  return names;
}

LoadSchedule LoadSchedule::profile(std::string_view name, double peak,
                                   std::optional<microseconds> hold) {
  if (!std::isfinite(peak) || peak <= 0) {
    throw std::invalid_argument("profile " + std::string(name) + ": the peak must be > 0");
  }
  const auto held = [&](microseconds fallback) { return hold.value_or(fallback); };
  if (name == "smoke") return LoadSchedule({{0us, 1}, {held(10s), 1}});
  if (name == "load") return LoadSchedule({{15s, peak}, {held(60s), peak}, {15s, 0}});
  if (name == "stress") {
    const auto h = held(20s);
    return LoadSchedule({{10s, peak},
                         {h, peak},
                         {10s, 2 * peak},
                         {h, 2 * peak},
                         {10s, 3 * peak},
                         {h, 3 * peak},
                         {10s, 0}});
  }
  if (name == "spike") {
    const double base = std::max(1.0, std::round(peak / 10));
    return LoadSchedule({{0us, base},
                         {10s, base},
                         {2s, peak},
                         {held(20s), peak},
                         {2s, base},
                         {10s, base},
                         {2s, 0}});
  }
  if (name == "soak") return LoadSchedule({{1min, peak}, {held(1h), peak}, {1min, 0}});
  throw std::invalid_argument("unknown profile \"" + std::string(name) +
                              "\": expected smoke, load, stress, spike or soak");
}

double LoadSchedule::target_at(microseconds t) const noexcept {
  if (t < 0us) return 0;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const microseconds end = offsets_[i] + stages_[i].duration;
    if (t < end) {
      const double f = seconds(t - offsets_[i]) / seconds(stages_[i].duration);
      return starts_[i] + (stages_[i].target - starts_[i]) * f;
    }
  }
  return stages_.back().target;
}

double LoadSchedule::arrivals_until(microseconds t) const noexcept {
  if (t <= 0us) return 0;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const microseconds end = offsets_[i] + stages_[i].duration;
    if (t < end) {
      const double tau = seconds(t - offsets_[i]);
      const double slope = (stages_[i].target - starts_[i]) / seconds(stages_[i].duration);
      return arrivals_[i] + starts_[i] * tau + slope * tau * tau / 2;
    }
  }
  const Stage& last = stages_.back();
  return arrivals_.back() + (starts_.back() + last.target) / 2 * seconds(last.duration);
}

std::optional<microseconds> LoadSchedule::arrival_time(double count) const noexcept {
  if (!(count >= 0)) return std::nullopt;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    const Stage& s = stages_[i];
    if (s.duration <= 0us) continue;
    const double a = starts_[i];
    const double in_stage = (a + s.target) / 2 * seconds(s.duration);
    const double delta = count - arrivals_[i];
    if (delta > in_stage) continue;
    // Solve a*tau + b*tau^2/2 = delta for the first tau >= 0, in the form that stays exact
    // for b = 0 and for ramps down (b < 0).
    const double b = (s.target - a) / seconds(s.duration);
    const double root = std::sqrt(std::max(0.0, a * a + 2 * b * delta));
    if (a + root <= 0) {
      if (delta <= 0) return offsets_[i];
      continue;
    }
    const double tau = std::clamp(2 * delta / (a + root), 0.0, seconds(s.duration));
    return offsets_[i] + microseconds(static_cast<std::int64_t>(std::llround(tau * 1e6)));
  }
  return std::nullopt;
}

std::string LoadSchedule::to_string() const {
  std::ostringstream out;
  for (std::size_t i = 0; i < stages_.size(); ++i) {
    if (i) out << ',';
    out << format_duration(stages_[i].duration) << ':' << stages_[i].target;
  }
  return out.str();
}

}  // namespace sluice::load
