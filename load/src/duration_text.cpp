#include "load/src/duration_text.hpp"

#include <cmath>
#include <cstdint>
#include <string>

namespace sluice::load {
namespace {

// Microseconds in one unit, or 0 for an unknown unit.
double unit_micros(std::string_view unit) {
  if (unit == "us") return 1;
  if (unit == "ms") return 1e3;
  if (unit == "s") return 1e6;
  if (unit == "m") return 60e6;
  if (unit == "h") return 3600e6;
  return 0;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

std::optional<std::chrono::microseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t number_start = i;
    while (i < text.size() && (is_digit(text[i]) || text[i] == '.')) ++i;
    const std::string number(text.substr(number_start, i - number_start));
    if (number.empty() || number.front() == '.' || number.back() == '.' ||
        number.find('.') != number.rfind('.')) {
      return std::nullopt;
    }
    const std::size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.') ++i;
    const double scale = unit_micros(text.substr(unit_start, i - unit_start));
    if (scale == 0) return std::nullopt;
    total += std::stod(number) * scale;
  }
  // About 292,000 years fit; anything near that is a typo.
  if (!std::isfinite(total) || total > 1e17) return std::nullopt;
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(total)));
}

std::string format_duration(std::chrono::microseconds d) {
  const auto us = d.count();
  if (us == 0) return "0s";
  struct Unit {
    std::int64_t micros;
    const char* name;
  };
  for (const Unit u :
       {Unit{3'600'000'000, "h"}, Unit{60'000'000, "m"}, Unit{1'000'000, "s"}, Unit{1'000, "ms"}}) {
    if (us % u.micros == 0) return std::to_string(us / u.micros) + u.name;
  }
  return std::to_string(us) + "us";
}

}  // namespace sluice::load
