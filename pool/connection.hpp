#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "pool/asio.hpp"
#include "pool/db_context.hpp"
#include "pool/row_sink.hpp"
#include "pool/value.hpp"

namespace sluice::pool {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

struct Statement {
  std::string_view sql;
  std::span<const Param> params;
  // The most rows the caller will take (0: all). A backend that can may have the server stop
  // producing rows past it, instead of reading and discarding them: the caller's sink still
  // decides, and gets at most this many.
  std::uint64_t row_limit = 0;
};

// Why a running statement was cancelled; decides which error the caller sees.
enum class CancelReason : std::uint8_t { none, deadline, caller };

struct ExecResult {
  std::int64_t rows_affected = -1;  // for DML, when the driver reports it
  std::uint64_t rows_fetched = 0;   // rows handed to the sink
  bool stopped_by_sink = false;     // the sink asked to stop before the last row
};

// Carries one caller's giving up into a statement that another coroutine runs for it (a batch
// driven by another request). Thread-safe.
class RemoteCancel {
 public:
  // The caller gave up: runs the armed hook, if any.
  void request() {
    std::function<void()> hook;
    {
      std::lock_guard lock(mutex_);
      requested_ = true;
      hook = hook_;
    }
    if (hook) hook();
  }
  // The runner: calls `hook` on request() until disarm(), and at once if it came already. A
  // hook may still run just after disarm() returns, so it must stay harmless then.
  void arm(std::function<void()> hook) {
    bool now = false;
    {
      std::lock_guard lock(mutex_);
      hook_ = hook;
      now = requested_;
    }
    if (now) hook();
  }
  void disarm() {
    std::lock_guard lock(mutex_);
    hook_ = nullptr;
  }
  bool requested() {
    std::lock_guard lock(mutex_);
    return requested_;
  }

 private:
  std::mutex mutex_;
  bool requested_ = false;
  std::function<void()> hook_;
};

// One statement of a batch (Connection::execute_batch), and what came of it.
struct BatchItem {
  Statement stmt;
  RowSink* sink = nullptr;
  Deadline deadline{};
  RemoteCancel cancel;
  // Written by the batch: the result, or why there is none, then settled.
  ExecResult result;
  std::exception_ptr error;
  bool settled = false;
};

// One open database connection, as the pool and the tools see it, whatever the backend.
//
// Not thread-safe: the pool hands a connection to one borrower at a time. Every operation
// honours Asio per-operation cancellation (cancelling the awaiting operation cancels the
// statement on the server) and its deadline. Errors are thrown as DbError.
class Connection {
 public:
  virtual ~Connection() = default;

  // Runs one statement, streaming any result rows into `sink`.
  virtual asio::awaitable<ExecResult> execute(Statement stmt, RowSink& sink, Deadline deadline) = 0;

  // Runs several statements, in the order given, each with its own sink and deadline;
  // outcomes go to the items, never thrown. For reads that leave the session's context as
  // they found it (what the SQL guard passes). Cancelling the awaiting operation cancels
  // items[caller] only; each item's own RemoteCancel cancels it. As soon as an item's outcome
  // is in, it is settled and handed to `on_settled` (if set), and never touched again: its
  // caller may go on at once, without waiting for the statements after it. A backend that
  // can pipelines them (sends all, then reads the answers in order: one round trip instead of
  // n); this default runs them one after another.
  virtual asio::awaitable<void> execute_batch(std::span<BatchItem* const> items, std::size_t caller,
                                              const std::function<void(BatchItem&)>& on_settled);

  // A cheap round trip proving the connection still works.
  virtual asio::awaitable<void> validate(Deadline deadline) = 0;

  // Closes the connection; never throws.
  virtual asio::awaitable<void> close() noexcept = 0;

  // The database context the statements that follow must run in. Most backends hold it as
  // session state, which the dialect's switch statements change, and ignore this. A backend
  // whose protocol carries the context with every request instead (e6data sends catalog and
  // database with each prepare) takes it from here. The multiplexer calls it on every
  // checkout, after any switch statements.
  virtual void use_context(const DbContext& ctx) { (void)ctx; }

  // False once the connection's state is unknown (it broke, or a cancelled statement left
  // it in an unclear state): the pool discards it instead of handing it out again.
  virtual bool reusable() const noexcept = 0;
};

}  // namespace sluice::pool
