#include "pool/odbc_statement.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <type_traits>

namespace sluice::pool {
namespace {

// Above this a column is fetched with SQLGetData instead of a bound array element.
constexpr SQLLEN kMaxBoundWidth = 8 * 1024;
// Rows per block: enough for the common 100-row answer in one SQLFetch, bounded in memory.
constexpr std::size_t kMaxBlockRows = 256;
constexpr std::size_t kBlockBudgetBytes = 1 << 20;

ColumnType column_type_of(SQLSMALLINT sql_type, std::string_view type_name) {
  // psqlODBC reports boolean as SQL_VARCHAR unless the connection sets BoolsAsChar=0.
  if (type_name == "bool" || type_name == "boolean") return ColumnType::boolean;
  switch (sql_type) {
    case SQL_BIT:
      return ColumnType::boolean;
    case SQL_TINYINT:
    case SQL_SMALLINT:
    case SQL_INTEGER:
    case SQL_BIGINT:
      return ColumnType::integer;
    case SQL_REAL:
    case SQL_FLOAT:
    case SQL_DOUBLE:
      return ColumnType::floating;
    case SQL_NUMERIC:
    case SQL_DECIMAL:
      return ColumnType::decimal;
    case SQL_CHAR:
    case SQL_VARCHAR:
    case SQL_LONGVARCHAR:
    case SQL_WCHAR:
    case SQL_WVARCHAR:
    case SQL_WLONGVARCHAR:
    case SQL_GUID:
      return ColumnType::text;
    case SQL_BINARY:
    case SQL_VARBINARY:
    case SQL_LONGVARBINARY:
      return ColumnType::binary;
    case SQL_TYPE_DATE:
    case SQL_DATE:
      return ColumnType::date;
    case SQL_TYPE_TIME:
    case SQL_TIME:
      return ColumnType::time;
    case SQL_TYPE_TIMESTAMP:
    case SQL_TIMESTAMP:
      return ColumnType::timestamp;
    default:
      return ColumnType::unknown;
  }
}

// Bytes a value slot gets when the declared size is unknown or too large to reserve per row;
// longer values spill (see OdbcStatement::fetch_truncated).
constexpr SQLLEN kInlineWidth = 256;

// Parses "HH:MM:SS[.fffffffff]" as drivers render a time of day.
TimeOfDay parse_time(std::string_view s) {
  TimeOfDay t;
  auto num = [&](std::size_t pos, std::size_t len) -> unsigned {
    unsigned v = 0;
    if (pos + len <= s.size()) std::from_chars(s.data() + pos, s.data() + pos + len, v);
    return v;
  };
  t.hour = static_cast<std::uint8_t>(num(0, 2));
  t.minute = static_cast<std::uint8_t>(num(3, 2));
  t.second = static_cast<std::uint8_t>(num(6, 2));
  if (s.size() > 9 && s[8] == '.') {
    std::uint32_t frac = 0;
    std::size_t digits = 0;
    for (std::size_t i = 9; i < s.size() && digits < 9 && s[i] >= '0' && s[i] <= '9'; ++i) {
      frac = frac * 10 + static_cast<std::uint32_t>(s[i] - '0');
      ++digits;
    }
    for (; digits < 9; ++digits) frac *= 10;
    t.nanosecond = frac;
  }
  return t;
}

Date to_date(const SQL_DATE_STRUCT& d) {
  return {d.year, static_cast<std::uint8_t>(d.month), static_cast<std::uint8_t>(d.day)};
}

Timestamp to_timestamp(const SQL_TIMESTAMP_STRUCT& ts) {
  return {{ts.year, static_cast<std::uint8_t>(ts.month), static_cast<std::uint8_t>(ts.day)},
          {static_cast<std::uint8_t>(ts.hour), static_cast<std::uint8_t>(ts.minute),
           static_cast<std::uint8_t>(ts.second), static_cast<std::uint32_t>(ts.fraction)}};
}

template <class T>
T load(const std::byte* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Decodes one fetched cell. `len` is the indicator (byte length for variable types).
Value decode(ColumnType type, const std::byte* p, SQLLEN len) {
  if (len == SQL_NULL_DATA) return Null{};
  const auto* chars = reinterpret_cast<const char*>(p);
  const auto n = static_cast<std::size_t>(len);
  switch (type) {
    case ColumnType::boolean:
      return load<unsigned char>(p) != 0;
    case ColumnType::integer:
      return load<std::int64_t>(p);
    case ColumnType::floating:
      return load<double>(p);
    case ColumnType::decimal:
      return DecimalView{std::string_view(chars, n)};
    case ColumnType::binary:
      return std::span<const std::byte>(p, n);
    case ColumnType::date:
      return to_date(load<SQL_DATE_STRUCT>(p));
    case ColumnType::timestamp:
      return to_timestamp(load<SQL_TIMESTAMP_STRUCT>(p));
    case ColumnType::time:
      return parse_time(std::string_view(chars, n));
    case ColumnType::text:
    case ColumnType::unknown:
      return std::string_view(chars, n);
  }
  return Null{};
}

// C type and slot width used to fetch a column. For text and binary the width is a first
// guess: the declared size when it is small, otherwise kInlineWidth.
std::pair<SQLSMALLINT, SQLLEN> binding_for(const ColumnInfo& info) {
  auto slot = [&](std::size_t declared_bytes) -> SQLLEN {
    const auto w = static_cast<SQLLEN>(declared_bytes);
    return info.size == 0 || w > kMaxBoundWidth ? kInlineWidth : w;
  };
  switch (info.type) {
    case ColumnType::boolean:
      return {SQL_C_BIT, 1};
    case ColumnType::integer:
      return {SQL_C_SBIGINT, 8};
    case ColumnType::floating:
      return {SQL_C_DOUBLE, 8};
    case ColumnType::date:
      return {SQL_C_TYPE_DATE, sizeof(SQL_DATE_STRUCT)};
    case ColumnType::timestamp:
      return {SQL_C_TYPE_TIMESTAMP, sizeof(SQL_TIMESTAMP_STRUCT)};
    case ColumnType::time:
      return {SQL_C_CHAR, 40};
    // Sign, point, leading zero and terminator around the declared digits.
    case ColumnType::decimal:
      return {SQL_C_CHAR, slot(info.size + 4)};
    case ColumnType::binary:
      return {SQL_C_BINARY, slot(info.size)};
    case ColumnType::text:
    case ColumnType::unknown:
      // Sizes are in characters; UTF-8 needs up to four bytes each, plus the terminator.
      return {SQL_C_CHAR, slot(info.size * 4 + 1)};
  }
  return {SQL_C_CHAR, kInlineWidth};
}

bool is_variable(ColumnType t) {
  return t == ColumnType::decimal || t == ColumnType::text || t == ColumnType::binary ||
         t == ColumnType::unknown;
}

}  // namespace

class OdbcStatement::BlockRow final : public RowView {
 public:
  BlockRow(const std::vector<Column>& cols, std::size_t row) : cols_(cols), row_(row) {}
  std::size_t size() const noexcept override { return cols_.size(); }
  Value operator[](std::size_t i) const override {
    const Column& c = cols_[i];
    if (!c.spilled.empty() && c.spilled[row_] != 0) {
      return decode(c.info.type, c.spill[row_].data(), c.indicator[row_]);
    }
    return decode(c.info.type, c.data.data() + row_ * static_cast<std::size_t>(c.width),
                  c.indicator[row_]);
  }

 private:
  const std::vector<Column>& cols_;
  std::size_t row_;
};

OdbcStatement::OdbcStatement(OdbcConnection& conn) : conn_(conn) {
  SQLHANDLE h = SQL_NULL_HANDLE;
  odbc_check(SQLAllocHandle(SQL_HANDLE_STMT, conn_.native(), &h), SQL_HANDLE_DBC, conn_.native(),
             conn_.source());
  stmt_ = OdbcHandle<SQL_HANDLE_STMT>(h);
  cancel_ = std::make_shared<StatementCancel>(stmt_.get());
  SQLUINTEGER ext = 0;
  if (SQL_SUCCEEDED(
          SQLGetInfo(conn_.native(), SQL_GETDATA_EXTENSIONS, &ext, sizeof ext, nullptr))) {
    constexpr SQLUINTEGER kNeeded = SQL_GD_BLOCK | SQL_GD_BOUND | SQL_GD_ANY_COLUMN;
    block_getdata_ = (ext & kNeeded) == kNeeded;
  }
}

OdbcStatement::~OdbcStatement() {
  cancel_->detach();
}

std::uint64_t StatementCancel::open() noexcept {
  std::lock_guard lock(mutex_);
  why_.store(CancelReason::none, std::memory_order_release);
  return ++run_;
}

bool StatementCancel::cancel(CancelReason why, std::uint64_t run) noexcept {
  std::lock_guard lock(mutex_);
  if (run != run_ || stmt_ == SQL_NULL_HSTMT) return false;
  CancelReason none = CancelReason::none;
  why_.compare_exchange_strong(none, why, std::memory_order_acq_rel);
  if (executing_) SQLCancel(stmt_);
  return executing_;
}

CancelReason StatementCancel::enter() noexcept {
  std::lock_guard lock(mutex_);
  const CancelReason why = why_.load(std::memory_order_acquire);
  executing_ = why == CancelReason::none;
  return why;
}

void StatementCancel::leave() noexcept {
  std::lock_guard lock(mutex_);
  executing_ = false;
}

void StatementCancel::detach() noexcept {
  std::lock_guard lock(mutex_);
  stmt_ = SQL_NULL_HSTMT;
  executing_ = false;
}

void OdbcStatement::reset_handle() noexcept {
  SQLFreeStmt(stmt_.get(), SQL_CLOSE);
  SQLFreeStmt(stmt_.get(), SQL_UNBIND);
  SQLFreeStmt(stmt_.get(), SQL_RESET_PARAMS);
}

void OdbcStatement::fail(SQLRETURN rc) {
  Diagnostic d = read_diagnostic(SQL_HANDLE_STMT, stmt_.get());
  if (rc == SQL_INVALID_HANDLE && d.message.empty()) d.message = "invalid ODBC statement handle";
  errc kind = classify_sqlstate(d.sqlstate);
  const CancelReason why = cancel_->reason();
  if (why != CancelReason::none && kind != errc::connection_lost) {
    // The driver may report a cancel as 57014, HY008 or something vaguer; what matters is
    // who asked. After a clean cancel report the connection is fine; otherwise unknown.
    // SQLite reports an interrupt as HY000 with native code 9 (SQLITE_INTERRUPT).
    const bool clean = kind == errc::cancelled || (d.sqlstate == "HY000" && d.native_code == 9);
    suspect_ = !clean || conn_.dead();
    kind = why == CancelReason::deadline ? errc::statement_timeout : errc::cancelled;
    if (why == CancelReason::deadline)
      d.message = "statement cancelled at its deadline: " + d.message;
  } else if (kind == errc::connection_lost || conn_.dead()) {
    kind = errc::connection_lost;
    suspect_ = true;
  }
  throw DbError(kind, conn_.source(), std::move(d));
}

void OdbcStatement::check_progress(Deadline deadline) const {
  const CancelReason why = cancel_->reason();
  if (why == CancelReason::caller) {
    throw DbError(errc::cancelled, conn_.source(), {"", 0, "statement cancelled while fetching"});
  }
  if (why == CancelReason::deadline || Clock::now() >= deadline) {
    throw DbError(errc::statement_timeout, conn_.source(),
                  {"", 0, "statement reached its deadline while fetching rows"});
  }
}

void OdbcStatement::bind_params(std::span<const Param> params) {
  params_.clear();
  params_.resize(params.size());  // sized once so bound addresses stay put
  for (std::size_t i = 0; i < params.size(); ++i) {
    ParamSlot& slot = params_[i];
    SQLSMALLINT c_type = SQL_C_CHAR;
    SQLSMALLINT sql_type = SQL_VARCHAR;
    SQLULEN column_size = 0;
    SQLSMALLINT digits = 0;
    SQLPOINTER value = slot.fixed;
    SQLLEN buffer_len = 0;
    std::visit(
        [&](const auto& p) {
          using T = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<T, Null>) {
            slot.indicator = SQL_NULL_DATA;
            column_size = 1;
          } else if constexpr (std::is_same_v<T, bool>) {
            c_type = SQL_C_BIT;
            sql_type = SQL_BIT;
            column_size = 1;
            slot.fixed[0] = std::byte{p ? std::uint8_t{1} : std::uint8_t{0}};
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            c_type = SQL_C_SBIGINT;
            sql_type = SQL_BIGINT;
            column_size = 19;
            std::memcpy(slot.fixed, &p, sizeof p);
          } else if constexpr (std::is_same_v<T, double>) {
            c_type = SQL_C_DOUBLE;
            sql_type = SQL_DOUBLE;
            column_size = 15;
            std::memcpy(slot.fixed, &p, sizeof p);
          } else if constexpr (std::is_same_v<T, Decimal>) {
            sql_type = SQL_DECIMAL;
            slot.text = p.digits;
            const auto point = p.digits.find('.');
            const auto n_digits = static_cast<SQLULEN>(std::count_if(
                p.digits.begin(), p.digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
            column_size = std::max<SQLULEN>(n_digits, 1);
            digits = point == std::string::npos
                         ? 0
                         : static_cast<SQLSMALLINT>(p.digits.size() - point - 1);
          } else if constexpr (std::is_same_v<T, std::string>) {
            sql_type = p.size() > 4000 ? SQL_LONGVARCHAR : SQL_VARCHAR;
            slot.text = p;
            column_size = std::max<SQLULEN>(p.size(), 1);
          } else if constexpr (std::is_same_v<T, std::vector<std::byte>>) {
            c_type = SQL_C_BINARY;
            sql_type = p.size() > 4000 ? SQL_LONGVARBINARY : SQL_VARBINARY;
            slot.text.assign(reinterpret_cast<const char*>(p.data()), p.size());
            column_size = std::max<SQLULEN>(p.size(), 1);
          } else if constexpr (std::is_same_v<T, Date>) {
            c_type = SQL_C_TYPE_DATE;
            sql_type = SQL_TYPE_DATE;
            column_size = 10;
            SQL_DATE_STRUCT d{static_cast<SQLSMALLINT>(p.year), p.month, p.day};
            std::memcpy(slot.fixed, &d, sizeof d);
          } else if constexpr (std::is_same_v<T, TimeOfDay>) {
            // Text keeps the fraction, which SQL_TIME_STRUCT cannot carry.
            sql_type = SQL_TYPE_TIME;
            std::array<char, 32> buf{};
            int n = std::snprintf(buf.data(), buf.size(), "%02u:%02u:%02u.%09u", p.hour, p.minute,
                                  p.second, p.nanosecond);
            slot.text.assign(buf.data(), static_cast<std::size_t>(n));
            column_size = 18;
            digits = 9;
          } else if constexpr (std::is_same_v<T, Timestamp>) {
            c_type = SQL_C_TYPE_TIMESTAMP;
            sql_type = SQL_TYPE_TIMESTAMP;
            column_size = 29;
            digits = 9;
            SQL_TIMESTAMP_STRUCT ts{static_cast<SQLSMALLINT>(p.date.year),
                                    p.date.month,
                                    p.date.day,
                                    p.time.hour,
                                    p.time.minute,
                                    p.time.second,
                                    p.time.nanosecond};
            std::memcpy(slot.fixed, &ts, sizeof ts);
          }
        },
        params[i]);
    if (c_type == SQL_C_CHAR || c_type == SQL_C_BINARY) {
      if (slot.indicator != SQL_NULL_DATA) {
        value = slot.text.data();
        buffer_len = static_cast<SQLLEN>(slot.text.size());
        slot.indicator = buffer_len;
      }
    }
    SQLRETURN rc =
        SQLBindParameter(stmt_.get(), static_cast<SQLUSMALLINT>(i + 1), SQL_PARAM_INPUT, c_type,
                         sql_type, column_size, digits, value, buffer_len, &slot.indicator);
    if (!SQL_SUCCEEDED(rc)) fail(rc);
  }
}

void OdbcStatement::describe(SQLSMALLINT count) {
  columns_.resize(static_cast<std::size_t>(count));
  infos_.resize(static_cast<std::size_t>(count));
  for (SQLSMALLINT i = 0; i < count; ++i) {
    std::array<SQLCHAR, 256> name{};
    SQLSMALLINT name_len = 0, sql_type = 0, digits = 0, nullable = SQL_NULLABLE_UNKNOWN;
    SQLULEN size = 0;
    const auto idx = static_cast<SQLUSMALLINT>(i + 1);
    SQLRETURN rc =
        SQLDescribeCol(stmt_.get(), idx, name.data(), static_cast<SQLSMALLINT>(name.size()),
                       &name_len, &sql_type, &size, &digits, &nullable);
    if (!SQL_SUCCEEDED(rc)) fail(rc);
    std::array<SQLCHAR, 128> type_name{};
    SQLSMALLINT type_len = 0;
    SQLColAttribute(stmt_.get(), idx, SQL_DESC_TYPE_NAME, type_name.data(),
                    static_cast<SQLSMALLINT>(type_name.size()), &type_len, nullptr);
    Column& c = columns_[static_cast<std::size_t>(i)];
    c.info.name.assign(reinterpret_cast<const char*>(name.data()),
                       std::min<std::size_t>(static_cast<std::size_t>(name_len), name.size() - 1));
    c.info.database_type.assign(
        reinterpret_cast<const char*>(type_name.data()),
        std::min<std::size_t>(static_cast<std::size_t>(std::max<SQLSMALLINT>(type_len, 0)),
                              type_name.size() - 1));
    c.info.type = column_type_of(sql_type, c.info.database_type);
    c.info.size = size;
    c.info.scale = digits;
    c.info.nullable = nullable != SQL_NO_NULLS;
    std::tie(c.c_type, c.width) = binding_for(c.info);
    c.variable = is_variable(c.info.type);
    infos_[static_cast<std::size_t>(i)] = c.info;
  }
}

ExecResult OdbcStatement::execute(const Statement& stmt, RowSink& sink, Deadline deadline) {
  struct EndGuard {
    OdbcStatement* self;
    ~EndGuard() {
      self->cancel_->leave();
      self->reset_handle();
    }
  };
  reset_handle();
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (remaining.count() <= 0) {
    throw DbError(errc::statement_timeout, conn_.source(),
                  {"", 0, "deadline passed before the statement started"});
  }
  SQLSetStmtAttr(
      stmt_.get(), SQL_ATTR_QUERY_TIMEOUT,
      reinterpret_cast<SQLPOINTER>(static_cast<SQLULEN>((remaining.count() + 999) / 1000)), 0);
  suspect_ = false;
  if (const CancelReason why = cancel_->enter(); why != CancelReason::none) {
    // Cancelled on its way to this thread: the driver never sees it.
    if (why == CancelReason::deadline) {
      throw DbError(errc::statement_timeout, conn_.source(),
                    {"", 0, "deadline passed before the statement started"});
    }
    throw DbError(errc::cancelled, conn_.source(),
                  {"", 0, "statement cancelled before it started"});
  }
  EndGuard guard{this};
  bind_params(stmt.params);
  SQLRETURN rc =
      SQLExecDirect(stmt_.get(), reinterpret_cast<SQLCHAR*>(const_cast<char*>(stmt.sql.data())),
                    static_cast<SQLINTEGER>(stmt.sql.size()));
  if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) fail(rc);
  if (cancel_->reason() != CancelReason::none) check_progress(deadline);

  SQLSMALLINT ncols = 0;
  rc = SQLNumResultCols(stmt_.get(), &ncols);
  if (!SQL_SUCCEEDED(rc)) fail(rc);
  if (ncols == 0) {
    ExecResult r;
    SQLLEN count = -1;
    if (SQL_SUCCEEDED(SQLRowCount(stmt_.get(), &count))) r.rows_affected = count;
    return r;
  }
  describe(ncols);
  sink.columns(infos_);
  const bool any_variable =
      std::any_of(columns_.begin(), columns_.end(), [](const Column& c) { return c.variable; });
  return block_getdata_ || !any_variable ? fetch_blocks(sink, deadline)
                                         : fetch_rows(sink, deadline);
}

ExecResult OdbcStatement::fetch_blocks(RowSink& sink, Deadline deadline) {
  std::size_t row_width = 0;
  for (const Column& c : columns_) row_width += static_cast<std::size_t>(c.width) + sizeof(SQLLEN);
  const std::size_t rows = std::clamp<std::size_t>(
      kBlockBudgetBytes / std::max<std::size_t>(row_width, 1), 1, kMaxBlockRows);
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    Column& c = columns_[i];
    c.data.resize(rows * static_cast<std::size_t>(c.width));
    c.indicator.resize(rows);
    if (c.variable) {
      c.spill.resize(rows);
      c.spilled.assign(rows, 0);
    }
    SQLRETURN rc = SQLBindCol(stmt_.get(), static_cast<SQLUSMALLINT>(i + 1), c.c_type,
                              c.data.data(), c.width, c.indicator.data());
    if (!SQL_SUCCEEDED(rc)) fail(rc);
  }
  row_status_.resize(rows);
  SQLSetStmtAttr(stmt_.get(), SQL_ATTR_ROW_BIND_TYPE,
                 reinterpret_cast<SQLPOINTER>(SQL_BIND_BY_COLUMN), 0);
  SQLSetStmtAttr(stmt_.get(), SQL_ATTR_ROW_ARRAY_SIZE, reinterpret_cast<SQLPOINTER>(rows), 0);
  SQLSetStmtAttr(stmt_.get(), SQL_ATTR_ROW_STATUS_PTR, row_status_.data(), 0);
  SQLSetStmtAttr(stmt_.get(), SQL_ATTR_ROWS_FETCHED_PTR, &rows_fetched_, 0);

  ExecResult result;
  for (;;) {
    SQLRETURN rc = SQLFetch(stmt_.get());
    if (rc == SQL_NO_DATA) break;
    if (!SQL_SUCCEEDED(rc)) fail(rc);
    if (rc == SQL_SUCCESS_WITH_INFO) fetch_truncated(rows_fetched_);
    for (std::size_t r = 0; r < rows_fetched_; ++r) {
      if (row_status_[r] == SQL_ROW_ERROR) fail(SQL_ERROR);
      ++result.rows_fetched;
      if (!sink.row(BlockRow(columns_, r))) {
        result.stopped_by_sink = true;
        return result;
      }
    }
    check_progress(deadline);
  }
  SQLSetStmtAttr(stmt_.get(), SQL_ATTR_ROW_ARRAY_SIZE, reinterpret_cast<SQLPOINTER>(1), 0);
  return result;
}

void OdbcStatement::read_whole(SQLUSMALLINT index, SQLSMALLINT c_type, std::vector<std::byte>& buf,
                               SQLLEN& indicator) {
  // Reads the rest of a value in chunks, growing `buf` to the size the driver announces.
  const std::size_t terminator = c_type == SQL_C_CHAR ? 1 : 0;
  if (buf.size() < 1024) buf.resize(1024);
  std::size_t have = 0;
  for (;;) {
    SQLLEN ind = 0;
    SQLRETURN rc = SQLGetData(stmt_.get(), index, c_type, buf.data() + have,
                              static_cast<SQLLEN>(buf.size() - have), &ind);
    if (rc == SQL_NO_DATA) break;
    if (!SQL_SUCCEEDED(rc)) fail(rc);
    if (ind == SQL_NULL_DATA) {
      indicator = SQL_NULL_DATA;
      return;
    }
    const std::size_t room = buf.size() - have - terminator;
    if (rc == SQL_SUCCESS || (ind != SQL_NO_TOTAL && static_cast<std::size_t>(ind) <= room)) {
      have += static_cast<std::size_t>(ind);
      break;
    }
    have += room;  // the chunk filled the buffer; the terminator is overwritten next round
    const std::size_t want =
        ind == SQL_NO_TOTAL ? buf.size() * 2 : have + static_cast<std::size_t>(ind) - room + 1;
    buf.resize(std::max(want, buf.size() + buf.size() / 2));
  }
  indicator = static_cast<SQLLEN>(have);
}

void OdbcStatement::fetch_truncated(std::size_t rows) {
  for (Column& c : columns_) {
    if (c.variable) std::fill(c.spilled.begin(), c.spilled.end(), 0);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    bool positioned = false;
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      Column& c = columns_[i];
      if (!c.variable) continue;
      const SQLLEN ind = c.indicator[r];
      const SQLLEN fits = c.c_type == SQL_C_CHAR ? c.width - 1 : c.width;
      if (ind == SQL_NULL_DATA || (ind != SQL_NO_TOTAL && ind <= fits)) continue;
      if (!positioned) {
        SQLRETURN rc = SQLSetPos(stmt_.get(), static_cast<SQLSETPOSIROW>(r + 1), SQL_POSITION,
                                 SQL_LOCK_NO_CHANGE);
        if (!SQL_SUCCEEDED(rc)) fail(rc);
        positioned = true;
      }
      read_whole(static_cast<SQLUSMALLINT>(i + 1), c.c_type, c.spill[r], c.indicator[r]);
      c.spilled[r] = 1;
    }
  }
}

ExecResult OdbcStatement::fetch_rows(RowSink& sink, Deadline deadline) {
  for (Column& c : columns_) {
    c.indicator.assign(1, 0);
    c.spilled.clear();
    if (c.variable) {
      c.width = 0;  // one growable buffer, read whole
    } else {
      c.data.resize(static_cast<std::size_t>(c.width));
    }
  }
  ExecResult result;
  for (;;) {
    SQLRETURN rc = SQLFetch(stmt_.get());
    if (rc == SQL_NO_DATA) break;
    if (!SQL_SUCCEEDED(rc)) fail(rc);
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      Column& c = columns_[i];
      const auto index = static_cast<SQLUSMALLINT>(i + 1);
      if (c.variable) {
        read_whole(index, c.c_type, c.data, c.indicator[0]);
        continue;
      }
      rc = SQLGetData(stmt_.get(), index, c.c_type, c.data.data(), c.width, &c.indicator[0]);
      if (!SQL_SUCCEEDED(rc)) fail(rc);
      if (c.c_type == SQL_C_CHAR && c.indicator[0] >= c.width) c.indicator[0] = c.width - 1;
    }
    ++result.rows_fetched;
    if (!sink.row(BlockRow(columns_, 0))) {
      result.stopped_by_sink = true;
      return result;
    }
    check_progress(deadline);
  }
  return result;
}

}  // namespace sluice::pool
