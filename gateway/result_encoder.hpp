#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "pool/row_sink.hpp"

namespace sluice::gateway {

struct ResultLimits {
  std::size_t max_rows = 1000;
  std::size_t max_bytes = 1 << 20;  // of row data in the structured result
};

// Serialises a result as it is fetched, straight into two buffers: the JSON of the tool's
// structuredContent ({"columns":[...],"rows":[[...]],"rowCount":N,"truncated":b}) and a
// compact tab-separated rendering for models. Runs on the fetching thread; no allocation per
// cell once the buffers have grown.
//
// Values in JSON: integers as numbers (as strings beyond +/-2^53, where JavaScript clients
// would round them), floats as numbers, decimals as exact strings, binary as base64, dates
// and times as ISO 8601 strings.
class ResultEncoder final : public pool::RowSink {
 public:
  // Called every `progress_every` rows with the count so far, on the fetching thread.
  using Progress = std::function<void(std::uint64_t rows)>;

  ResultEncoder(std::string& structured, std::string& text, ResultLimits limits,
                Progress progress = {}, std::uint64_t progress_every = 1000);

  void columns(std::span<const pool::ColumnInfo> columns) override;
  bool row(const pool::RowView& row) override;

  // Closes the structured JSON; `rows_affected` adds "rowsAffected" (for writes).
  void finish(std::optional<std::int64_t> rows_affected = std::nullopt);

  // The rows worth fetching: the cap and one more, whose arrival marks the result truncated.
  // A backend may have the server stop there (pool::Statement::row_limit).
  std::uint64_t rows_wanted() const noexcept { return limits_.max_rows + 1; }

  std::uint64_t row_count() const noexcept { return rows_; }
  bool truncated() const noexcept { return truncated_; }

 private:
  std::string& structured_;
  std::string& text_;
  ResultLimits limits_;
  Progress progress_;
  std::uint64_t progress_every_;
  std::vector<pool::ColumnType> types_;
  std::size_t rows_start_ = 0;  // where row data begins in structured_
  std::uint64_t rows_ = 0;
  bool columns_seen_ = false;
  bool truncated_ = false;
};

}  // namespace sluice::gateway
