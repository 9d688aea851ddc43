#include "load/src/scenario.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "load/src/duration_text.hpp"

namespace sluice::load {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  [[noreturn]] void fail(const std::string& key, const YAML::Node& node,
                         const std::string& problem) const {
    std::string where = source_ + ": " + key;
    if (node.IsDefined() && node.Mark().line >= 0) {
      where += " (line " + std::to_string(node.Mark().line + 1) + ")";
    }
    throw ScenarioError(where + ": " + problem);
  }

  void expect_keys(const std::string& key, const YAML::Node& map,
                   std::initializer_list<std::string_view> allowed) const {
    for (const auto& entry : map) {
      const std::string name = entry.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
      std::string list;
      for (const auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(join(key, name), entry.first, "unknown key; expected one of " + list);
    }
  }

  static std::string join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  }

  std::string scalar(const std::string& key, const YAML::Node& node) const {
    if (!node.IsScalar()) fail(key, node, "must be a string");
    return node.Scalar();
  }

  // YAML to JSON, keeping the types a reader expects: unquoted true/false, null, integers
  // and decimals become JSON booleans, null and numbers; everything else is a string.
  nlohmann::json to_json(const std::string& key, const YAML::Node& node) const {
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Sequence: {
        auto out = nlohmann::json::array();
        std::size_t i = 0;
        for (const auto& item : node) {
          out.push_back(to_json(key + "[" + std::to_string(i++) + "]", item));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        auto out = nlohmann::json::object();
        for (const auto& entry : node) {
          const std::string name = entry.first.as<std::string>();
          out[name] = to_json(join(key, name), entry.second);
        }
        return out;
      }
      case YAML::NodeType::Scalar:
        break;
    }
    const std::string& text = node.Scalar();
    if (node.Tag() != "?") return text;  // quoted, or explicitly tagged: a string
    if (text == "true" || text == "True" || text == "TRUE") return true;
    if (text == "false" || text == "False" || text == "FALSE") return false;
    if (text == "null" || text == "~" || text == "Null" || text == "NULL") return nullptr;
    if (!text.empty()) {
      std::size_t used = 0;
      try {
        if (text.find_first_of(".eE") == std::string::npos) {
          const long long value = std::stoll(text, &used, 10);
          if (used == text.size()) return value;
        } else {
          const double value = std::stod(text, &used);
          if (used == text.size() && std::isfinite(value)) return value;
        }
      } catch (const std::exception&) {
        // Not a number: a string.
      }
    }
    return text;
  }

  ScenarioCall call(const std::string& key, const YAML::Node& node) const {
    if (!node.IsMap()) fail(key, node, "must be a map with a tool: or method: key");
    expect_keys(key, node, {"tool", "method", "arguments", "params", "weight", "label"});
    ScenarioCall c;
    const YAML::Node tool = node["tool"];
    const YAML::Node method = node["method"];
    if (tool.IsDefined() == method.IsDefined()) {
      fail(key, node, "needs exactly one of tool: (a tools/call) or method: (any request)");
    }
    if (tool.IsDefined()) {
      const std::string name = scalar(join(key, "tool"), tool);
      if (name.empty()) fail(join(key, "tool"), tool, "must not be empty");
      if (node["params"].IsDefined()) {
        fail(join(key, "params"), node["params"], "belongs to method: entries; use arguments:");
      }
      c.method = "tools/call";
      c.params = nlohmann::json::object();
      c.params["name"] = name;
      const YAML::Node args = node["arguments"];
      if (args.IsDefined() && !args.IsNull() && !args.IsMap()) {
        fail(join(key, "arguments"), args, "must be a map of argument names to values");
      }
      // yaml-cpp throws on asking a missing node its type, hence IsDefined() first.
      c.params["arguments"] = args.IsDefined() && args.IsMap()
                                  ? to_json(join(key, "arguments"), args)
                                  : nlohmann::json::object();
      c.mcp_name = name;
      c.label = name;
    } else {
      c.method = scalar(join(key, "method"), method);
      if (c.method.empty()) fail(join(key, "method"), method, "must not be empty");
      if (node["arguments"].IsDefined()) {
        fail(join(key, "arguments"), node["arguments"], "belongs to tool: entries; use params:");
      }
      const YAML::Node params = node["params"];
      if (params.IsDefined() && !params.IsNull() && !params.IsMap()) {
        fail(join(key, "params"), params, "must be a map");
      }
      c.params = params.IsDefined() && params.IsMap() ? to_json(join(key, "params"), params)
                                                      : nlohmann::json::object();
      if (c.params.contains("_meta")) {
        fail(join(key, "params._meta"), params["_meta"], "is added by sluice-load; leave it out");
      }
      const char* name_key = c.method == "resources/read" ? "uri" : "name";
      if (c.params.contains(name_key) && c.params[name_key].is_string()) {
        c.mcp_name = c.params[name_key].get<std::string>();
      }
      c.label = c.method;
    }
    if (const YAML::Node w = node["weight"]; w.IsDefined()) {
      const nlohmann::json value = to_json(join(key, "weight"), w);
      if (!value.is_number() || !(value.get<double>() > 0) || !std::isfinite(value.get<double>())) {
        fail(join(key, "weight"), w, "must be a number > 0");
      }
      c.weight = value.get<double>();
    }
    if (const YAML::Node l = node["label"]; l.IsDefined()) {
      c.label = scalar(join(key, "label"), l);
      if (c.label.empty()) fail(join(key, "label"), l, "must not be empty");
    }
    return c;
  }

  Scenario scenario(const YAML::Node& root, std::string_view default_name) const {
    if (!root.IsMap()) fail("(top level)", root, "must be a map with a calls: list");
    expect_keys("", root, {"name", "description", "think_time", "thresholds", "calls"});
    Scenario s;
    s.name = root["name"].IsDefined() ? scalar("name", root["name"]) : std::string(default_name);
    if (root["description"].IsDefined()) scalar("description", root["description"]);
    if (const YAML::Node t = root["think_time"]; t.IsDefined()) {
      const auto d = parse_duration(scalar("think_time", t));
      if (!d) fail("think_time", t, "must be a duration with a unit, e.g. 10ms");
      s.think_time = *d;
    }
    if (const YAML::Node t = root["thresholds"]; t.IsDefined()) {
      if (!t.IsSequence()) fail("thresholds", t, "must be a list such as [\"p95<50ms\"]");
      std::size_t i = 0;
      for (const auto& item : t) {
        s.thresholds.push_back(scalar("thresholds[" + std::to_string(i++) + "]", item));
      }
    }
    const YAML::Node calls = root["calls"];
    if (!calls.IsDefined()) fail("calls", root, "missing: list at least one tool: entry");
    if (!calls.IsSequence() || calls.size() == 0) {
      fail("calls", calls, "must be a non-empty list of tool: or method: entries");
    }
    std::set<std::string> labels;
    std::size_t i = 0;
    for (const auto& item : calls) {
      const std::string key = "calls[" + std::to_string(i++) + "]";
      ScenarioCall c = call(key, item);
      s.calls.push_back(std::move(c));
    }
    // Equal labels would merge in the report; number the repeats instead.
    for (auto& c : s.calls) {
      if (labels.insert(c.label).second) continue;
      for (int n = 2;; ++n) {
        const std::string candidate = c.label + "#" + std::to_string(n);
        if (labels.insert(candidate).second) {
          c.label = candidate;
          break;
        }
      }
    }
    return s;
  }

 private:
  std::string source_;
};

}  // namespace

Scenario Scenario::parse(std::string_view yaml, std::string_view source_name) {
  const Parser parser(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw ScenarioError(std::string(source_name) + ": line " + std::to_string(e.mark.line + 1) +
                        ": " + e.msg);
  }
  std::string default_name(source_name);
  if (const auto slash = default_name.find_last_of('/'); slash != std::string::npos) {
    default_name.erase(0, slash + 1);
  }
  if (const auto dot = default_name.rfind('.'); dot != std::string::npos && dot > 0) {
    default_name.erase(dot);
  }
  return parser.scenario(root, default_name);
}

Scenario Scenario::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw ScenarioError(file.string() + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

CallPicker::CallPicker(const Scenario& scenario) {
  double sum = 0;
  for (const auto& c : scenario.calls) {
    sum += c.weight;
    cumulative_.push_back(sum);
  }
  for (auto& c : cumulative_) c /= sum;
  if (!cumulative_.empty()) cumulative_.back() = 1;
}

std::size_t CallPicker::pick(std::uint64_t random) const noexcept {
  // 53 random bits make a double uniform in [0, 1).
  const double u = static_cast<double>(random >> 11) * 0x1.0p-53;
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
  return std::min<std::size_t>(static_cast<std::size_t>(it - cumulative_.begin()),
                               cumulative_.size() - 1);
}

}  // namespace sluice::load
