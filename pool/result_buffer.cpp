#include "pool/result_buffer.hpp"

#include <type_traits>

namespace sluice::pool {

void ResultBuffer::columns(std::span<const ColumnInfo> columns) {
  columns_.assign(columns.begin(), columns.end());
}

bool ResultBuffer::row(const RowView& row) {
  Row& out = rows_.emplace_back();
  out.reserve(row.size());
  for (std::size_t i = 0; i < row.size(); ++i) out.push_back(to_param(row[i]));
  return true;
}

Param ResultBuffer::to_param(const Value& v) {
  return std::visit(
      [](const auto& x) -> Param {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, DecimalView>) {
          return Decimal{std::string(x.digits)};
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          return std::string(x);
        } else if constexpr (std::is_same_v<T, std::span<const std::byte>>) {
          return std::vector<std::byte>(x.begin(), x.end());
        } else {
          return x;
        }
      },
      v);
}

}  // namespace sluice::pool
