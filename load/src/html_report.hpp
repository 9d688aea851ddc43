#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sluice::load {

// One self-contained HTML page for a report made by build_report(): the JSON embedded, drawn
// by inline script as SVG (throughput, latency percentiles and load over time, the latency
// histogram) with tables for thresholds, errors and calls. No external resource, so it opens
// offline and can be attached to a CI run.
std::string render_html_report(const nlohmann::json& report);

}  // namespace sluice::load
