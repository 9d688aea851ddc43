#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::pool {

// The portable type of a result column, chosen from what the driver reports. Values of
// every type keep their exact meaning: decimals stay text (no float rounding), text is
// UTF-8, times keep their fraction.
enum class ColumnType : std::uint8_t {
  boolean,
  integer,   // up to 64-bit signed
  floating,  // IEEE double
  decimal,   // exact numeric, carried as its decimal text
  text,      // UTF-8
  binary,
  date,
  time,
  timestamp,
  unknown,  // anything else, carried as the driver's text rendering
};

std::string_view to_string(ColumnType t) noexcept;

struct Date {
  std::int32_t year = 0;
  std::uint8_t month = 0;
  std::uint8_t day = 0;
  friend bool operator==(const Date&, const Date&) = default;
};

struct TimeOfDay {
  std::uint8_t hour = 0;
  std::uint8_t minute = 0;
  std::uint8_t second = 0;
  std::uint32_t nanosecond = 0;
  friend bool operator==(const TimeOfDay&, const TimeOfDay&) = default;
};

struct Timestamp {
  Date date;
  TimeOfDay time;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

// A decimal number as exact text, e.g. "-12.50". Distinct from text so that encoders can
// emit it as a JSON number-like string and parameters bind as SQL_NUMERIC.
struct DecimalView {
  std::string_view digits;
  friend bool operator==(const DecimalView&, const DecimalView&) = default;
};

struct Decimal {
  std::string digits;
  friend bool operator==(const Decimal&, const Decimal&) = default;
};

struct Null {
  friend bool operator==(const Null&, const Null&) = default;
};

// One cell as seen by a RowSink. Views point into the fetch buffers and are valid only
// during the RowSink::row call that received them: no allocation per cell.
using Value = std::variant<Null, bool, std::int64_t, double, DecimalView, std::string_view,
                           std::span<const std::byte>, Date, TimeOfDay, Timestamp>;

// A bound statement parameter. Owning, since it outlives the call that built it.
using Param = std::variant<Null, bool, std::int64_t, double, Decimal, std::string,
                           std::vector<std::byte>, Date, TimeOfDay, Timestamp>;

struct ColumnInfo {
  std::string name;
  ColumnType type = ColumnType::unknown;
  std::string database_type;  // the database's own type name, e.g. "int4", "varchar"
  std::size_t size = 0;       // declared size or precision, 0 when unknown
  std::int16_t scale = 0;     // decimal digits
  bool nullable = true;
};

}  // namespace sluice::pool
