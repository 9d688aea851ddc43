#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool/value.hpp"

namespace sluice::pool {

// SQL that differs between databases: metadata queries, identifier quoting, EXPLAIN. Every
// user-supplied name reaches the database as a bound parameter or a quoted identifier, never
// pasted. Stateless and thread-safe.
class Dialect {
 public:
  enum class Kind { postgresql, sqlite, snowflake, e6data };

  // A statement plus its parameters.
  struct Sql {
    std::string text;
    std::vector<Param> params;
  };

  virtual ~Dialect() = default;

  static std::unique_ptr<Dialect> make(Kind kind);
  // "postgresql", "sqlite", "snowflake" or "e6data"; nullopt for anything else.
  static std::optional<Kind> parse(std::string_view name);

  virtual Kind kind() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;

  // Quotes an identifier so that any name, however odd, is read as a name.
  virtual std::string quote_identifier(std::string_view name) const;

  // Result columns: name.
  virtual Sql list_databases() const = 0;
  // Result columns: name. `database` may be empty (the current one).
  virtual Sql list_schemas(std::string_view database) const = 0;
  // Result columns: schema, name, kind ('table' or 'view'). Empty filters mean all; `pattern`
  // is a SQL LIKE pattern on the name.
  virtual Sql list_tables(std::string_view database, std::string_view schema,
                          std::string_view pattern) const = 0;
  // Result columns: name, type, nullable (boolean), default_value, primary_key (boolean),
  // ordered by position. Empty schema means the default search path.
  virtual Sql describe_table(std::string_view database, std::string_view schema,
                             std::string_view table) const = 0;
  // The statement that shows the plan of `sql` (already checked read-only by the caller).
  virtual std::string explain(std::string_view sql) const = 0;
};

}  // namespace sluice::pool
