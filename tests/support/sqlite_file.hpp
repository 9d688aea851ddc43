#pragma once

#include <filesystem>
#include <string>

namespace sluice::test {

// A fresh SQLite database file in a private temporary directory, removed with it.
class SqliteFile {
 public:
  SqliteFile();
  ~SqliteFile();
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  // A sqliteodbc connection string: WAL journal and a busy timeout, as the product uses.
  std::string odbc_connection_string() const;

 private:
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

}  // namespace sluice::test
