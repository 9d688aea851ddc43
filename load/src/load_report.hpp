#pragma once

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

#include "load/src/load_recorder.hpp"
#include "load/src/threshold.hpp"

namespace sluice::load {

// Exit statuses of sluice-load.
enum ExitStatus : int {
  kExitPassed = 0,
  kExitFailed = 1,  // a threshold failed, or without thresholds nothing succeeded
  kExitUsage = 2,
  kExitError = 3,
};

// Judges the run: kExitFailed if any threshold failed; without thresholds, if no request
// succeeded; else kExitPassed.
int exit_status(const std::vector<ThresholdResult>& thresholds, const RunSummary& summary);

// Everything the report says beyond what the recorder holds.
struct ReportContext {
  nlohmann::json config;  // what was run: url, transport, mode, scenario, stages, ...
  std::vector<ThresholdResult> thresholds;
  std::size_t peak_clients = 0;
  double generator_cpu_seconds = 0;
  std::string started_at;  // ISO 8601, UTC
};

// The results as one JSON document (the --json file, and the data of the HTML report):
// config, summary (totals, rate, latency percentiles in ms), calls, errors by kind, a
// latency histogram, a per-second time series, thresholds and the verdict.
nlohmann::json build_report(const LoadRecorder& recorder, const ReportContext& context);

// A few lines for the terminal.
void print_summary(std::ostream& out, const nlohmann::json& report);

}  // namespace sluice::load
