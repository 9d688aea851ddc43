#include "tests/support/sqlite_file.hpp"

#include <stdlib.h>

#include <stdexcept>
#include <system_error>

namespace sluice::test {

SqliteFile::SqliteFile() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-sqlite-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  }
  dir_ = tmpl;
  path_ = dir_ / "test.sqlite";
}

SqliteFile::~SqliteFile() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string SqliteFile::odbc_connection_string() const {
  return "Driver={SQLite3};Database=" + path_.string() + ";JournalMode=WAL;Timeout=5000;";
}

}  // namespace sluice::test
