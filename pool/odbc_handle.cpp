#include "pool/odbc_handle.hpp"

#include <array>

namespace sluice::pool {

Diagnostic read_diagnostic(SQLSMALLINT handle_type, SQLHANDLE handle) {
  Diagnostic d;
  if (handle == SQL_NULL_HANDLE) return d;
  for (SQLSMALLINT rec = 1;; ++rec) {
    std::array<SQLCHAR, 6> state{};
    SQLINTEGER native = 0;
    std::array<SQLCHAR, 1024> text{};
    SQLSMALLINT len = 0;
    SQLRETURN rc = SQLGetDiagRec(handle_type, handle, rec, state.data(), &native, text.data(),
                                 static_cast<SQLSMALLINT>(text.size()), &len);
    if (!SQL_SUCCEEDED(rc)) break;
    if (rec == 1) {
      d.sqlstate.assign(reinterpret_cast<const char*>(state.data()), 5);
      d.native_code = native;
    }
    std::string_view msg(reinterpret_cast<const char*>(text.data()),
                         std::min<std::size_t>(static_cast<std::size_t>(len), text.size() - 1));
    // Drivers end messages with newlines and indent continuation lines with tabs; one line
    // reads better in a log and in a JSON error.
    if (!d.message.empty()) d.message += "; ";
    bool space = false;
    for (char ch : msg) {
      if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
        space = true;
        continue;
      }
      if (space && !d.message.empty() && d.message.back() != ' ') d.message += ' ';
      space = false;
      d.message += ch;
    }
    if (rec >= 8) break;
  }
  return d;
}

}  // namespace sluice::pool
