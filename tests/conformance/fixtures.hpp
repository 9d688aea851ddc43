#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>

#include "gateway/mcp_provider.hpp"

namespace sluice::conformance {

// The fixtures the MCP conformance suite expects of a server under test (tools with every
// content type, progress, logging, sampling and elicitation; resources and a template;
// prompts; completion), read from fixtures.json and served through the real engine's
// provider interfaces. Test-only: the product serves database tools.
//
// A tool entry is a Tool definition plus what calling it does, in this order:
//   "log": [messages]            sent as info log messages, 50 ms apart
//   "progress": [n...], "total"  reported as progress, 50 ms apart
//   "ask": {method, params}      sent to the client; "reply" prefixes the tool's text answer
//   "rounds": [{key: request}]   2026-07-28 input_required rounds (see input_round())
//   "content": [...], "isError"  the result otherwise
//   "requires": {...}            client capabilities the tool needs
// Strings in "ask" params, prompt messages and template contents may name arguments as
// {name}.
class Fixtures final : public gateway::ToolProvider,
                       public gateway::ResourceProvider,
                       public gateway::PromptProvider,
                       public gateway::CompletionProvider {
 public:
  explicit Fixtures(const std::filesystem::path& file);

  // ToolProvider
  const std::string& definitions() const noexcept override { return tool_definitions_; }
  bool has(std::string_view name) const noexcept override;
  const nlohmann::json* required_capabilities(std::string_view name) const noexcept override;
  asio::awaitable<gateway::ToolResult> call(std::string name, gateway::ToolCall& call) override;

  // ResourceProvider
  const std::string& resources() const noexcept override { return resource_list_; }
  const std::string& templates() const noexcept override { return template_list_; }
  asio::awaitable<std::optional<std::string>> read(std::string uri) override;
  bool subscribable() const noexcept override { return true; }

  // PromptProvider
  const std::string& prompts() const noexcept override { return prompt_list_; }
  asio::awaitable<std::string> get(std::string name, const nlohmann::json& arguments) override;

  // CompletionProvider
  std::string complete(const nlohmann::json& ref, const nlohmann::json& argument) override;

 private:
  const nlohmann::json* find(const nlohmann::json& list, std::string_view name) const;
  gateway::ToolResult input_round(const nlohmann::json& tool, const gateway::ToolCall& call) const;

  nlohmann::json doc_;
  std::string tool_definitions_;
  std::string resource_list_;
  std::string template_list_;
  std::string prompt_list_;
};

}  // namespace sluice::conformance
