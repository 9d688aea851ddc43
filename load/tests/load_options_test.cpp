#include "load/src/load_options.hpp"

#include <gtest/gtest.h>

namespace sluice::load {
namespace {

using namespace std::chrono_literals;
using std::chrono::microseconds;

LoadOptions parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"--scenario", "s.yaml"});
  return parse_load_options(args);
}

std::string error_of(std::vector<std::string> args) {
  try {
    parse_load_options(args).schedule();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(LoadOptionsTest, Defaults) {
  const auto o = parse({});
  EXPECT_EQ(o.transport, Transport::http_modern);
  EXPECT_EQ(o.era(), Era::modern);
  EXPECT_EQ(o.effective_protocol_version(), "2026-07-28");
  EXPECT_EQ(o.effective_url(), "http://127.0.0.1:8080/mcp");
  EXPECT_FALSE(o.is_open_loop());
  const auto s = o.schedule();
  EXPECT_EQ(s.total(), microseconds(10s));
  EXPECT_DOUBLE_EQ(s.target_at(0s), 8);
}

TEST(LoadOptionsTest, ClosedLoopWithWarmupAddsTheWarmupFirst) {
  const auto o = parse({"--clients", "64", "--duration", "10s", "--warmup=2s"});
  EXPECT_EQ(o.schedule().total(), microseconds(12s));
  EXPECT_DOUBLE_EQ(o.schedule().target_at(1s), 64);
}

TEST(LoadOptionsTest, RateMeansOpenLoop) {
  const auto o = parse({"--rate", "250.5", "--clients", "4", "--max-clients", "32"});
  EXPECT_TRUE(o.is_open_loop());
  EXPECT_DOUBLE_EQ(o.schedule().target_at(3s), 250.5);
  EXPECT_EQ(o.max_clients, 32u);
  EXPECT_EQ(o.clients, 4u);
}

TEST(LoadOptionsTest, StagesAndProfiles) {
  EXPECT_EQ(parse({"--stages", "10s:8,30s:64,10s:0"}).schedule().total(), microseconds(50s));
  const auto open = parse({"--open-loop", "--stages", "5s:100"});
  EXPECT_TRUE(open.is_open_loop());
  const auto load = parse({"--profile", "load", "--clients", "20", "--duration", "30s"});
  EXPECT_DOUBLE_EQ(load.schedule().peak(), 20);
  EXPECT_EQ(load.schedule().total(), microseconds(60s));
  EXPECT_DOUBLE_EQ(parse({"--profile", "spike", "--rate", "500"}).schedule().peak(), 500);
}

TEST(LoadOptionsTest, TransportsPickTheirEra) {
  const auto legacy = parse({"--transport", "http-legacy"});
  EXPECT_EQ(legacy.era(), Era::legacy);
  EXPECT_EQ(legacy.effective_protocol_version(), "2025-11-25");
  const auto ws = parse({"--transport", "websocket"});
  EXPECT_EQ(ws.era(), Era::legacy);
  EXPECT_EQ(ws.effective_url(), "ws://127.0.0.1:8080/mcp");
  const auto ws_modern = parse({"--transport", "websocket", "--protocol-version", "2026-07-28"});
  EXPECT_EQ(ws_modern.era(), Era::modern);
}

TEST(LoadOptionsTest, RepeatableFlags) {
  const auto o = parse({"--threshold", "p95<50ms", "--threshold", "errors<1%", "--header",
                        "Authorization: Bearer x", "--quiet", "--json", "out.json"});
  EXPECT_EQ(o.thresholds, (std::vector<std::string>{"p95<50ms", "errors<1%"}));
  ASSERT_EQ(o.headers.size(), 1u);
  EXPECT_EQ(o.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer x"}));
  EXPECT_TRUE(o.quiet);
  EXPECT_EQ(o.json, std::filesystem::path("out.json"));
}

TEST(LoadOptionsTest, ErrorsNameTheFlag) {
  EXPECT_NE(error_of({}).find("--scenario"), std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--bogus"}).find("unknown flag --bogus"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--transport", "grpc"}).find("--transport grpc"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--clients", "0"}).find("--clients"), std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--clients", "many"}).find("--clients many"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--rate", "-5"}).find("--rate"), std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--duration", "10"}).find("unit"), std::string::npos);
  EXPECT_NE(
      error_of({"--scenario", "s", "--stages", "10s:1", "--duration", "5s"}).find("--duration"),
      std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--stages", "1s:1", "--profile", "load"}).find("exclude"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--stages", "10s:1,x"}).find("--stages: stage 2"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--profile", "huge"}).find("--profile"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--stages", "5s:1", "--warmup", "5s"}).find("--warmup"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--header", "novalue"}).find("--header"),
            std::string::npos);
  EXPECT_NE(error_of({"--scenario"}).find("--scenario needs a value"), std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "--quiet=yes"}).find("takes no value"), std::string::npos);
  EXPECT_NE(error_of({"--scenario", "s", "extra"}).find("unexpected argument"), std::string::npos);
}

TEST(LoadOptionsTest, HelpNeedsNothingElse) {
  EXPECT_TRUE(parse_load_options({"--help"}).help);
  EXPECT_NE(load_usage().find("--transport"), std::string::npos);
  EXPECT_NE(load_usage().find("Exit status"), std::string::npos);
}

}  // namespace
}  // namespace sluice::load
