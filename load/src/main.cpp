// sluice-load: drives an MCP server with virtual clients following a scenario and a schedule,
// prints a summary, writes JSON and HTML reports, and exits by its thresholds. See --help.
#include "pool/asio.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>

#include "load/src/duration_text.hpp"
#include "load/src/html_report.hpp"
#include "load/src/load_options.hpp"
#include "load/src/load_report.hpp"
#include "load/src/load_runner.hpp"
#include "load/src/scenario.hpp"
#include "load/src/threshold.hpp"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "dev"
#endif

namespace {

using namespace sluice;
using namespace sluice::load;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

nlohmann::json config_json(const LoadOptions& o, const Scenario& scenario,
                           const LoadSchedule& schedule, const std::string& url) {
  auto calls = nlohmann::json::array();
  for (const auto& c : scenario.calls) {
    calls.push_back({{"label", c.label}, {"method", c.method}, {"weight", c.weight}});
  }
  auto stages = nlohmann::json::array();
  for (const auto& s : schedule.stages()) {
    stages.push_back(
        {{"duration_s", std::chrono::duration<double>(s.duration).count()}, {"target", s.target}});
  }
  nlohmann::json config = {
      {"url", url},
      {"transport", transport_name(o.transport)},
      {"era", o.era() == Era::modern ? "modern" : "legacy"},
      {"protocol_version", o.effective_protocol_version()},
      {"mode", o.is_open_loop() ? "open" : "closed"},
      {"scenario",
       {{"name", scenario.name},
        {"file", o.scenario.string()},
        {"think_time_ms", std::chrono::duration<double, std::milli>(scenario.think_time).count()},
        {"calls", calls}}},
      {"schedule", schedule.to_string()},
      {"stages", stages},
      {"warmup_s", std::chrono::duration<double>(o.warmup).count()},
      {"timeout_ms", std::chrono::duration<double, std::milli>(o.timeout).count()},
      {"client_name", o.client_name},
      {"version", SLUICE_VERSION}};
  if (o.profile) config["profile"] = *o.profile;
  if (o.is_open_loop()) config["max_clients"] = o.max_clients;
  return config;
}

bool write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::cerr << "sluice-load: cannot write " << path.string() << "\n";
    return false;
  }
  return true;
}

int run(const LoadOptions& options) {
  Scenario scenario;
  std::vector<Threshold> thresholds;
  std::optional<LoadSchedule> schedule;
  TargetUrl url;
  try {
    scenario = Scenario::load(options.scenario);
    for (const auto& list : {options.thresholds, scenario.thresholds}) {
      for (const auto& text : list) {
        Threshold t = Threshold::parse(text);
        const bool repeated = std::any_of(thresholds.begin(), thresholds.end(), [&](const auto& x) {
          return x.expression() == t.expression();
        });
        if (!repeated) thresholds.push_back(std::move(t));
      }
    }
    schedule = options.schedule();
    url = TargetUrl::parse(options.effective_url());
    if (options.transport == Transport::websocket) {
      url = url.as_websocket(true);
    } else if (url.websocket) {
      throw UsageError("--url " + options.effective_url() + ": ws:// needs --transport websocket");
    }
  } catch (const std::exception& e) {
    std::cerr << "sluice-load: " << e.what() << "\n";
    return kExitUsage;
  }

  LoadRunnerParams params;
  params.client.url = url;
  params.client.transport = options.transport;
  params.client.era = options.era();
  params.client.protocol_version = options.effective_protocol_version();
  params.client.headers = options.headers;
  params.client_name = options.client_name;
  params.client_version = SLUICE_VERSION;
  params.open_loop = options.is_open_loop();
  params.max_clients = options.max_clients;
  params.preopen = options.is_open_loop() ? options.clients.value_or(1) : 0;
  params.warmup = options.warmup;
  params.timeout = options.timeout;
  params.seed = options.seed;

  const bool tty = isatty(STDERR_FILENO) == 1;
  bool line_open = false;
  LoadRunner::ProgressCallback progress;
  if (!options.quiet) {
    progress = [&, last_line = std::int64_t{-1}](const ProgressSnapshot& s) mutable {
      const std::string line = format_progress(s);
      if (tty) {
        std::cerr << "\r" << line << "\x1b[K" << std::flush;
        line_open = true;
        return;
      }
      // Not a terminal (CI logs): a line every 10 s.
      const std::int64_t slot =
          std::chrono::duration_cast<std::chrono::seconds>(s.elapsed).count() / 10;
      if (slot != last_line) {
        last_line = slot;
        std::cerr << line << "\n";
      }
    };
  }

  const std::string started_at = utc_now();
  asio::io_context io(1);
  LoadRunner runner(io, params, *schedule, scenario, progress);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        runner.stop();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  std::exception_ptr failure;
  asio::co_spawn(io, runner.async_run(), [&](std::exception_ptr e) {
    failure = e;
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
  try {
    io.run();
    if (failure) std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    if (line_open) std::cerr << "\n";
    std::cerr << "sluice-load: " << e.what() << "\n";
    return kExitError;
  }
  if (line_open) std::cerr << "\n";

  const RunSummary summary = runner.recorder().summary();
  ReportContext context;
  context.config = config_json(options, scenario, *schedule, url.to_string());
  for (const auto& t : thresholds) context.thresholds.push_back(t.evaluate(summary));
  context.peak_clients = runner.peak_clients();
  context.generator_cpu_seconds = cpu_seconds();
  context.started_at = started_at;
  const nlohmann::json report = build_report(runner.recorder(), context);
  print_summary(std::cout, report);

  bool written = true;
  if (options.json) written &= write_file(*options.json, report.dump(2) + "\n");
  if (options.html) written &= write_file(*options.html, render_html_report(report));
  if (!written) return kExitError;
  return report["exit_status"].get<int>();
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions options;
  try {
    options = parse_load_options(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "sluice-load: " << e.what() << "\n(sluice-load --help lists the flags)\n";
    return kExitUsage;
  }
  if (options.help) {
    std::cout << load_usage();
    return kExitPassed;
  }
  if (options.version) {
    std::cout << "sluice-load " << SLUICE_VERSION << "\n";
    return kExitPassed;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "sluice-load: " << e.what() << "\n";
    return kExitError;
  }
}
