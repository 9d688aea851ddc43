#pragma once

#include <cstddef>
#include <vector>

#include "pool/row_sink.hpp"

namespace sluice::pool {

// A RowSink that keeps the whole result in memory, owning every value. For metadata
// queries, tools and tests; the request path streams rows instead.
class ResultBuffer final : public RowSink {
 public:
  using Row = std::vector<Param>;

  void columns(std::span<const ColumnInfo> columns) override;
  bool row(const RowView& row) override;

  const std::vector<ColumnInfo>& columns() const noexcept { return columns_; }
  const std::vector<Row>& rows() const noexcept { return rows_; }

  // Owning copy of a cell.
  static Param to_param(const Value& v);

 private:
  std::vector<ColumnInfo> columns_;
  std::vector<Row> rows_;
};

}  // namespace sluice::pool
