#include "gateway/sql_guard.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace sluice::gateway {
namespace {

using namespace std::string_view_literals;

constexpr SqlDialect kPg = SqlDialect::postgresql;
constexpr SqlDialect kLite = SqlDialect::sqlite;
constexpr SqlDialect kSnow = SqlDialect::snowflake;
constexpr SqlDialect kE6 = SqlDialect::e6data;

constexpr bool kAllow = true;
constexpr bool kReject = false;

struct Case {
  SqlDialect dialect;
  std::string_view sql;
  bool allowed;
  // For rejections: the offending token the verdict must name (compared case-insensitively,
  // whitespace runs folded), and text that starts at the expected offset (the token if empty).
  std::string_view token = {};
  std::string_view at = {};
};

const Case kCases[] = {
    // Plain reads in every dialect.
    {kPg, "SELECT 1", kAllow},
    {kPg, "select * from orders where id = 7 order by 1 limit 5", kAllow},
    {kLite, "SELECT name FROM customers LIMIT 5", kAllow},
    {kSnow, "SELECT CURRENT_WAREHOUSE()", kAllow},
    {kE6, "SELECT count(*) FROM sales", kAllow},
    {kPg, "  \n\t SELECT 1", kAllow},
    {kPg, "(SELECT 1) UNION (SELECT 2)", kAllow},
    {kPg, "((SELECT 1))", kAllow},
    {kPg, "VALUES (1),(2)", kAllow},
    {kLite, "VALUES (1),(2)", kAllow},
    {kPg, "TABLE t", kAllow},
    {kLite, "TABLE t", kReject, "TABLE"},
    {kPg, "SHOW search_path", kAllow},
    {kLite, "SHOW search_path", kReject, "SHOW"},
    {kLite, "DESCRIBE t", kReject, "DESCRIBE"},
    {kSnow, "SHOW TABLES IN SCHEMA analytics", kAllow},
    {kSnow, "DESC TABLE orders", kAllow},
    {kE6, "DESCRIBE sales", kAllow},
    {kPg, "DESC t", kReject, "DESC"},
    {kLite, "PRAGMA table_info(t)", kReject, "PRAGMA"},
    {kLite, "SELECT * FROM pragma_table_info('t')", kAllow},
    {kPg, "declare c cursor for select 1", kReject, "declare"},
    {kPg, "1", kReject, "1"},
    {kPg, ";; SELECT 1", kAllow},

    // WITH: read-only CTEs pass, data-modifying ones are named as being inside the WITH.
    {kPg,
     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) "
     "SELECT * FROM n",
     kAllow},
    {kPg, "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", kReject, "DELETE"},
    {kPg, "WITH a AS (SELECT 1), b AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM b",
     kReject, "INSERT"},
    {kPg, "SELECT * FROM (WITH u AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM u) s", kReject,
     "UPDATE"},
    {kPg,
     "WITH a AS (SELECT 1), b AS ((SELECT 2) UNION ALL (DELETE FROM t RETURNING 1)) "
     "SELECT 1",
     kReject, "DELETE"},
    {kPg, "WITH d AS (\n\tDELETE\n\tFROM t RETURNING *)\nSELECT * FROM d", kReject, "DELETE"},
    {kPg, "WITH x AS (SELECT 1) DELETE FROM t", kReject, "DELETE"},
    {kLite, "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", kReject, "INSERT"},
    {kPg,
     "WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE "
     "RETURNING *) SELECT 1",
     kReject, "MERGE"},
    {kPg, "WITH c AS (SELECT * FROM t FOR UPDATE) SELECT * FROM c", kReject, "FOR UPDATE"},
    {kPg, "(DELETE FROM t RETURNING *)", kReject, "DELETE"},

    // EXPLAIN: allowed when what it explains (and, with ANALYZE, runs) is read-only.
    {kPg, "EXPLAIN SELECT * FROM t", kAllow},
    {kPg, "EXPLAIN ANALYZE SELECT * FROM t", kAllow},
    {kPg, "EXPLAIN (ANALYZE, BUFFERS) SELECT 1", kAllow},
    {kPg, "EXPLAIN (ANALYZE true, BUFFERS, FORMAT JSON) SELECT 1", kAllow},
    {kPg, "EXPLAIN ANALYZE DELETE FROM t", kReject, "DELETE"},
    {kPg, "EXPLAIN (ANALYZE) UPDATE t SET x = 1", kReject, "UPDATE"},
    {kPg, "EXPLAIN ANALYZE VERBOSE WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", kReject,
     "DELETE"},
    {kPg, "EXPLAIN ANALYZE EXECUTE stmt", kReject, "EXECUTE"},
    {kPg, "EXPLAIN EXPLAIN SELECT 1", kReject, "EXPLAIN", "EXPLAIN SELECT"},
    {kPg, "EXPLAIN (ANALYZE", kReject, "("},
    {kPg, "ANALYZE t", kReject, "ANALYZE"},
    {kLite, "EXPLAIN QUERY PLAN SELECT * FROM t", kAllow},
    {kSnow, "EXPLAIN USING TEXT SELECT 1", kAllow},

    // Exactly one statement.
    {kPg, "SELECT 1;", kAllow},
    {kPg, "SELECT 1;;", kAllow},
    {kPg, "SELECT 1; -- done", kAllow},
    {kPg, "SELECT 1; SELECT 2", kReject, ";"},
    {kPg, "SELECT 1 FROM t; COMMIT", kReject, ";"},
    {kPg, "SELECT 1 /* */ ; DROP TABLE t", kReject, ";"},
    {kPg, "SELECT 1 /* ; DROP TABLE t */", kAllow},
    {kPg, "SELECT ';' AS semi", kAllow},
    {kPg, "SELECT \"a;b\" FROM t", kAllow},
    {kPg, "SELECT 'it''s' ; SELECT 2", kReject, ";", "; SELECT"},
    {kPg, "SELECT $$a$$; DELETE FROM t", kReject, ";", "; DELETE"},

    // Nested comments: PostgreSQL nests, SQLite stops at the first */, Snowflake is ambiguous.
    {kPg, "/* /* */ DROP TABLE t */ SELECT 1", kAllow},
    {kLite, "/* /* */ DROP TABLE t */ SELECT 1", kReject, "DROP"},
    {kPg, "SELECT 1 /* a /* b */ ; DROP TABLE t; */", kAllow},
    {kLite, "SELECT 1 /* /* */ ; DROP TABLE t; /* */", kReject, ";", "; DROP"},
    {kSnow, "SELECT 1 /* a /* b */ c */", kReject, "/*", "/* b"},
    {kSnow, "SELECT 1 /* ok */ FROM t", kAllow},

    // Line comments, and where each dialect ends them.
    {kPg, "SELECT 1 -- ; DROP TABLE t", kAllow},
    {kPg, "SELECT 1 -- comment\n; DROP TABLE t", kReject, ";"},
    {kPg, "SELECT 1 -- x\r; DROP TABLE t", kReject, ";"},
    {kLite, "SELECT 1 -- x\r; DROP TABLE t", kAllow},
    {kSnow, "SELECT 1 -- x\r; DROP TABLE t", kReject, "--"},
    {kSnow, "SELECT 1 // ; DROP TABLE t", kAllow},
    {kSnow, "SELECT 1 // '\n; DROP TABLE t; --'", kReject, ";"},
    {kSnow, "SELECT * FROM t WHERE a = 'x' // it's a comment\nAND b = 1", kAllow},
    {kPg, "SELECT 1 // ; DROP TABLE t", kReject, ";"},
    {kE6, "SELECT 1 // x", kReject, "//"},

    // Dollar quotes and parameters.
    {kPg, "SELECT $$;DELETE FROM t$$", kAllow},
    {kPg, "SELECT $body$ ; DROP TABLE t; $body$ AS s", kAllow},
    {kPg, "SELECT $a$ $b$ ; DROP $b$ $a$", kAllow},
    {kPg, "SELECT $x$ unterminated", kReject, "$x$"},
    {kPg, "SELECT * FROM t WHERE id = $1 AND name = $2", kAllow},
    {kSnow, "SELECT $$ ; DELETE FROM t $$", kAllow},
    {kSnow, "SELECT $tag$ ; DROP TABLE t; $tag$", kReject, "$tag$"},
    {kSnow, "SELECT $1, $2 FROM @my_stage", kAllow},
    {kE6, "SELECT * FROM t WHERE id = $1", kAllow},
    {kE6, "SELECT $$ x $$", kReject, "$$"},
    {kLite, "SELECT * FROM t WHERE a = :a AND b = @b AND c = ?1 AND d = $d", kAllow},
    {kLite, "SELECT $a(') ; DROP TABLE t; --')", kReject, ";", "; DROP"},

    // Backslashes: E'' and Snowflake escape, SQLite never does, PostgreSQL depends on a setting.
    {kPg, "SELECT E'it\\'s; DROP TABLE t'", kAllow},
    {kPg, "SELECT E'\\\\'; DROP TABLE t", kReject, ";", "; DROP"},
    {kPg, "SELECT 'it''s; DROP TABLE t'", kAllow},
    {kPg, "SELECT 'a\\'; DROP TABLE t; --'", kReject, "\\'"},
    {kPg, "SELECT 'C:\\'", kReject, "\\'"},
    {kPg, "SELECT 'C:\\\\temp'", kAllow},
    {kPg, "SELECT B'1010', X'ff', U&'\\0041'", kAllow},
    {kSnow, "SELECT 'it\\'s; DROP TABLE t'", kAllow},
    {kLite, "SELECT 'a\\'; DROP TABLE t; --'", kReject, ";", "; DROP"},
    {kE6, "SELECT 'a\\'' FROM t", kReject, "\\'"},

    // Keywords inside strings and quoted names are data, not SQL.
    {kPg, "SELECT 'DROP TABLE x'", kAllow},
    {kPg, "SELECT \"delete\" FROM t", kAllow},
    {kPg, "SELECT \"a\"\"; DROP TABLE t; --\" FROM t", kAllow},
    {kLite, "SELECT [drop;table] FROM t", kAllow},
    {kLite, "SELECT `insert` FROM t", kAllow},
    {kPg, "SELECT `x` FROM t", kReject, "`"},
    {kPg, "SELECT comment, type, value, data, key, status, name FROM t", kAllow},
    {kPg, "SELECT t.update, t.comment FROM t", kAllow},
    {kPg, "SELECT nåme, 名前 FROM tæble", kAllow},
    {kPg, "SELECT 1 AS ünïcödé; DELETE FROM t", kReject, ";"},

    // Write and state-changing statements, in any case and spacing.
    {kPg, "dElEtE FROM t", kReject, "dElEtE"},
    {kPg, "INSERT INTO t VALUES (1)", kReject, "INSERT"},
    {kPg, "REPLACE INTO t VALUES (1)", kReject, "REPLACE"},
    {kLite, "REPLACE INTO t VALUES (1)", kReject, "REPLACE"},
    {kPg, "SELECT replace(name,'a','b') FROM t", kAllow},
    {kPg, "SET search_path = x", kReject, "SET"},
    {kPg, "BEGIN", kReject, "BEGIN"},
    {kPg, "COPY t TO '/tmp/x'", kReject, "COPY"},
    {kPg, "LOCK TABLE t", kReject, "LOCK"},
    {kPg, "VACUUM", kReject, "VACUUM"},
    {kPg, "DO $$ BEGIN PERFORM 1; END $$", kReject, "DO"},
    {kLite, "ATTACH DATABASE 'x.db' AS x", kReject, "ATTACH"},
    {kSnow, "USE WAREHOUSE w", kReject, "USE"},
    {kSnow, "PUT file:///tmp/x @stage", kReject, "PUT"},
    {kSnow, "CALL proc()", kReject, "CALL"},
    {kE6, "CREATE TABLE t AS SELECT 1", kReject, "CREATE"},

    // SELECT INTO and row locks.
    {kPg, "SELECT * INTO new_table FROM t", kReject, "INTO"},
    {kPg, "SELECT * FROM t FOR UPDATE", kReject, "FOR UPDATE"},
    {kPg, "SELECT * FROM t FOR SHARE", kReject, "FOR SHARE"},
    {kPg, "SELECT * FROM t FOR NO KEY UPDATE", kReject, "FOR NO KEY UPDATE"},
    {kPg, "SELECT * FROM t FOR KEY SHARE SKIP LOCKED", kReject, "FOR KEY SHARE"},
    {kPg, "SELECT * FROM t\nFOR\tUPDATE", kReject, "FOR\tUPDATE"},
    {kPg, "SELECT substring(name FROM 1 FOR 3) FROM t", kAllow},
    {kPg, "SELECT * FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS u(x, n)", kAllow},
    {kPg, "SELECT now()::timestamp with time zone", kAllow},

    // Functions with side effects.
    {kPg, "SELECT pg_terminate_backend(123)", kReject, "pg_terminate_backend"},
    {kPg, "SELECT pg_catalog.set_config('x', 'y', false)", kReject, "set_config"},
    {kPg, "SELECT nextval ('s')", kReject, "nextval"},
    {kPg, "SELECT \"pg_cancel_backend\"(1)", kReject, "\"pg_cancel_backend\""},
    {kPg, "SELECT * FROM dblink_exec('host=x', 'DROP TABLE t')", kReject, "dblink_exec"},
    {kPg, "SELECT pg_advisory_xact_lock(1)", kReject, "pg_advisory_xact_lock"},
    {kPg, "SELECT query_to_xml('select pg_terminate_backend(1)', true, true, '')", kReject,
     "query_to_xml"},
    {kPg, "SELECT U&\"pg_terminate_backen\\0064\"(1)", kReject, "U&\"pg_terminate_backen\\0064\""},
    {kPg, "SELECT txid_current(), pg_sleep(0.1)", kAllow},
    {kPg, "SELECT nextval FROM t", kAllow},
    {kLite, "SELECT load_extension('/tmp/x.so')", kReject, "load_extension"},
    {kLite, "SELECT writefile('/tmp/x', data) FROM t", kReject, "writefile"},
    {kSnow, "SELECT SYSTEM$CANCEL_QUERY('01a')", kReject, "SYSTEM$CANCEL_QUERY"},
    {kSnow, "SELECT INSERT('abc', 1, 1, 'z')", kAllow},

    // Unterminated tokens and empty input.
    {kPg, "SELECT 'unterminated", kReject, "'"},
    {kPg, "SELECT \"unterminated", kReject, "\""},
    {kPg, "SELECT E'it\\'s", kReject, "E'"},
    {kPg, "SELECT $$ never closed", kReject, "$$"},
    {kPg, "SELECT 1 /* unterminated", kReject, "/*"},
    {kLite, "SELECT [unterminated", kReject, "["},
    {kPg, "", kReject, ""},
    {kPg, "   \n\t ", kReject, ""},
    {kPg, "-- just a comment", kReject, ""},
    {kLite, "/* only */ ;", kReject, ""},
};

std::string normalized(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

const char* dialect_name(SqlDialect d) {
  switch (d) {
    case SqlDialect::postgresql:
      return "postgresql";
    case SqlDialect::sqlite:
      return "sqlite";
    case SqlDialect::snowflake:
      return "snowflake";
    case SqlDialect::e6data:
      return "e6data";
  }
  return "?";
}

TEST(SqlGuardTest, AcceptsReadsAndRejectsEverythingElse) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(std::string(dialect_name(c.dialect)) + ": " + std::string(c.sql));
    const GuardVerdict v = SqlGuard::check_read_only(c.sql, c.dialect);
    ASSERT_EQ(v.allowed, c.allowed) << v.message;
    if (c.allowed) {
      EXPECT_TRUE(v.message.empty());
      EXPECT_TRUE(v.token.empty());
      continue;
    }
    EXPECT_EQ(normalized(v.token), normalized(c.token));
    EXPECT_EQ(v.offset, c.sql.find(c.at.empty() ? c.token : c.at));
    // The token is quoted from the text as written, and the message names it.
    EXPECT_EQ(v.token, c.sql.substr(v.offset, v.token.size()));
    EXPECT_NE(normalized(v.message).find(normalized(c.token)), std::string::npos) << v.message;
    if (!v.token.empty()) {
      EXPECT_NE(v.message.find("offset " + std::to_string(v.offset)), std::string::npos)
          << v.message;
    }
    EXPECT_EQ(v.message.find(". "), std::string::npos) << "not one sentence: " << v.message;
  }
}

TEST(SqlGuardTest, MessagesSayWhatIsWrongAndWhatToDo) {
  EXPECT_EQ(SqlGuard::check_read_only("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", kPg)
                .message,
            "query accepts only read-only statements: found DELETE at offset 11 (inside a WITH "
            "clause); use the execute tool for writes");
  EXPECT_EQ(SqlGuard::check_read_only("EXPLAIN ANALYZE DELETE FROM t", kPg).message,
            "query accepts only read-only statements: found DELETE at offset 16 (in the "
            "statement being explained); use the execute tool for writes");
  EXPECT_EQ(SqlGuard::check_read_only("SELECT 1; SELECT 2", kPg).message,
            "only one statement is allowed; found a second statement, starting with SELECT at "
            "offset 10, after ';' at offset 8; send one statement per call");
  EXPECT_EQ(SqlGuard::check_read_only("SELECT 'abc", kPg).message,
            "unterminated string literal starting at offset 7: add the closing '");
  EXPECT_EQ(SqlGuard::check_read_only("/* nothing */", kSnow).message,
            "the query is empty: it has no SQL outside comments and whitespace");
  EXPECT_EQ(SqlGuard::check_read_only("SHOW tables", kLite).message,
            "SQLite has no SHOW statement: found SHOW at offset 0; read the schema with SELECT * "
            "FROM sqlite_schema or SELECT * FROM pragma_table_info('t') instead");
  EXPECT_EQ(SqlGuard::check_read_only("SELECT pg_terminate_backend(123)", kPg).message,
            "query accepts only read-only statements: found the function pg_terminate_backend "
            "at offset 7, which changes server state or reaches outside the database; use the "
            "execute tool if it is really needed");
  EXPECT_EQ(SqlGuard::check_read_only("SELECT * FROM t FOR UPDATE", kPg).message,
            "query accepts only read-only statements: found the row-locking clause FOR UPDATE "
            "at offset 16; remove it, or use the execute tool if the rows must be locked");
}

TEST(SqlGuardTest, WritesPointToTheExecuteTool) {
  for (const char* sql : {"insert into t values (1)", "UPDATE t SET a = 1", "DROP TABLE t",
                          "TRUNCATE t", "GRANT SELECT ON t TO bob", "SELECT * INTO t2 FROM t",
                          "WITH d AS (DELETE FROM t RETURNING 1) SELECT 1"}) {
    const GuardVerdict v = SqlGuard::check_read_only(sql, kPg);
    EXPECT_FALSE(v.allowed) << sql;
    EXPECT_NE(v.message.find("use the execute tool"), std::string::npos) << v.message;
  }
}

TEST(SqlGuardTest, RejectsNulBytes) {
  constexpr std::string_view sql = "SELECT 1\0; DROP TABLE t"sv;
  const GuardVerdict v = SqlGuard::check_read_only(sql, kPg);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.offset, 8u);
  EXPECT_EQ(v.token, std::string(1, '\0'));
  EXPECT_NE(v.message.find("NUL byte at offset 8"), std::string::npos) << v.message;
}

// Every prefix of every case, in every dialect: cut-off input must be rejected or accepted
// cleanly (ASan/UBSan builds catch reads past the end), and a rejection must point into the
// text at the token it names.
TEST(SqlGuardTest, EveryPrefixInEveryDialectGivesAWellFormedVerdict) {
  for (const Case& c : kCases) {
    for (SqlDialect dialect : {kPg, kLite, kSnow, kE6}) {
      for (std::size_t n = 0; n <= c.sql.size(); ++n) {
        const std::string_view sql = c.sql.substr(0, n);
        const GuardVerdict v = SqlGuard::check_read_only(sql, dialect);
        if (v.allowed) {
          EXPECT_TRUE(v.message.empty());
          continue;
        }
        EXPECT_FALSE(v.message.empty());
        ASSERT_LE(v.offset, sql.size()) << sql;
        EXPECT_EQ(v.token, sql.substr(v.offset, v.token.size())) << sql;
        SqlGuard::leading_keyword(sql, dialect);
      }
    }
  }
}

TEST(SqlGuardTest, LeadingKeywordIsTheFirstWordUpperCased) {
  struct KeywordCase {
    SqlDialect dialect;
    std::string_view sql;
    std::string_view keyword;
  };
  const KeywordCase cases[] = {
      {kPg, "  select 1", "SELECT"},
      {kPg, "/* c */ (WITH x AS (SELECT 1) SELECT * FROM x)", "WITH"},
      {kPg, "-- note\nexplain analyze select 1", "EXPLAIN"},
      {kPg, ";; delete from t", "DELETE"},
      {kLite, "pragma table_info(t)", "PRAGMA"},
      {kSnow, "// c\nshow tables", "SHOW"},
      {kE6, "Describe sales", "DESCRIBE"},
      {kPg, "", ""},
      {kPg, "-- only a comment", ""},
      {kPg, "'x'", ""},
      {kPg, "\"select\" 1", ""},
      {kPg, "/* unterminated SELECT", ""},
  };
  for (const KeywordCase& c : cases) {
    EXPECT_EQ(SqlGuard::leading_keyword(c.sql, c.dialect), c.keyword) << c.sql;
  }
}

}  // namespace
}  // namespace sluice::gateway
