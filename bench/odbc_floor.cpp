// odbc_floor: the floor for any ODBC gateway. N threads, each with its own connection, run one
// statement back to back through the driver for a while, fetching results in blocks with
// column-wise array binding, and report throughput and latency as JSON. No MCP, no JSON
// encoding of rows, no pool: what is left is the driver and the database.
//
//   odbc_floor --connection-string 'Driver={PostgreSQL Unicode};...' --sql 'SELECT 1'
//              --clients 8 --duration 10 --warmup 2 [--json out.json]
//
// Each request is SQLExecDirect with the statement's text (a gateway receives SQL text, so
// it cannot prepare ahead), SQLNumResultCols + SQLDescribeCol, binding every column as text
// to arrays of kRowArraySize rows, SQLFetch until no data, and closing the cursor.
#include <sql.h>
#include <sqlext.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr SQLULEN kRowArraySize = 256;
// Text slot per cell: the benchmark's columns are short; a longer value is truncated and
// counted, so a result that does not fit shows in the report instead of going unnoticed.
constexpr SQLLEN kMaxCellBytes = 256;

// One ODBC failure, captured once: SQLSTATE, native code and message of the first record.
class OdbcError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string diagnostics(SQLSMALLINT type, SQLHANDLE handle) {
  SQLCHAR state[6] = {};
  SQLINTEGER native = 0;
  SQLCHAR text[512] = {};
  SQLSMALLINT length = 0;
  if (!SQL_SUCCEEDED(SQLGetDiagRec(type, handle, 1, state, &native, text, sizeof text, &length))) {
    return "no diagnostics";
  }
  return std::string(reinterpret_cast<char*>(state)) + " (" + std::to_string(native) +
         "): " + reinterpret_cast<char*>(text);
}

void check(SQLRETURN rc, SQLSMALLINT type, SQLHANDLE handle, const char* what) {
  if (!SQL_SUCCEEDED(rc)) throw OdbcError(std::string(what) + ": " + diagnostics(type, handle));
}

class Handle {
 public:
  Handle(SQLSMALLINT type, SQLHANDLE parent) : type_(type) {
    const SQLRETURN rc = SQLAllocHandle(type, parent, &handle_);
    if (!SQL_SUCCEEDED(rc)) throw OdbcError("SQLAllocHandle failed");
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { SQLFreeHandle(type_, handle_); }
  SQLHANDLE get() const noexcept { return handle_; }

 private:
  SQLSMALLINT type_;
  SQLHANDLE handle_ = SQL_NULL_HANDLE;
};

struct Options {
  std::string connection_string;
  std::string sql;
  unsigned clients = 1;
  double duration_s = 10;
  double warmup_s = 2;
  std::optional<std::string> json;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr
      << "odbc_floor: " << problem
      << "\nusage: odbc_floor --connection-string S --sql S [--clients N] [--duration SECONDS]"
         " [--warmup SECONDS] [--json FILE]\n";
  std::exit(2);
}

double number(const std::string& flag, const std::string& text) {
  double x = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(x) || x < 0) {
    usage(flag + " " + text + ": expected a number >= 0");
  }
  return x;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--connection-string") {
      o.connection_string = value;
    } else if (flag == "--sql") {
      o.sql = value;
    } else if (flag == "--clients") {
      const double n = number(flag, value);
      if (n < 1 || n > 1024 || n != std::floor(n)) usage("--clients must be from 1 to 1024");
      o.clients = static_cast<unsigned>(n);
    } else if (flag == "--duration") {
      o.duration_s = number(flag, value);
      if (o.duration_s <= 0) usage("--duration must be > 0");
    } else if (flag == "--warmup") {
      o.warmup_s = number(flag, value);
    } else if (flag == "--json") {
      o.json = value;
    } else {
      usage("unknown flag " + flag);
    }
  }
  if (o.connection_string.empty()) usage("--connection-string is required");
  if (o.sql.empty()) usage("--sql is required");
  return o;
}

// What one worker saw in the measured window.
struct WorkerResult {
  std::vector<std::uint32_t> latencies_us;
  std::uint64_t errors = 0;
  std::uint64_t rows = 0;
  std::uint64_t truncated_cells = 0;
  std::string first_error;
};

// A connection with one statement handle, reused for every request.
class Worker {
 public:
  Worker(SQLHENV env, const std::string& connection_string)
      : dbc_(SQL_HANDLE_DBC, env), connected_(false) {
    SQLCHAR out[1024];
    SQLSMALLINT out_length = 0;
    std::string in = connection_string;
    check(SQLDriverConnect(dbc_.get(), nullptr, reinterpret_cast<SQLCHAR*>(in.data()),
                           static_cast<SQLSMALLINT>(in.size()), out, sizeof out, &out_length,
                           SQL_DRIVER_NOPROMPT),
          SQL_HANDLE_DBC, dbc_.get(), "SQLDriverConnect");
    connected_ = true;
    stmt_.emplace(SQL_HANDLE_STMT, dbc_.get());
    check(SQLSetStmtAttr(stmt_->get(), SQL_ATTR_ROW_BIND_TYPE,
                         reinterpret_cast<SQLPOINTER>(SQL_BIND_BY_COLUMN), 0),
          SQL_HANDLE_STMT, stmt_->get(), "SQL_ATTR_ROW_BIND_TYPE");
    check(SQLSetStmtAttr(stmt_->get(), SQL_ATTR_ROW_ARRAY_SIZE,
                         reinterpret_cast<SQLPOINTER>(kRowArraySize), 0),
          SQL_HANDLE_STMT, stmt_->get(), "SQL_ATTR_ROW_ARRAY_SIZE");
    check(SQLSetStmtAttr(stmt_->get(), SQL_ATTR_ROWS_FETCHED_PTR, &fetched_, 0), SQL_HANDLE_STMT,
          stmt_->get(), "SQL_ATTR_ROWS_FETCHED_PTR");
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    stmt_.reset();
    if (connected_) SQLDisconnect(dbc_.get());
  }

  // Runs the statement once and reads every row; returns the number of rows.
  std::uint64_t run(std::string& sql, std::uint64_t& truncated) {
    SQLHSTMT s = stmt_->get();
    check(SQLExecDirect(s, reinterpret_cast<SQLCHAR*>(sql.data()),
                        static_cast<SQLINTEGER>(sql.size())),
          SQL_HANDLE_STMT, s, "SQLExecDirect");
    SQLSMALLINT columns = 0;
    check(SQLNumResultCols(s, &columns), SQL_HANDLE_STMT, s, "SQLNumResultCols");
    bind(s, columns);
    std::uint64_t rows = 0;
    for (;;) {
      const SQLRETURN rc = SQLFetch(s);
      if (rc == SQL_NO_DATA) break;
      check(rc, SQL_HANDLE_STMT, s, "SQLFetch");
      rows += fetched_;
      for (std::size_t c = 0; c < static_cast<std::size_t>(columns); ++c) {
        const SQLLEN* lengths = indicators_.data() + c * kRowArraySize;
        for (SQLULEN r = 0; r < fetched_; ++r) {
          if (lengths[r] != SQL_NULL_DATA && lengths[r] >= kMaxCellBytes) ++truncated;
        }
      }
    }
    SQLFreeStmt(s, SQL_CLOSE);
    SQLFreeStmt(s, SQL_UNBIND);
    return rows;
  }

 private:
  // Describes the result's columns (as a gateway must, not knowing them in advance) and binds
  // each one as text to a column-wise array.
  void bind(SQLHSTMT s, SQLSMALLINT columns) {
    const auto n = static_cast<std::size_t>(columns);
    if (buffer_.size() < n * kRowArraySize * kMaxCellBytes) {
      buffer_.resize(n * kRowArraySize * kMaxCellBytes);
      indicators_.resize(n * kRowArraySize);
    }
    for (SQLUSMALLINT c = 1; c <= n; ++c) {
      SQLCHAR name[256];
      SQLSMALLINT name_length = 0, type = 0, digits = 0, nullable = 0;
      SQLULEN size = 0;
      check(SQLDescribeCol(s, c, name, sizeof name, &name_length, &type, &size, &digits, &nullable),
            SQL_HANDLE_STMT, s, "SQLDescribeCol");
      const std::size_t at = (c - 1) * kRowArraySize;
      check(SQLBindCol(s, c, SQL_C_CHAR, buffer_.data() + at * kMaxCellBytes, kMaxCellBytes,
                       indicators_.data() + at),
            SQL_HANDLE_STMT, s, "SQLBindCol");
    }
  }

  Handle dbc_;
  bool connected_;
  std::optional<Handle> stmt_;
  SQLULEN fetched_ = 0;
  std::vector<char> buffer_;
  std::vector<SQLLEN> indicators_;
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double percentile_ms(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  try {
    Handle env(SQL_HANDLE_ENV, SQL_NULL_HANDLE);
    check(SQLSetEnvAttr(env.get(), SQL_ATTR_ODBC_VERSION,
                        reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0),
          SQL_HANDLE_ENV, env.get(), "SQL_ATTR_ODBC_VERSION");

    // Connections are opened before the clock starts: connecting costs milliseconds and is
    // what any gateway pools away.
    std::vector<std::unique_ptr<Worker>> workers;
    for (unsigned i = 0; i < options.clients; ++i) {
      workers.push_back(std::make_unique<Worker>(env.get(), options.connection_string));
    }

    std::vector<WorkerResult> results(options.clients);
    const auto start = Clock::now() + std::chrono::milliseconds(50);
    const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(options.warmup_s));
    const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options.duration_s));
    std::atomic<bool> measuring_cpu{false};
    double cpu_at_start = 0;
    std::mutex cpu_mutex;

    std::vector<std::thread> threads;
    for (unsigned i = 0; i < options.clients; ++i) {
      threads.emplace_back([&, i] {
        Worker& w = *workers[i];
        WorkerResult& r = results[i];
        std::string sql = options.sql;
        std::this_thread::sleep_until(start);
        for (;;) {
          const auto begin = Clock::now();
          if (begin >= stop_at) break;
          if (begin >= measure_from && !measuring_cpu.load(std::memory_order_relaxed)) {
            std::lock_guard lock(cpu_mutex);
            if (!measuring_cpu.exchange(true)) cpu_at_start = cpu_seconds();
          }
          std::uint64_t rows = 0;
          bool ok = true;
          try {
            rows = w.run(sql, r.truncated_cells);
          } catch (const OdbcError& e) {
            ok = false;
            if (r.first_error.empty()) r.first_error = e.what();
          }
          const auto end = Clock::now();
          if (begin < measure_from || end > stop_at) continue;
          if (!ok) {
            ++r.errors;
            continue;
          }
          r.rows += rows;
          r.latencies_us.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(end - begin).count()));
        }
      });
    }
    for (auto& t : threads) t.join();
    const double cpu = cpu_seconds() - cpu_at_start;
    workers.clear();

    std::vector<std::uint32_t> all;
    std::uint64_t errors = 0, rows = 0, truncated = 0;
    std::string first_error;
    for (auto& r : results) {
      all.insert(all.end(), r.latencies_us.begin(), r.latencies_us.end());
      errors += r.errors;
      rows += r.rows;
      truncated += r.truncated_cells;
      if (first_error.empty()) first_error = r.first_error;
    }
    std::sort(all.begin(), all.end());
    const double ok = static_cast<double>(all.size());
    double mean_us = 0;
    for (const auto v : all) mean_us += v;
    if (!all.empty()) mean_us /= ok;

    nlohmann::json report = {
        {"tool", "odbc_floor"},
        {"sql", options.sql},
        {"clients", options.clients},
        {"measured_s", options.duration_s},
        {"ok", all.size()},
        {"errors", errors},
        {"rps", ok / options.duration_s},
        {"rows_per_request", all.empty() ? 0.0 : static_cast<double>(rows) / ok},
        {"truncated_cells", truncated},
        {"cpu_us_per_request", all.empty() ? 0.0 : cpu * 1e6 / ok},
        {"latency_ms",
         {{"mean", mean_us / 1000.0},
          {"p50", percentile_ms(all, 0.50)},
          {"p95", percentile_ms(all, 0.95)},
          {"p99", percentile_ms(all, 0.99)},
          {"max", all.empty() ? 0.0 : all.back() / 1000.0}}}};
    if (!first_error.empty()) report["first_error"] = first_error;
    const std::string text = report.dump(2) + "\n";
    if (options.json) {
      std::ofstream out(*options.json, std::ios::trunc);
      out << text;
      if (!out) {
        std::cerr << "odbc_floor: cannot write " << *options.json << "\n";
        return 3;
      }
    } else {
      std::cout << text;
    }
    return all.empty() ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "odbc_floor: " << e.what() << "\n";
    return 3;
  }
}
