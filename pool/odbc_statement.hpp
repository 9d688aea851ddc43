#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "pool/connection.hpp"
#include "pool/odbc_connection.hpp"

namespace sluice::pool {

// Why a running statement was cancelled; decides which error the caller sees.
enum class CancelReason : std::uint8_t { none, deadline, caller };

// A reusable statement handle on one OdbcConnection. execute() blocks (run it on a
// BlockingPool thread); cancel() may be called from any thread at any time.
//
// Results are fetched in blocks with column-wise array binding, so a 100-row result is one
// SQLFetch and no per-cell allocation. Variable-length values longer than their bound slot
// are fetched whole with SQLSetPos + SQLGetData where the driver supports that in a block
// cursor (psqlODBC); elsewhere (sqliteodbc, whose SQLSetPos is unusable) a result with
// variable-length columns is fetched one row at a time with SQLGetData.
class OdbcStatement {
 public:
  explicit OdbcStatement(OdbcConnection& conn);

  // Runs `stmt`, streaming rows into `sink`. The deadline becomes SQL_ATTR_QUERY_TIMEOUT
  // and bounds the fetch loop; cancelling at the deadline is the caller's watchdog's job.
  ExecResult execute(const Statement& stmt, RowSink& sink, Deadline deadline);

  // Cancels the statement if one is running; a no-op otherwise. Thread-safe.
  void cancel(CancelReason why) noexcept;

  // Whether the last error left the connection in an unknown state.
  bool connection_suspect() const noexcept { return suspect_; }

 private:
  struct Column {
    ColumnInfo info;
    SQLSMALLINT c_type = SQL_C_CHAR;
    bool variable = false;          // text or binary: may not fit its slot
    SQLLEN width = 0;               // bytes per slot in `data`; 0 in row mode for variable
    std::vector<std::byte> data;    // one slot per row, or a growable buffer in row mode
    std::vector<SQLLEN> indicator;  // one per row
    std::vector<std::vector<std::byte>> spill;  // whole values of cells that did not fit
    std::vector<std::uint8_t> spilled;          // per row: the value is in `spill`
  };
  struct ParamSlot {
    SQLLEN indicator = 0;
    alignas(8) std::byte fixed[sizeof(SQL_TIMESTAMP_STRUCT)] = {};
    std::string text;
  };
  class BlockRow;

  void begin();
  void end() noexcept;
  void reset_handle() noexcept;
  void bind_params(std::span<const Param> params);
  void describe(SQLSMALLINT count);
  ExecResult fetch_blocks(RowSink& sink, Deadline deadline);
  ExecResult fetch_rows(RowSink& sink, Deadline deadline);
  void read_whole(SQLUSMALLINT index, SQLSMALLINT c_type, std::vector<std::byte>& buf,
                  SQLLEN& indicator);
  void fetch_truncated(std::size_t rows);
  void check_progress(Deadline deadline) const;
  [[noreturn]] void fail(SQLRETURN rc);

  OdbcConnection& conn_;
  OdbcHandle<SQL_HANDLE_STMT> stmt_;
  std::vector<Column> columns_;
  std::vector<ColumnInfo> infos_;
  std::vector<ParamSlot> params_;
  std::vector<SQLUSMALLINT> row_status_;
  SQLULEN rows_fetched_ = 0;
  bool block_getdata_ = false;  // SQLGetData works on any row of a block cursor

  std::mutex cancel_mutex_;  // orders cancel() against the start and end of execution
  bool executing_ = false;
  std::atomic<CancelReason> cancelled_{CancelReason::none};
  bool suspect_ = false;
};

}  // namespace sluice::pool
