// McpEngine with providers other than the database tools: server-to-client requests
// (sampling/elicitation in legacy sessions), required client capabilities (-32021), log
// messages in both eras, resources. The conformance suite checks the same wire end to end;
// these tests pin the rules it cannot reach (scopes, refusals, cancellation, levels).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/mcp_engine.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

constexpr const char* kModern = "2026-07-28";

class TestTools final : public ToolProvider {
 public:
  TestTools() {
    definitions_ = json::array({
                                   {{"name", "ask"}, {"description", "asks the client"}},
                                   {{"name", "needs_sampling"}, {"description", "needs sampling"}},
                                   {{"name", "logs"}, {"description", "logs at two levels"}},
                                   {{"name", "needs_input"}, {"description", "asks first"}},
                               })
                       .dump();
  }
  const std::string& definitions() const noexcept override { return definitions_; }
  bool has(std::string_view name) const noexcept override {
    return name == "ask" || name == "needs_sampling" || name == "logs" || name == "needs_input";
  }
  const json* required_capabilities(std::string_view name) const noexcept override {
    return name == "needs_sampling" ? &sampling_ : nullptr;
  }
  asio::awaitable<ToolResult> call(std::string name, ToolCall& call) override {
    ToolResult r;
    if (name == "ask") {
      if (!call.ask) {
        r.is_error = true;
        r.text = "no way to ask";
        co_return r;
      }
      try {
        // Named first: g++ 12 copies temporaries built inside a co_await expression bitwise.
        std::string method = "sampling/createMessage";
        json params = {{"maxTokens", 5}};
        const json answer = co_await call.ask(std::move(method), std::move(params));
        r.text = "answer: " + answer.dump();
      } catch (const ClientRequestError& e) {
        r.is_error = true;
        r.text = e.what();
      }
      co_return r;
    }
    if (name == "needs_input") {
      if (call.input_responses != nullptr && call.input_responses->contains("x")) {
        r.text = "got " + (*call.input_responses)["x"].dump() + " with state " + call.request_state;
      } else {
        r.input_requests = R"({"x":{"method":"roots/list","params":{}}})";
        r.request_state = "step-1";
      }
      co_return r;
    }
    if (name == "logs" && call.log) log_twice(call);
    r.text = "done";
    co_return r;
  }

 private:
  // Outside the coroutine: g++ 12 mishandles string literals turned into temporaries there.
  static void log_twice(ToolCall& call) {
    call.log(LogLevel::debug, json("quiet detail"));
    call.log(LogLevel::error, json("loud failure"));
  }

  std::string definitions_;
  json sampling_ = {{"sampling", json::object()}};
};

class TestResources final : public ResourceProvider {
 public:
  const std::string& resources() const noexcept override { return list_; }
  const std::string& templates() const noexcept override { return templates_; }
  asio::awaitable<std::optional<std::string>> read(std::string uri) override {
    if (uri != "test://one") co_return std::nullopt;
    co_return R"([{"uri":"test://one","mimeType":"text/plain","text":"one"}])";
  }
  bool subscribable() const noexcept override { return true; }

 private:
  std::string list_ = R"([{"uri":"test://one","name":"one"}])";
  std::string templates_ = "[]";
};

struct Task {
  bool done = false;
  Outcome outcome;
  std::exception_ptr error;
};

class McpProvidersTest : public ::testing::Test {
 protected:
  McpProvidersTest()
      : sessions_(session::TokenSigner(std::string(32, 'k')), std::chrono::hours(1)),
        engine_(tools_, sessions_, params()) {}

  McpEngine::Params params() {
    McpEngine::Params p;
    p.name = "test";
    p.version = "1";
    p.resources = &resources_;
    p.logging = true;
    p.state_signer = &state_signer_;
    return p;
  }

  bool run_until(const std::function<bool()>& done) {
    const auto limit = std::chrono::steady_clock::now() + 5s;
    io_.restart();
    while (!done()) {
      if (std::chrono::steady_clock::now() > limit) return false;
      io_.run_one_for(10ms);
    }
    return true;
  }

  // Runs whatever is ready or becomes ready within 100 ms.
  void settle() {
    io_.restart();
    io_.run_for(100ms);
  }

  // Starts handle(); `ctx` and the body are kept by the fixture. Notifications land in `sent`.
  std::shared_ptr<Task> start(std::string body, MessageContext ctx,
                              std::vector<std::string>* sent = nullptr) {
    auto task = std::make_shared<Task>();
    MessageContext& kept_ctx = contexts_.emplace_back(std::move(ctx));
    const std::string& kept = bodies_.emplace_back(std::move(body));
    Notify notify;
    if (sent != nullptr) notify = [sent](std::string m) { sent->push_back(std::move(m)); };
    asio::co_spawn(io_, engine_.handle(kept, kept_ctx, std::move(notify)),
                   [task](std::exception_ptr e, Outcome o) {
                     task->done = true;
                     task->error = e;
                     task->outcome = std::move(o);
                   });
    return task;
  }

  Outcome handle(std::string body, MessageContext ctx, std::vector<std::string>* sent = nullptr) {
    auto task = start(std::move(body), std::move(ctx), sent);
    EXPECT_TRUE(run_until([&] { return task->done; }));
    if (task->error) std::rethrow_exception(task->error);
    return task->outcome;
  }

  static MessageContext legacy(const std::string& session) {
    MessageContext ctx;
    ctx.transport = Transport::http;
    ctx.session_id = session;
    ctx.cancel_scope = session;
    return ctx;
  }

  static MessageContext modern(const std::string& method, std::optional<std::string> name = {}) {
    MessageContext ctx;
    ctx.transport = Transport::http;
    ctx.protocol_version_header = kModern;
    ctx.method_header = method;
    ctx.name_header = std::move(name);  // stateless: no cancel scope
    return ctx;
  }

  static std::string request(const json& id, const std::string& method,
                             json params = json::object()) {
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
  }

  static std::string modern_request(const json& id, const std::string& method, json params,
                                    json capabilities = json::object(), json extra_meta = {}) {
    json meta = {{"io.modelcontextprotocol/protocolVersion", kModern},
                 {"io.modelcontextprotocol/clientCapabilities", std::move(capabilities)},
                 {"io.modelcontextprotocol/clientInfo", {{"name", "alice"}, {"version", "1"}}}};
    if (extra_meta.is_object()) meta.update(extra_meta);
    params["_meta"] = meta;
    return request(id, method, std::move(params));
  }

  std::string open_session() {
    const Outcome o = handle(request(0, "initialize",
                                     {{"protocolVersion", "2025-11-25"},
                                      {"capabilities", {{"sampling", json::object()}}},
                                      {"clientInfo", {{"name", "t"}, {"version", "1"}}}}),
                             legacy(""));
    EXPECT_TRUE(o.session_id) << o.body;
    return o.session_id.value_or("");
  }

  // The JSON messages in `sent` whose method is `method`.
  static std::vector<json> with_method(const std::vector<std::string>& sent,
                                       const std::string& method) {
    std::vector<json> out;
    for (const auto& s : sent) {
      json j = json::parse(s);
      if (j.value("method", "") == method) out.push_back(std::move(j));
    }
    return out;
  }

  asio::io_context io_;
  session::TokenSigner state_signer_{std::string(32, 's')};
  TestTools tools_;
  TestResources resources_;
  session::SessionTokens sessions_;
  McpEngine engine_;
  std::deque<MessageContext> contexts_;
  std::deque<std::string> bodies_;
};

TEST_F(McpProvidersTest, SamplingRequestIsAnsweredOnlyFromItsOwnSession) {
  const std::string mine = open_session();
  const std::string other = open_session();
  std::vector<std::string> sent;
  auto call = start(request(1, "tools/call", {{"name", "ask"}}), legacy(mine), &sent);
  ASSERT_TRUE(run_until([&] { return !sent.empty(); }));
  const json asked = json::parse(sent.front());
  ASSERT_EQ(asked.value("method", ""), "sampling/createMessage") << sent.front();
  EXPECT_EQ(asked["params"]["maxTokens"], 5);
  ASSERT_TRUE(asked.contains("id"));

  // Another session answering the same id is ignored (202, and the call keeps waiting).
  const json forged = {{"jsonrpc", "2.0"}, {"id", asked["id"]}, {"result", {{"model", "evil"}}}};
  EXPECT_EQ(handle(forged.dump(), legacy(other)).http_status, 202u);
  settle();  // let anything misrouted arrive
  EXPECT_FALSE(call->done);

  const json answer = {{"jsonrpc", "2.0"}, {"id", asked["id"]}, {"result", {{"model", "good"}}}};
  EXPECT_EQ(handle(answer.dump(), legacy(mine)).http_status, 202u);
  ASSERT_TRUE(run_until([&] { return call->done; }));
  ASSERT_FALSE(call->error);
  const json r = json::parse(call->outcome.body)["result"];
  EXPECT_EQ(r["isError"], false) << call->outcome.body;
  EXPECT_EQ(r["content"][0]["text"], R"(answer: {"model":"good"})");
}

TEST_F(McpProvidersTest, ClientRefusalBecomesAToolError) {
  const std::string session = open_session();
  std::vector<std::string> sent;
  auto call = start(request(1, "tools/call", {{"name", "ask"}}), legacy(session), &sent);
  ASSERT_TRUE(run_until([&] { return !sent.empty(); }));
  const json asked = json::parse(sent.front());
  const json refusal = {{"jsonrpc", "2.0"},
                        {"id", asked["id"]},
                        {"error", {{"code", -1}, {"message", "User rejected sampling request"}}}};
  handle(refusal.dump(), legacy(session));
  ASSERT_TRUE(run_until([&] { return call->done; }));
  const json r = json::parse(call->outcome.body)["result"];
  EXPECT_EQ(r["isError"], true);
  EXPECT_NE(r["content"][0]["text"].get<std::string>().find("User rejected sampling request"),
            std::string::npos)
      << r.dump();
}

TEST_F(McpProvidersTest, CancellingWhileWaitingForTheClientEndsTheCall) {
  const std::string session = open_session();
  std::vector<std::string> sent;
  auto call = start(request(7, "tools/call", {{"name", "ask"}}), legacy(session), &sent);
  ASSERT_TRUE(run_until([&] { return !sent.empty(); }));
  handle(
      json{
          {"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 7}}}}
          .dump(),
      legacy(session));
  ASSERT_TRUE(run_until([&] { return call->done; }));
  ASSERT_TRUE(call->error) << "a cancelled request has no answer: " << call->outcome.body;
  EXPECT_THROW(std::rethrow_exception(call->error), pool::DbError);
}

TEST_F(McpProvidersTest, ModernEraHasNoServerToClientRequests) {
  std::vector<std::string> sent;
  const Outcome o =
      handle(modern_request(1, "tools/call", {{"name", "ask"}}, {{"sampling", json::object()}}),
             modern("tools/call", "ask"), &sent);
  const json r = json::parse(o.body)["result"];
  EXPECT_EQ(r["isError"], true) << o.body;
  EXPECT_TRUE(sent.empty()) << "a modern response stream never carries a request";
}

TEST_F(McpProvidersTest, MissingRequiredCapabilityIs400With32021) {
  const Outcome refused = handle(modern_request("a", "tools/call", {{"name", "needs_sampling"}}),
                                 modern("tools/call", "needs_sampling"));
  EXPECT_EQ(refused.http_status, 400u);
  const json e = json::parse(refused.body);
  EXPECT_EQ(e["id"], "a");
  EXPECT_EQ(e["error"]["code"], -32021);
  EXPECT_EQ(e["error"]["data"]["requiredCapabilities"], json({{"sampling", json::object()}}));

  const Outcome served = handle(modern_request("b", "tools/call", {{"name", "needs_sampling"}},
                                               {{"sampling", json::object()}}),
                                modern("tools/call", "needs_sampling"));
  EXPECT_EQ(served.http_status, 200u) << served.body;
  EXPECT_EQ(json::parse(served.body)["result"]["isError"], false);
}

TEST_F(McpProvidersTest, ModernLogsOnlyWhenTheRequestAsksAndAtItsLevel) {
  std::vector<std::string> quiet;
  handle(modern_request(1, "tools/call", {{"name", "logs"}}), modern("tools/call", "logs"), &quiet);
  settle();
  EXPECT_TRUE(with_method(quiet, "notifications/message").empty());

  std::vector<std::string> sent;
  handle(modern_request(2, "tools/call", {{"name", "logs"}}, json::object(),
                        {{"io.modelcontextprotocol/logLevel", "info"}}),
         modern("tools/call", "logs"), &sent);
  run_until([&] { return !sent.empty(); });
  const auto logs = with_method(sent, "notifications/message");
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(logs[0]["params"]["level"], "error");
  EXPECT_EQ(logs[0]["params"]["data"], "loud failure");

  const Outcome bad = handle(modern_request(3, "tools/call", {{"name", "logs"}}, json::object(),
                                            {{"io.modelcontextprotocol/logLevel", "loud"}}),
                             modern("tools/call", "logs"));
  EXPECT_EQ(json::parse(bad.body)["error"]["code"], -32602) << bad.body;
}

TEST_F(McpProvidersTest, LegacySetLevelFiltersLogMessagesPerSession) {
  const std::string session = open_session();
  const std::string silent = open_session();
  EXPECT_EQ(handle(request(1, "logging/setLevel", {{"level", "nonsense"}}), legacy(session))
                    .body.find("-32602") != std::string::npos,
            true);
  handle(request(2, "logging/setLevel", {{"level", "debug"}}), legacy(session));
  std::vector<std::string> sent;
  handle(request(3, "tools/call", {{"name", "logs"}}), legacy(session), &sent);
  run_until([&] { return sent.size() >= 2; });
  EXPECT_EQ(with_method(sent, "notifications/message").size(), 2u);

  std::vector<std::string> none;
  handle(request(4, "tools/call", {{"name", "logs"}}), legacy(silent), &none);
  settle();
  EXPECT_TRUE(with_method(none, "notifications/message").empty())
      << "a session that never set a level gets no log messages";
}

TEST_F(McpProvidersTest, ResourcesInBothEras) {
  const std::string session = open_session();
  const json unknown = json::parse(
      handle(request(1, "resources/read", {{"uri", "test://nope"}}), legacy(session)).body);
  EXPECT_EQ(unknown["error"]["code"], -32602);
  EXPECT_EQ(unknown["error"]["data"]["uri"], "test://nope");
  EXPECT_EQ(json::parse(
                handle(request(2, "resources/subscribe", {{"uri", "test://one"}}), legacy(session))
                    .body)["result"],
            json::object());

  const Outcome read = handle(modern_request(3, "resources/read", {{"uri", "test://one"}}),
                              modern("resources/read"));
  const json r = json::parse(read.body)["result"];
  EXPECT_EQ(r["contents"][0]["text"], "one");
  EXPECT_TRUE(r["ttlMs"].is_number_integer()) << read.body;
  EXPECT_EQ(r["resultType"], "complete");
  // Subscriptions need a session: not served in the stateless revision.
  const Outcome sub = handle(modern_request(4, "resources/subscribe", {{"uri", "test://one"}}),
                             modern("resources/subscribe"));
  EXPECT_EQ(sub.http_status, 404u);
  // Declared in both eras.
  const json discover = json::parse(
      handle(modern_request(5, "server/discover", json::object()), modern("server/discover"))
          .body)["result"]["capabilities"];
  EXPECT_TRUE(discover.contains("resources"));
  EXPECT_TRUE(discover.contains("logging"));
  EXPECT_FALSE(discover.contains("prompts"));
}

TEST_F(McpProvidersTest, InputRequiredRoundTripsASignedStateBoundToClientAndTool) {
  const json first = json::parse(handle(modern_request(1, "tools/call", {{"name", "needs_input"}}),
                                        modern("tools/call", "needs_input"))
                                     .body)["result"];
  ASSERT_EQ(first["resultType"], "input_required") << first.dump();
  EXPECT_EQ(first["inputRequests"]["x"]["method"], "roots/list");
  ASSERT_TRUE(first["requestState"].is_string());
  EXPECT_FALSE(first.contains("content")) << "an input_required result is not a tool result";
  const std::string state = first["requestState"];
  EXPECT_EQ(state.find("step-1"), std::string::npos) << "the state is opaque to the client";

  const json answer = {{"x", {{"roots", json::array()}}}};
  const json done = json::parse(
      handle(modern_request(
                 2, "tools/call",
                 {{"name", "needs_input"}, {"inputResponses", answer}, {"requestState", state}}),
             modern("tools/call", "needs_input"))
          .body)["result"];
  EXPECT_EQ(done["resultType"], "complete");
  EXPECT_EQ(done["content"][0]["text"], R"(got {"roots":[]} with state step-1)");

  std::string altered = state;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  const json tampered = json::parse(
      handle(modern_request(
                 3, "tools/call",
                 {{"name", "needs_input"}, {"inputResponses", answer}, {"requestState", altered}}),
             modern("tools/call", "needs_input"))
          .body);
  EXPECT_EQ(tampered["error"]["code"], -32602) << tampered.dump();

  // The same state presented by another client is refused too.
  json params = {{"name", "needs_input"}, {"inputResponses", answer}, {"requestState", state}};
  json request = json::parse(modern_request(4, "tools/call", params));
  request["params"]["_meta"]["io.modelcontextprotocol/clientInfo"]["name"] = "mallory";
  const json borrowed =
      json::parse(handle(request.dump(), modern("tools/call", "needs_input")).body);
  EXPECT_EQ(borrowed["error"]["code"], -32602) << borrowed.dump();
}

TEST_F(McpProvidersTest, LegacyClientsGetAToolErrorInsteadOfInputRequired) {
  const std::string session = open_session();
  const json r = json::parse(
      handle(request(1, "tools/call", {{"name", "needs_input"}}), legacy(session)).body)["result"];
  EXPECT_EQ(r["isError"], true) << r.dump();
  EXPECT_FALSE(r.contains("inputRequests"));
}

}  // namespace
}  // namespace sluice::gateway
