#include "load/src/load_report.hpp"

#include <cmath>
#include <cstdio>
#include <map>

namespace sluice::load {
namespace {

double ms(std::uint64_t micros) {
  return static_cast<double>(micros) / 1000.0;
}
double ms(double micros) {
  return micros / 1000.0;
}

nlohmann::json latency_json(const LatencyHistogram& h) {
  if (h.count() == 0) return nullptr;
  return {{"min", ms(h.min())},
          {"mean", ms(h.mean())},
          {"p50", ms(h.value_at_quantile(0.50))},
          {"p90", ms(h.value_at_quantile(0.90))},
          {"p95", ms(h.value_at_quantile(0.95))},
          {"p99", ms(h.value_at_quantile(0.99))},
          {"p99_9", ms(h.value_at_quantile(0.999))},
          {"max", ms(h.max())}};
}

// The fine histogram folded into ten bins per decade, for drawing.
nlohmann::json histogram_json(const LatencyHistogram& h) {
  std::map<int, std::uint64_t> bins;
  h.for_each_bucket([&](std::uint64_t lowest, std::uint64_t, std::uint64_t count) {
    const int bin = lowest == 0 ? 0 : static_cast<int>(std::floor(10 * std::log10(lowest)));
    bins[bin] += count;
  });
  auto out = nlohmann::json::array();
  for (const auto& [bin, count] : bins) {
    out.push_back({{"from_ms", std::pow(10.0, bin / 10.0) / 1000},
                   {"to_ms", std::pow(10.0, (bin + 1) / 10.0) / 1000},
                   {"count", count}});
  }
  return out;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string latency_line(const nlohmann::json& l) {
  if (l.is_null()) return "n/a (nothing succeeded)";
  const auto v = [&](const char* key) {
    const double x = l[key].get<double>();
    return fixed(x, x < 10 ? 2 : x < 100 ? 1 : 0);
  };
  return "min " + v("min") + "  mean " + v("mean") + "  p50 " + v("p50") + "  p90 " + v("p90") +
         "  p95 " + v("p95") + "  p99 " + v("p99") + "  p99.9 " + v("p99_9") + "  max " + v("max") +
         " ms";
}

}  // namespace

int exit_status(const std::vector<ThresholdResult>& thresholds, const RunSummary& summary) {
  for (const auto& t : thresholds) {
    if (!t.passed) return kExitFailed;
  }
  if (thresholds.empty() && summary.ok == 0) return kExitFailed;
  return kExitPassed;
}

nlohmann::json build_report(const LoadRecorder& recorder, const ReportContext& context) {
  const RunSummary s = recorder.summary();
  nlohmann::json report;
  report["tool"] = "sluice-load";
  report["started_at"] = context.started_at;
  report["config"] = context.config;
  report["summary"] = {{"measured_s", s.measured_seconds},
                       {"requests", s.requests()},
                       {"ok", s.ok},
                       {"errors", s.errors},
                       {"error_rate", s.error_rate()},
                       {"rps", s.ok_per_second()},
                       {"latency_ms", latency_json(s.latency)},
                       {"peak_clients", context.peak_clients}};
  auto calls = nlohmann::json::array();
  for (const auto& c : recorder.calls()) {
    calls.push_back(
        {{"label", c.label},
         {"requests", c.ok + c.errors},
         {"ok", c.ok},
         {"errors", c.errors},
         {"rps", s.measured_seconds > 0 ? static_cast<double>(c.ok) / s.measured_seconds : 0.0},
         {"latency_ms", latency_json(c.latency)}});
  }
  report["calls"] = calls;
  auto errors = nlohmann::json::array();
  for (const auto& e : recorder.errors()) {
    errors.push_back({{"kind", e.kind}, {"count", e.count}, {"sample", e.sample}});
  }
  report["errors"] = errors;
  report["histogram"] = histogram_json(s.latency);
  auto series = nlohmann::json::array();
  for (const auto& x : recorder.seconds()) {
    series.push_back({{"t", x.index},
                      {"warmup", x.warmup},
                      {"target", x.target},
                      {"clients", x.clients},
                      {"in_flight", x.in_flight},
                      {"ok", x.ok},
                      {"errors", x.errors},
                      {"p50_ms", ms(x.p50)},
                      {"p90_ms", ms(x.p90)},
                      {"p95_ms", ms(x.p95)},
                      {"p99_ms", ms(x.p99)},
                      {"max_ms", ms(x.max)}});
  }
  report["timeseries"] = series;
  auto thresholds = nlohmann::json::array();
  for (const auto& t : context.thresholds) {
    thresholds.push_back(
        {{"expression", t.expression}, {"actual", t.actual}, {"passed", t.passed}});
  }
  report["thresholds"] = thresholds;
  const int status = exit_status(context.thresholds, s);
  report["passed"] = status == kExitPassed;
  report["exit_status"] = status;
  report["generator"] = {{"cpu_s", context.generator_cpu_seconds}, {"threads", 1}};
  return report;
}

void print_summary(std::ostream& out, const nlohmann::json& report) {
  const auto& c = report["config"];
  const auto& s = report["summary"];
  out << "sluice-load " << c.value("transport", "") << " " << c.value("url", "") << ", "
      << c.value("mode", "") << " loop, scenario " << c["scenario"].value("name", "") << "\n";
  out << "  measured   " << fixed(s["measured_s"].get<double>(), 1) << " s";
  if (c.value("warmup_s", 0.0) > 0)
    out << " after " << fixed(c["warmup_s"].get<double>(), 1) << " s warmup";
  out << ", peak " << s["peak_clients"].get<std::size_t>()
      << (c.value("mode", "") == "open" ? " connections" : " clients") << "\n";
  out << "  requests   " << s["ok"].get<std::uint64_t>() << " ok, "
      << s["errors"].get<std::uint64_t>() << " errors ("
      << fixed(100 * s["error_rate"].get<double>(), 2) << "%), " << fixed(s["rps"].get<double>(), 1)
      << " ok/s\n";
  out << "  latency    " << latency_line(s["latency_ms"]) << "\n";
  if (report["calls"].size() > 1) {
    for (const auto& call : report["calls"]) {
      out << "  call       " << call["label"].get<std::string>() << ": "
          << call["ok"].get<std::uint64_t>() << " ok, " << call["errors"].get<std::uint64_t>()
          << " errors";
      if (!call["latency_ms"].is_null()) {
        out << ", p50 " << fixed(call["latency_ms"]["p50"].get<double>(), 2) << " p99 "
            << fixed(call["latency_ms"]["p99"].get<double>(), 2) << " ms";
      }
      out << "\n";
    }
  }
  for (const auto& e : report["errors"]) {
    out << "  error      " << e["kind"].get<std::string>() << " x"
        << e["count"].get<std::uint64_t>();
    const std::string sample = e["sample"].get<std::string>();
    if (!sample.empty()) out << ": " << sample.substr(0, 120);
    out << "\n";
  }
  for (const auto& t : report["thresholds"]) {
    out << "  threshold  " << (t["passed"].get<bool>() ? "pass " : "FAIL ")
        << t["expression"].get<std::string>() << " (actual " << t["actual"].get<std::string>()
        << ")\n";
  }
  out << "  generator  " << fixed(report["generator"]["cpu_s"].get<double>(), 2)
      << " s CPU on 1 thread\n";
  out << (report["passed"].get<bool>() ? "PASSED" : "FAILED") << "\n";
}

}  // namespace sluice::load
