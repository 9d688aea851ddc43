#include "pool/odbc_connection.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>

namespace sluice::pool {

OdbcConnection::OdbcConnection(std::shared_ptr<OdbcEnvironment> env, std::string source)
    : env_(std::move(env)), source_(std::move(source)) {
  SQLHANDLE h = SQL_NULL_HANDLE;
  odbc_check(SQLAllocHandle(SQL_HANDLE_DBC, env_->native(), &h), SQL_HANDLE_ENV, env_->native(),
             source_, errc::connect_failed);
  dbc_ = OdbcHandle<SQL_HANDLE_DBC>(h);
}

OdbcConnection::~OdbcConnection() {
  disconnect();
}

void OdbcConnection::connect(const std::string& connection_string,
                             std::chrono::milliseconds login_timeout) {
  const auto seconds = std::max<std::int64_t>(1, (login_timeout.count() + 999) / 1000);
  SQLSetConnectAttr(dbc_.get(), SQL_ATTR_LOGIN_TIMEOUT,
                    reinterpret_cast<SQLPOINTER>(static_cast<SQLULEN>(seconds)), 0);
  SQLSMALLINT out_len = 0;
  // psqlODBC calls setlocale() while connecting, and setlocale is not thread-safe: two
  // connects on two workers race inside libc (ThreadSanitizer shows it). Its connects take
  // turns; the cost is that one hanging server delays the others up to its login timeout.
  static std::mutex setlocale_mutex;
  std::unique_lock lock(setlocale_mutex, std::defer_lock);
  std::string lowered(connection_string);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lowered.find("postgres") != std::string::npos ||
      lowered.find("psqlodbc") != std::string::npos) {
    lock.lock();
  }
  SQLRETURN rc = SQLDriverConnect(
      dbc_.get(), nullptr, reinterpret_cast<SQLCHAR*>(const_cast<char*>(connection_string.c_str())),
      static_cast<SQLSMALLINT>(connection_string.size()), nullptr, 0, &out_len,
      SQL_DRIVER_NOPROMPT);
  odbc_check(rc, SQL_HANDLE_DBC, dbc_.get(), source_, errc::connect_failed);
  connected_ = true;
}

void OdbcConnection::disconnect() noexcept {
  if (connected_) {
    SQLDisconnect(dbc_.get());
    connected_ = false;
  }
}

bool OdbcConnection::dead() const noexcept {
  SQLUINTEGER dead = SQL_CD_FALSE;
  SQLRETURN rc = SQLGetConnectAttr(dbc_.get(), SQL_ATTR_CONNECTION_DEAD, &dead, 0, nullptr);
  return SQL_SUCCEEDED(rc) && dead == SQL_CD_TRUE;
}

std::string OdbcConnection::dbms_name() const {
  std::array<SQLCHAR, 128> buf{};
  SQLSMALLINT len = 0;
  odbc_check(
      SQLGetInfo(dbc_.get(), SQL_DBMS_NAME, buf.data(), static_cast<SQLSMALLINT>(buf.size()), &len),
      SQL_HANDLE_DBC, dbc_.get(), source_);
  return std::string(reinterpret_cast<const char*>(buf.data()),
                     std::min<std::size_t>(static_cast<std::size_t>(len), buf.size() - 1));
}

std::string redact_connection_string(std::string_view cs) {
  std::string out;
  while (!cs.empty()) {
    auto semi = cs.find(';');
    std::string_view part = cs.substr(0, semi);
    auto eq = part.find('=');
    std::string key(part.substr(0, eq));
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    while (!key.empty() && key.front() == ' ') key.erase(key.begin());
    if (eq != std::string_view::npos && (key == "pwd" || key == "password")) {
      out.append(part.substr(0, eq + 1)).append("***");
    } else {
      out.append(part);
    }
    if (semi == std::string_view::npos) break;
    out.push_back(';');
    cs.remove_prefix(semi + 1);
  }
  return out;
}

}  // namespace sluice::pool
