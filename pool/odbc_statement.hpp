#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool/connection.hpp"
#include "pool/odbc_connection.hpp"

namespace sluice::pool {

// The part of a statement that other threads touch: the watchdog cancels a run through it,
// at the run's deadline or when the caller gives up. Callbacks share it, so one that
// arrives after the statement is gone finds it detached rather than freed memory. Each run
// has a number; a cancel meant for an earlier run is ignored, and a cancel that arrives
// before its run reaches the driver is kept and stops the run before it starts.
class StatementCancel {
 public:
  explicit StatementCancel(SQLHSTMT stmt) noexcept : stmt_(stmt) {}

  // Before a run is handed to a worker: a new run, not cancelled.
  std::uint64_t open() noexcept;
  // Any thread. Records `why` for `run` (the first reason wins) and, if that run is inside
  // the driver, calls SQLCancel. Returns true while the run is still executing, so that the
  // caller repeats the cancel: a driver that had not yet started the statement when
  // SQLCancel arrived (SQLite between prepare and step, PostgreSQL before the query reaches
  // the server) ignores it.
  bool cancel(CancelReason why, std::uint64_t run) noexcept;
  // The worker, around the driver calls of a run. enter() returns the reason the run was
  // cancelled before it started, or none.
  CancelReason enter() noexcept;
  void leave() noexcept;
  // Why the current run was cancelled, or none.
  CancelReason reason() const noexcept { return why_.load(std::memory_order_acquire); }
  // The statement handle is about to be freed: later cancels do nothing.
  void detach() noexcept;

 private:
  std::mutex mutex_;  // orders SQLCancel against the start and end of a run and detach()
  SQLHSTMT stmt_;
  std::uint64_t run_ = 0;
  bool executing_ = false;
  std::atomic<CancelReason> why_{CancelReason::none};
};

// A reusable statement handle on one OdbcConnection. execute() blocks (run it on a
// BlockingPool thread); it is cancelled through canceller(), from any thread.
//
// Results are fetched in blocks with column-wise array binding, so a 100-row result is one
// SQLFetch and no per-cell allocation. Variable-length values longer than their bound slot
// are fetched whole with SQLSetPos + SQLGetData where the driver supports that in a block
// cursor (psqlODBC); elsewhere (sqliteodbc, whose SQLSetPos is unusable) a result with
// variable-length columns is fetched one row at a time with SQLGetData.
class OdbcStatement {
 public:
  explicit OdbcStatement(OdbcConnection& conn);
  ~OdbcStatement();
  OdbcStatement(const OdbcStatement&) = delete;
  OdbcStatement& operator=(const OdbcStatement&) = delete;

  // Runs `stmt`, streaming rows into `sink`, as the run last opened on canceller(). The
  // deadline becomes SQL_ATTR_QUERY_TIMEOUT and bounds the fetch loop; cancelling at the
  // deadline is the caller's watchdog's job.
  ExecResult execute(const Statement& stmt, RowSink& sink, Deadline deadline);

  const std::shared_ptr<StatementCancel>& canceller() const noexcept { return cancel_; }

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

  std::shared_ptr<StatementCancel> cancel_;
  bool suspect_ = false;
};

}  // namespace sluice::pool
