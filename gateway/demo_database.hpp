#pragma once

#include <filesystem>
#include <string>

#include "pool/asio.hpp"
#include "pool/backend.hpp"

namespace sluice::gateway {

// The built-in demo: a small sales warehouse in one SQLite file (customers, products,
// orders, order_items and two views, about 60,000 rows), so that a new user has something
// real to explore without configuring a database.
class DemoDatabase {
 public:
  // Where the demo lives unless told otherwise: $SLUICE_DEMO_DB, else
  // $XDG_DATA_HOME/sluice/demo.sqlite, else ~/.local/share/sluice/demo.sqlite.
  static std::filesystem::path default_path();

  // The ODBC connection string for the file at `path`.
  static std::string connection_string(const std::filesystem::path& path);

  // Creates the file if it does not exist yet, through `make_backend(connection_string)`.
  // It is built under a temporary name and renamed into place, so an interrupted first run
  // leaves nothing half-made behind. Returns true if it created the file.
  template <class MakeBackend>
  static asio::awaitable<bool> ensure(const std::filesystem::path& path, MakeBackend make_backend);

 private:
  static asio::awaitable<void> populate(pool::Backend& backend);
};

template <class MakeBackend>
asio::awaitable<bool> DemoDatabase::ensure(const std::filesystem::path& path,
                                           MakeBackend make_backend) {
  if (std::filesystem::exists(path)) co_return false;
  std::filesystem::create_directories(path.parent_path());
  std::filesystem::path tmp = path;
  tmp += ".building";
  std::filesystem::remove(tmp);
  {
    auto backend = make_backend(connection_string(tmp));
    co_await populate(*backend);
  }
  std::filesystem::remove(std::filesystem::path(tmp) += "-wal");
  std::filesystem::remove(std::filesystem::path(tmp) += "-shm");
  std::filesystem::rename(tmp, path);
  co_return true;
}

}  // namespace sluice::gateway
