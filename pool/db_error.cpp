#include "pool/db_error.hpp"

namespace sluice::pool {
namespace {

class DbCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.db"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::acquire_timeout:
        return "no database connection available before the deadline";
      case errc::pool_closed:
        return "connection pool is closed";
      case errc::connect_failed:
        return "could not connect to the database";
      case errc::connection_lost:
        return "database connection lost";
      case errc::statement_timeout:
        return "statement exceeded its deadline and was cancelled";
      case errc::cancelled:
        return "statement cancelled";
      case errc::statement_failed:
        return "statement failed";
      case errc::invalid_argument:
        return "invalid argument";
    }
    return "unknown database error";
  }
};

std::string describe(errc kind, const std::string& source, const Diagnostic& diag) {
  std::string text = "source '" + source + "': ";
  text += diag.message.empty() ? make_error_code(kind).message() : diag.message;
  if (!diag.sqlstate.empty()) {
    text += " [SQLSTATE " + diag.sqlstate;
    if (diag.native_code != 0) text += ", native " + std::to_string(diag.native_code);
    text += "]";
  }
  return text;
}

}  // namespace

const std::error_category& db_category() noexcept {
  static const DbCategory category;
  return category;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), db_category()};
}

DbError::DbError(errc kind, std::string source, Diagnostic diag)
    : std::system_error(make_error_code(kind), describe(kind, source, diag)),
      source_(std::move(source)),
      diag_(std::move(diag)) {}

errc classify_sqlstate(std::string_view s) noexcept {
  // 08: connection exception. 57P01-57P03: PostgreSQL's admin shutdown, crash shutdown,
  // cannot connect now. HYT01: connection timeout expired.
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "HYT01") {
    return errc::connection_lost;
  }
  if (s == "57014" || s == "HY008") return errc::cancelled;  // query_canceled; op cancelled
  if (s == "HYT00") return errc::statement_timeout;
  return errc::statement_failed;
}

std::exception_ptr copy_error(const std::exception_ptr& e, errc fallback,
                              const std::string& source) {
  try {
    std::rethrow_exception(e);
  } catch (const DbError& d) {
    return std::make_exception_ptr(DbError(d.kind(), d.source(), d.diagnostic()));
  } catch (const std::exception& x) {
    return std::make_exception_ptr(DbError(fallback, source, {"", 0, x.what()}));
  } catch (...) {
    return std::make_exception_ptr(DbError(fallback, source, {"", 0, "unknown error"}));
  }
}

}  // namespace sluice::pool
