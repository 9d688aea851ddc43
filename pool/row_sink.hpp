#pragma once

#include <cstddef>
#include <span>

#include "pool/value.hpp"

namespace sluice::pool {

// One fetched row. Cells are produced on access from the fetch buffers.
class RowView {
 public:
  virtual std::size_t size() const noexcept = 0;
  virtual Value operator[](std::size_t column) const = 0;

 protected:
  ~RowView() = default;
};

// Receives a statement's result as it is fetched. Backends call it on the thread that
// fetches (for ODBC, a blocking worker), so an implementation must not touch I/O objects;
// it should serialise rows straight into its output buffer.
class RowSink {
 public:
  virtual ~RowSink() = default;
  // Called once, before any row, when the statement produced a result set.
  virtual void columns(std::span<const ColumnInfo> columns) = 0;
  // Returns false to stop fetching (a row or byte cap was reached).
  virtual bool row(const RowView& row) = 0;
};

// A sink for statements whose rows are not wanted.
class DiscardRows final : public RowSink {
 public:
  void columns(std::span<const ColumnInfo>) override {}
  bool row(const RowView&) override { return true; }
};

}  // namespace sluice::pool
