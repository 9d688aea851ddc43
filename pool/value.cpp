#include "pool/value.hpp"

namespace sluice::pool {

std::string_view to_string(ColumnType t) noexcept {
  switch (t) {
    case ColumnType::boolean:
      return "boolean";
    case ColumnType::integer:
      return "integer";
    case ColumnType::floating:
      return "float";
    case ColumnType::decimal:
      return "decimal";
    case ColumnType::text:
      return "text";
    case ColumnType::binary:
      return "binary";
    case ColumnType::date:
      return "date";
    case ColumnType::time:
      return "time";
    case ColumnType::timestamp:
      return "timestamp";
    case ColumnType::unknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace sluice::pool
