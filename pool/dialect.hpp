#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pool/db_context.hpp"
#include "pool/value.hpp"

namespace sluice::pool {

// A dialect cannot put a connection into a database context. The message says what the user
// can ask for instead.
class ContextError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

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

  // The statements, to run in order, that take a connection's session from context `from` to
  // `to`; none when nothing changes. An empty field means the connection's default (what
  // the connection string and the login give). Names are quoted, so they match exactly
  // (case included). Throws ContextError when `to` cannot be reached from `from`: either
  // `to` itself asks for something this database cannot switch on a connection (tell that
  // case apart with switch_context(DbContext{}, to)), or the database has no statement that
  // returns a field to its default (Snowflake), when only a new connection will do.
  //
  // PostgreSQL: schema with SET search_path TO "s" (only that schema; pg_catalog is always
  // searched) or RESET search_path; role with SET ROLE "r" or RESET ROLE. A connection cannot
  // change database and there are no warehouses, so those must be empty.
  // SQLite: nothing to switch (attached databases are named in the query); all empty.
  // Snowflake: USE ROLE, USE WAREHOUSE, USE DATABASE, USE SCHEMA (qualified by the database
  // when one is given), in that order, so that the new role's privileges apply to the rest.
  // A schema left empty with a database given is the one USE DATABASE picks. Returning a
  // role, warehouse, database or schema to the login default is impossible.
  // e6data: the engine takes the catalog and database with every prepare request rather than
  // as session state, so `database` is the catalog, `schema` the e6data database, and there
  // are no statements: Connection::use_context() carries them. No warehouses or roles.
  virtual std::vector<std::string> switch_context(const DbContext& from,
                                                  const DbContext& to) const = 0;

  // The statements that put a connection whose context is unknown (an error or an unvetted
  // statement may have changed it) into `to`: switch_context() with every field treated as
  // changed. Throws ContextError as switch_context() does; a connection this cannot reset
  // must be discarded.
  virtual std::vector<std::string> reset_context(const DbContext& to) const = 0;
};

}  // namespace sluice::pool
