#include "tests/conformance/fixtures.hpp"

#include <chrono>
#include <fstream>
#include <stdexcept>

namespace sluice::conformance {
namespace {

using json = nlohmann::json;
using gateway::ToolRequestError;

constexpr auto kStep = std::chrono::milliseconds(50);

// The value of an argument as text: strings as they are, anything else as JSON.
std::string as_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Replaces {name} in every string of `v` by the value of `vars[name]`.
json substitute(json v, const json& vars) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    for (const auto& [name, value] : vars.items()) {
      const std::string pattern = "{" + name + "}";
      const std::string text = as_text(value);
      for (auto pos = s.find(pattern); pos != std::string::npos;
           pos = s.find(pattern, pos + text.size())) {
        s.replace(pos, pattern.size(), text);
      }
    }
    return s;
  }
  if (v.is_structured()) {
    for (auto& element : v) element = substitute(std::move(element), vars);
  }
  return v;
}

// Matches `uri` against an RFC 6570 level-1 template such as test://template/{id}/data; the
// variables, or nullopt. A variable matches one or more characters other than '/'.
std::optional<json> match_template(std::string_view tmpl, std::string_view uri) {
  json vars = json::object();
  std::size_t t = 0;
  std::size_t u = 0;
  while (t < tmpl.size()) {
    if (tmpl[t] != '{') {
      if (u >= uri.size() || uri[u] != tmpl[t]) return std::nullopt;
      ++t;
      ++u;
      continue;
    }
    const auto close = tmpl.find('}', t);
    if (close == std::string_view::npos) return std::nullopt;
    const std::string name(tmpl.substr(t + 1, close - t - 1));
    t = close + 1;
    const char stop = t < tmpl.size() ? tmpl[t] : '\0';
    std::size_t end = u;
    while (end < uri.size() && uri[end] != '/' && uri[end] != stop) ++end;
    if (end == u) return std::nullopt;
    vars[name] = std::string(uri.substr(u, end - u));
    u = end;
  }
  if (u != uri.size()) return std::nullopt;
  return vars;
}

// The definition a client sees: the entry without the keys that say what a call does.
json definition(json entry, std::initializer_list<const char*> private_keys) {
  for (const char* key : private_keys) entry.erase(key);
  return entry;
}

// The client capability a server-to-client method needs.
std::string capability_of(const std::string& method) {
  if (method == "elicitation/create") return "elicitation";
  if (method == "sampling/createMessage") return "sampling";
  if (method == "roots/list") return "roots";
  return {};
}

// Whether `answer` has the shape of a result of `method`; when it does, adds what later text
// may name as {key.field} to `vars`.
bool take_answer(const std::string& key, const std::string& method, const json& answer,
                 json& vars) {
  if (!answer.is_object()) return false;
  if (method == "elicitation/create") {
    auto action = answer.find("action");
    if (action == answer.end() || !action->is_string()) return false;
    vars[key + ".action"] = *action;
    if (*action == "accept") {
      auto content = answer.find("content");
      if (content == answer.end() || !content->is_object()) return false;
      for (const auto& [field, value] : content->items()) vars[key + "." + field] = value;
    }
    return true;
  }
  if (method == "sampling/createMessage") {
    auto content = answer.find("content");
    if (content == answer.end() || !content->is_object()) return false;
    vars[key + ".text"] = content->value("text", "");
    return true;
  }
  if (method == "roots/list") {
    auto roots = answer.find("roots");
    if (roots == answer.end() || !roots->is_array()) return false;
    vars[key + ".roots"] = roots->size();
    return true;
  }
  return true;
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

Fixtures::Fixtures(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read fixtures from " + file.string());
  doc_ = json::parse(in);
  json tools = json::array();
  for (const auto& t : doc_.at("tools")) {
    tools.push_back(definition(t, {"content", "isError", "log", "progress", "total", "ask", "reply",
                                   "requires", "rounds"}));
  }
  tool_definitions_ = tools.dump();
  resource_list_ = doc_.at("resources").dump();
  json templates = json::array();
  for (const auto& t : doc_.at("templates")) templates.push_back(definition(t, {"contents"}));
  template_list_ = templates.dump();
  json prompts = json::array();
  for (auto p : doc_.at("prompts")) {
    p.erase("messages");
    for (auto& a : p["arguments"]) a.erase("values");
    if (p["arguments"].empty()) p.erase("arguments");
    prompts.push_back(std::move(p));
  }
  prompt_list_ = prompts.dump();
}

const json* Fixtures::find(const json& list, std::string_view name) const {
  for (const auto& entry : list) {
    if (entry.at("name").get_ref<const std::string&>() == name) return &entry;
  }
  return nullptr;
}

bool Fixtures::has(std::string_view name) const noexcept {
  return find(doc_.at("tools"), name) != nullptr;
}

const json* Fixtures::required_capabilities(std::string_view name) const noexcept {
  const json* tool = find(doc_.at("tools"), name);
  if (tool == nullptr) return nullptr;
  auto it = tool->find("requires");
  return it == tool->end() ? nullptr : &*it;
}

asio::awaitable<gateway::ToolResult> Fixtures::call(std::string name, gateway::ToolCall& call) {
  const json* tool = find(doc_.at("tools"), name);
  if (tool == nullptr) throw ToolRequestError("unknown tool '" + name + "'");
  const json& schema = tool->at("inputSchema");
  if (auto required = schema.find("required"); required != schema.end()) {
    for (const auto& field : *required) {
      if (!call.arguments.contains(field.get<std::string>())) {
        throw ToolRequestError("arguments." + field.get<std::string>() + " is required");
      }
    }
  }

  if (auto log = tool->find("log"); log != tool->end() && call.log) {
    for (std::size_t i = 0; i < log->size(); ++i) {
      if (i > 0) co_await pause(kStep);
      call.log(gateway::LogLevel::info, (*log)[i]);
    }
  }
  if (auto steps = tool->find("progress"); steps != tool->end() && call.progress) {
    const double total = tool->value("total", 100.0);
    for (std::size_t i = 0; i < steps->size(); ++i) {
      if (i > 0) co_await pause(kStep);
      const double step = (*steps)[i].get<double>();
      call.progress(step, total,
                    "Completed step " + (*steps)[i].dump() + " of " + tool->at("total").dump());
    }
  }

  gateway::ToolResult result;
  if (auto rounds = tool->find("rounds"); rounds != tool->end()) {
    co_return input_round(*tool, call);
  }
  if (auto ask = tool->find("ask"); ask != tool->end()) {
    if (!call.ask) {
      result.is_error = true;
      result.text =
          "This tool asks the client a question, which needs a session (initialize) "
          "or a connection; this request has neither.";
      co_return result;
    }
    std::string method = ask->at("method").get<std::string>();
    json params = substitute(ask->at("params"), call.arguments);
    const std::string reply = tool->value("reply", std::string("Answer"));
    try {
      const json answer = co_await call.ask(method, std::move(params));
      if (method == "sampling/createMessage") {
        const json& content = answer.contains("content") ? answer["content"] : json();
        result.text = reply + ": " +
                      (content.is_object() && content.contains("text") ? as_text(content["text"])
                                                                       : answer.dump());
      } else {
        result.text = reply + ": action=" + as_text(answer.value("action", json("none"))) +
                      ", content=" + answer.value("content", json::object()).dump();
      }
    } catch (const gateway::ClientRequestError& e) {
      result.is_error = true;
      result.text = e.what();
    }
    co_return result;
  }
  result.content = tool->at("content").dump();
  result.is_error = tool->value("isError", false);
  co_return result;
}

// Multi-round-trip input (2026-07-28): "rounds" lists what each round asks of the client.
// The state names the round awaiting answers; a round is done when every request it made
// was answered in the right shape, otherwise it is asked again. Requests the client has no
// capability for are left out. After the last round the tool answers with its content, in
// which {key.field} names an answer.
gateway::ToolResult Fixtures::input_round(const json& tool, const gateway::ToolCall& call) const {
  const json& rounds = tool.at("rounds");
  std::size_t round = 0;
  if (call.request_state.starts_with("round=")) {
    round = static_cast<std::size_t>(std::stoul(call.request_state.substr(6)));
  }
  json vars = json::object();
  auto requests_of = [&](std::size_t r) {
    json requests = json::object();
    for (const auto& [key, request] : rounds.at(r).items()) {
      const std::string cap = capability_of(request.at("method").get<std::string>());
      if (!cap.empty() && !call.client_capabilities.contains(cap)) continue;
      requests[key] = request;
    }
    return requests;
  };
  if (round < rounds.size() && call.input_responses != nullptr) {
    bool answered = true;
    const json requests = requests_of(round);
    for (const auto& [key, request] : requests.items()) {
      auto answer = call.input_responses->find(key);
      if (answer == call.input_responses->end() ||
          !take_answer(key, request.at("method").get<std::string>(), *answer, vars)) {
        answered = false;
      }
    }
    if (answered) ++round;  // extra, unrequested answers are ignored
  }
  gateway::ToolResult result;
  if (round < rounds.size()) {
    const json requests = requests_of(round);
    if (requests.empty()) {
      result.is_error = true;
      result.text =
          "This tool needs a client capability the request does not declare "
          "(elicitation, sampling or roots).";
      return result;
    }
    result.input_requests = requests.dump();
    result.request_state = "round=" + std::to_string(round);
    return result;
  }
  result.content = substitute(tool.at("content"), vars).dump();
  return result;
}

asio::awaitable<std::optional<std::string>> Fixtures::read(std::string uri) {
  const json& contents = doc_.at("contents");
  if (auto it = contents.find(uri); it != contents.end()) co_return it->dump();
  for (const auto& t : doc_.at("templates")) {
    if (auto vars = match_template(t.at("uriTemplate").get<std::string>(), uri)) {
      (*vars)["uri"] = uri;
      co_return substitute(t.at("contents"), *vars).dump();
    }
  }
  co_return std::nullopt;
}

asio::awaitable<std::string> Fixtures::get(std::string name, const json& arguments) {
  const json* prompt = find(doc_.at("prompts"), name);
  if (prompt == nullptr) throw ToolRequestError("unknown prompt '" + name + "'");
  if (auto args = prompt->find("arguments"); args != prompt->end()) {
    for (const auto& a : *args) {
      const std::string& arg = a.at("name").get_ref<const std::string&>();
      if (a.value("required", false) && !arguments.contains(arg)) {
        throw ToolRequestError("prompt '" + name + "' needs the argument '" + arg + "'");
      }
    }
  }
  json result = {{"description", prompt->at("description")},
                 {"messages", substitute(prompt->at("messages"), arguments)}};
  co_return result.dump();
}

std::string Fixtures::complete(const json& ref, const json& argument) {
  const std::string type = ref.value("type", "");
  const std::string prefix = argument.value("value", "");
  json values = json::array();
  if (type == "ref/prompt") {
    const json* prompt = find(doc_.at("prompts"), ref.value("name", ""));
    if (prompt == nullptr) throw ToolRequestError("unknown prompt in params.ref");
    for (const auto& a : prompt->value("arguments", json::array())) {
      if (a.at("name") != argument.value("name", "")) continue;
      for (const auto& v : a.value("values", json::array())) {
        if (v.get_ref<const std::string&>().starts_with(prefix)) values.push_back(v);
      }
    }
  } else if (type == "ref/resource") {
    bool known = false;
    for (const auto& t : doc_.at("templates")) known |= t.at("uriTemplate") == ref.value("uri", "");
    if (!known) throw ToolRequestError("unknown resource template in params.ref");
  } else {
    throw ToolRequestError("params.ref.type must be ref/prompt or ref/resource");
  }
  const auto total = values.size();
  return json{{"values", std::move(values)}, {"total", total}, {"hasMore", false}}.dump();
}

}  // namespace sluice::conformance
