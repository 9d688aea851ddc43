#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::load {

// One kind of request in a scenario's mix.
struct ScenarioCall {
  std::string label;      // how reports name it; the tool name unless the file says otherwise
  std::string method;     // "tools/call" for `tool:` entries
  std::string mcp_name;   // the Mcp-Name header value: params.name or params.uri, if any
  nlohmann::json params;  // without _meta; the runner adds it for the modern era
  double weight = 1;      // relative frequency
};

// A scenario file: what the virtual clients send, in what proportions.
//
//   name: demo                 # optional; defaults to the file name
//   think_time: 10ms           # optional; closed loop: pause between a client's requests
//   thresholds: [p95<50ms]     # optional; added to the --threshold flags
//   calls:
//     - tool: query            # a tools/call of this tool ...
//       weight: 5              # ... five times as often as a weight-1 entry (default 1)
//       arguments: {sql: "SELECT count(*) FROM orders"}
//       label: count-orders    # optional
//     - method: tools/list     # or any other request, with optional params
struct Scenario {
  std::string name;
  std::vector<ScenarioCall> calls;
  std::chrono::microseconds think_time{0};
  std::vector<std::string> thresholds;

  // Throws ScenarioError naming the key and line, e.g.
  // "demo.yaml: calls[1].weight (line 7): must be a number > 0".
  static Scenario parse(std::string_view yaml, std::string_view source_name);
  static Scenario load(const std::filesystem::path& file);
};

class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Weighted choice of a call index from a uniformly random 64-bit number. O(log n).
class CallPicker {
 public:
  explicit CallPicker(const Scenario& scenario);
  std::size_t pick(std::uint64_t random) const noexcept;

 private:
  std::vector<double> cumulative_;  // running sums of the weights, normalised to end at 1
};

// A small, fast generator for CallPicker (splitmix64); each virtual client owns one.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

}  // namespace sluice::load
