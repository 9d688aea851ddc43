#include "gateway/database_tools.hpp"

#include <algorithm>

#include "gateway/json_writer.hpp"
#include "gateway/result_encoder.hpp"
#include "gateway/sql_guard.hpp"

namespace sluice::gateway {
namespace {

using json = nlohmann::json;

enum class Tool {
  list_databases,
  list_schemas,
  list_tables,
  describe_table,
  query,
  explain,
  execute,
  set_context,
  get_context
};
constexpr std::pair<std::string_view, Tool> kTools[] = {{"list_databases", Tool::list_databases},
                                                        {"list_schemas", Tool::list_schemas},
                                                        {"list_tables", Tool::list_tables},
                                                        {"describe_table", Tool::describe_table},
                                                        {"query", Tool::query},
                                                        {"explain", Tool::explain},
                                                        {"execute", Tool::execute},
                                                        {"set_context", Tool::set_context},
                                                        {"get_context", Tool::get_context}};

// Named once per call: comparing a std::string with a literal measures the literal first.
std::optional<Tool> tool_named(std::string_view name) noexcept {
  for (const auto& [tool_name, tool] : kTools) {
    if (tool_name == name) return tool;
  }
  return std::nullopt;
}

// The tools that look in a database and schema (as filters) rather than run in them.
constexpr bool is_metadata(Tool t) noexcept {
  return t == Tool::list_databases || t == Tool::list_schemas || t == Tool::list_tables ||
         t == Tool::describe_table;
}

// An argument the model got wrong: reported as an isError result naming the field.
class ArgumentError : public std::runtime_error {
 public:
  using runtime_error::runtime_error;
};

std::string optional_string(const json* v, const char* key) {
  if (v == nullptr || v->is_null()) return {};
  if (!v->is_string()) {
    throw ArgumentError(std::string("argument '") + key + "' must be a string, got " +
                        v->type_name());
  }
  return v->get<std::string>();
}

std::string required_string(const json* v, const char* key) {
  std::string s = optional_string(v, key);
  if (s.empty()) throw ArgumentError(std::string("argument '") + key + "' is required");
  return s;
}

std::optional<std::int64_t> optional_positive(const json* v, const char* key) {
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_number_integer() || v->get<std::int64_t>() < 1) {
    throw ArgumentError(std::string("argument '") + key + "' must be a positive integer");
  }
  return v->get<std::int64_t>();
}

SqlDialect guard_dialect(pool::Dialect::Kind k) {
  switch (k) {
    case pool::Dialect::Kind::postgresql:
      return SqlDialect::postgresql;
    case pool::Dialect::Kind::sqlite:
      return SqlDialect::sqlite;
    case pool::Dialect::Kind::snowflake:
      return SqlDialect::snowflake;
    case pool::Dialect::Kind::e6data:
      return SqlDialect::e6data;
  }
  return SqlDialect::postgresql;
}

ToolResult error_result(std::string text) {
  ToolResult r;
  r.text = std::move(text);
  r.is_error = true;
  return r;
}

std::string db_error_text(const pool::DbError& e) {
  std::string text;
  switch (e.kind()) {
    case pool::errc::statement_timeout:
      text = "The statement ran past its deadline and was cancelled. ";
      break;
    case pool::errc::acquire_timeout:
      text = "The database is busy or unreachable. ";
      break;
    case pool::errc::connection_lost:
      text = "The database connection was lost; retry. ";
      break;
    default:
      break;
  }
  return text + e.what();
}

// The inputSchema properties every tool shares, and the common output schema.
std::string source_property(const std::vector<Source>& sources) {
  std::string out =
      "\"source\":{\"type\":\"string\",\"description\":\"Configured source to use "
      "(default: ";
  JsonWriter w(out);
  w.string_body(sources.front().name);
  out += ")\",\"enum\":[";
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (i > 0) out += ',';
    w.string(sources[i].name);
  }
  out += "]}";
  return out;
}

constexpr std::string_view kOutputSchema =
    R"json({"type":"object","properties":{"columns":{"type":"array","items":{"type":"object",)json"
    R"json("properties":{"name":{"type":"string"},"type":{"type":"string"},)json"
    R"json("databaseType":{"type":"string"}},"required":["name","type"]}},)json"
    R"json("rows":{"type":"array","items":{"type":"array"}},"rowCount":{"type":"integer"},)json"
    R"json("truncated":{"type":"boolean"},"rowsAffected":{"type":"integer"}},)json"
    R"json("required":["columns","rows","rowCount","truncated"]})json";

// The database context arguments every tool takes (metadata tools read database and schema
// as what to look in; the others run their statement there).
constexpr std::string_view kContextProperties =
    R"json("warehouse":{"type":"string","description":"Warehouse to run on (Snowflake); default: the session's context, else the login's"},)json"
    R"json("role":{"type":"string","description":"Role to run as; default: the session's context, else the login's"},)json"
    R"json("context":{"type":"string","description":"A context handle from set_context: its source, database, schema, warehouse and role become the defaults of this call"})json";

constexpr std::string_view kContextOutputSchema =
    R"json({"type":"object","properties":{"source":{"type":"string"},)json"
    R"json("context":{"type":"object","properties":{"database":{"type":"string"},)json"
    R"json("schema":{"type":"string"},"warehouse":{"type":"string"},"role":{"type":"string"}}},)json"
    R"json("handle":{"type":"string"},"expiresInSeconds":{"type":"integer"},)json"
    R"json("sessionDefault":{"type":"boolean"}},"required":["source","context","handle"]})json";

std::string tool(std::string_view name, std::string_view title, std::string_view description,
                 std::string_view properties, std::string_view required, bool read_only,
                 bool destructive, std::string_view output_schema = kOutputSchema) {
  std::string out = "{\"name\":\"";
  out += name;
  out += "\",\"title\":\"";
  out += title;
  out += "\",\"description\":";
  JsonWriter(out).string(description);
  out += ",\"inputSchema\":{\"type\":\"object\",\"properties\":{";
  out += properties;
  out += ',';
  out += kContextProperties;
  out += "},\"required\":[";
  out += required;
  out += "],\"additionalProperties\":false},\"outputSchema\":";
  out += output_schema;
  out += ",\"annotations\":{\"title\":\"";
  out += title;
  out += "\",\"readOnlyHint\":";
  out += read_only ? "true" : "false";
  if (!read_only) {
    out += ",\"destructiveHint\":";
    out += destructive ? "true" : "false";
  }
  out += ",\"openWorldHint\":false}}";
  return out;
}

// describe_table's nullable and primary_key columns are booleans on every database; SQLite
// computes them as 0/1 integers, so this sink re-types them on the way through.
class BooleanColumns final : public pool::RowSink {
 public:
  explicit BooleanColumns(pool::RowSink& next) : next_(next) {}
  void columns(std::span<const pool::ColumnInfo> columns) override {
    infos_.assign(columns.begin(), columns.end());
    for (std::size_t i = 0; i < infos_.size(); ++i) {
      if (infos_[i].name == "nullable" || infos_[i].name == "primary_key") {
        infos_[i].type = pool::ColumnType::boolean;
        flags_.push_back(i);
      }
    }
    next_.columns(infos_);
  }
  bool row(const pool::RowView& row) override { return next_.row(View(row, flags_)); }

 private:
  class View final : public pool::RowView {
   public:
    View(const pool::RowView& inner, const std::vector<std::size_t>& flags)
        : inner_(inner), flags_(flags) {}
    std::size_t size() const noexcept override { return inner_.size(); }
    pool::Value operator[](std::size_t i) const override {
      pool::Value v = inner_[i];
      if (std::find(flags_.begin(), flags_.end(), i) != flags_.end()) {
        if (const auto* n = std::get_if<std::int64_t>(&v)) return *n != 0;
      }
      return v;
    }

   private:
    const pool::RowView& inner_;
    const std::vector<std::size_t>& flags_;
  };

  pool::RowSink& next_;
  std::vector<pool::ColumnInfo> infos_;
  std::vector<std::size_t> flags_;
};

}  // namespace

DatabaseTools::DatabaseTools(std::vector<Source>& sources, const session::ContextHandles* handles)
    : sources_(sources), handles_(handles) {
  if (sources_.empty()) throw std::invalid_argument("DatabaseTools needs at least one source");
  const std::string src = source_property(sources_);
  const std::string db =
      R"json("database":{"type":"string","description":"Database (catalog) to look in; default: the session's context, else the connection's"})json";
  const std::string schema =
      R"json("schema":{"type":"string","description":"Schema to look in; default: the session's context, else all, or the search path"})json";
  const std::string run_db =
      R"json("database":{"type":"string","description":"Database (catalog) to run in; default: the session's context, else the connection's"},)json";
  const std::string run_schema =
      R"json("schema":{"type":"string","description":"Schema that unqualified names resolve in; default: the session's context, else the connection's search path"},)json";
  const std::string sql_timeout =
      R"json("timeout_ms":{"type":"integer","minimum":1,"description":"Deadline for the statement in milliseconds; capped by the source's limit"})json";
  definitions_ = "[";
  definitions_ += tool("list_databases", "List databases",
                       "Lists the databases (catalogs) of a source.", src, "", true, false);
  definitions_ += ',';
  definitions_ += tool("list_schemas", "List schemas", "Lists the schemas of a database.",
                       src + "," + db, "", true, false);
  definitions_ += ',';
  definitions_ += tool(
      "list_tables", "List tables",
      "Lists tables and views with their schema and kind ('table' or 'view').",
      src + "," + db + "," + schema +
          R"json(,"pattern":{"type":"string","description":"SQL LIKE pattern on the table name, e.g. 'order%'"})json",
      "", true, false);
  definitions_ += ',';
  definitions_ += tool(
      "describe_table", "Describe table",
      "Describes a table's columns: name, type, nullability, default and primary key.",
      src + "," + db + "," + schema +
          R"json(,"table":{"type":"string","description":"Table or view name, as stored (no quotes)"})json",
      "\"table\"", true, false);
  definitions_ += ',';
  definitions_ += tool(
      "query", "Run a read-only query",
      "Runs one read-only SQL statement (SELECT, WITH, VALUES, SHOW, DESCRIBE, EXPLAIN) and "
      "returns its rows. Results are capped by max_rows and by size; 'truncated' says when "
      "more rows exist.",
      src + "," + run_db + run_schema +
          R"json("sql":{"type":"string","description":"One read-only SQL statement"},)json" +
          R"json("max_rows":{"type":"integer","minimum":1,"description":"Return at most this many rows (capped by the source's limit)"},)json" +
          sql_timeout,
      "\"sql\"", true, false);
  definitions_ += ',';
  definitions_ +=
      tool("explain", "Explain a query",
           "Shows the database's plan for one read-only SQL statement without "
           "running it.",
           src + "," + run_db + run_schema +
               R"json("sql":{"type":"string","description":"The statement to explain"},)json" +
               sql_timeout,
           "\"sql\"", true, false);
  definitions_ += ',';
  definitions_ +=
      tool("execute", "Execute a write",
           "Executes one SQL statement that changes data or schema (INSERT, UPDATE, "
           "DELETE, DDL). Refused unless the source allows writes.",
           src + "," + run_db + run_schema +
               R"json("sql":{"type":"string","description":"The statement to execute"},)json" +
               sql_timeout,
           "\"sql\"", false, true);
  definitions_ += ',';
  definitions_ += tool(
      "set_context", "Set the database context",
      "Chooses the source, database, schema, warehouse and role later calls use by default, "
      "and returns a context handle. In a session (initialize, WebSocket, stdio) it becomes the "
      "session's default; stateless clients pass the handle as 'context' to later calls.",
      src + "," + run_db + run_schema.substr(0, run_schema.size() - 1), "", true, false,
      kContextOutputSchema);
  definitions_ += ',';
  definitions_ += tool("get_context", "Show the database context",
                       "Shows the context calls use by default here (the session's, or the "
                       "one a 'context' handle carries), with a fresh handle for it.",
                       src, "", true, false, kContextOutputSchema);
  definitions_ += ']';
}

bool DatabaseTools::has(std::string_view name) const noexcept {
  return tool_named(name).has_value();
}

Source& DatabaseTools::source_named(const std::string& name) {
  if (name.empty()) return sources_.front();
  for (auto& s : sources_) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const auto& s : sources_) known += (known.empty() ? "" : ", ") + s.name;
  throw ArgumentError("unknown source '" + name + "'; configured sources: " + known);
}

// The arguments the tools read, found in one pass over the call's few: a lookup per name
// would search the object again for each of the eleven (measuring the name first).
struct DatabaseTools::Arguments {
  const json* context = nullptr;
  const json* source = nullptr;
  const json* database = nullptr;
  const json* schema = nullptr;
  const json* warehouse = nullptr;
  const json* role = nullptr;
  const json* timeout_ms = nullptr;
  const json* max_rows = nullptr;
  const json* pattern = nullptr;
  const json* table = nullptr;
  const json* sql = nullptr;

  explicit Arguments(const json& object) {
    static constexpr std::pair<std::string_view, const json * Arguments::*> kNames[] = {
        {"sql", &Arguments::sql},           {"context", &Arguments::context},
        {"source", &Arguments::source},     {"database", &Arguments::database},
        {"schema", &Arguments::schema},     {"warehouse", &Arguments::warehouse},
        {"role", &Arguments::role},         {"timeout_ms", &Arguments::timeout_ms},
        {"max_rows", &Arguments::max_rows}, {"pattern", &Arguments::pattern},
        {"table", &Arguments::table}};
    for (auto it = object.begin(); it != object.end(); ++it) {
      const std::string& key = it.key();
      for (const auto& [name, member] : kNames) {
        if (key == name) {
          this->*member = &it.value();
          break;
        }
      }
    }
  }
};

// The context a call runs in: its `context` handle's, else the session's, for the source the
// call names (or the handle's or session's, or the default); then the call's own database,
// schema, warehouse and role arguments override field by field.
DatabaseTools::Resolved DatabaseTools::resolve(const Arguments& arguments, const ToolCall& call) {
  std::optional<session::ContextHandles::Context> base = call.session_context;
  if (const std::string handle = optional_string(arguments.context, "context"); !handle.empty()) {
    if (handles_ == nullptr) throw ArgumentError("context handles are not enabled here");
    auto opened = handles_->open(handle, call.request.client);
    if (auto* why = std::get_if<std::string>(&opened)) {
      throw ArgumentError("argument 'context': " + *why);
    }
    base = std::get<session::ContextHandles::Context>(std::move(opened));
  }
  std::string source = optional_string(arguments.source, "source");
  if (source.empty() && base) source = base->source;
  Resolved r{source_named(source), {}};
  if (base && (base->source == r.source.name || base->source.empty())) r.db = base->db;
  if (auto v = optional_string(arguments.database, "database"); !v.empty()) r.db.database = v;
  if (auto v = optional_string(arguments.schema, "schema"); !v.empty()) r.db.schema = v;
  if (auto v = optional_string(arguments.warehouse, "warehouse"); !v.empty()) r.db.warehouse = v;
  if (auto v = optional_string(arguments.role, "role"); !v.empty()) r.db.role = v;
  return r;
}

ToolResult DatabaseTools::context_result(const Source& src, const pool::DbContext& db,
                                         const ToolCall& call, bool stored) const {
  json context = json::object();
  if (!db.database.empty()) context["database"] = db.database;
  if (!db.schema.empty()) context["schema"] = db.schema;
  if (!db.warehouse.empty()) context["warehouse"] = db.warehouse;
  if (!db.role.empty()) context["role"] = db.role;
  const std::string handle =
      handles_ != nullptr ? handles_->mint(call.request.client, {src.name, db}) : std::string();
  json out = {{"source", src.name},
              {"context", context},
              {"handle", handle},
              {"sessionDefault", stored || call.session_context.has_value()}};
  if (handles_ != nullptr) out["expiresInSeconds"] = handles_->max_age().count();
  ToolResult r;
  r.structured = out.dump();
  std::string text = "source=" + src.name;
  for (const auto& [k, v] : context.items()) text += " " + k + "=" + v.get<std::string>();
  if (context.empty()) text += " (the connection's defaults)";
  if (stored) text += "\nThis session now uses it by default.";
  if (!handle.empty()) text += "\nContext handle (pass as 'context' in later calls): " + handle;
  r.text = std::move(text);
  return r;
}

namespace {

// The tool error for a bad argument, a context no connection can take, or a database
// failure. A cancellation (nobody is waiting for an answer) and anything else propagate.
ToolResult failure_result(std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const ArgumentError& e) {
    return error_result(std::string("Invalid arguments: ") + e.what());
  } catch (const pool::ContextError& e) {
    return error_result(std::string("Invalid database context: ") + e.what());
  } catch (const pool::DbError& e) {
    if (e.kind() == pool::errc::cancelled) throw;
    return error_result(db_error_text(e));
  }
}

}  // namespace

// What a statement needs while it runs, on the heap: g++ gives every local and temporary of
// a coroutine a slot of its own, and a frame over 1 KB bypasses both Asio's and glibc's
// per-thread caches.
struct DatabaseTools::Run {
  explicit Run(Source& s) : src(s) {}
  Source& src;
  pool::DbContext run_in;
  pool::Dialect::Sql sql;
  bool write = false;
  bool describe = false;  // describe_table: booleans reported as booleans
  ResultLimits caps;
  pool::Deadline deadline;
  ToolResult result;
};

// Not a coroutine: checks the arguments and builds the statement, answering at once when
// there is nothing to run; execute() runs the rest.
asio::awaitable<ToolResult> DatabaseTools::call(std::string name, ToolCall& call) {
  const std::optional<Tool> named = tool_named(name);
  if (!named) throw ToolRequestError("unknown tool '" + std::string(name) + "'");
  const Tool tool = *named;
  if (!call.arguments.is_object()) throw ToolRequestError("params.arguments must be an object");
  try {
    const Arguments arguments(call.arguments);
    auto [src, db] = resolve(arguments, call);
    call.request.source = src.name;
    if (tool == Tool::set_context || tool == Tool::get_context) {
      // Checked now, so that a context no call could use is refused here, not later.
      src.dialect->switch_context(pool::DbContext{}, db);
      const bool store = tool == Tool::set_context && call.set_session_context != nullptr;
      if (store) call.set_session_context({src.name, db});
      return ready(context_result(src, db, call, store));
    }
    auto run = std::make_unique<Run>(src);
    const auto& limits = src.limits;
    auto timeout = limits.timeout;
    if (auto t = optional_positive(arguments.timeout_ms, "timeout_ms")) {
      timeout = std::min(std::chrono::milliseconds(*t), limits.max_timeout);
    }
    run->deadline = std::min(call.deadline, pool::Clock::now() + timeout);
    call.request.deadline = run->deadline;
    run->caps = ResultLimits{limits.max_rows, limits.max_bytes};
    auto& sql = run->sql;
    // Metadata tools look in a database and schema (filters); the connection itself only
    // needs the warehouse and role. Statements run in the whole context.
    run->run_in = db;
    switch (tool) {
      case Tool::list_databases:
        sql = src.dialect->list_databases();
        break;
      case Tool::list_schemas:
        sql = src.dialect->list_schemas(db.database);
        break;
      case Tool::list_tables:
        sql = src.dialect->list_tables(db.database, db.schema,
                                       optional_string(arguments.pattern, "pattern"));
        break;
      case Tool::describe_table:
        sql = src.dialect->describe_table(db.database, db.schema,
                                          required_string(arguments.table, "table"));
        run->describe = true;
        break;
      case Tool::execute:
        sql.text = required_string(arguments.sql, "sql");
        if (!src.allow_writes) {
          return ready(error_result("Writes are disabled on source '" + src.name +
                                    "'. An operator can enable them with allow_writes: true in "
                                    "that source's configuration."));
        }
        run->write = true;
        break;
      default: {  // query, explain
        std::string text = required_string(arguments.sql, "sql");
        const GuardVerdict verdict =
            SqlGuard::check_read_only(text, guard_dialect(src.dialect->kind()));
        if (!verdict.allowed) return ready(error_result(verdict.message));
        sql.text = tool == Tool::explain ? src.dialect->explain(text) : std::move(text);
        if (auto rows = optional_positive(arguments.max_rows, "max_rows")) {
          run->caps.max_rows =
              std::min<std::size_t>(run->caps.max_rows, static_cast<std::size_t>(*rows));
        }
      }
    }
    if (is_metadata(tool)) {
      run->run_in.database.clear();
      run->run_in.schema.clear();
    }
    call.request.db = run->run_in;
    if (!src.mux && !run->run_in.empty()) {
      return ready(error_result("Database contexts need the multiplexer, which source '" +
                                src.name + "' does not have"));
    }
    return execute(std::move(run), call);
  } catch (...) {
    return ready(failure_result(std::current_exception()));
  }
}

asio::awaitable<ToolResult> DatabaseTools::execute(std::unique_ptr<Run> run, ToolCall& call) {
  try {
    ToolResult& result = run->result;
    // Under glibc's per-thread cache limit (1032 bytes): a larger first block takes malloc's
    // slow path, which also consolidates its fast bins, on every call. Big results grow.
    result.structured.reserve(1000);
    ResultEncoder::Progress progress;
    if (call.progress) {
      progress = [report = call.progress](std::uint64_t rows) {
        report(static_cast<double>(rows), std::nullopt, std::to_string(rows) + " rows fetched");
      };
    }
    ResultEncoder encoder(result.structured, result.text, run->caps, std::move(progress));
    BooleanColumns booleans(encoder);
    pool::RowSink& sink = run->describe ? static_cast<pool::RowSink&>(booleans)
                                        : static_cast<pool::RowSink&>(encoder);
    pool::Statement stmt{run->sql.text, run->sql.params};
    // Reads need no row past what the encoder takes; writes run to completion.
    if (!run->write) stmt.row_limit = encoder.rows_wanted();
    pool::ExecResult exec;
    if (run->src.mux && !run->write) {
      // Fair queueing per client, a connection already in (or switched to) the context, and
      // maybe one round trip shared with other reads in that context.
      exec =
          co_await run->src.mux->query(call.request.client, run->run_in, stmt, sink, run->deadline);
    } else if (run->src.mux) {
      auto conn = co_await run->src.mux->acquire(call.request.client, run->run_in, run->deadline);
      // A write is not vetted by the SQL guard: it may change the session's context.
      conn.mark_context_unknown();
      exec = co_await conn->execute(stmt, sink, run->deadline);
    } else {
      auto conn = co_await run->src.pool->acquire(run->deadline);
      exec = co_await conn->execute(stmt, sink, run->deadline);
    }
    if (run->write && exec.rows_affected >= 0) {
      encoder.finish(exec.rows_affected);
    } else {
      encoder.finish();
    }
    co_return std::move(result);
  } catch (...) {
    co_return failure_result(std::current_exception());
  }
}

}  // namespace sluice::gateway
