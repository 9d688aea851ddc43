#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::load {

// One ramp stage: over `duration`, the target moves in a straight line from where the previous
// stage ended (0 before the first) to `target`. A zero duration jumps there at once.
struct Stage {
  std::chrono::microseconds duration{0};
  // Virtual clients (closed loop) or requests per second (open loop).
  double target = 0;
  friend bool operator==(const Stage&, const Stage&) = default;
};

// The target over time: a piecewise-linear curve made of stages. Immutable once built.
class LoadSchedule {
 public:
  // Throws std::invalid_argument naming the stage ("stage 2: ...") when a target is negative
  // or not finite, or when there are no stages or no time at all.
  explicit LoadSchedule(std::vector<Stage> stages);

  // `target` held for `duration`.
  static LoadSchedule constant(double target, std::chrono::microseconds duration);
  // "10s:8,30s:64,10s:0": comma-separated DURATION:TARGET stages (see parse_duration).
  // Throws std::invalid_argument naming the stage and what is wrong with it.
  static LoadSchedule parse(std::string_view text);
  // A named profile scaled to `peak` (clients or requests per second); `hold` replaces the
  // profile's time at its plateaus. Throws std::invalid_argument for an unknown name.
  //   smoke   1 for 10 s
  //   load    ramp to peak in 15 s, hold 60 s, ramp down in 15 s
  //   stress  steps of peak, 2 x peak and 3 x peak, 10 s ramps, each held 20 s, then down
  //   spike   a tenth of peak for 10 s, up to peak in 2 s, hold 20 s, back in 2 s, 10 s, down
  //   soak    ramp to peak in 1 min, hold 1 h, ramp down in 1 min
  static LoadSchedule profile(std::string_view name, double peak,
                              std::optional<std::chrono::microseconds> hold = std::nullopt);
  static const std::vector<std::string_view>& profile_names();

  const std::vector<Stage>& stages() const noexcept { return stages_; }
  std::chrono::microseconds total() const noexcept { return total_; }
  // The highest target anywhere.
  double peak() const noexcept { return peak_; }
  // The target at `t` from the start; the last stage's target after the end.
  double target_at(std::chrono::microseconds t) const noexcept;

  // Open loop: the integral of the target (requests per second) from 0 to `t`, i.e. how many
  // requests are due by then.
  double arrivals_until(std::chrono::microseconds t) const noexcept;
  // The time at which arrivals_until reaches `count`; nullopt if it never does before the end.
  std::optional<std::chrono::microseconds> arrival_time(double count) const noexcept;

  // "10s:8,30s:64".
  std::string to_string() const;

 private:
  std::vector<Stage> stages_;
  std::vector<double> starts_;                      // target at the start of each stage
  std::vector<double> arrivals_;                    // arrivals_until at the start of each stage
  std::vector<std::chrono::microseconds> offsets_;  // start time of each stage
  std::chrono::microseconds total_{0};
  double peak_ = 0;
};

}  // namespace sluice::load
