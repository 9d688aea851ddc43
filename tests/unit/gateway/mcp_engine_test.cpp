#include "gateway/mcp_engine.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/database_tools.hpp"
#include "tests/unit/gateway/fake_source.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using fakes::FakeScript;

constexpr const char* kModern = "2026-07-28";
constexpr const char* kVersionKey = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kServerInfoKey = "io.modelcontextprotocol/serverInfo";

// The _meta every modern request carries.
json modern_meta(const std::string& version = kModern) {
  return {{kVersionKey, version},
          {kCapabilitiesKey, json::object()},
          {"io.modelcontextprotocol/clientInfo", {{"name", "test"}, {"version", "1.0"}}}};
}

// A modern request: `params` gets the _meta (keys already in params._meta are kept).
std::string modern_request(const json& id, const std::string& method, json params = json::object(),
                           const std::string& version = kModern) {
  json meta = modern_meta(version);
  if (params.contains("_meta")) meta.update(params["_meta"]);
  params["_meta"] = meta;
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
}

std::string request(const json& id, const std::string& method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
}

std::string notification(const std::string& method, json params = json::object()) {
  return json{{"jsonrpc", "2.0"}, {"method", method}, {"params", params}}.dump();
}

json call_params(const std::string& tool, json arguments) {
  return {{"name", tool}, {"arguments", std::move(arguments)}};
}

// The headers a conforming modern HTTP client sends.
MessageContext modern_http(const std::string& method, std::optional<std::string> name = {},
                           const std::string& version = kModern) {
  MessageContext ctx;
  ctx.transport = Transport::http;
  ctx.remote = "127.0.0.1:50000";
  ctx.protocol_version_header = version;
  ctx.method_header = method;
  ctx.name_header = std::move(name);  // stateless: no cancel scope
  return ctx;
}

// A legacy HTTP request, as McpHttpEndpoint maps it.
MessageContext legacy_http(std::optional<std::string> session,
                           std::optional<std::string> version_header = "2025-06-18") {
  MessageContext ctx;
  ctx.transport = Transport::http;
  ctx.remote = "127.0.0.1:50000";
  ctx.protocol_version_header = std::move(version_header);
  ctx.session_id = session;
  if (session) ctx.cancel_scope = *session;
  return ctx;
}

MessageContext stdio(ConnectionState& state) {
  MessageContext ctx;
  ctx.transport = Transport::stdio;
  ctx.remote = "stdio";
  ctx.connection = &state;
  ctx.cancel_scope = "stdio";
  return ctx;
}

::testing::AssertionResult is_error(const Outcome& o, unsigned status, int code, const json& id) {
  json j = json::parse(o.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return ::testing::AssertionFailure() << "not a JSON object: " << o.body;
  }
  if (o.http_status != status) {
    return ::testing::AssertionFailure()
           << "HTTP " << o.http_status << ", want " << status << ": " << o.body;
  }
  if (j.value("jsonrpc", "") != "2.0" || !j.contains("error") || j.contains("result")) {
    return ::testing::AssertionFailure() << "not a JSON-RPC error: " << o.body;
  }
  if (j["error"].value("code", 0) != code) {
    return ::testing::AssertionFailure()
           << "code " << j["error"]["code"] << ", want " << code << ": " << o.body;
  }
  if (!j["error"]["message"].is_string() || j["error"]["message"].get<std::string>().empty()) {
    return ::testing::AssertionFailure() << "no message: " << o.body;
  }
  if (!j.contains("id") || j["id"] != id) {
    return ::testing::AssertionFailure()
           << "id " << j.value("id", json()) << ", want " << id << ": " << o.body;
  }
  return ::testing::AssertionSuccess();
}

// The result of a successful response, after checking the envelope.
json result_of(const Outcome& o, const json& id) {
  EXPECT_EQ(o.http_status, 200u) << o.body;
  json j = json::parse(o.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << o.body;
  if (j.is_discarded()) return json();
  EXPECT_EQ(j.value("jsonrpc", ""), "2.0") << o.body;
  EXPECT_EQ(j.value("id", json()), id) << o.body;
  EXPECT_FALSE(j.contains("error")) << o.body;
  return j.value("result", json());
}

bool visible_ascii(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

template <class T>
struct Task {
  bool done = false;
  std::optional<T> value;
  std::exception_ptr error;
};

class McpEngineTest : public ::testing::Test {
 protected:
  McpEngineTest()
      : fake_(fakes::make_fake_sources(io_.get_executor(), {"main", "other"}, limits())),
        tools_(fake_.sources),
        sessions_(session::TokenSigner(std::string(32, 'k')), std::chrono::hours(1)),
        engine_(tools_, sessions_, {"sluice", "9.9.9", "Query the main warehouse."}) {
    // Every source answers a one-column result by default.
    for (std::size_t i = 0; i < fake_.backends.size(); ++i) {
      fake_.script(i).set_rows({{std::int64_t{1}}, {std::int64_t{2}}});
    }
  }

  ~McpEngineTest() override {
    // A call the product failed to finish (a failing test) is released, so that nothing
    // outlives the fixture.
    run_until([this] {
      for (auto& b : fake_.backends) b->script().release();
      return std::all_of(tasks_.begin(), tasks_.end(), [](const auto& t) { return t->done; });
    });
    bool closed = false;
    asio::co_spawn(
        io_,
        [this]() -> asio::awaitable<void> {
          for (auto& s : fake_.sources) co_await s.pool->close(pool::Clock::now() + 1s);
        },
        [&closed](std::exception_ptr) { closed = true; });
    run_until([&] { return closed; });
    io_.restart();
    io_.poll();
  }

  static QueryLimits limits() {
    QueryLimits l;
    l.max_rows = 10'000;  // the progress test fetches 2,500 rows
    return l;
  }

  // Runs the io_context until `done` holds; false after 5 s.
  bool run_until(const std::function<bool()>& done) {
    const auto limit = std::chrono::steady_clock::now() + 5s;
    io_.restart();
    while (!done()) {
      if (std::chrono::steady_clock::now() > limit) return false;
      io_.run_one_for(20ms);
    }
    return true;
  }

  // Starts handle() without waiting. The fixture keeps `body`; `ctx` must outlive the task
  // (see keep()).
  std::shared_ptr<Task<Outcome>> start(std::string body, MessageContext& ctx, Notify notify = {}) {
    auto task = std::make_shared<Task<Outcome>>();
    tasks_.push_back(task);
    const std::string& kept = bodies_.emplace_back(std::move(body));
    asio::co_spawn(io_, engine_.handle(kept, ctx, std::move(notify)),
                   [task](std::exception_ptr e, Outcome o) {
                     task->done = true;
                     if (e) {
                       task->error = e;
                     } else {
                       task->value = std::move(o);
                     }
                   });
    return task;
  }

  Outcome handle(const std::string& body, MessageContext& ctx, Notify notify = {}) {
    auto task = start(body, ctx, std::move(notify));
    EXPECT_TRUE(run_until([&] { return task->done; })) << "handle() did not finish: " << body;
    if (task->error) std::rethrow_exception(task->error);
    return task->value.value_or(Outcome{});
  }

  Outcome handle(const std::string& body, MessageContext&& ctx) {
    return handle(body, keep(std::move(ctx)));
  }

  // A legacy HTTP session negotiated at `version`.
  std::string open_session(const std::string& version = "2025-06-18") {
    MessageContext ctx = legacy_http(std::nullopt, std::nullopt);
    const Outcome o = handle(request(0, "initialize",
                                     {{"protocolVersion", version},
                                      {"capabilities", json::object()},
                                      {"clientInfo", {{"name", "test"}, {"version", "1"}}}}),
                             ctx);
    EXPECT_TRUE(o.session_id.has_value()) << o.body;
    return o.session_id.value_or("");
  }

  FakeScript& script(std::size_t i = 0) { return fake_.script(i); }

  // Storage that lives as long as the fixture, for what a background task refers to.
  MessageContext& keep(MessageContext ctx) { return contexts_.emplace_back(std::move(ctx)); }
  asio::cancellation_signal& keep_signal() { return signals_.emplace_back(); }

  // Once whatever was posted has run, the call `task` (request `id`) still waits and was not
  // cancelled; released, it answers normally.
  void expect_still_running_then_answered(const std::shared_ptr<Task<Outcome>>& task,
                                          const json& id) {
    io_.restart();
    io_.poll();
    EXPECT_EQ(script().waiting, 1) << "the call is still running";
    EXPECT_FALSE(task->done);
    EXPECT_EQ(script().cancelled, 0);
    script().release();
    ASSERT_TRUE(run_until([&] { return task->done; }));
    ASSERT_FALSE(task->error);
    EXPECT_EQ(result_of(*task->value, id)["isError"], false);
    EXPECT_EQ(script().completed, 1);
  }

  asio::io_context io_;
  fakes::FakeSources fake_;
  DatabaseTools tools_;
  session::SessionTokens sessions_;
  McpEngine engine_;
  std::vector<std::shared_ptr<Task<Outcome>>> tasks_;
  std::deque<std::string> bodies_;
  std::deque<MessageContext> contexts_;
  std::deque<asio::cancellation_signal> signals_;
};

const json kQuery = call_params("query", {{"sql", "SELECT n FROM t"}});

// --- JSON-RPC envelope errors --------------------------------------------------------------

TEST_F(McpEngineTest, ParseErrorIs400WithNullId) {
  EXPECT_TRUE(is_error(handle("{\"jsonrpc\":\"2.0\",\"id\":1,", legacy_http(std::nullopt)), 400,
                       -32700, nullptr));
  EXPECT_TRUE(is_error(handle("", legacy_http(std::nullopt)), 400, -32700, nullptr));
  EXPECT_TRUE(is_error(handle("not json", modern_http("tools/list")), 400, -32700, nullptr));
}

TEST_F(McpEngineTest, BatchArrayIs400InvalidRequest) {
  const std::string batch = "[" + request(1, "ping") + "," + request(2, "ping") + "]";
  EXPECT_TRUE(is_error(handle(batch, legacy_http(open_session())), 400, -32600, nullptr));
  EXPECT_TRUE(is_error(handle("[]", modern_http("ping")), 400, -32600, nullptr));
}

TEST_F(McpEngineTest, NonObjectMessageIs400InvalidRequest) {
  EXPECT_TRUE(is_error(handle("42", legacy_http(std::nullopt)), 400, -32600, nullptr));
  EXPECT_TRUE(is_error(handle("\"ping\"", legacy_http(std::nullopt)), 400, -32600, nullptr));
  EXPECT_TRUE(is_error(handle("null", legacy_http(std::nullopt)), 400, -32600, nullptr));
}

TEST_F(McpEngineTest, NotJsonRpc20Is400InvalidRequest) {
  const Outcome wrong = handle(R"({"jsonrpc":"1.0","id":7,"method":"ping"})", legacy_http("s"));
  EXPECT_EQ(wrong.http_status, 400u);
  EXPECT_EQ(json::parse(wrong.body)["error"]["code"], -32600) << wrong.body;
  const Outcome missing = handle(R"({"id":7,"method":"ping"})", legacy_http("s"));
  EXPECT_EQ(missing.http_status, 400u);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], -32600) << missing.body;
  const Outcome number = handle(R"({"jsonrpc":2.0,"id":7,"method":"ping"})", legacy_http("s"));
  EXPECT_EQ(json::parse(number.body)["error"]["code"], -32600) << number.body;
}

TEST_F(McpEngineTest, NotJsonRpc20EchoesAWellFormedId) {
  EXPECT_TRUE(is_error(handle(R"({"jsonrpc":"1.0","id":7,"method":"ping"})", legacy_http("s")), 400,
                       -32600, 7));
  EXPECT_TRUE(
      is_error(handle(R"({"id":"abc","method":"ping"})", legacy_http("s")), 400, -32600, "abc"));
}

TEST_F(McpEngineTest, IntegerIdsAreEchoedExactly) {
  for (const char* id :
       {"0", "-5", "9223372036854775807", "18446744073709551615", "-9223372036854775808"}) {
    const std::string body = std::string(R"({"jsonrpc":"2.0","method":"ping","id":)") + id + "}";
    const Outcome out = handle(body, legacy_http(open_session()));
    EXPECT_NE(out.body.find(std::string("\"id\":") + id + ","), std::string::npos) << out.body;
  }
}

TEST_F(McpEngineTest, IdOfTheWrongTypeIs400InvalidRequest) {
  for (const char* body : {
           R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})",
           R"({"jsonrpc":"2.0","id":[1],"method":"ping"})",
           R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
           R"({"jsonrpc":"2.0","id":true,"method":"ping"})",
           R"({"jsonrpc":"2.0","id":null,"method":"ping"})",
           R"({"jsonrpc":"2.0","id":null,"method":"tools/list","params":{"_meta":{}}})",
       }) {
    EXPECT_TRUE(is_error(handle(body, legacy_http(open_session())), 400, -32600, nullptr)) << body;
  }
}

TEST_F(McpEngineTest, MethodThatIsNotAStringIs400InvalidRequestEchoingTheId) {
  EXPECT_TRUE(
      is_error(handle(R"({"jsonrpc":"2.0","id":3,"method":5})", legacy_http("s")), 400, -32600, 3));
  EXPECT_TRUE(is_error(handle(R"({"jsonrpc":"2.0","id":"x","method":null})", legacy_http("s")), 400,
                       -32600, "x"));
}

TEST_F(McpEngineTest, ParamsThatAreNotAnObjectAre400InvalidParamsEchoingTheId) {
  EXPECT_TRUE(is_error(handle(R"({"jsonrpc":"2.0","id":"abc","method":"tools/list","params":[1]})",
                              legacy_http(open_session())),
                       400, -32602, "abc"));
  EXPECT_TRUE(is_error(handle(R"({"jsonrpc":"2.0","id":9,"method":"server/discover","params":"x"})",
                              modern_http("server/discover")),
                       400, -32602, 9));
}

TEST_F(McpEngineTest, ParamsNullCountsAsAbsent) {
  const Outcome o = handle(R"({"jsonrpc":"2.0","id":4,"method":"ping","params":null})",
                           legacy_http(open_session()));
  EXPECT_EQ(result_of(o, 4), json::object());
}

TEST_F(McpEngineTest, ClientResponsesAreAcceptedWith202AndNoBody) {
  for (const char* body : {R"({"jsonrpc":"2.0","id":1,"result":{}})",
                           R"({"jsonrpc":"2.0","id":"q","error":{"code":-1,"message":"no"}})"}) {
    const Outcome o = handle(body, legacy_http(open_session()));
    EXPECT_EQ(o.http_status, 202u) << body;
    EXPECT_TRUE(o.body.empty()) << o.body;
  }
}

TEST_F(McpEngineTest, IsLegacyVersion) {
  EXPECT_TRUE(McpEngine::is_legacy_version("2025-11-25"));
  EXPECT_TRUE(McpEngine::is_legacy_version("2025-06-18"));
  EXPECT_TRUE(McpEngine::is_legacy_version("2025-03-26"));
  EXPECT_FALSE(McpEngine::is_legacy_version("2026-07-28"));
  EXPECT_FALSE(McpEngine::is_legacy_version("2024-11-05"));
  EXPECT_FALSE(McpEngine::is_legacy_version(""));
}

// --- Modern era -------------------------------------------------------------------------------

TEST_F(McpEngineTest, DiscoverAnswersVersionsCapabilitiesAndCachingHints) {
  const Outcome o = handle(modern_request("d1", "server/discover"), modern_http("server/discover"));
  EXPECT_TRUE(o.modern);
  EXPECT_FALSE(o.session_id) << "the modern era never mints a session";
  const json r = result_of(o, "d1");
  ASSERT_TRUE(r["supportedVersions"].is_array()) << o.body;
  std::vector<std::string> versions = r["supportedVersions"];
  EXPECT_NE(std::find(versions.begin(), versions.end(), kModern), versions.end());
  for (const char* legacy : {"2025-11-25", "2025-06-18", "2025-03-26"}) {
    EXPECT_NE(std::find(versions.begin(), versions.end(), legacy), versions.end()) << legacy;
  }
  ASSERT_TRUE(r["capabilities"].is_object());
  EXPECT_TRUE(r["capabilities"]["tools"].is_object());
  for (const char* undeclared : {"prompts", "resources", "logging", "completions"}) {
    EXPECT_FALSE(r["capabilities"].contains(undeclared)) << undeclared;
  }
  ASSERT_TRUE(r["ttlMs"].is_number_integer()) << o.body;
  EXPECT_GE(r["ttlMs"].get<std::int64_t>(), 0);
  EXPECT_TRUE(r["cacheScope"] == "public" || r["cacheScope"] == "private") << o.body;
  EXPECT_EQ(r["resultType"], "complete");
  EXPECT_EQ(r["_meta"][kServerInfoKey], json::parse(R"({"name":"sluice","version":"9.9.9"})"));
  EXPECT_FALSE(r.contains("serverInfo")) << "serverInfo belongs in _meta";
  EXPECT_EQ(r["instructions"], "Query the main warehouse.");
}

TEST_F(McpEngineTest, DiscoverWithoutClientInfoIsServed) {
  json params = {{"_meta", {{kVersionKey, kModern}, {kCapabilitiesKey, json::object()}}}};
  const Outcome o = handle(request(1, "server/discover", params), modern_http("server/discover"));
  EXPECT_EQ(result_of(o, 1)["resultType"], "complete");
}

TEST_F(McpEngineTest, MissingMetaIs400InvalidParams) {
  // Conf: server/discover with params {} and the version header.
  EXPECT_TRUE(is_error(handle(request(1, "server/discover"), modern_http("server/discover")), 400,
                       -32602, 1));
  EXPECT_TRUE(is_error(handle(R"({"jsonrpc":"2.0","id":"n","method":"server/discover"})",
                              modern_http("server/discover")),
                       400, -32602, "n"));
  // A modern version header makes tools/list modern too.
  EXPECT_TRUE(
      is_error(handle(request(2, "tools/list"), modern_http("tools/list")), 400, -32602, 2));
}

TEST_F(McpEngineTest, MissingProtocolVersionOrCapabilitiesIs400InvalidParams) {
  const json no_version = {{"_meta", {{kCapabilitiesKey, json::object()}}}};
  EXPECT_TRUE(is_error(handle(request(1, "tools/list", no_version), modern_http("tools/list")), 400,
                       -32602, 1));
  const json no_caps = {{"_meta", {{kVersionKey, kModern}}}};
  EXPECT_TRUE(is_error(handle(request(2, "tools/list", no_caps), modern_http("tools/list")), 400,
                       -32602, 2));
  const json caps_not_object = {{"_meta", {{kVersionKey, kModern}, {kCapabilitiesKey, "all"}}}};
  EXPECT_TRUE(is_error(handle(request(3, "tools/list", caps_not_object), modern_http("tools/list")),
                       400, -32602, 3));
  const json version_not_string = {
      {"_meta", {{kVersionKey, 2026}, {kCapabilitiesKey, json::object()}}}};
  EXPECT_TRUE(is_error(
      handle(request(4, "server/discover", version_not_string), modern_http("server/discover")),
      400, -32602, 4));
}

TEST_F(McpEngineTest, ProtocolVersionHeaderMissingOrDifferentIs400HeaderMismatch) {
  MessageContext missing = modern_http("tools/list");
  missing.protocol_version_header.reset();
  EXPECT_TRUE(is_error(handle(modern_request(1, "tools/list"), missing), 400, -32020, 1));
  // Conf: header 2026-07-28, body v999.0.0.
  EXPECT_TRUE(is_error(handle(modern_request(2, "tools/list", json::object(), "v999.0.0"),
                              modern_http("tools/list")),
                       400, -32020, 2));
}

TEST_F(McpEngineTest, McpMethodMissingDifferentOrMiscasedIs400HeaderMismatch) {
  MessageContext missing = modern_http("tools/list");
  missing.method_header.reset();
  EXPECT_TRUE(is_error(handle(modern_request(1, "tools/list"), missing), 400, -32020, 1));
  EXPECT_TRUE(
      is_error(handle(modern_request(2, "tools/list"), modern_http("tools/call")), 400, -32020, 2));
  EXPECT_TRUE(
      is_error(handle(modern_request(3, "tools/list"), modern_http("TOOLS/LIST")), 400, -32020, 3));
  EXPECT_TRUE(is_error(handle(modern_request(4, "server/discover"), modern_http("tools/list")), 400,
                       -32020, 4));
}

TEST_F(McpEngineTest, McpNameMissingOrDifferentIs400HeaderMismatch) {
  EXPECT_TRUE(is_error(handle(modern_request(1, "tools/call", kQuery), modern_http("tools/call")),
                       400, -32020, 1));
  EXPECT_TRUE(is_error(
      handle(modern_request(2, "tools/call", kQuery), modern_http("tools/call", "explain")), 400,
      -32020, 2));
  EXPECT_TRUE(
      is_error(handle(modern_request(3, "tools/call", kQuery), modern_http("tools/call", "QUERY")),
               400, -32020, 3))
      << "header values are case-sensitive";
  EXPECT_TRUE(script().executed.empty()) << "nothing ran";
}

TEST_F(McpEngineTest, McpNameMatchingIsServed) {
  const Outcome o =
      handle(modern_request(1, "tools/call", kQuery), modern_http("tools/call", "query"));
  EXPECT_EQ(result_of(o, 1)["isError"], false) << o.body;
}

TEST_F(McpEngineTest, McpNameBase64SentinelIsDecodedBeforeComparing) {
  const Outcome o = handle(modern_request(1, "tools/call", kQuery),
                           modern_http("tools/call", "=?base64?cXVlcnk=?="));
  EXPECT_EQ(result_of(o, 1)["isError"], false) << o.body;
  const Outcome wrong = handle(modern_request(2, "tools/call", kQuery),
                               modern_http("tools/call", "=?base64?ZXhwbGFpbg==?="));  // explain
  EXPECT_TRUE(is_error(wrong, 400, -32020, 2));
}

TEST_F(McpEngineTest, McpNameMalformedBase64Is400HeaderMismatch) {
  for (const char* bad :
       {"=?base64?SGVsbG8?=", "=?base64?cXVl*nk=?=", "=?base64?cX=lcnk=?=", "=?base64?c===?="}) {
    EXPECT_TRUE(is_error(handle(modern_request(1, "tools/call", kQuery),
                                modern_http("tools/call", std::string(bad))),
                         400, -32020, 1))
        << bad;
  }
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, McpNameMissingAMarkerIsTakenLiterally) {
  EXPECT_TRUE(is_error(handle(modern_request(1, "tools/call", kQuery),
                              modern_http("tools/call", "=?base64?cXVlcnk=")),
                       400, -32020, 1));
}

TEST_F(McpEngineTest, McpNameWithSurroundingWhitespaceIsAccepted) {
  for (const char* padded : {"  query  ", "\tquery", " =?base64?cXVlcnk=?= "}) {
    const Outcome o = handle(modern_request(1, "tools/call", kQuery),
                             modern_http("tools/call", std::string(padded)));
    EXPECT_EQ(result_of(o, 1)["isError"], false) << padded << ": " << o.body;
  }
}

TEST_F(McpEngineTest, LegacyVersionHeaderOnAModernRequestIs400HeaderMismatch) {
  EXPECT_TRUE(is_error(handle(modern_request(1, "tools/list"),
                              modern_http("tools/list", std::nullopt, "2025-06-18")),
                       400, -32020, 1));
}

TEST_F(McpEngineTest, ModernRequestsIgnoreSessionIds) {
  MessageContext ctx = modern_http("tools/list");
  ctx.session_id = "forged-or-expired";
  ctx.cancel_scope = *ctx.session_id;
  const Outcome o = handle(modern_request(1, "tools/list"), ctx);
  EXPECT_EQ(result_of(o, 1)["tools"].size(), 9u);
  EXPECT_FALSE(o.session_id);
}

TEST_F(McpEngineTest, UnsupportedModernVersionIs400WithSupportedAndRequested) {
  const Outcome o = handle(modern_request("u", "tools/list", json::object(), "v999.0.0"),
                           modern_http("tools/list", std::nullopt, "v999.0.0"));
  ASSERT_TRUE(is_error(o, 400, -32022, "u"));
  const json data = json::parse(o.body)["error"]["data"];
  EXPECT_EQ(data["requested"], "v999.0.0");
  ASSERT_TRUE(data["supported"].is_array()) << o.body;
  ASSERT_FALSE(data["supported"].empty());
  const json discover =
      result_of(handle(modern_request(1, "server/discover"), modern_http("server/discover")), 1);
  for (const auto& v : data["supported"]) {
    EXPECT_NE(
        std::find(discover["supportedVersions"].begin(), discover["supportedVersions"].end(), v),
        discover["supportedVersions"].end())
        << v << " is not in the discover list";
  }
}

TEST_F(McpEngineTest, LegacyVersionInModernMetaIs400UnsupportedVersion) {
  const Outcome o = handle(modern_request(1, "tools/list", json::object(), "2025-06-18"),
                           modern_http("tools/list", std::nullopt, "2025-06-18"));
  ASSERT_TRUE(is_error(o, 400, -32022, 1));
  EXPECT_EQ(json::parse(o.body)["error"]["data"]["supported"], json::array({kModern}));
}

TEST_F(McpEngineTest, RemovedAndUnknownMethodsAre404MethodNotFound) {
  for (const char* method : {"ping", "initialize", "logging/setLevel", "resources/subscribe",
                             "unknown/method", "prompts/list", "resources/list"}) {
    const Outcome o = handle(modern_request(5, method), modern_http(method));
    EXPECT_TRUE(is_error(o, 404, -32601, 5)) << method;
    EXPECT_TRUE(o.modern) << method;
  }
}

// Conf accepts -32601 for subscriptions/listen only when discover advertises no listChanged.
TEST_F(McpEngineTest, SubscriptionsListenIsNotServedAndNothingAdvertisesIt) {
  const json discover =
      result_of(handle(modern_request(1, "server/discover"), modern_http("server/discover")), 1);
  EXPECT_NE(discover["capabilities"]["tools"].value("listChanged", false), true);
  const json params = {{"notifications", {{"toolsListChanged", true}}}};
  EXPECT_TRUE(is_error(handle(modern_request(2, "subscriptions/listen", params),
                              modern_http("subscriptions/listen")),
                       404, -32601, 2));
}

TEST_F(McpEngineTest, ErrorMessagesEscapeWhatTheClientSent) {
  const std::string visible = "odd\"method\\";
  const Outcome unknown = handle(modern_request(1, visible), modern_http(visible));
  EXPECT_TRUE(is_error(unknown, 404, -32601, 1));
  const std::string version = "v\"9\t";
  const Outcome bad = handle(modern_request(2, "tools/list", json::object(), version),
                             modern_http("tools/list", std::nullopt, version));
  ASSERT_TRUE(is_error(bad, 400, -32022, 2));
  EXPECT_EQ(json::parse(bad.body)["error"]["data"]["requested"], version);
  const std::string session = open_session();
  const std::string method = "odd\"method\n\x01\\";
  EXPECT_TRUE(
      is_error(handle(request("\"id\"", method), legacy_http(session)), 200, -32601, "\"id\""));
}

TEST_F(McpEngineTest, ModernToolsListHasCachingHintsAndTheToolsInFixedOrder) {
  const Outcome o = handle(modern_request(1, "tools/list"), modern_http("tools/list"));
  const json r = result_of(o, 1);
  ASSERT_TRUE(r["ttlMs"].is_number_integer()) << o.body;
  EXPECT_GE(r["ttlMs"].get<std::int64_t>(), 0);
  EXPECT_TRUE(r["cacheScope"] == "public" || r["cacheScope"] == "private");
  EXPECT_EQ(r["resultType"], "complete");
  EXPECT_TRUE(r["_meta"][kServerInfoKey].is_object());
  EXPECT_FALSE(r.contains("nextCursor")) << "one page";
  std::vector<std::string> names;
  for (const auto& t : r["tools"]) {
    names.push_back(t["name"]);
    EXPECT_LE(t["name"].get<std::string>().size(), 64u);
    EXPECT_TRUE(t["description"].is_string()) << t["name"];
    EXPECT_EQ(t["inputSchema"]["type"], "object") << t["name"];
    EXPECT_EQ(t["outputSchema"]["type"], "object") << t["name"];
    EXPECT_EQ(t["annotations"]["openWorldHint"], false) << t["name"];
    EXPECT_EQ(t["annotations"]["readOnlyHint"], t["name"] != "execute") << t["name"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"list_databases", "list_schemas", "list_tables",
                                             "describe_table", "query", "explain", "execute",
                                             "set_context", "get_context"}));
  EXPECT_EQ(r["tools"][4]["inputSchema"]["required"], json::array({"sql"}));
  EXPECT_EQ(r["tools"][0]["inputSchema"]["properties"]["source"]["enum"],
            json::array({"main", "other"}));
}

TEST_F(McpEngineTest, ToolsListIsTheSameOnEveryRequest) {
  const json a = result_of(handle(modern_request(1, "tools/list"), modern_http("tools/list")), 1);
  handle(modern_request(2, "tools/call", kQuery), modern_http("tools/call", "query"));
  const json b = result_of(handle(modern_request(1, "tools/list"), modern_http("tools/list")), 1);
  EXPECT_EQ(a["tools"], b["tools"]);
}

TEST_F(McpEngineTest, InvalidCursorIsInvalidParams) {
  const Outcome modern =
      handle(modern_request(1, "tools/list", {{"cursor", "bogus"}}), modern_http("tools/list"));
  EXPECT_TRUE(is_error(modern, 200, -32602, 1));
  const Outcome legacy =
      handle(request("c", "tools/list", {{"cursor", "bogus"}}), legacy_http(open_session()));
  EXPECT_TRUE(is_error(legacy, 200, -32602, "c"));
}

TEST_F(McpEngineTest, UnknownToolIsInvalidParams) {
  const json params = call_params("drop_everything", json::object());
  const Outcome o =
      handle(modern_request(8, "tools/call", params), modern_http("tools/call", "drop_everything"));
  EXPECT_TRUE(is_error(o, 200, -32602, 8));
  EXPECT_NE(o.body.find("drop_everything"), std::string::npos) << o.body;
}

TEST_F(McpEngineTest, ToolCallWithoutANameOrWithNonObjectArgumentsIsInvalidParams) {
  const std::string session = open_session();
  EXPECT_TRUE(is_error(
      handle(request(1, "tools/call", {{"arguments", json::object()}}), legacy_http(session)), 200,
      -32602, 1));
  EXPECT_TRUE(
      is_error(handle(request(2, "tools/call", {{"name", "query"}, {"arguments", "SELECT 1"}}),
                      legacy_http(session)),
               200, -32602, 2));
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, ModernToolCallResultShape) {
  const Outcome o =
      handle(modern_request("c1", "tools/call", kQuery), modern_http("tools/call", "query"));
  EXPECT_TRUE(o.modern);
  const json r = result_of(o, "c1");
  ASSERT_TRUE(r["content"].is_array()) << o.body;
  ASSERT_EQ(r["content"].size(), 1u);
  EXPECT_EQ(r["content"][0]["type"], "text");
  EXPECT_EQ(r["content"][0]["text"], "n\n1\n2\n(2 rows)\n");
  EXPECT_EQ(r["structuredContent"],
            json::parse(R"({"columns":[{"name":"n","type":"integer","databaseType":"INTEGER"}],
                            "rows":[[1],[2]],"rowCount":2,"truncated":false})"));
  EXPECT_EQ(r["isError"], false);
  EXPECT_EQ(r["resultType"], "complete");
  EXPECT_EQ(r["_meta"][kServerInfoKey]["name"], "sluice");
  ASSERT_EQ(script().executed.size(), 1u);
  EXPECT_EQ(script().executed[0].sql, "SELECT n FROM t");
  EXPECT_TRUE(script().executed[0].params.empty());
}

TEST_F(McpEngineTest, ToolCallUsesTheNamedSource) {
  script(1).set_rows({{std::string("from other")}});
  script(1).columns = {fakes::column("s")};
  const json params = call_params("query", {{"sql", "SELECT s FROM t"}, {"source", "other"}});
  const Outcome o =
      handle(modern_request(1, "tools/call", params), modern_http("tools/call", "query"));
  EXPECT_EQ(result_of(o, 1)["structuredContent"]["rows"], json::parse(R"([["from other"]])"));
  EXPECT_TRUE(script(0).executed.empty());
  EXPECT_EQ(script(1).executed.size(), 1u);
}

TEST_F(McpEngineTest, DescribeTableBindsTheTableNameAsAParameter) {
  script().columns = {fakes::column("name"), fakes::column("nullable", pool::ColumnType::integer),
                      fakes::column("primary_key", pool::ColumnType::integer)};
  script().set_rows({{std::string("id"), std::int64_t{0}, std::int64_t{1}}});
  const json params = call_params("describe_table", {{"table", "x'; DROP TABLE t; --"}});
  const Outcome o =
      handle(modern_request(1, "tools/call", params), modern_http("tools/call", "describe_table"));
  const json r = result_of(o, 1);
  EXPECT_EQ(r["structuredContent"]["rows"], json::parse(R"([["id",false,true]])")) << o.body;
  ASSERT_EQ(script().executed.size(), 1u);
  EXPECT_EQ(script().executed[0].sql.find("DROP"), std::string::npos);
  ASSERT_FALSE(script().executed[0].params.empty());
  EXPECT_EQ(script().executed[0].params[0], pool::Param(std::string("x'; DROP TABLE t; --")));
}

TEST_F(McpEngineTest, DatabaseErrorIsAToolErrorResult) {
  script().error = std::make_exception_ptr(pool::DbError(
      pool::errc::statement_failed, "main", {"42P01", 7, "relation \"t\" does not exist"}));
  const Outcome o =
      handle(modern_request(1, "tools/call", kQuery), modern_http("tools/call", "query"));
  const json r = result_of(o, 1);
  EXPECT_EQ(r["isError"], true);
  EXPECT_FALSE(r.contains("structuredContent"));
  const std::string text = r["content"][0]["text"];
  EXPECT_NE(text.find("relation \"t\" does not exist"), std::string::npos) << text;
  EXPECT_NE(text.find("42P01"), std::string::npos) << text;
}

TEST_F(McpEngineTest, DatabaseErrorKindsAreExplainedToTheModel) {
  const std::vector<std::pair<pool::errc, std::string>> kinds = {
      {pool::errc::statement_timeout, "deadline"},
      {pool::errc::acquire_timeout, "busy"},
      {pool::errc::connection_lost, "retry"}};
  int id = 0;
  for (const auto& [kind, hint] : kinds) {
    script().error = std::make_exception_ptr(pool::DbError(kind, "main", {}));
    const Outcome o =
        handle(modern_request(++id, "tools/call", kQuery), modern_http("tools/call", "query"));
    const json r = result_of(o, id);
    EXPECT_EQ(r["isError"], true) << o.body;
    EXPECT_NE(r["content"][0]["text"].get<std::string>().find(hint), std::string::npos) << o.body;
  }
}

TEST_F(McpEngineTest, UnexpectedFailureIs500InternalErrorEchoingTheId) {
  script().error = std::make_exception_ptr(std::runtime_error("driver exploded: secret=hunter2"));
  const Outcome o =
      handle(modern_request("boom", "tools/call", kQuery), modern_http("tools/call", "query"));
  EXPECT_TRUE(is_error(o, 500, -32603, "boom"));
  EXPECT_EQ(o.body.find("hunter2"), std::string::npos) << "internals stay in the server log";
}

TEST_F(McpEngineTest, RejectedWriteInQueryIsAToolErrorAndNeverRuns) {
  const json params = call_params("query", {{"sql", "DELETE FROM t"}});
  const Outcome o =
      handle(modern_request(1, "tools/call", params), modern_http("tools/call", "query"));
  const json r = result_of(o, 1);
  EXPECT_EQ(r["isError"], true) << o.body;
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, ExecuteIsRefusedUnlessTheSourceAllowsWrites) {
  const json params = call_params("execute", {{"sql", "DELETE FROM t"}});
  const Outcome o =
      handle(modern_request(1, "tools/call", params), modern_http("tools/call", "execute"));
  const json r = result_of(o, 1);
  EXPECT_EQ(r["isError"], true) << o.body;
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, ArgumentErrorsAreToolErrors) {
  for (const json& args :
       {json{{"sql", 5}}, json::object(), json{{"sql", "SELECT 1"}, {"max_rows", 0}},
        json{{"sql", "SELECT 1"}, {"source", "nowhere"}}}) {
    const Outcome o = handle(modern_request(1, "tools/call", call_params("query", args)),
                             modern_http("tools/call", "query"));
    EXPECT_EQ(result_of(o, 1)["isError"], true) << args << ": " << o.body;
  }
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, RowLimitsComeFromTheSourceAndTheArguments) {
  std::vector<std::vector<pool::Param>> rows;
  for (std::int64_t i = 0; i < 30; ++i) rows.push_back({i});
  script().set_rows(rows);
  fake_.sources[0].limits.max_rows = 20;
  const json capped = result_of(
      handle(modern_request(1, "tools/call", kQuery), modern_http("tools/call", "query")), 1);
  EXPECT_EQ(capped["structuredContent"]["rowCount"], 20);
  EXPECT_EQ(capped["structuredContent"]["truncated"], true);
  const json params = call_params("query", {{"sql", "SELECT n FROM t"}, {"max_rows", 5}});
  const json fewer = result_of(
      handle(modern_request(2, "tools/call", params), modern_http("tools/call", "query")), 2);
  EXPECT_EQ(fewer["structuredContent"]["rowCount"], 5);
  const json params_more = call_params("query", {{"sql", "SELECT n FROM t"}, {"max_rows", 25}});
  const json not_more = result_of(
      handle(modern_request(3, "tools/call", params_more), modern_http("tools/call", "query")), 3);
  EXPECT_EQ(not_more["structuredContent"]["rowCount"], 20) << "the source's limit wins";
}

TEST_F(McpEngineTest, ModernNotificationIs202WithNoBody) {
  json params = {{"_meta", modern_meta()}, {"requestId", 99}};
  const Outcome o = handle(notification("notifications/cancelled", params),
                           modern_http("notifications/cancelled"));
  EXPECT_EQ(o.http_status, 202u);
  EXPECT_TRUE(o.body.empty()) << o.body;
}

// --- Legacy era over HTTP ---------------------------------------------------------------------

TEST_F(McpEngineTest, InitializeEchoesAServedVersionAndMintsAVisibleAsciiSession) {
  const Outcome o = handle(request(1, "initialize",
                                   {{"protocolVersion", "2025-06-18"},
                                    {"capabilities", json::object()},
                                    {"clientInfo", {{"name", "c"}, {"version", "1"}}}}),
                           legacy_http(std::nullopt, std::nullopt));
  EXPECT_FALSE(o.modern);
  const json r = result_of(o, 1);
  EXPECT_EQ(r["protocolVersion"], "2025-06-18");
  EXPECT_TRUE(r["capabilities"]["tools"].is_object());
  EXPECT_EQ(r["serverInfo"], json::parse(R"({"name":"sluice","version":"9.9.9"})"));
  EXPECT_EQ(r["instructions"], "Query the main warehouse.");
  EXPECT_FALSE(r.contains("resultType")) << "modern-only fields stay out of legacy results";
  EXPECT_FALSE(r.contains("ttlMs"));
  ASSERT_TRUE(o.session_id.has_value());
  EXPECT_TRUE(visible_ascii(*o.session_id)) << *o.session_id;
  EXPECT_GE(o.session_id->size(), 16u) << "unguessable";
  EXPECT_NE(*o.session_id, open_session()) << "every initialize gets its own session";
}

TEST_F(McpEngineTest, InitializeWithAnUnknownVersionAnswersTheNewestLegacyVersion) {
  for (const char* requested : {"1999-01-01", "2025-01-01", "2026-07-28"}) {
    const Outcome o =
        handle(request(1, "initialize",
                       {{"protocolVersion", requested}, {"capabilities", json::object()}}),
               legacy_http(std::nullopt, std::nullopt));
    EXPECT_EQ(result_of(o, 1)["protocolVersion"], "2025-11-25") << requested;
  }
}

TEST_F(McpEngineTest, InitializeWithoutProtocolVersionIsInvalidParams) {
  EXPECT_TRUE(is_error(handle(request("i", "initialize", {{"capabilities", json::object()}}),
                              legacy_http(std::nullopt, std::nullopt)),
                       200, -32602, "i"));
  EXPECT_TRUE(is_error(handle(request(2, "initialize", {{"protocolVersion", 20250618}}),
                              legacy_http(std::nullopt, std::nullopt)),
                       200, -32602, 2));
}

TEST_F(McpEngineTest, InitializeToleratesVersionAndMethodHeaders) {
  MessageContext ctx = legacy_http(std::nullopt, "2025-06-18");
  ctx.method_header = "initialize";
  const Outcome o =
      handle(request(1, "initialize",
                     {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}}),
             ctx);
  EXPECT_EQ(result_of(o, 1)["protocolVersion"], "2025-06-18");
  EXPECT_TRUE(o.session_id.has_value());
}

TEST_F(McpEngineTest, InitializeSentAsANotificationGetsNoResponse) {
  const Outcome o = handle(notification("initialize", {{"protocolVersion", "2025-06-18"},
                                                       {"capabilities", json::object()}}),
                           legacy_http(std::nullopt, std::nullopt));
  EXPECT_EQ(o.http_status, 202u);
  EXPECT_TRUE(o.body.empty()) << o.body;
  EXPECT_FALSE(o.session_id);
  ConnectionState state;
  handle(notification("initialize", {{"protocolVersion", "2025-06-18"}}), stdio(state));
  EXPECT_FALSE(state.initialized);
}

TEST_F(McpEngineTest, BatchesAreRejectedOutsideA20250326Session) {
  const std::string batch = "[" + request(1, "ping") + "]";
  EXPECT_TRUE(
      is_error(handle(batch, legacy_http(open_session("2025-06-18"))), 400, -32600, nullptr));
  EXPECT_TRUE(is_error(handle(batch, legacy_http(std::nullopt)), 400, -32600, nullptr));
}

TEST_F(McpEngineTest, BatchesAreAcceptedInsideA20250326Session) {
  const std::string session = open_session("2025-03-26");
  const std::string batch = "[" + request(1, "ping") + "," + request(2, "tools/list") + "," +
                            notification("notifications/initialized") + "]";
  const Outcome o = handle(batch, legacy_http(session, "2025-03-26"));
  EXPECT_EQ(o.http_status, 200u) << o.body;
  const json j = json::parse(o.body, nullptr, false);
  ASSERT_TRUE(j.is_array()) << o.body;
  ASSERT_EQ(j.size(), 2u) << "one response per request, none for the notification";
  EXPECT_EQ(j[0]["id"], 1);
  EXPECT_EQ(j[0]["result"], json::object());
  EXPECT_EQ(j[1]["id"], 2);
  EXPECT_EQ(j[1]["result"]["tools"].size(), 9u);
  const std::string only_notifications = "[" + notification("notifications/initialized") + "]";
  EXPECT_EQ(handle(only_notifications, legacy_http(session, "2025-03-26")).http_status, 202u);
}

TEST_F(McpEngineTest, SessionIdOpensLegacyRequests) {
  const std::string session = open_session();
  const Outcome o = handle(request(2, "tools/list"), legacy_http(session));
  const json r = result_of(o, 2);
  EXPECT_EQ(r["tools"].size(), 9u);
  EXPECT_FALSE(r.contains("ttlMs")) << "caching hints are modern-only";
  EXPECT_FALSE(r.contains("resultType"));
  EXPECT_FALSE(o.modern);
  EXPECT_FALSE(o.session_id) << "only initialize mints";
}

TEST_F(McpEngineTest, MissingSessionIs400) {
  EXPECT_TRUE(
      is_error(handle(request(3, "tools/list"), legacy_http(std::nullopt)), 400, -32000, 3));
  EXPECT_TRUE(is_error(handle(request(4, "ping"), legacy_http(std::nullopt)), 400, -32000, 4));
}

TEST_F(McpEngineTest, ForgedOrUnknownSessionIs404) {
  EXPECT_TRUE(
      is_error(handle(request(1, "tools/list"), legacy_http("not-a-session")), 404, -32000, 1));
  std::string tampered = open_session();
  tampered[tampered.size() / 3] = tampered[tampered.size() / 3] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(is_error(handle(request(2, "tools/list"), legacy_http(tampered)), 404, -32000, 2));
  // The same id signed by another key (another deployment) is unknown here.
  session::SessionTokens elsewhere(session::TokenSigner(std::string(32, 'z')),
                                   std::chrono::hours(1));
  EXPECT_TRUE(is_error(handle(request(3, "tools/list"), legacy_http(elsewhere.mint("2025-06-18"))),
                       404, -32000, 3));
}

TEST_F(McpEngineTest, EndedSessionIs404) {
  const std::string session = open_session();
  EXPECT_EQ(handle(request(1, "ping"), legacy_http(session)).http_status, 200u);
  ASSERT_TRUE(sessions_.end(session));
  EXPECT_TRUE(is_error(handle(request(2, "ping"), legacy_http(session)), 404, -32000, 2));
}

TEST_F(McpEngineTest, UnsupportedProtocolVersionHeaderIs400) {
  const std::string session = open_session();
  const Outcome old = handle(request(1, "tools/list"), legacy_http(session, "2024-11-05"));
  EXPECT_EQ(old.http_status, 400u) << old.body;
  EXPECT_EQ(json::parse(old.body)["id"], 1);
  const Outcome unknown = handle(request(2, "tools/list"), legacy_http(session, "1999-01-01"));
  EXPECT_EQ(unknown.http_status, 400u) << unknown.body;
  EXPECT_EQ(json::parse(unknown.body)["id"], 2);
}

TEST_F(McpEngineTest, MissingVersionHeaderKeepsTheNegotiatedRevision) {
  // The signed session carries the revision negotiated at initialize, so a request without
  // MCP-Protocol-Version still speaks it; 2025-03-26 is assumed only when nothing tells.
  const std::string old_session = open_session("2025-03-26");
  const Outcome old_bare =
      handle(request(3, "tools/call", kQuery), legacy_http(old_session, std::nullopt));
  EXPECT_FALSE(result_of(old_bare, 3).contains("structuredContent"))
      << "2025-03-26 has no structuredContent";

  const std::string session = open_session("2025-06-18");
  const Outcome bare = handle(request(1, "tools/call", kQuery), legacy_http(session, std::nullopt));
  const json r = result_of(bare, 1);
  EXPECT_EQ(r["isError"], false) << bare.body;
  EXPECT_EQ(r["content"][0]["type"], "text");
  EXPECT_TRUE(r["structuredContent"].is_object()) << "negotiated 2025-06-18";
  EXPECT_FALSE(r.contains("resultType"));

  const Outcome with = handle(request(2, "tools/call", kQuery), legacy_http(session, "2025-06-18"));
  const json r2 = result_of(with, 2);
  EXPECT_TRUE(r2["structuredContent"].is_object()) << with.body;
  EXPECT_EQ(r2["structuredContent"]["rowCount"], 2);
  EXPECT_FALSE(r2.contains("resultType")) << "resultType is modern-only";
  EXPECT_FALSE(r2.contains("_meta"));
}

TEST_F(McpEngineTest, PingAnswersEmptyAndUndeclaredLoggingIsMethodNotFound) {
  const std::string session = open_session();
  EXPECT_EQ(result_of(handle(request(1, "ping"), legacy_http(session)), 1), json::object());
  // The database tools send no log messages, so `logging` is not declared nor served.
  EXPECT_TRUE(
      is_error(handle(request(2, "logging/setLevel", {{"level", "info"}}), legacy_http(session)),
               200, -32601, 2));
}

TEST_F(McpEngineTest, InitializedNotificationIs202WithEmptyBody) {
  const std::string session = open_session();
  const Outcome o = handle(notification("notifications/initialized"), legacy_http(session));
  EXPECT_EQ(o.http_status, 202u);
  EXPECT_TRUE(o.body.empty()) << o.body;
  const Outcome bare =
      handle(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", legacy_http(session));
  EXPECT_EQ(bare.http_status, 202u);
  EXPECT_TRUE(bare.body.empty());
}

TEST_F(McpEngineTest, UnknownLegacyMethodIsMethodNotFoundWithHttp200) {
  const std::string session = open_session();
  EXPECT_TRUE(is_error(handle(request(7, "unknown/method"), legacy_http(session)), 200, -32601, 7));
  EXPECT_TRUE(is_error(handle(request(8, "prompts/list"), legacy_http(session)), 200, -32601, 8));
}

// --- stdio ------------------------------------------------------------------------------------

TEST_F(McpEngineTest, StdioRequestBeforeInitializeIsInvalidParams) {
  ConnectionState state;
  EXPECT_TRUE(is_error(handle(request(1, "tools/list"), stdio(state)), 200, -32602, 1));
  EXPECT_TRUE(is_error(handle(request(2, "tools/call", kQuery), stdio(state)), 200, -32602, 2));
  EXPECT_FALSE(state.initialized);
  EXPECT_TRUE(script().executed.empty());
}

TEST_F(McpEngineTest, StdioPingBeforeInitializeIsAnswered) {
  ConnectionState state;
  EXPECT_EQ(result_of(handle(request(1, "ping"), stdio(state)), 1), json::object());
}

TEST_F(McpEngineTest, StdioInitializeRecordsTheVersionAndOpensTheSession) {
  ConnectionState state;
  const Outcome init =
      handle(request(1, "initialize",
                     {{"protocolVersion", "2025-03-26"}, {"capabilities", json::object()}}),
             stdio(state));
  EXPECT_EQ(result_of(init, 1)["protocolVersion"], "2025-03-26");
  EXPECT_FALSE(init.session_id) << "stdio has no session ids";
  EXPECT_TRUE(state.initialized);
  EXPECT_EQ(state.protocol_version, "2025-03-26");
  EXPECT_EQ(handle(notification("notifications/initialized"), stdio(state)).http_status, 202u);
  const json tools = result_of(handle(request(2, "tools/list"), stdio(state)), 2);
  EXPECT_EQ(tools["tools"].size(), 9u);
  const json call = result_of(handle(request(3, "tools/call", kQuery), stdio(state)), 3);
  EXPECT_EQ(call["isError"], false);
  EXPECT_FALSE(call.contains("structuredContent")) << "negotiated 2025-03-26";
}

TEST_F(McpEngineTest, StdioDiscoverWorksWithoutInitialize) {
  ConnectionState state;
  const Outcome o = handle(modern_request(1, "server/discover"), stdio(state));
  EXPECT_EQ(result_of(o, 1)["resultType"], "complete");
  EXPECT_FALSE(state.initialized);
  const json r = result_of(handle(modern_request(2, "tools/call", kQuery), stdio(state)), 2);
  EXPECT_TRUE(r["structuredContent"].is_object()) << "modern stdio needs no headers";
}

// --- Cancellation -----------------------------------------------------------------------------

TEST_F(McpEngineTest, CancelledNotificationCancelsTheLegacyCallInItsScope) {
  script().wait = 10s;
  const std::string session = open_session();
  auto task = start(request(41, "tools/call", kQuery), keep(legacy_http(session)));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));

  const Outcome ack =
      handle(notification("notifications/cancelled", {{"requestId", 41}, {"reason", "user"}}),
             legacy_http(session));
  EXPECT_EQ(ack.http_status, 202u);
  EXPECT_TRUE(ack.body.empty());
  ASSERT_TRUE(run_until([&] { return task->done; }));
  ASSERT_TRUE(task->error) << "a cancelled call has no answer";
  try {
    std::rethrow_exception(task->error);
  } catch (const pool::DbError& e) {
    EXPECT_EQ(e.kind(), pool::errc::cancelled);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "want DbError(cancelled), got " << e.what();
  }
  EXPECT_EQ(script().cancelled, 1) << "the statement saw per-operation cancellation";
  EXPECT_EQ(script().completed, 0);
}

TEST_F(McpEngineTest, AnIdReusedWhileTheFirstCallRunsLeavesTheSecondCancellable) {
  script().wait = 10s;
  const std::string session = open_session();
  auto first = start(request(7, "tools/call", kQuery), keep(legacy_http(session)));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  auto second = start(request(7, "tools/call", kQuery), keep(legacy_http(session)));
  ASSERT_TRUE(run_until([&] { return script().waiting == 2; }));
  script().timers.front()->cancel();  // the first call's statement finishes
  ASSERT_TRUE(run_until([&] { return first->done; }));
  ASSERT_FALSE(first->error);

  handle(notification("notifications/cancelled", {{"requestId", 7}}), legacy_http(session));
  ASSERT_TRUE(run_until([&] { return second->done; }));
  EXPECT_TRUE(second->error) << "the second call was cancelled, not answered";
  EXPECT_EQ(script().cancelled, 1);
}

TEST_F(McpEngineTest, CancelledNotificationInAnotherScopeOrForAnotherIdCancelsNothing) {
  script().wait = 10s;
  const std::string session = open_session();
  const std::string other_session = open_session();
  auto task = start(request(41, "tools/call", kQuery), keep(legacy_http(session)));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));

  EXPECT_EQ(handle(notification("notifications/cancelled", {{"requestId", 41}}),
                   legacy_http(other_session))
                .http_status,
            202u);
  EXPECT_EQ(
      handle(notification("notifications/cancelled", {{"requestId", "41"}}), legacy_http(session))
          .http_status,
      202u)
      << "the string \"41\" is another id than the number 41";
  EXPECT_EQ(
      handle(notification("notifications/cancelled", {{"requestId", 42}}), legacy_http(session))
          .http_status,
      202u);
  expect_still_running_then_answered(task, 41);
}

TEST_F(McpEngineTest, CancellingAFinishedRequestIsHarmless) {
  const std::string session = open_session();
  EXPECT_EQ(handle(request(5, "tools/call", kQuery), legacy_http(session)).http_status, 200u);
  EXPECT_EQ(
      handle(notification("notifications/cancelled", {{"requestId", 5}}), legacy_http(session))
          .http_status,
      202u);
  EXPECT_EQ(handle(request(5, "tools/call", kQuery), legacy_http(session)).http_status, 200u)
      << "a reused id is not cancelled in advance";
  EXPECT_EQ(script().cancelled, 0);
}

TEST_F(McpEngineTest, StdioCancelledNotificationCancelsTheCall) {
  script().wait = 10s;
  ConnectionState state;
  handle(request(0, "initialize",
                 {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}}),
         stdio(state));
  auto task = start(request("slow", "tools/call", kQuery), keep(stdio(state)));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  handle(notification("notifications/cancelled", {{"requestId", "slow"}}), stdio(state));
  ASSERT_TRUE(run_until([&] { return task->done; }));
  EXPECT_TRUE(task->error);
  EXPECT_EQ(script().cancelled, 1);
}

TEST_F(McpEngineTest, ModernDisconnectCancelsTheCall) {
  script().wait = 10s;
  asio::cancellation_signal& disconnect = keep_signal();
  MessageContext& ctx = keep(modern_http("tools/call", "query"));
  ctx.disconnect = disconnect.slot();
  auto task = start(modern_request(1, "tools/call", kQuery), ctx);
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  disconnect.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return task->done; }));
  ASSERT_TRUE(task->error);
  try {
    std::rethrow_exception(task->error);
  } catch (const pool::DbError& e) {
    EXPECT_EQ(e.kind(), pool::errc::cancelled);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "want DbError(cancelled), got " << e.what();
  }
  EXPECT_EQ(script().cancelled, 1);
}

// HTTP/1.1 binds a RequestCancellation to each connection's coroutine, which runs its
// requests one after another: a call made there is cancelled in that coroutine's own
// cancellation state, and the coroutine's next call is served as if nothing happened.
TEST_F(McpEngineTest, ACallCancelledOnItsConnectionsCoroutineLeavesTheNextCallThereServed) {
  script().wait = 10s;
  const std::string session = open_session();
  auto cancellation = std::make_shared<transports::RequestCancellation>();
  MessageContext& ctx = keep(legacy_http(session));
  ctx.cancellation = cancellation;
  struct Connection {
    bool first_cancelled = false;
    std::optional<Outcome> second;
    bool done = false;
    std::exception_ptr error;
  };
  auto conn = std::make_shared<Connection>();
  auto serve = [](McpEngine& engine, MessageContext& context, const std::string& one,
                  const std::string& two, std::shared_ptr<Connection> c) -> asio::awaitable<void> {
    try {
      auto call = engine.handle(one, context, Notify{});
      co_await std::move(call);
    } catch (const pool::DbError& e) {
      c->first_cancelled = e.kind() == pool::errc::cancelled;
    }
    auto call = engine.handle(two, context, Notify{});
    c->second = co_await std::move(call);
  };
  const std::string& first = bodies_.emplace_back(request(41, "tools/call", kQuery));
  const std::string& second = bodies_.emplace_back(request(42, "tools/call", kQuery));
  asio::co_spawn(
      io_, serve(engine_, ctx, first, second, conn),
      asio::bind_cancellation_slot(cancellation->signal.slot(), [conn](std::exception_ptr e) {
        conn->done = true;
        conn->error = e;
      }));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  handle(notification("notifications/cancelled", {{"requestId", 41}}), legacy_http(session));
  ASSERT_TRUE(run_until([&] { return conn->first_cancelled; }));
  EXPECT_EQ(script().cancelled, 1) << "the statement saw per-operation cancellation";
  ASSERT_TRUE(run_until([&] {
    script().release();
    return conn->done;
  }));
  ASSERT_FALSE(conn->error) << "the connection's coroutine still holds the first cancel";
  ASSERT_TRUE(conn->second);
  EXPECT_EQ(result_of(*conn->second, 42)["isError"], false);
  EXPECT_EQ(script().cancelled, 1);
  EXPECT_EQ(script().completed, 1);
}

TEST(RequestCancellationTest, ACancelForARequestThatEndedReachesNeitherTheNextNorTheConnection) {
  transports::RequestCancellation c;
  int emitted = 0;
  c.signal.slot().assign([&](asio::cancellation_type) { ++emitted; });
  const std::uint64_t first = c.begin();
  c.end();
  c.cancel(first, asio::cancellation_type::terminal);  // between requests: the socket's reads
  EXPECT_EQ(emitted, 0);
  EXPECT_FALSE(c.fired);
  const std::uint64_t second = c.begin();
  c.cancel(first, asio::cancellation_type::terminal);
  EXPECT_EQ(emitted, 0) << "a late cancel of the first request reached the second";
  c.cancel(second, asio::cancellation_type::terminal);
  EXPECT_EQ(emitted, 1);
  EXPECT_TRUE(c.fired);
  c.end();
  c.begin();
  EXPECT_FALSE(c.fired) << "each request starts with no cancel";
}

// Stateless requests share no scope in which their ids mean anything: another client's
// notifications/cancelled with the same id must not reach a call (it ends by disconnect).
TEST_F(McpEngineTest, AModernCancelledNotificationCancelsNoOtherClientsStatelessCall) {
  script().wait = 10s;
  auto task =
      start(modern_request(1, "tools/call", kQuery), keep(modern_http("tools/call", "query")));
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  const json cancel = {{"jsonrpc", "2.0"},
                       {"method", "notifications/cancelled"},
                       {"params", {{"requestId", 1}, {"_meta", modern_meta()}}}};
  EXPECT_EQ(handle(cancel.dump(), modern_http("notifications/cancelled")).http_status, 202u);
  EXPECT_EQ(
      handle(notification("notifications/cancelled", {{"requestId", 1}}), legacy_http(std::nullopt))
          .http_status,
      400u)
      << "a legacy notification needs a session";
  expect_still_running_then_answered(task, 1);
}

TEST_F(McpEngineTest, LegacyDisconnectIsNotCancellation) {
  script().wait = 10s;
  const std::string session = open_session();
  asio::cancellation_signal& disconnect = keep_signal();
  MessageContext& ctx = keep(legacy_http(session));
  ctx.disconnect = disconnect.slot();
  auto task = start(request(1, "tools/call", kQuery), ctx);
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  disconnect.emit(asio::cancellation_type::terminal);
  expect_still_running_then_answered(task, 1);
}

TEST_F(McpEngineTest, ModernCallArmsTheTransportsDisconnectWatchAndIsCancelledByIt) {
  script().wait = 10s;
  asio::cancellation_signal& disconnect = keep_signal();
  MessageContext& ctx = keep(modern_http("tools/call", "query"));
  int armed = 0;
  ctx.watch_disconnect = [&] {
    ++armed;
    return disconnect.slot();
  };
  auto task = start(modern_request(1, "tools/call", kQuery), ctx);
  ASSERT_TRUE(run_until([&] { return script().waiting == 1; }));
  EXPECT_EQ(armed, 1);
  disconnect.emit(asio::cancellation_type::terminal);
  ASSERT_TRUE(run_until([&] { return task->done; }));
  EXPECT_TRUE(task->error) << "a closed stream cancels a modern call";
  EXPECT_EQ(script().cancelled, 1);
}

TEST_F(McpEngineTest, LegacyCallLeavesTheDisconnectWatchUnarmed) {
  // Watching costs the transport a system call per request, and a legacy call goes on when
  // its stream closes, so the engine never asks for the watch.
  const std::string session = open_session();
  MessageContext ctx = legacy_http(session);
  int armed = 0;
  ctx.watch_disconnect = [&] {
    ++armed;
    return asio::cancellation_slot();
  };
  const Outcome o = handle(request(1, "tools/call", kQuery), ctx);
  EXPECT_EQ(result_of(o, 1)["isError"], false);
  EXPECT_EQ(armed, 0);
}

TEST_F(McpEngineTest, DisconnectAfterTheCallFinishedIsHarmless) {
  asio::cancellation_signal disconnect;
  MessageContext ctx = modern_http("tools/call", "query");
  ctx.disconnect = disconnect.slot();
  const Outcome o = handle(modern_request(1, "tools/call", kQuery), ctx);
  EXPECT_EQ(result_of(o, 1)["isError"], false);
  disconnect.emit(asio::cancellation_type::terminal);  // the engine left nothing behind
  io_.restart();
  io_.poll();
  EXPECT_FALSE(disconnect.slot().has_handler());
}

// --- Progress ---------------------------------------------------------------------------------

struct ProgressLog {
  std::vector<json> messages;
  bool after_response = false;
};

TEST_F(McpEngineTest, ProgressNotificationsIncreaseAndPrecedeTheResponse) {
  std::vector<std::vector<pool::Param>> rows;
  for (std::int64_t i = 0; i < 2'500; ++i) rows.push_back({i});
  script().set_rows(rows);
  const std::string session = open_session();
  json params = kQuery;
  params["_meta"] = {{"progressToken", "tok-1"}};
  ProgressLog log;
  std::shared_ptr<Task<Outcome>> task;
  task =
      start(request(1, "tools/call", params), keep(legacy_http(session)), [&](std::string message) {
        log.messages.push_back(json::parse(message));
        if (task->done) log.after_response = true;
      });
  ASSERT_TRUE(run_until([&] { return task->done; }));
  io_.restart();
  io_.poll();  // anything still queued would arrive late
  ASSERT_FALSE(task->error);
  EXPECT_EQ(result_of(*task->value, 1)["structuredContent"]["rowCount"], 2'500);
  ASSERT_GE(log.messages.size(), 2u);
  double last = 0;
  for (const auto& m : log.messages) {
    EXPECT_EQ(m["jsonrpc"], "2.0");
    EXPECT_EQ(m["method"], "notifications/progress");
    EXPECT_FALSE(m.contains("id")) << "a notification";
    EXPECT_EQ(m["params"]["progressToken"], "tok-1");
    ASSERT_TRUE(m["params"]["progress"].is_number()) << m;
    EXPECT_GT(m["params"]["progress"].get<double>(), last) << "strictly increasing";
    last = m["params"]["progress"].get<double>();
  }
  EXPECT_LE(last, 2'500);
  EXPECT_FALSE(log.after_response) << "progress stops with the response";
}

TEST_F(McpEngineTest, ModernProgressKeepsAnIntegerToken) {
  std::vector<std::vector<pool::Param>> rows;
  for (std::int64_t i = 0; i < 1'500; ++i) rows.push_back({i});
  script().set_rows(rows);
  json params = kQuery;
  params["_meta"] = {{"progressToken", 17}};
  std::vector<json> messages;
  auto task =
      start(modern_request(1, "tools/call", params), keep(modern_http("tools/call", "query")),
            [&](std::string m) { messages.push_back(json::parse(m)); });
  ASSERT_TRUE(run_until([&] { return task->done; }));
  io_.restart();
  io_.poll();
  ASSERT_FALSE(task->error);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0]["params"]["progressToken"], 17);
  EXPECT_TRUE(messages[0]["params"]["progressToken"].is_number_integer());
}

TEST_F(McpEngineTest, NoProgressWithoutAToken) {
  std::vector<std::vector<pool::Param>> rows;
  for (std::int64_t i = 0; i < 2'500; ++i) rows.push_back({i});
  script().set_rows(rows);
  int notified = 0;
  auto task = start(modern_request(1, "tools/call", kQuery),
                    keep(modern_http("tools/call", "query")), [&](std::string) { ++notified; });
  ASSERT_TRUE(run_until([&] { return task->done; }));
  io_.restart();
  io_.poll();
  EXPECT_EQ(notified, 0);
}

}  // namespace
}  // namespace sluice::gateway
