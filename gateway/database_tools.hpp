#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/mcp_provider.hpp"
#include "gateway/source.hpp"
#include "pool/asio.hpp"

namespace sluice::gateway {

// The database tools on every configured source: list_databases, list_schemas, list_tables,
// describe_table, query, explain, execute, and set_context / get_context. Each returns one tabular
// shape. The first source is the default; a `source` argument picks another.
//
// Thread-safe: calls may run concurrently on any executor.
class DatabaseTools final : public ToolProvider {
 public:
  // `handles` (may be null: no set_context handles) signs and opens context handles.
  explicit DatabaseTools(std::vector<Source>& sources,
                         const session::ContextHandles* handles = nullptr);

  // The JSON array of tool definitions, in a fixed order. Built once.
  const std::string& definitions() const noexcept override { return definitions_; }
  bool has(std::string_view name) const noexcept override;

  // Runs a tool until done, or until `call.deadline` (the request's own limit) or
  // cancellation of the awaiting operation, which cancels the running statement. Progress
  // (rows fetched so far) is reported from a worker thread as rows arrive.
  asio::awaitable<ToolResult> call(std::string name, ToolCall& call) override;

 private:
  struct Resolved {
    Source& source;
    pool::DbContext db;
  };
  struct Run;
  asio::awaitable<ToolResult> execute(std::unique_ptr<Run> run, ToolCall& call);
  Source& source_named(const std::string& name);
  struct Arguments;
  Resolved resolve(const Arguments& arguments, const ToolCall& call);
  ToolResult context_result(const Source& src, const pool::DbContext& db, const ToolCall& call,
                            bool stored) const;

  std::vector<Source>& sources_;
  const session::ContextHandles* handles_;
  std::string definitions_;
};

}  // namespace sluice::gateway
