#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace sluice::pool {

// The database context a request runs in: which database (catalog), schema, warehouse and
// role its statements see. An empty field means "the connection's default" (what the
// connection string gives). Each request carries its own; the multiplexer puts a connection
// in that context before handing it over (preferring one already in it) and never lets one
// request's context leak into another's.
struct DbContext {
  std::string database;
  std::string schema;
  std::string warehouse;
  std::string role;

  bool empty() const noexcept {
    return database.empty() && schema.empty() && warehouse.empty() && role.empty();
  }
  friend bool operator==(const DbContext&, const DbContext&) = default;
};

struct DbContextHash {
  std::size_t operator()(const DbContext& c) const noexcept {
    std::hash<std::string> h;
    std::size_t seed = h(c.database);
    for (const std::string* s : {&c.schema, &c.warehouse, &c.role}) {
      seed ^= h(*s) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    }
    return seed;
  }
};

}  // namespace sluice::pool
