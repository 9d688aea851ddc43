#include "gateway/result_encoder.hpp"

#include <cstdio>
#include <type_traits>

#include "gateway/json_writer.hpp"

namespace sluice::gateway {
namespace {

constexpr std::int64_t kMaxSafeInteger = (std::int64_t{1} << 53) - 1;

// Dates and times are formatted by hand: snprintf was more than half of the time spent
// encoding a result with a timestamp column. Values outside the usual ranges (years
// beyond 0..9999, fields over 99) take the snprintf path, so the output never changes.

void put_digits(char* at, std::uint32_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    at[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void append_date(std::string& out, const pool::Date& d) {
  if (d.year >= 0 && d.year <= 9999 && d.month <= 99 && d.day <= 99) {
    char buf[10];
    put_digits(buf, static_cast<std::uint32_t>(d.year), 4);
    buf[4] = '-';
    put_digits(buf + 5, d.month, 2);
    buf[7] = '-';
    put_digits(buf + 8, d.day, 2);
    out.append(buf, sizeof buf);
    return;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", d.year, d.month, d.day);
  out.append(buf, std::min(static_cast<std::size_t>(n), sizeof buf - 1));
}

// Tabs and line breaks become spaces so that the text rendering stays one row per line.
void append_plain(std::string& out, std::string_view s) {
  for (char c : s) out.push_back(c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
}

void append_time(std::string& out, const pool::TimeOfDay& t) {
  char buf[40];
  std::size_t n;
  if (t.hour <= 99 && t.minute <= 99 && t.second <= 99) {
    put_digits(buf, t.hour, 2);
    buf[2] = ':';
    put_digits(buf + 3, t.minute, 2);
    buf[5] = ':';
    put_digits(buf + 6, t.second, 2);
    n = 8;
  } else {
    n = static_cast<std::size_t>(
        std::snprintf(buf, sizeof buf, "%02u:%02u:%02u", t.hour, t.minute, t.second));
    n = std::min(n, sizeof buf - 11);
  }
  if (t.nanosecond != 0) {
    // The fraction without trailing zeros; nanosecond is below 10^9 (9 digits) by contract,
    // and any larger value is capped rather than written past the buffer.
    std::uint32_t frac = std::min<std::uint32_t>(t.nanosecond, 999'999'999);
    int digits = 9;
    while (frac % 10 == 0) {
      frac /= 10;
      --digits;
    }
    buf[n] = '.';
    put_digits(buf + n + 1, frac, digits);
    n += 1 + static_cast<std::size_t>(digits);
  }
  out.append(buf, n);
}

// One cell as JSON.
void write_json(JsonWriter& w, const pool::Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, pool::Null>) {
          w.null();
        } else if constexpr (std::is_same_v<T, bool>) {
          w.boolean(x);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          if (x > kMaxSafeInteger || x < -kMaxSafeInteger) {
            w.raw("\"").integer(x).raw("\"");
          } else {
            w.integer(x);
          }
        } else if constexpr (std::is_same_v<T, double>) {
          w.floating(x);
        } else if constexpr (std::is_same_v<T, pool::DecimalView>) {
          w.string(x.digits);
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          w.string(x);
        } else if constexpr (std::is_same_v<T, std::span<const std::byte>>) {
          w.base64(x);
        } else if constexpr (std::is_same_v<T, pool::Date>) {
          w.raw("\"");
          append_date(w.buffer(), x);
          w.raw("\"");
        } else if constexpr (std::is_same_v<T, pool::TimeOfDay>) {
          w.raw("\"");
          append_time(w.buffer(), x);
          w.raw("\"");
        } else if constexpr (std::is_same_v<T, pool::Timestamp>) {
          w.raw("\"");
          append_date(w.buffer(), x.date);
          w.raw("T");
          append_time(w.buffer(), x.time);
          w.raw("\"");
        }
      },
      v);
}

// One cell for the tab-separated text: tabs and line breaks inside values become spaces so
// that rows stay one per line.
void write_text(std::string& out, const pool::Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, pool::Null>) {
          out.append("NULL");
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          append_plain(out, x);
        } else if constexpr (std::is_same_v<T, pool::DecimalView>) {
          out.append(x.digits);
        } else if constexpr (std::is_same_v<T, std::span<const std::byte>>) {
          JsonWriter w(out);
          const std::size_t at = out.size();
          w.base64(x);
          out.erase(at, 1);  // base64 without the JSON quotes
          out.pop_back();
        } else if constexpr (std::is_same_v<T, pool::Date>) {
          append_date(out, x);
        } else if constexpr (std::is_same_v<T, pool::TimeOfDay>) {
          append_time(out, x);
        } else if constexpr (std::is_same_v<T, pool::Timestamp>) {
          append_date(out, x.date);
          out.push_back('T');
          append_time(out, x.time);
        } else {
          const std::size_t at = out.size();
          JsonWriter w(out);
          write_json(w, x);
          if (out.size() > at && out[at] == '"') {  // big integers: unquote
            out.erase(at, 1);
            out.pop_back();
          }
        }
      },
      v);
}

}  // namespace

ResultEncoder::ResultEncoder(std::string& structured, std::string& text, ResultLimits limits,
                             Progress progress, std::uint64_t progress_every)
    : structured_(structured),
      text_(text),
      limits_(limits),
      progress_(std::move(progress)),
      progress_every_(progress_every == 0 ? 1 : progress_every) {}

void ResultEncoder::columns(std::span<const pool::ColumnInfo> columns) {
  columns_seen_ = true;
  types_.clear();
  JsonWriter w(structured_);
  w.raw("{\"columns\":[");
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const auto& c = columns[i];
    types_.push_back(c.type);
    if (i > 0) {
      w.raw(",");
      text_.push_back('\t');
    }
    w.raw("{\"name\":").string(c.name).raw(",\"type\":").string(pool::to_string(c.type));
    if (!c.database_type.empty()) w.raw(",\"databaseType\":").string(c.database_type);
    w.raw("}");
    append_plain(text_, c.name);
  }
  text_.push_back('\n');
  w.raw("],\"rows\":[");
  rows_start_ = structured_.size();
}

bool ResultEncoder::row(const pool::RowView& row) {
  if (rows_ >= limits_.max_rows) {
    truncated_ = true;
    return false;
  }
  const std::size_t json_mark = structured_.size();
  const std::size_t text_mark = text_.size();
  JsonWriter w(structured_);
  if (rows_ > 0) w.raw(",");
  w.raw("[");
  for (std::size_t i = 0; i < row.size(); ++i) {
    const pool::Value v = row[i];
    if (i > 0) {
      w.raw(",");
      text_.push_back('\t');
    }
    write_json(w, v);
    write_text(text_, v);
  }
  w.raw("]");
  text_.push_back('\n');
  if (structured_.size() - rows_start_ > limits_.max_bytes) {
    structured_.resize(json_mark);  // this row does not fit: leave it out
    text_.resize(text_mark);
    truncated_ = true;
    return false;
  }
  ++rows_;
  if (progress_ && rows_ % progress_every_ == 0) progress_(rows_);
  return true;
}

void ResultEncoder::finish(std::optional<std::int64_t> rows_affected) {
  JsonWriter w(structured_);
  if (!columns_seen_) w.raw("{\"columns\":[],\"rows\":[");
  w.raw("],\"rowCount\":").integer(static_cast<std::int64_t>(rows_));
  w.raw(",\"truncated\":").boolean(truncated_);
  if (rows_affected) w.raw(",\"rowsAffected\":").integer(*rows_affected);
  w.raw("}");
  if (!columns_seen_) {
    text_.append(rows_affected ? std::to_string(*rows_affected) + " rows affected\n"
                               : std::string("OK\n"));
  } else {
    text_.append("(" + std::to_string(rows_) + (rows_ == 1 ? " row" : " rows"));
    if (truncated_) text_.append("; truncated, more rows exist");
    text_.append(")\n");
  }
}

}  // namespace sluice::gateway
