#include "load/src/scenario.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace sluice::load {
namespace {

std::string error_of(std::string_view yaml) {
  try {
    Scenario::parse(yaml, "test.yaml");
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "";
}

TEST(ScenarioTest, ParsesToolCallsWithTypedArguments) {
  const auto s = Scenario::parse(R"(
name: mix
think_time: 5ms
thresholds: ["p95<50ms", "errors<1%"]
calls:
  - tool: query
    weight: 3
    arguments:
      sql: SELECT 1
      max_rows: 10
      ratio: 0.5
      strict: true
      note: "123"
      nothing: null
  - tool: list_tables
  - method: tools/list
    label: listing
)",
                                 "mix.yaml");
  EXPECT_EQ(s.name, "mix");
  EXPECT_EQ(s.think_time, std::chrono::milliseconds(5));
  EXPECT_EQ(s.thresholds, (std::vector<std::string>{"p95<50ms", "errors<1%"}));
  ASSERT_EQ(s.calls.size(), 3u);
  const auto& q = s.calls[0];
  EXPECT_EQ(q.method, "tools/call");
  EXPECT_EQ(q.mcp_name, "query");
  EXPECT_EQ(q.label, "query");
  EXPECT_EQ(q.weight, 3);
  const auto& args = q.params["arguments"];
  EXPECT_EQ(q.params["name"], "query");
  EXPECT_EQ(args["sql"], "SELECT 1");
  EXPECT_EQ(args["max_rows"], 10);
  EXPECT_TRUE(args["max_rows"].is_number_integer());
  EXPECT_EQ(args["ratio"], 0.5);
  EXPECT_EQ(args["strict"], true);
  EXPECT_EQ(args["note"], "123");  // quoted: stays a string
  EXPECT_TRUE(args["nothing"].is_null());
  EXPECT_EQ(s.calls[1].params["arguments"], nlohmann::json::object());
  EXPECT_EQ(s.calls[1].weight, 1);
  EXPECT_EQ(s.calls[2].method, "tools/list");
  EXPECT_EQ(s.calls[2].label, "listing");
  EXPECT_EQ(s.calls[2].mcp_name, "");
}

TEST(ScenarioTest, NameDefaultsToTheFileAndRepeatedLabelsAreNumbered) {
  const auto s = Scenario::parse("calls: [{tool: a}, {tool: a}, {tool: a}]", "dir/x/select1.yaml");
  EXPECT_EQ(s.name, "select1");
  EXPECT_EQ(s.calls[0].label, "a");
  EXPECT_EQ(s.calls[1].label, "a#2");
  EXPECT_EQ(s.calls[2].label, "a#3");
}

TEST(ScenarioTest, ResourcesReadUsesTheUriAsMcpName) {
  const auto s =
      Scenario::parse("calls: [{method: resources/read, params: {uri: 'file:///a'}}]", "r.yaml");
  EXPECT_EQ(s.calls[0].mcp_name, "file:///a");
}

TEST(ScenarioTest, ErrorsNameTheKeyAndLine) {
  auto e = error_of("calls:\n  - tool: query\n    wieght: 2\n");
  EXPECT_NE(e.find("test.yaml: calls[0].wieght (line 3): unknown key"), std::string::npos) << e;
  e = error_of("calls:\n  - tool: a\n  - tool: b\n    weight: -1\n");
  EXPECT_NE(e.find("calls[1].weight (line 4): must be a number > 0"), std::string::npos) << e;
  e = error_of("calls:\n  - tool: a\n    weight: lots\n");
  EXPECT_NE(e.find("calls[0].weight"), std::string::npos) << e;
  e = error_of("name: x\n");
  EXPECT_NE(e.find("calls"), std::string::npos) << e;
  EXPECT_NE(e.find("missing"), std::string::npos) << e;
  e = error_of("calls: []\n");
  EXPECT_NE(e.find("calls"), std::string::npos) << e;
  e = error_of("calls:\n  - tool: a\n    method: b\n");
  EXPECT_NE(e.find("calls[0]"), std::string::npos) << e;
  EXPECT_NE(e.find("exactly one of tool"), std::string::npos) << e;
  e = error_of("calls:\n  - {}\n");
  EXPECT_NE(e.find("calls[0]"), std::string::npos) << e;
  e = error_of("calls:\n  - tool: a\n    arguments: [1, 2]\n");
  EXPECT_NE(e.find("calls[0].arguments"), std::string::npos) << e;
  e = error_of("calls:\n  - method: m\n    params: {_meta: {}}\n");
  EXPECT_NE(e.find("calls[0].params._meta"), std::string::npos) << e;
  e = error_of("think_time: soon\ncalls: [{tool: a}]\n");
  EXPECT_NE(e.find("think_time"), std::string::npos) << e;
  e = error_of("calls: [{tool: a}]\nthreshold: [p95<1s]\n");
  EXPECT_NE(e.find("threshold (line 2): unknown key"), std::string::npos) << e;
  e = error_of("calls: [{tool: a}\n");
  EXPECT_NE(e.find("test.yaml: line"), std::string::npos) << e;
}

TEST(ScenarioTest, LoadNamesAMissingFile) {
  try {
    Scenario::load("/nonexistent/scenario.yaml");
    FAIL() << "no error";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/scenario.yaml"), std::string::npos);
  }
}

TEST(ScenarioTest, TheShippedScenariosParse) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SLUICE_LOAD_SCENARIOS)) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(Scenario::load(entry.path())) << entry.path();
    ++n;
  }
  EXPECT_GE(n, 2);
}

TEST(CallPickerTest, FollowsTheWeights) {
  const auto s = Scenario::parse("calls: [{tool: a, weight: 3}, {tool: b, weight: 1}]", "w.yaml");
  const CallPicker picker(s);
  SplitMix64 rng(42);
  int a = 0;
  const int n = 100'000;
  for (int i = 0; i < n; ++i) a += picker.pick(rng.next()) == 0 ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(a) / n, 0.75, 0.01);
  EXPECT_EQ(picker.pick(0), 0u);
  EXPECT_EQ(picker.pick(~std::uint64_t{0}), 1u);
}

}  // namespace
}  // namespace sluice::load
