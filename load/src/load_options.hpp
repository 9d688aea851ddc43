#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "load/src/load_schedule.hpp"
#include "load/src/mcp_client.hpp"

namespace sluice::load {

// A bad command line; the message names the flag.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// sluice-load's command line (see load_usage() for the meaning of each).
struct LoadOptions {
  std::filesystem::path scenario;
  std::string url;  // empty: http://127.0.0.1:8080/mcp (ws:// for websocket)
  Transport transport = Transport::http_modern;
  std::string protocol_version;  // empty: 2026-07-28 for http-modern, else 2025-11-25
  std::optional<std::size_t> clients;
  std::optional<double> rate;
  bool open_loop = false;
  std::optional<std::string> profile;
  std::optional<std::string> stages;
  std::optional<std::chrono::microseconds> duration;
  std::chrono::microseconds warmup{0};
  std::chrono::microseconds timeout{std::chrono::seconds(10)};
  std::size_t max_clients = 1024;
  std::vector<std::string> thresholds;
  std::optional<std::filesystem::path> json;
  std::optional<std::filesystem::path> html;
  bool quiet = false;
  std::string client_name = "sluice-load";
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint64_t seed = 1;
  bool help = false;
  bool version = false;

  // The schedule the flags describe, warmup included. Throws UsageError.
  LoadSchedule schedule() const;
  bool is_open_loop() const noexcept { return open_loop || rate.has_value(); }
  Era era() const noexcept;
  std::string effective_protocol_version() const;
  std::string effective_url() const;
};

// Parses the arguments after the program name. Throws UsageError.
LoadOptions parse_load_options(const std::vector<std::string>& args);

// The --help text.
std::string load_usage();

}  // namespace sluice::load
