#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/source.hpp"
#include "pool/asio.hpp"

namespace sluice::gateway {

// What a tool call produced: the structuredContent JSON and a compact text rendering, or an
// error for the model to read (isError), such as a rejected statement or a database error
// with its SQLSTATE.
struct ToolResult {
  std::string structured;  // JSON object; empty when is_error
  std::string text;        // plain text (the engine escapes it)
  bool is_error = false;
};

// A tool call whose request itself is malformed (unknown tool, arguments not an object):
// answered with JSON-RPC -32602, not with a tool result.
class ToolRequestError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

// The database tools on every configured source: list_databases, list_schemas, list_tables,
// describe_table, query, explain, execute. Each returns one tabular shape. The first source
// is the default; a `source` argument picks another.
//
// Thread-safe: calls may run concurrently on any executor.
class DatabaseTools {
 public:
  using Progress = std::function<void(std::uint64_t rows)>;

  explicit DatabaseTools(std::vector<Source>& sources);

  // The JSON array of tool definitions, in a fixed order. Built once.
  const std::string& definitions() const noexcept { return definitions_; }
  bool has(std::string_view name) const noexcept;

  // Runs a tool until done, or until `deadline` (the request's own limit) or cancellation of
  // the awaiting operation, which cancels the running statement. `progress` (may be empty)
  // is called on a worker thread as rows arrive.
  asio::awaitable<ToolResult> call(std::string name, const nlohmann::json& arguments,
                                   pool::Deadline deadline, Progress progress);

 private:
  Source& source_for(const nlohmann::json& arguments);

  std::vector<Source>& sources_;
  std::string definitions_;
};

}  // namespace sluice::gateway
