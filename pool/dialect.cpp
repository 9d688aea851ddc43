#include "pool/dialect.hpp"

#include <stdexcept>

namespace sluice::pool {
namespace {

// A name for a switch statement, quoted. A NUL would end the statement early in the driver.
std::string quoted(const Dialect& d, std::string_view field, std::string_view name) {
  if (name.find('\0') != std::string_view::npos) {
    throw ContextError("the " + std::string(field) + " name contains a NUL character");
  }
  return d.quote_identifier(name);
}

class PostgresDialect : public Dialect {
 public:
  Kind kind() const noexcept override { return Kind::postgresql; }
  std::string_view name() const noexcept override { return "postgresql"; }

  Sql list_databases() const override {
    return {
        "SELECT datname AS name FROM pg_catalog.pg_database "
        "WHERE NOT datistemplate AND datallowconn ORDER BY datname",
        {}};
  }
  Sql list_schemas(std::string_view) const override {
    // Only the connected database is visible to a PostgreSQL session.
    return {
        "SELECT nspname AS name FROM pg_catalog.pg_namespace "
        "WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' "
        "ORDER BY nspname",
        {}};
  }
  Sql list_tables(std::string_view, std::string_view schema,
                  std::string_view pattern) const override {
    Sql q{
        "SELECT n.nspname AS schema, c.relname AS name, "
        "CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' ELSE 'table' END AS kind "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'",
        {}};
    if (!schema.empty()) {
      q.text += " AND n.nspname = ?";
      q.params.emplace_back(std::string(schema));
    }
    if (!pattern.empty()) {
      q.text += " AND c.relname LIKE ?";
      q.params.emplace_back(std::string(pattern));
    }
    q.text += " ORDER BY 1, 2";
    return q;
  }
  Sql describe_table(std::string_view, std::string_view schema,
                     std::string_view table) const override {
    Sql q{
        "SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, "
        "NOT a.attnotnull AS nullable, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS "
        "default_value, EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid "
        "AND i.indisprimary AND a.attnum = ANY(i.indkey)) AS primary_key "
        "FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
        "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relname = ?",
        {std::string(table)}};
    if (schema.empty()) {
      q.text += " AND pg_catalog.pg_table_is_visible(c.oid)";
    } else {
      q.text += " AND n.nspname = ?";
      q.params.emplace_back(std::string(schema));
    }
    q.text += " ORDER BY a.attnum";
    return q;
  }
  std::string explain(std::string_view sql) const override { return "EXPLAIN " + std::string(sql); }

  std::vector<std::string> switch_context(const DbContext& from,
                                          const DbContext& to) const override {
    return statements(to, from.role != to.role, from.schema != to.schema);
  }
  std::vector<std::string> reset_context(const DbContext& to) const override {
    return statements(to, true, true);
  }

 private:
  std::vector<std::string> statements(const DbContext& to, bool role, bool schema) const {
    if (!to.database.empty()) {
      throw ContextError("PostgreSQL cannot move a connection to another database ('" +
                         to.database +
                         "'): leave the database empty to use the source's own, or configure a "
                         "separate source for that database");
    }
    if (!to.warehouse.empty()) {
      throw ContextError("PostgreSQL has no warehouses: leave the warehouse empty");
    }
    std::vector<std::string> out;
    if (role) {
      out.push_back(to.role.empty() ? "RESET ROLE" : "SET ROLE " + quoted(*this, "role", to.role));
    }
    if (schema) {
      out.push_back(to.schema.empty() ? "RESET search_path"
                                      : "SET search_path TO " + quoted(*this, "schema", to.schema));
    }
    return out;
  }
};

class SqliteDialect : public Dialect {
 public:
  Kind kind() const noexcept override { return Kind::sqlite; }
  std::string_view name() const noexcept override { return "sqlite"; }

  Sql list_databases() const override {
    return {"SELECT name FROM pragma_database_list ORDER BY seq", {}};
  }
  // SQLite's attached databases double as its schemas.
  Sql list_schemas(std::string_view) const override {
    return {"SELECT name FROM pragma_database_list ORDER BY seq", {}};
  }
  Sql list_tables(std::string_view database, std::string_view schema,
                  std::string_view pattern) const override {
    const std::string_view db = !schema.empty() ? schema : database;
    // The schema name of a table-valued pragma is a bound argument, not an identifier.
    Sql q{
        "SELECT schema, name, type AS kind FROM pragma_table_list "
        "WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        {}};
    if (!db.empty()) {
      q.text += " AND schema = ?";
      q.params.emplace_back(std::string(db));
    } else {
      q.text += " AND schema <> 'temp'";
    }
    if (!pattern.empty()) {
      q.text += " AND name LIKE ?";
      q.params.emplace_back(std::string(pattern));
    }
    q.text += " ORDER BY 1, 2";
    return q;
  }
  Sql describe_table(std::string_view database, std::string_view schema,
                     std::string_view table) const override {
    const std::string_view db = !schema.empty() ? schema : database;
    Sql q{
        "SELECT name, type, \"notnull\" = 0 AS nullable, dflt_value AS default_value, "
        "pk > 0 AS primary_key FROM pragma_table_info(?, ?) ORDER BY cid",
        {std::string(table), db.empty() ? Param(Null{}) : Param(std::string(db))}};
    return q;
  }
  std::string explain(std::string_view sql) const override {
    return "EXPLAIN QUERY PLAN " + std::string(sql);
  }

  std::vector<std::string> switch_context(const DbContext&, const DbContext& to) const override {
    return reset_context(to);
  }
  std::vector<std::string> reset_context(const DbContext& to) const override {
    if (!to.database.empty() || !to.schema.empty()) {
      throw ContextError(
          "SQLite cannot switch a connection to another database or schema: leave them empty "
          "and name the attached database in the query instead (e.g. main.my_table)");
    }
    if (!to.warehouse.empty()) {
      throw ContextError("SQLite has no warehouses: leave the warehouse empty");
    }
    if (!to.role.empty()) throw ContextError("SQLite has no roles: leave the role empty");
    return {};
  }
};

// Snowflake and e6data speak ANSI information_schema.
class InformationSchemaDialect : public Dialect {
 public:
  explicit InformationSchemaDialect(Kind k) : kind_(k) {}
  Kind kind() const noexcept override { return kind_; }
  std::string_view name() const noexcept override {
    return kind_ == Kind::snowflake ? "snowflake" : "e6data";
  }
  Sql list_databases() const override { return {"SHOW DATABASES", {}}; }
  Sql list_schemas(std::string_view database) const override {
    return {"SELECT schema_name AS name FROM " + prefix(database) +
                "information_schema.schemata ORDER BY 1",
            {}};
  }
  Sql list_tables(std::string_view database, std::string_view schema,
                  std::string_view pattern) const override {
    Sql q{
        "SELECT table_schema AS schema, table_name AS name, CASE WHEN table_type = 'VIEW' "
        "THEN 'view' ELSE 'table' END AS kind FROM " +
            prefix(database) +
            "information_schema.tables WHERE table_schema <> 'INFORMATION_SCHEMA'",
        {}};
    if (!schema.empty()) {
      q.text += " AND table_schema = ?";
      q.params.emplace_back(std::string(schema));
    }
    if (!pattern.empty()) {
      q.text += " AND table_name LIKE ?";
      q.params.emplace_back(std::string(pattern));
    }
    q.text += " ORDER BY 1, 2";
    return q;
  }
  Sql describe_table(std::string_view database, std::string_view schema,
                     std::string_view table) const override {
    Sql q{
        "SELECT column_name AS name, data_type AS type, is_nullable = 'YES' AS nullable, "
        "column_default AS default_value, FALSE AS primary_key FROM " +
            prefix(database) + "information_schema.columns WHERE table_name = ?",
        {std::string(table)}};
    if (!schema.empty()) {
      q.text += " AND table_schema = ?";
      q.params.emplace_back(std::string(schema));
    }
    q.text += " ORDER BY ordinal_position";
    return q;
  }
  std::string explain(std::string_view sql) const override { return "EXPLAIN " + std::string(sql); }

  std::vector<std::string> switch_context(const DbContext& from,
                                          const DbContext& to) const override {
    return kind_ == Kind::e6data ? e6data_switch(to) : snowflake_switch(&from, to);
  }
  std::vector<std::string> reset_context(const DbContext& to) const override {
    return kind_ == Kind::e6data ? e6data_switch(to) : snowflake_switch(nullptr, to);
  }

 private:
  // `from` is null when the session's context is unknown: every field counts as changed.
  std::vector<std::string> snowflake_switch(const DbContext* from, const DbContext& to) const {
    using Field = std::string DbContext::*;
    auto changed = [&](Field f) { return from == nullptr || from->*f != to.*f; };
    std::vector<std::string> out;
    auto use = [&](std::string_view object, std::string_view field, Field f) {
      if (!changed(f)) return;
      if ((to.*f).empty()) {
        throw ContextError("Snowflake cannot return a session's " + std::string(field) +
                           " to the login default");
      }
      out.push_back("USE " + std::string(object) + " " + quoted(*this, field, to.*f));
    };
    use("ROLE", "role", &DbContext::role);
    use("WAREHOUSE", "warehouse", &DbContext::warehouse);
    const bool database_changed = changed(&DbContext::database);
    use("DATABASE", "database", &DbContext::database);
    if (!to.schema.empty()) {
      if (database_changed || changed(&DbContext::schema)) {
        const std::string db =
            to.database.empty() ? std::string() : quoted(*this, "database", to.database) + ".";
        out.push_back("USE SCHEMA " + db + quoted(*this, "schema", to.schema));
      }
    } else if (changed(&DbContext::schema) && !database_changed) {
      // Only USE DATABASE, which picks that database's schema, can undo a USE SCHEMA.
      throw ContextError("Snowflake cannot return a session's schema to the login default");
    }
    return out;
  }

  static std::vector<std::string> e6data_switch(const DbContext& to) {
    if (!to.warehouse.empty()) {
      throw ContextError("e6data has no warehouses to switch: leave the warehouse empty");
    }
    if (!to.role.empty()) throw ContextError("e6data has no roles to switch: leave the role empty");
    return {};
  }

  std::string prefix(std::string_view database) const {
    return database.empty() ? std::string() : quote_identifier(database) + ".";
  }
  Kind kind_;
};

}  // namespace

std::string Dialect::quote_identifier(std::string_view name) const {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::unique_ptr<Dialect> Dialect::make(Kind kind) {
  switch (kind) {
    case Kind::postgresql:
      return std::make_unique<PostgresDialect>();
    case Kind::sqlite:
      return std::make_unique<SqliteDialect>();
    case Kind::snowflake:
    case Kind::e6data:
      return std::make_unique<InformationSchemaDialect>(kind);
  }
  throw std::invalid_argument("unknown dialect");
}

std::optional<Dialect::Kind> Dialect::parse(std::string_view name) {
  if (name == "postgresql") return Kind::postgresql;
  if (name == "sqlite") return Kind::sqlite;
  if (name == "snowflake") return Kind::snowflake;
  if (name == "e6data") return Kind::e6data;
  return std::nullopt;
}

}  // namespace sluice::pool
