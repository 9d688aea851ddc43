#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace sluice::gateway {

// The SQL dialects whose lexical rules the guard knows. They differ in how strings, quoted
// identifiers and comments end, which is what decides where a statement really ends.
enum class SqlDialect { postgresql, sqlite, snowflake, e6data };

// The outcome of a check. A rejection names the offending token and where it is, so that the
// person (or model) who wrote the query can fix it without guessing.
struct GuardVerdict {
  bool allowed = false;
  // Empty when allowed; otherwise one sentence naming the offending token and its offset, and
  // pointing to the `execute` tool when the statement is a write.
  std::string message;
  // Byte offset into the checked text of the offending token; 0 when allowed.
  std::size_t offset = 0;
  // The offending token as written (for example "insert", ";", "E'"); empty when allowed.
  std::string token;
};

// The read-only guard of the MCP `query` tool.
//
// It tokenizes the text the way the dialect's own lexer does (strings, quoted identifiers,
// comments, dollar quotes) and checks the tokens; it is not a parser. Where dialects or server
// settings could read the same text in two ways (a backslash before a quote, a nested comment
// opener in Snowflake, `$tag$` outside PostgreSQL) it rejects instead of guessing, because a
// guess in the wrong direction would let a hidden statement through.
//
// The guard cannot see into functions the database resolves at run time (user-defined
// functions, names built with Snowflake's IDENTIFIER()), so it is a first line of defence: the
// connection behind `query` must also be read-only (a read-only role, a read-only transaction
// or a read-only SQLite open).
//
// Thread safety: stateless; both functions may be called from any thread at any time. They keep
// no reference to `sql`. Accepting a query allocates nothing; a rejection allocates only to build
// its message.
class SqlGuard {
 public:
  // Accepts `sql` only if it is exactly one read-only statement in `dialect`: it starts with
  // SELECT, WITH, VALUES, EXPLAIN (of a read-only query), SHOW or DESCRIBE (not in SQLite),
  // DESC (Snowflake and e6data) or TABLE (PostgreSQL), and contains no write keyword, row-lock
  // clause, SELECT ... INTO, or call to a function known to change server state. A trailing
  // ';' (and comments after it) is accepted.
  static GuardVerdict check_read_only(std::string_view sql, SqlDialect dialect);

  // The first keyword of the statement, upper-cased ("SELECT", "WITH", "EXPLAIN", ...), after
  // any comments, leading ';' and opening parentheses; empty if the text does not start with a
  // word or cannot be tokenized. Used by the `explain` and `execute` tools to label statements;
  // it says nothing about whether the statement is safe.
  static std::string leading_keyword(std::string_view sql, SqlDialect dialect);
};

}  // namespace sluice::gateway
