#include "gateway/sql_guard.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace sluice::gateway {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
// Bytes >= 0x80 are identifier characters in every supported dialect, so UTF-8 names lex as
// one word.
bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_char(char c) {
  return is_ident_start(c) || is_digit(c) || c == '$';
}
char to_upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  }
  return true;
}
bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}
template <class List>
bool contains(const List& list, std::string_view word) {
  for (std::string_view k : list) {
    if (iequals(word, k)) return true;
  }
  return false;
}

// Keywords that write, lock or change state wherever they appear. Data-modifying CTEs and
// EXPLAIN ANALYZE of a write put INSERT/UPDATE/DELETE/MERGE in the middle of a statement that
// starts harmlessly, so these are rejected anywhere outside strings, comments and quoted names.
constexpr std::string_view kWriteAnywhere[] = {
    "INSERT", "UPDATE",  "DELETE", "MERGE",  "UPSERT", "TRUNCATE", "DROP",
    "ALTER",  "CREATE",  "GRANT",  "REVOKE", "COPY",   "CALL",     "LOCK",
    "VACUUM", "REINDEX", "ATTACH", "DETACH", "PRAGMA",
};

// Statements that write or change session state but can only do so as the first keyword of a
// statement. Inside a read-only statement these words are ordinary names (a column called
// `comment`, `set` or `release`, the function replace()), and since only one statement is
// accepted they cannot start a second one; the allowlist of first keywords already rejects
// them at the start. The list only decides whether the message suggests the execute tool.
constexpr std::string_view kWriteStatement[] = {
    "REPLACE",  "SET",      "RESET",      "COMMENT",   "ANALYZE", "ANALYSE", "GET",        "PUT",
    "USE",      "EXPORT",   "IMPORT",     "DO",        "CLUSTER", "BEGIN",   "START",      "COMMIT",
    "END",      "ABORT",    "ROLLBACK",   "SAVEPOINT", "RELEASE", "LISTEN",  "UNLISTEN",   "NOTIFY",
    "PREPARE",  "EXECUTE",  "DEALLOCATE", "DISCARD",   "REFRESH", "UNLOAD",  "CHECKPOINT", "LOAD",
    "SECURITY", "REASSIGN", "UNDROP",     "REMOVE",    "RM",
};

// Words that may sit between EXPLAIN and the explained statement: PostgreSQL's legacy options,
// SQLite's QUERY PLAN, Snowflake's USING format and the PLAN FOR form.
constexpr std::string_view kExplainOptions[] = {
    "ANALYZE", "ANALYSE", "VERBOSE", "QUERY", "PLAN", "FOR", "USING", "TABULAR", "JSON", "TEXT",
};

struct FunctionName {
  std::string_view name;
  bool prefix;  // the name starts a family (dblink_exec, pg_advisory_xact_lock_shared, ...)
};

// Functions that signal other sessions, change configuration, sequences or large objects,
// take advisory locks, touch server files or run SQL hidden in a string argument. Harmless
// ones that merely look alarming (txid_current, pg_sleep) are not listed.
constexpr FunctionName kPostgresFunctions[] = {
    {"pg_terminate_backend", false},
    {"pg_cancel_backend", false},
    {"pg_reload_conf", false},
    {"pg_rotate_logfile", true},
    {"set_config", false},
    {"nextval", false},
    {"setval", false},
    {"lo_import", false},
    {"lo_export", false},
    {"lo_unlink", false},
    {"lo_create", false},
    {"lo_creat", false},
    {"lo_from_bytea", false},
    {"lo_put", false},
    {"lo_truncate", false},
    {"lowrite", false},
    {"pg_read_file", false},
    {"pg_read_binary_file", false},
    {"pg_stat_file", false},
    {"pg_ls_", true},
    {"pg_file_", true},
    {"dblink", true},
    {"pg_advisory_", true},
    {"pg_try_advisory_", true},
    {"pg_notify", false},
    {"query_to_xml", true},
    {"pg_stat_reset", true},
    {"pg_stat_statements_reset", false},
    {"pg_switch_wal", false},
    {"pg_switch_xlog", false},
    {"pg_promote", false},
    {"pg_create_", true},
    {"pg_drop_replication_slot", false},
    {"pg_copy_", true},
    {"pg_replication_slot_advance", false},
    {"pg_replication_origin_", true},
    {"pg_logical_slot_", true},
    {"pg_logical_emit_message", false},
    {"pg_backup_", true},
    {"pg_start_backup", false},
    {"pg_stop_backup", false},
    {"pg_wal_replay_", true},
    {"pg_xlog_replay_", true},
    {"pg_import_system_collations", false},
    {"pg_log_backend_memory_contexts", false},
    {"pg_truncate_visibility_map", false},
};

constexpr FunctionName kSqliteFunctions[] = {
    {"load_extension", false}, {"readfile", false}, {"writefile", false},
    {"edit", false},           {"fsdir", false},    {"fts3_tokenizer", false},
};

constexpr FunctionName kSnowflakeFunctions[] = {
    {"system$cancel_query", false},
    {"system$cancel_all_queries", false},
    {"system$abort_session", false},
    {"system$abort_transaction", false},
};

std::span<const FunctionName> side_effect_functions(SqlDialect dialect) {
  switch (dialect) {
    case SqlDialect::postgresql:
      return kPostgresFunctions;
    case SqlDialect::sqlite:
      return kSqliteFunctions;
    case SqlDialect::snowflake:
      return kSnowflakeFunctions;
    case SqlDialect::e6data:
      break;
  }
  return {};
}

std::string_view dialect_name(SqlDialect dialect) {
  switch (dialect) {
    case SqlDialect::postgresql:
      return "PostgreSQL";
    case SqlDialect::sqlite:
      return "SQLite";
    case SqlDialect::snowflake:
      return "Snowflake";
    case SqlDialect::e6data:
      return "e6data";
  }
  return "SQL";
}

enum class TokenKind { end, word, quoted_name, literal, number, parameter, punct, error };

enum class LexError {
  none,
  unterminated_string,
  unterminated_dollar_quote,
  unterminated_identifier,
  unterminated_comment,
  backslash_quote,
  nested_comment_opener,
  lone_carriage_return,
  unsupported_character,
  dollar_sign,
  double_slash,
  malformed_parameter,
};

struct Token {
  TokenKind kind = TokenKind::end;
  std::size_t offset = 0;
  std::string_view text;  // as written; for errors the offending characters
  LexError error = LexError::none;
  std::size_t context_offset = 0;  // for errors: where the enclosing string or comment starts
  bool unicode_escapes = false;    // a PostgreSQL U&"..." name, whose spelling may be escaped
};

bool is_punct(const Token& t, char c) {
  return t.kind == TokenKind::punct && t.text.size() == 1 && t.text[0] == c;
}
bool is_word(const Token& t, std::string_view upper) {
  return t.kind == TokenKind::word && iequals(t.text, upper);
}

// How backslashes inside '...' behave. `ambiguous` is for dialects where a server setting
// (PostgreSQL's standard_conforming_strings) or an unknown lexer (e6data) decides: there a
// backslash before a quote is rejected, because the two readings end the string in different
// places and one of them could expose text the other hides.
enum class Backslashes { literal, escape, ambiguous };

// Splits SQL into the tokens the dialect's own lexer would see, skipping whitespace and
// comments. Copying a Lexer is how callers look ahead.
class Lexer {
 public:
  Lexer(std::string_view sql, SqlDialect dialect) : sql_(sql), dialect_(dialect) {}

  Token next() {
    if (auto error = skip_trivia()) return *error;
    const std::size_t start = pos_;
    if (start >= sql_.size()) return Token{TokenKind::end, start, {}};
    const char c = sql_[start];
    if (c == '\'') return single_quoted(start, start + 1, plain_string_backslashes());
    if (c == '"') return quoted_name(start, start + 1, '"');
    if (c == '`') {
      if (dialect_ == SqlDialect::sqlite) return quoted_name(start, start + 1, '`');
      return fail(LexError::unsupported_character, start, 1);
    }
    if (c == '[' && dialect_ == SqlDialect::sqlite) return quoted_name(start, start + 1, ']');
    if (c == '$') return dollar(start);
    if (dialect_ == SqlDialect::sqlite && (c == '@' || c == ':' || c == '#')) {
      return sqlite_variable(start);
    }
    if (is_digit(c) || (c == '.' && is_digit(at(start + 1)))) return number(start);
    if (is_ident_start(c)) return word(start);
    if (c == '\\') return fail(LexError::unsupported_character, start, 1);
    if (c == '#' && (dialect_ == SqlDialect::snowflake || dialect_ == SqlDialect::e6data)) {
      return fail(LexError::unsupported_character, start, 1);
    }
    if (c == '/' && at(start + 1) == '/' && dialect_ == SqlDialect::e6data) {
      return fail(LexError::double_slash, start, 2);
    }
    return advance(TokenKind::punct, start, start + 1);
  }

  Token peek() const {
    Lexer copy(*this);
    return copy.next();
  }

 private:
  char at(std::size_t i) const { return i < sql_.size() ? sql_[i] : '\0'; }

  Token advance(TokenKind kind, std::size_t start, std::size_t end) {
    pos_ = end;
    return Token{kind, start, sql_.substr(start, end - start)};
  }

  // Errors end tokenizing: the caller turns the first one into a rejection.
  Token fail(LexError error, std::size_t offset, std::size_t length, std::size_t context = 0) {
    pos_ = sql_.size();
    Token t{TokenKind::error, offset, sql_.substr(offset, length)};
    t.error = error;
    t.context_offset = context;
    return t;
  }

  Backslashes plain_string_backslashes() const {
    switch (dialect_) {
      case SqlDialect::sqlite:
        return Backslashes::literal;
      case SqlDialect::snowflake:
        return Backslashes::escape;
      case SqlDialect::postgresql:
      case SqlDialect::e6data:
        break;
    }
    return Backslashes::ambiguous;
  }

  std::optional<Token> skip_trivia() {
    while (pos_ < sql_.size()) {
      const char c = sql_[pos_];
      const char d = at(pos_ + 1);
      if (is_space(c)) {
        ++pos_;
      } else if ((c == '-' && d == '-') || (c == '/' && d == '/' && is_snowflake())) {
        if (auto error = skip_line_comment(pos_)) return error;
      } else if (c == '/' && d == '*') {
        if (auto error = skip_block_comment(pos_)) return error;
      } else {
        break;
      }
    }
    return std::nullopt;
  }

  bool is_snowflake() const { return dialect_ == SqlDialect::snowflake; }

  // PostgreSQL ends a line comment at \r or \n, SQLite only at \n. For the others a lone \r
  // is rejected: read the wrong way, it would hide or expose the rest of the line.
  std::optional<Token> skip_line_comment(std::size_t start) {
    std::size_t i = start + 2;
    for (; i < sql_.size(); ++i) {
      const char c = sql_[i];
      if (c == '\n') break;
      if (c != '\r' || dialect_ == SqlDialect::sqlite) continue;
      if (dialect_ == SqlDialect::postgresql || at(i + 1) == '\n') break;
      return fail(LexError::lone_carriage_return, start, 2, i);
    }
    pos_ = i;
    return std::nullopt;
  }

  // PostgreSQL nests block comments; SQLite ends one at the first */. Snowflake does not
  // document nesting (its migration tooling treats /*/ as closing a comment) and e6data's rules
  // are unknown, so there an inner /* is rejected: both readings agree on every comment without
  // one.
  std::optional<Token> skip_block_comment(std::size_t start) {
    std::size_t depth = 1;
    std::size_t i = start + 2;
    while (i + 1 < sql_.size()) {
      if (sql_[i] == '*' && sql_[i + 1] == '/') {
        i += 2;
        if (--depth == 0) {
          pos_ = i;
          return std::nullopt;
        }
      } else if (sql_[i] == '/' && sql_[i + 1] == '*' && dialect_ != SqlDialect::sqlite) {
        if (dialect_ != SqlDialect::postgresql) {
          return fail(LexError::nested_comment_opener, i, 2, start);
        }
        ++depth;
        i += 2;
      } else {
        ++i;
      }
    }
    return fail(LexError::unterminated_comment, start, 2);
  }

  Token single_quoted(std::size_t start, std::size_t body, Backslashes backslashes) {
    bool odd_backslashes = false;
    std::size_t i = body;
    while (i < sql_.size()) {
      const char c = sql_[i];
      if (c == '\\' && backslashes == Backslashes::escape) {
        i += 2;
        continue;
      }
      if (c == '\'') {
        if (odd_backslashes && backslashes == Backslashes::ambiguous) {
          return fail(LexError::backslash_quote, i - 1, 2, start);
        }
        odd_backslashes = false;
        if (at(i + 1) == '\'' && i + 1 < sql_.size()) {
          i += 2;
          continue;
        }
        return advance(TokenKind::literal, start, i + 1);
      }
      odd_backslashes = c == '\\' && !odd_backslashes;
      ++i;
    }
    return fail(LexError::unterminated_string, start, body - start);
  }

  // "..." and `...` double their quote to escape it; SQLite's [...] has no escape.
  Token quoted_name(std::size_t start, std::size_t body, char close) {
    std::size_t i = body;
    while (i < sql_.size()) {
      if (sql_[i] == close) {
        if (close != ']' && i + 1 < sql_.size() && sql_[i + 1] == close) {
          i += 2;
          continue;
        }
        return advance(TokenKind::quoted_name, start, i + 1);
      }
      ++i;
    }
    return fail(LexError::unterminated_identifier, start, body - start);
  }

  Token word(std::size_t start) {
    std::size_t i = start + 1;
    while (i < sql_.size() && is_ident_char(sql_[i])) ++i;
    if (dialect_ == SqlDialect::postgresql && i == start + 1) {
      // One-letter prefixes glued to a quote change how PostgreSQL reads the string.
      const char prefix = to_upper(sql_[start]);
      if (at(i) == '\'') {
        if (prefix == 'E') return single_quoted(start, i + 1, Backslashes::escape);
        if (prefix == 'B' || prefix == 'X') {
          return single_quoted(start, i + 1, Backslashes::literal);
        }
      }
      if (prefix == 'U' && at(i) == '&') {
        if (at(i + 1) == '\'') return single_quoted(start, i + 2, Backslashes::literal);
        if (at(i + 1) == '"') {
          Token t = quoted_name(start, i + 2, '"');
          t.unicode_escapes = t.kind == TokenKind::quoted_name;
          return t;
        }
      }
    }
    return advance(TokenKind::word, start, i);
  }

  // Only what is needed to not split a number into a word: an exponent is taken only when
  // digits follow, as PostgreSQL and SQLite do, so "1e'...'" is 1 followed by E'...'.
  Token number(std::size_t start) {
    std::size_t i = start;
    while (is_digit(at(i))) ++i;
    if (at(i) == '.') {
      ++i;
      while (is_digit(at(i))) ++i;
    }
    if ((at(i) == 'e' || at(i) == 'E') &&
        (is_digit(at(i + 1)) || ((at(i + 1) == '+' || at(i + 1) == '-') && is_digit(at(i + 2))))) {
      i += 2;
      while (is_digit(at(i))) ++i;
    }
    return advance(TokenKind::number, start, i);
  }

  Token dollar(std::size_t start) {
    const char next = at(start + 1);
    switch (dialect_) {
      case SqlDialect::postgresql: {
        if (is_digit(next)) return digits_parameter(start);
        // $$ or $tag$ opens a dollar quote closed by the same delimiter; a tag is an
        // identifier without '$'.
        std::size_t i = start + 1;
        while (i < sql_.size() &&
               (is_ident_start(sql_[i]) || (i > start + 1 && is_digit(sql_[i])))) {
          ++i;
        }
        if (at(i) != '$' || i >= sql_.size()) break;
        return dollar_quoted(start, i + 1);
      }
      case SqlDialect::snowflake: {
        if (next == '$') return dollar_quoted(start, start + 2);
        if (!is_ident_char(next)) break;
        // $1 is a column position and $name a session variable. Snowflake documents only $$
        // quotes, but a second '$' in the name could be read as a $tag$ quote, so it is rejected.
        std::size_t i = start + 1;
        while (i < sql_.size() && is_ident_char(sql_[i])) ++i;
        if (sql_.substr(start + 1, i - start - 1).find('$') != std::string_view::npos) {
          return fail(LexError::dollar_sign, start, i - start);
        }
        return advance(TokenKind::parameter, start, i);
      }
      case SqlDialect::e6data:
        // Whether e6data has dollar quotes is unknown; only $1-style parameters are safe.
        if (is_digit(next)) return digits_parameter(start);
        return fail(LexError::dollar_sign, start, next == '$' ? 2 : 1);
      case SqlDialect::sqlite:
        return sqlite_variable(start);
    }
    return advance(TokenKind::punct, start, start + 1);
  }

  Token digits_parameter(std::size_t start) {
    std::size_t i = start + 1;
    while (is_digit(at(i))) ++i;
    return advance(TokenKind::parameter, start, i);
  }

  Token dollar_quoted(std::size_t start, std::size_t body) {
    const std::string_view delimiter = sql_.substr(start, body - start);
    const std::size_t close = sql_.find(delimiter, body);
    if (close == std::string_view::npos) {
      return fail(LexError::unterminated_dollar_quote, start, delimiter.size());
    }
    return advance(TokenKind::literal, start, close + delimiter.size());
  }

  // SQLite's $name, @name, :name and #name, including its Tcl forms $a::b and $a(...), whose
  // parenthesised part runs to ')' or whitespace and may contain quotes that start nothing.
  Token sqlite_variable(std::size_t start) {
    std::size_t i = start + 1;
    bool named = false;
    while (i < sql_.size()) {
      const char c = sql_[i];
      if (is_ident_char(c)) {
        named = true;
        ++i;
      } else if (c == '(' && named) {
        ++i;
        while (i < sql_.size() && !is_space(sql_[i]) && sql_[i] != ')') ++i;
        if (i >= sql_.size() || sql_[i] != ')') {
          return fail(LexError::malformed_parameter, start, i - start);
        }
        return advance(TokenKind::parameter, start, i + 1);
      } else if (c == ':' && at(i + 1) == ':') {
        i += 2;
      } else {
        break;
      }
    }
    if (!named) return advance(TokenKind::punct, start, start + 1);
    return advance(TokenKind::parameter, start, i);
  }

  std::string_view sql_;
  SqlDialect dialect_;
  std::size_t pos_ = 0;
};

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = to_upper(c);
  return out;
}

// Long tokens (a whole string literal) are cut so that the message stays one readable line.
std::string shorten(std::string_view text) {
  constexpr std::size_t kMax = 40;
  if (text.size() <= kMax) return std::string(text);
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out(text.substr(0, cut));
  out += "[...]";
  return out;
}

std::string display(const Token& t) {
  return t.kind == TokenKind::word ? upper(t.text) : shorten(t.text);
}

std::string at_offset(std::size_t offset) {
  return " at offset " + std::to_string(offset);
}

GuardVerdict reject(std::string message, std::size_t offset, std::string_view token) {
  return GuardVerdict{false, std::move(message), offset, std::string(token)};
}

GuardVerdict reject(std::string message, const Token& t) {
  return reject(std::move(message), t.offset, t.text);
}

GuardVerdict lex_error(const Token& t, SqlDialect dialect) {
  const std::string token = shorten(t.text);
  const std::string where = at_offset(t.offset);
  const std::string_view name = dialect_name(dialect);
  switch (t.error) {
    case LexError::unterminated_string:
      // A plain ' is the usual case; prefixed openers (E', U&') are named too.
      return reject("unterminated string literal " + (token == "'" ? "" : token + " ") +
                        "starting" + where + ": add the closing '",
                    t);
    case LexError::unterminated_dollar_quote:
      return reject(
          "unterminated dollar-quoted string starting" + where + ": add the closing " + token, t);
    case LexError::unterminated_identifier:
      return reject("unterminated quoted identifier " + token + " starting" + where +
                        ": add the closing " +
                        (t.text.back() == '[' ? std::string("]") : std::string(1, t.text.back())),
                    t);
    case LexError::unterminated_comment:
      return reject("unterminated block comment /* starting" + where + ": add the closing */", t);
    case LexError::backslash_quote:
      return reject("the string literal starting" + at_offset(t.context_offset) + " has \\'" +
                        where + ", which " + std::string(name) +
                        (dialect == SqlDialect::postgresql
                             ? " reads as an escaped quote when standard_conforming_strings is off"
                             : " may read as an escaped quote") +
                        "; write a quote inside a string as ''",
                    t);
    case LexError::nested_comment_opener:
      return reject("the block comment starting" + at_offset(t.context_offset) + " contains /*" +
                        where + ", which " + std::string(name) +
                        " may read as a nested comment; remove the inner /*",
                    t);
    case LexError::lone_carriage_return:
      return reject("the line comment " + token + " starting" + where +
                        " contains a carriage return" + at_offset(t.context_offset) +
                        " without a line feed, which " + std::string(name) +
                        " may not read as the end of the line; end lines with a line feed",
                    t);
    case LexError::unsupported_character:
      return reject("unexpected character " + token + where +
                        " outside any string or comment, where the guard cannot tell how " +
                        std::string(name) + " reads it; remove it",
                    t);
    case LexError::dollar_sign:
      return reject(
          "found " + token + where + ", which " + std::string(name) +
              " may read as a dollar-quote delimiter; " +
              (dialect == SqlDialect::snowflake ? "use $$...$$ strings and variable names without $"
                                                : "use '...' strings and $1-style parameters"),
          t);
    case LexError::double_slash:
      return reject("found //" + where + ", which " + std::string(name) +
                        " may read as the start of a comment; use -- for comments",
                    t);
    case LexError::malformed_parameter:
      return reject("malformed parameter " + token + where +
                        ": the parenthesised part of a parameter name must end with ) before "
                        "any whitespace",
                    t);
    case LexError::none:
      break;
  }
  return reject("the query cannot be tokenized" + where, t);
}

GuardVerdict reject_write(const Token& t, std::string_view context) {
  return reject("query accepts only read-only statements: found " + display(t) +
                    at_offset(t.offset) + std::string(context) +
                    "; use the execute tool for writes",
                t);
}

// Walks the tokens of one statement and stops at the first reason to reject it.
class Checker {
 public:
  Checker(std::string_view sql, SqlDialect dialect)
      : sql_(sql), dialect_(dialect), lexer_(sql, dialect) {}

  GuardVerdict run() {
    if (const std::size_t nul = sql_.find('\0'); nul != std::string_view::npos) {
      return reject("the query contains a NUL byte" + at_offset(nul) +
                        ", where some drivers would cut the text short; remove it",
                    nul, sql_.substr(nul, 1));
    }
    Token t = lexer_.next();
    while (is_punct(t, ';')) t = lexer_.next();
    if (t.kind == TokenKind::error) return lex_error(t, dialect_);
    if (t.kind == TokenKind::end) {
      return reject("the query is empty: it has no SQL outside comments and whitespace", 0, {});
    }
    if (auto rejection = statement_start(t, false)) return *std::move(rejection);
    for (;;) {
      t = lexer_.next();
      std::optional<GuardVerdict> rejection;
      switch (t.kind) {
        case TokenKind::end:
          return GuardVerdict{true, {}, 0, {}};
        case TokenKind::error:
          return lex_error(t, dialect_);
        case TokenKind::punct:
          if (is_punct(t, ';')) return after_semicolon(t);
          if (is_punct(t, '(')) open_paren();
          if (is_punct(t, ')')) close_paren();
          break;
        case TokenKind::word:
          rejection = check_word(t);
          break;
        case TokenKind::quoted_name:
          rejection = check_quoted_name(t);
          break;
        case TokenKind::literal:
        case TokenKind::number:
        case TokenKind::parameter:
          break;
      }
      if (rejection) return *std::move(rejection);
      previous_ = t;
    }
  }

 private:
  std::string allowed_starts() const {
    switch (dialect_) {
      case SqlDialect::postgresql:
        return "SELECT, WITH, VALUES, TABLE, SHOW, DESCRIBE or EXPLAIN";
      case SqlDialect::sqlite:
        return "SELECT, WITH, VALUES or EXPLAIN";
      case SqlDialect::snowflake:
      case SqlDialect::e6data:
        break;
    }
    return "SELECT, WITH, VALUES, SHOW, DESCRIBE, DESC or EXPLAIN";
  }

  bool starts_query(const Token& t) const {
    return is_word(t, "SELECT") || is_word(t, "WITH") || is_word(t, "VALUES") ||
           (is_word(t, "TABLE") && dialect_ == SqlDialect::postgresql) || is_punct(t, '(');
  }

  // `explained` is set for the statement after EXPLAIN [options], which EXPLAIN ANALYZE runs.
  std::optional<GuardVerdict> statement_start(Token t, bool explained) {
    bool parenthesized = false;
    while (is_punct(t, '(')) {
      open_paren();
      parenthesized = true;
      t = lexer_.next();
    }
    if (t.kind == TokenKind::error) return lex_error(t, dialect_);
    if (t.kind == TokenKind::end) {
      return reject("the query ends" + at_offset(t.offset) +
                        " where a statement keyword such as SELECT is expected",
                    t);
    }
    if (t.kind != TokenKind::word) {
      return reject("query accepts only read-only statements, which start with " +
                        allowed_starts() + ": found " + display(t) + at_offset(t.offset) +
                        " instead of a keyword",
                    t);
    }
    previous_ = t;
    if (is_word(t, "WITH")) open_with();
    if (starts_query(t)) return std::nullopt;
    if (!parenthesized && !explained) {
      if (is_word(t, "EXPLAIN")) return explain_target();
      if (is_word(t, "SHOW") || is_word(t, "DESCRIBE")) {
        if (dialect_ != SqlDialect::sqlite) return std::nullopt;
        return reject("SQLite has no " + display(t) + " statement: found " + display(t) +
                          at_offset(t.offset) +
                          "; read the schema with SELECT * FROM sqlite_schema or "
                          "SELECT * FROM pragma_table_info('t') instead",
                      t);
      }
      if (is_word(t, "DESC") &&
          (dialect_ == SqlDialect::snowflake || dialect_ == SqlDialect::e6data)) {
        return std::nullopt;
      }
      if (is_word(t, "PRAGMA") && dialect_ == SqlDialect::sqlite) {
        return reject("query accepts only read-only statements: found PRAGMA" +
                          at_offset(t.offset) +
                          ", which can change the database; read settings with a pragma_ "
                          "function in a SELECT, such as SELECT * FROM pragma_table_info('t'), "
                          "or use the execute tool",
                      t);
      }
    }
    if (contains(kWriteAnywhere, t.text) || contains(kWriteStatement, t.text)) {
      return reject_write(t, explained ? " (in the statement being explained)" : "");
    }
    if (explained) {
      return reject("query can explain only a read-only query (SELECT, WITH, VALUES): found " +
                        display(t) + at_offset(t.offset) +
                        "; use the execute tool for other statements",
                    t);
    }
    if (parenthesized) {
      return reject(
          "only a query (SELECT, WITH, VALUES) may follow an opening parenthesis: "
          "found " +
              display(t) + at_offset(t.offset),
          t);
    }
    return reject("query accepts only read-only statements, which start with " + allowed_starts() +
                      ": found " + display(t) + at_offset(t.offset) +
                      "; use the execute tool for other statements",
                  t);
  }

  // Skips EXPLAIN's options, (ANALYZE, BUFFERS) or ANALYZE VERBOSE or QUERY PLAN, and checks
  // the explained statement as a statement start of its own.
  std::optional<GuardVerdict> explain_target() {
    Token t = lexer_.next();
    if (is_punct(t, '(') && !starts_query(lexer_.peek())) {
      const Token open = t;
      for (std::size_t level = 1; level > 0;) {
        t = lexer_.next();
        if (t.kind == TokenKind::error) return lex_error(t, dialect_);
        if (t.kind == TokenKind::end) {
          return reject("the EXPLAIN option list that ( opens" + at_offset(open.offset) +
                            " is not closed; add the closing )",
                        open);
        }
        if (is_punct(t, '(')) ++level;
        if (is_punct(t, ')')) --level;
      }
      t = lexer_.next();
    }
    while (t.kind == TokenKind::word && contains(kExplainOptions, t.text)) t = lexer_.next();
    return statement_start(t, true);
  }

  std::optional<GuardVerdict> check_word(const Token& t) {
    const Token following = lexer_.peek();
    if (is_punct(following, '(')) {
      if (auto rejection = check_function(t, t.text)) return rejection;
    }
    // After a '.' a word is part of a qualified name (t.update, s.comment), never a keyword.
    if (is_punct(previous_, '.') && previous_.offset + 1 == t.offset) return std::nullopt;
    if (contains(kWriteAnywhere, t.text)) {
      // Snowflake has an INSERT(base, pos, len, str) string function; INSERT the statement is
      // never followed by '('.
      const bool insert_function =
          dialect_ == SqlDialect::snowflake && is_word(t, "INSERT") && is_punct(following, '(');
      if (!insert_function) return reject_write(t, with_context());
    }
    if (is_word(t, "INTO")) {
      return reject("query accepts only read-only statements: found INTO" + at_offset(t.offset) +
                        with_context() +
                        ", and SELECT INTO creates a table; use the execute tool for writes",
                    t);
    }
    if (is_word(t, "FOR")) return locking_clause(t);
    if (is_word(t, "WITH")) {
      maybe_open_with();
    } else if (is_word(t, "SELECT") || is_word(t, "VALUES") || is_word(t, "TABLE")) {
      // The main query of a WITH at this depth: the CTE list is over.
      if (depth_ < 64) open_with_ &= ~(std::uint64_t{1} << depth_);
    }
    return std::nullopt;
  }

  std::optional<GuardVerdict> check_quoted_name(const Token& t) {
    const Token following = lexer_.peek();
    if (t.unicode_escapes && (is_punct(following, '(') || is_word(following, "UESCAPE"))) {
      return reject("found the Unicode-escaped name " + shorten(t.text) + at_offset(t.offset) +
                        ", whose real spelling the guard cannot check; write the name without "
                        "escapes",
                    t);
    }
    if (!is_punct(following, '(') || t.text.size() < 2) return std::nullopt;
    return check_function(t, t.text.substr(1, t.text.size() - 2));
  }

  std::optional<GuardVerdict> check_function(const Token& t, std::string_view name) const {
    for (const FunctionName& f : side_effect_functions(dialect_)) {
      if (f.prefix ? istarts_with(name, f.name) : iequals(name, f.name)) {
        return reject("query accepts only read-only statements: found the function " +
                          shorten(t.text) + at_offset(t.offset) +
                          ", which changes server state or reaches outside the database; use "
                          "the execute tool if it is really needed",
                      t);
      }
    }
    return std::nullopt;
  }

  // FOR UPDATE, FOR SHARE, FOR NO KEY UPDATE and FOR KEY SHARE take row locks, which block
  // writers and need write privilege; FOR elsewhere (SUBSTRING(x FROM 1 FOR 2)) is harmless.
  std::optional<GuardVerdict> locking_clause(const Token& for_token) const {
    Lexer ahead = lexer_;
    const Token a = ahead.next();
    Token last;
    std::string_view clause;
    if (is_word(a, "UPDATE") || is_word(a, "SHARE")) {
      last = a;
      clause = is_word(a, "UPDATE") ? "FOR UPDATE" : "FOR SHARE";
    } else if (is_word(a, "NO")) {
      const Token b = ahead.next();
      const Token c = ahead.next();
      if (is_word(b, "KEY") && is_word(c, "UPDATE")) {
        last = c;
        clause = "FOR NO KEY UPDATE";
      }
    } else if (is_word(a, "KEY")) {
      const Token b = ahead.next();
      if (is_word(b, "SHARE")) {
        last = b;
        clause = "FOR KEY SHARE";
      }
    }
    if (clause.empty()) return std::nullopt;
    const std::size_t end = last.offset + last.text.size();
    return reject("query accepts only read-only statements: found the row-locking clause " +
                      std::string(clause) + at_offset(for_token.offset) + with_context() +
                      "; remove it, or use the execute tool if the rows must be locked",
                  for_token.offset, sql_.substr(for_token.offset, end - for_token.offset));
  }

  GuardVerdict after_semicolon(const Token& semicolon) {
    Token t = lexer_.next();
    while (is_punct(t, ';')) t = lexer_.next();
    if (t.kind == TokenKind::end) return GuardVerdict{true, {}, 0, {}};
    if (t.kind == TokenKind::error) return lex_error(t, dialect_);
    return reject("only one statement is allowed; found a second statement, starting with " +
                      display(t) + at_offset(t.offset) + ", after ';'" +
                      at_offset(semicolon.offset) + "; send one statement per call",
                  semicolon);
  }

  // A WITH opens a CTE list only when a name and AS or a column list follow; this keeps
  // "WITH ORDINALITY AS" and "WITH TIME ZONE" from being taken for one.
  void maybe_open_with() {
    Lexer ahead = lexer_;
    const Token a = ahead.next();
    bool cte = is_word(a, "RECURSIVE");
    if (!cte && ((a.kind == TokenKind::word && !is_word(a, "ORDINALITY")) ||
                 a.kind == TokenKind::quoted_name)) {
      const Token b = ahead.next();
      cte = is_word(b, "AS") || is_punct(b, '(');
    }
    if (cte) open_with();
  }

  void open_with() {
    if (depth_ < 64) open_with_ |= std::uint64_t{1} << depth_;
  }

  void open_paren() { ++depth_; }

  void close_paren() {
    if (depth_ > 0) --depth_;
    // A WITH opened inside the parentheses that just closed is over.
    if (depth_ < 63) open_with_ &= (std::uint64_t{2} << depth_) - 1;
  }

  // Whether the current token is in a CTE body: a WITH is open at a shallower depth.
  const char* with_context() const {
    const std::uint64_t shallower =
        depth_ >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << depth_) - 1;
    return (open_with_ & shallower) != 0 ? " (inside a WITH clause)" : "";
  }

  std::string_view sql_;
  SqlDialect dialect_;
  Lexer lexer_;
  std::size_t depth_ = 0;
  std::uint64_t open_with_ = 0;  // bit d: a WITH at depth d has not reached its main query
  Token previous_;
};

}  // namespace

GuardVerdict SqlGuard::check_read_only(std::string_view sql, SqlDialect dialect) {
  return Checker(sql, dialect).run();
}

std::string SqlGuard::leading_keyword(std::string_view sql, SqlDialect dialect) {
  Lexer lexer(sql, dialect);
  Token t = lexer.next();
  while (is_punct(t, ';') || is_punct(t, '(')) t = lexer.next();
  if (t.kind != TokenKind::word) return {};
  return upper(t.text);
}

}  // namespace sluice::gateway
