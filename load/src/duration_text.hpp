#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::load {

// "1h", "2m", "30s", "1.5s", "250ms", "800us" and sums of them ("1m30s"). A number needs a
// unit; nullopt when the text is not such a duration (negative values included).
std::optional<std::chrono::microseconds> parse_duration(std::string_view text);

// The shortest exact rendering that parse_duration reads back, e.g. "90s", "250ms", "0s".
std::string format_duration(std::chrono::microseconds d);

}  // namespace sluice::load
